//! What keeps two runs from mixing in one `--out`: the run configuration
//! recorded on the first run (`OUT/run-config.json`), which a later run must
//! match, and a lock per part (`OUT/.lock-<part>`) held while a run works.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::PreprocessConfig;
use crate::error::{PipelineError, Result};

/// File name of the recorded configuration under `--out`.
pub const RUN_CONFIG: &str = "run-config.json";

/// The settings that decide what a row holds. Two runs into one `--out`
/// must agree on all of them but the root (threads, batch sizes, the device
/// and the part index may differ: they change the speed, not the rows; the
/// root is recorded, not compared, since the machines of a fan-out may mount
/// the dataset at different paths).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// `voxceleb2`, `bp4d` or `disfa`.
    pub dataset: String,
    /// The dataset root as given.
    pub root: PathBuf,
    /// Sampling rate (VoxCeleb2; 0: every frame).
    pub fps: f64,
    /// Landmark backend as given (`fan:WEIGHTS`, `dlib`, ...).
    pub landmarks: String,
    /// Crop side, pixels.
    pub crop_size: u32,
    /// JPEG quality of the crops.
    pub jpeg_quality: u8,
    /// Number of parts the clips are split into (`--shard-count`).
    pub parts: usize,
    /// Doublings of the second face search (`--upsample`; records of older
    /// runs have none: they searched once).
    #[serde(default)]
    pub upsample: u32,
}

impl RunConfig {
    /// The settings of `config`.
    pub fn of(config: &PreprocessConfig) -> Self {
        Self {
            dataset: config.dataset.name().into(),
            root: config.root.clone(),
            fps: config.fps,
            landmarks: config.landmarks.clone(),
            crop_size: config.crop_size,
            jpeg_quality: config.jpeg_quality,
            parts: config.partition.count,
            upsample: config.upsample,
        }
    }

    /// `(flag, recorded, now)` for every setting that differs.
    pub fn differences(&self, now: &RunConfig) -> Vec<(&'static str, String, String)> {
        let mut d = Vec::new();
        let mut cmp = |flag: &'static str, a: String, b: String| {
            if a != b {
                d.push((flag, a, b));
            }
        };
        cmp("--dataset", self.dataset.clone(), now.dataset.clone());
        cmp("--fps", self.fps.to_string(), now.fps.to_string());
        cmp("--landmarks", self.landmarks.clone(), now.landmarks.clone());
        cmp("--crop-size", self.crop_size.to_string(), now.crop_size.to_string());
        cmp("--jpeg-quality", self.jpeg_quality.to_string(), now.jpeg_quality.to_string());
        cmp("--shard-count", self.parts.to_string(), now.parts.to_string());
        cmp("--upsample", self.upsample.to_string(), now.upsample.to_string());
        d
    }
}

/// Records `config` in `out` on the first run; on a later run, refuses a
/// configuration that differs from the recorded one, naming each setting
/// with both values. An `out` that already holds shards but no record (a
/// folder of an older build) is accepted and the record written.
pub fn check_run_config(out: &Path, config: &PreprocessConfig) -> Result<()> {
    let path = out.join(RUN_CONFIG);
    let now = RunConfig::of(config);
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(|e| PipelineError::io(&path, e))?;
        let recorded: RunConfig = serde_json::from_str(&text).map_err(|e| PipelineError::Input {
            path: path.clone(),
            message: format!(
                "not a run configuration ({e}); delete it only if no shards of another run are in this folder"
            ),
        })?;
        let diff = recorded.differences(&now);
        if !diff.is_empty() {
            let list: Vec<String> =
                diff.iter().map(|(flag, was, is)| format!("{flag} {is} (this folder was made with {was})")).collect();
            return Err(PipelineError::Input {
                path: out.to_path_buf(),
                message: format!(
                    "this --out holds shards of another configuration: {}; use another --out, or repeat the first run's values to resume it",
                    list.join(", ")
                ),
            });
        }
        return Ok(());
    }
    let json = serde_json::to_string_pretty(&now).map_err(|e| PipelineError::Config(e.to_string()))?;
    crate::error::write_file(&path, format!("{json}\n").as_bytes())
}

/// The lock of one part of a run, removed when dropped.
#[derive(Debug)]
pub struct PartLock {
    path: PathBuf,
}

impl Drop for PartLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Takes the lock of part `tag` in `out` (`.lock-<tag>`: `pid host`). A lock
/// left by a process that no longer runs on this host (a killed run) is
/// taken over; one held by a live process, or by another host, is refused.
pub fn lock_part(out: &Path, tag: &str) -> Result<PartLock> {
    let path = out.join(format!(".lock-{tag}"));
    let me = format!("{} {}\n", std::process::id(), hostname());
    for _ in 0..2 {
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(me.as_bytes()).map_err(|e| PipelineError::io(&path, e))?;
                return Ok(PartLock { path });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let mut it = text.split_whitespace();
                let (pid, host) = (it.next().and_then(|p| p.parse::<u32>().ok()), it.next().unwrap_or(""));
                let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
                if host == hostname() && !alive {
                    tracing::warn!(lock = %path.display(), "taking over the lock of a run that no longer runs");
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                let who = match pid {
                    Some(p) => format!("process {p} on {}", if host.is_empty() { "an unknown host" } else { host }),
                    None => "an unreadable lock".into(),
                };
                return Err(PipelineError::Input {
                    path: path.clone(),
                    message: format!(
                        "another run of part {tag} is working in this --out ({who}); wait for it, or delete this file if that run is dead"
                    ),
                });
            }
            Err(e) => return Err(PipelineError::io(&path, e)),
        }
    }
    Err(PipelineError::Input { path, message: "cannot take the lock".into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::Dataset;

    #[test]
    fn a_second_configuration_is_refused_naming_both_values() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = PreprocessConfig::new(Dataset::Voxceleb2, "raw".into(), dir.path().into());
        check_run_config(dir.path(), &cfg).unwrap();
        cfg.jobs = 7; // speed settings may change
        check_run_config(dir.path(), &cfg).unwrap();
        cfg.crop_size = 128;
        cfg.fps = 2.0;
        let e = check_run_config(dir.path(), &cfg).unwrap_err().to_string();
        assert!(e.contains("--crop-size 128 (this folder was made with 256)"), "{e}");
        assert!(e.contains("--fps 2 (this folder was made with 1)"), "{e}");
    }

    #[test]
    fn a_live_lock_is_refused_and_a_dead_one_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lock = lock_part(dir.path(), "p0000of0001").unwrap();
        let e = lock_part(dir.path(), "p0000of0001").unwrap_err().to_string();
        assert!(e.contains("another run of part p0000of0001") && e.contains(&std::process::id().to_string()), "{e}");
        assert!(lock_part(dir.path(), "p0001of0002").is_ok(), "other parts have their own lock");
        drop(lock);
        assert!(!dir.path().join(".lock-p0000of0001").exists());
        // a killed run's lock (a pid above Linux's pid_max)
        std::fs::write(dir.path().join(".lock-p0000of0001"), format!("4294967294 {}\n", hostname())).unwrap();
        assert!(lock_part(dir.path(), "p0000of0001").is_ok());
    }
}
