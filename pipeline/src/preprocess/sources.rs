//! Dataset layouts (docs/preprocess.md) -> the clips to preprocess.
//!
//! A *clip* is the unit of work and of resumption: one VoxCeleb2 `.mp4`, one
//! BP4D `Sequences/<subject>/<task>/` frame folder, or one DISFA left-camera
//! video. Its `rel_path` (relative to `--root`, `/`-separated) names it in
//! progress records, error tables and the fan-out hash.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{PipelineError, Result};

/// The datasets `mcsfau preprocess` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    /// VoxCeleb2 `dev/mp4/<identity>/<youtube_id>/<clip>.mp4` (also `test/`).
    Voxceleb2,
    /// BP4D-Spontaneous `Sequences/<subject>/<task>/<frame>.jpg`.
    Bp4d,
    /// DISFA `Videos_LeftCamera/LeftVideo<subject>_comp.avi`.
    Disfa,
}

impl Dataset {
    /// Name used in shards and sample ids.
    pub fn name(self) -> &'static str {
        match self {
            Self::Voxceleb2 => "voxceleb2",
            Self::Bp4d => "bp4d",
            Self::Disfa => "disfa",
        }
    }
}

impl std::str::FromStr for Dataset {
    type Err = PipelineError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "voxceleb2" => Ok(Self::Voxceleb2),
            "bp4d" => Ok(Self::Bp4d),
            "disfa" => Ok(Self::Disfa),
            _ => Err(PipelineError::Config(format!("unknown dataset `{s}`, expected voxceleb2, bp4d or disfa"))),
        }
    }
}

/// How a clip's frames are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipKind {
    /// A video file decoded with FFmpeg.
    Video,
    /// A folder of numbered JPEG frames (BP4D).
    Frames,
}

/// One unit of preprocessing work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    /// Path relative to the dataset root, `/`-separated.
    pub rel_path: String,
    /// Absolute (root-joined) path of the video file or frame folder.
    pub path: PathBuf,
    /// Video file or frame folder.
    pub kind: ClipKind,
    /// Subject (unit of splitting): VoxCeleb identity, BP4D/DISFA subject.
    pub subject: String,
    /// VoxCeleb YouTube id, BP4D task, DISFA video file stem.
    pub video: String,
    /// VoxCeleb clip number; empty for BP4D/DISFA.
    pub clip: String,
}

impl Clip {
    /// The landmark sidecar of this clip (COMMON conventions): the video's
    /// extension replaced by `.ldm68.csv`, or `.ldm68.csv` appended to a
    /// frame folder's name.
    pub fn sidecar_path(&self) -> PathBuf {
        crate::landmarks::given::sidecar_path(&self.path)
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| PipelineError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

fn name_of(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn rel(root: &Path, p: &Path) -> String {
    let r = p.strip_prefix(root).unwrap_or(p);
    r.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

fn missing_layout(root: &Path, expected: &str) -> PipelineError {
    PipelineError::Input { path: root.to_path_buf(), message: format!("not a dataset root: expected {expected}") }
}

/// Lists the clips of `dataset` under `root`, sorted by relative path.
/// A root without the dataset's top-level folder is an error.
pub fn discover(dataset: Dataset, root: &Path) -> Result<Vec<Clip>> {
    let mut clips = Vec::new();
    match dataset {
        Dataset::Voxceleb2 => {
            let subsets: Vec<PathBuf> =
                ["dev", "test"].iter().map(|s| root.join(s).join("mp4")).filter(|p| p.is_dir()).collect();
            if subsets.is_empty() {
                return Err(missing_layout(root, "`dev/mp4/<identity>/<youtube_id>/<clip>.mp4`"));
            }
            for subset in subsets {
                for id in sorted_entries(&subset)?.into_iter().filter(|p| p.is_dir()) {
                    for yt in sorted_entries(&id)?.into_iter().filter(|p| p.is_dir()) {
                        for f in sorted_entries(&yt)? {
                            if f.is_file() && f.extension().is_some_and(|e| e.eq_ignore_ascii_case("mp4")) {
                                clips.push(Clip {
                                    rel_path: rel(root, &f),
                                    subject: name_of(&id),
                                    video: name_of(&yt),
                                    clip: f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
                                    path: f,
                                    kind: ClipKind::Video,
                                });
                            }
                        }
                    }
                }
            }
        }
        Dataset::Bp4d => {
            let seq = root.join("Sequences");
            if !seq.is_dir() {
                return Err(missing_layout(root, "`Sequences/<subject>/<task>/<frame>.jpg`"));
            }
            for subject in sorted_entries(&seq)?.into_iter().filter(|p| p.is_dir()) {
                for task in sorted_entries(&subject)?.into_iter().filter(|p| p.is_dir()) {
                    clips.push(Clip {
                        rel_path: rel(root, &task),
                        subject: name_of(&subject),
                        video: name_of(&task),
                        clip: String::new(),
                        path: task,
                        kind: ClipKind::Frames,
                    });
                }
            }
        }
        Dataset::Disfa => {
            let videos = root.join("Videos_LeftCamera");
            if !videos.is_dir() {
                return Err(missing_layout(root, "`Videos_LeftCamera/LeftVideo<subject>_comp.avi`"));
            }
            for f in sorted_entries(&videos)? {
                let name = name_of(&f);
                let Some(subject) = name.strip_prefix("LeftVideo").and_then(|s| s.split('_').next()) else {
                    continue;
                };
                if !f.is_file() || !f.extension().is_some_and(|e| e.eq_ignore_ascii_case("avi")) {
                    continue;
                }
                clips.push(Clip {
                    rel_path: rel(root, &f),
                    subject: subject.to_string(),
                    video: f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
                    clip: String::new(),
                    path: f,
                    kind: ClipKind::Video,
                });
            }
        }
    }
    clips.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(clips)
}

/// BP4D frame files of a folder: frame number (parsed from the file stem, so
/// `0012.jpg` and `12.jpg` are both frame 12) -> path. Files whose stem is not
/// a number are ignored.
pub fn bp4d_frames(dir: &Path) -> Result<std::collections::BTreeMap<i64, PathBuf>> {
    let mut out = std::collections::BTreeMap::new();
    for f in sorted_entries(dir)? {
        let is_jpg = f.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
        if let (true, Some(n)) = (is_jpg, f.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<i64>().ok())) {
            out.insert(n, f);
        }
    }
    Ok(out)
}

/// The BP4D label file of a clip: `AUCoding/AU_OCC/<subject>_<task>.csv`.
pub fn bp4d_label_path(root: &Path, clip: &Clip) -> PathBuf {
    root.join("AUCoding").join("AU_OCC").join(format!("{}_{}.csv", clip.subject, clip.video))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn layouts_become_sorted_clips_with_subject_video_clip() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(&r.join("dev/mp4/id00012/21Uxsk56VDQ/00002.mp4"));
        touch(&r.join("dev/mp4/id00012/21Uxsk56VDQ/00001.mp4"));
        touch(&r.join("dev/mp4/id00012/21Uxsk56VDQ/00001.ldm68.csv"));
        let v = discover(Dataset::Voxceleb2, r).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].rel_path, "dev/mp4/id00012/21Uxsk56VDQ/00001.mp4");
        assert_eq!(
            (v[0].subject.as_str(), v[0].video.as_str(), v[0].clip.as_str()),
            ("id00012", "21Uxsk56VDQ", "00001")
        );
        assert_eq!(v[0].sidecar_path(), r.join("dev/mp4/id00012/21Uxsk56VDQ/00001.ldm68.csv"));

        touch(&r.join("Sequences/F001/T1/0012.jpg"));
        touch(&r.join("Sequences/F001/T1/13.jpg"));
        let b = discover(Dataset::Bp4d, r).unwrap();
        assert_eq!(
            (b[0].rel_path.as_str(), b[0].subject.as_str(), b[0].video.as_str()),
            ("Sequences/F001/T1", "F001", "T1")
        );
        assert_eq!(b[0].sidecar_path(), r.join("Sequences/F001/T1.ldm68.csv"));
        assert_eq!(bp4d_frames(&b[0].path).unwrap().keys().copied().collect::<Vec<_>>(), vec![12, 13]);

        touch(&r.join("Videos_LeftCamera/LeftVideoSN001_comp.avi"));
        let s = discover(Dataset::Disfa, r).unwrap();
        assert_eq!((s[0].subject.as_str(), s[0].video.as_str()), ("SN001", "LeftVideoSN001_comp"));
        assert_eq!(s[0].sidecar_path(), r.join("Videos_LeftCamera/LeftVideoSN001_comp.ldm68.csv"));
    }

    #[test]
    fn a_root_without_the_layout_says_what_it_expected() {
        let d = tempfile::tempdir().unwrap();
        let e = discover(Dataset::Disfa, d.path()).unwrap_err().to_string();
        assert!(e.contains("Videos_LeftCamera"), "{e}");
    }
}
