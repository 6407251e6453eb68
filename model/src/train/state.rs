//! Training checkpoints: one safetensors file per save, everything needed
//! to continue as if never stopped.
//!
//! `RUN/checkpoints/step-00001000.safetensors` holds
//! * `online.<name>`, `target.<name>`: both stores (BatchNorm statistics included);
//! * `momentum.<name>`: the SGD buffer of each trainable variable;
//! * `meta`: uint8, the JSON of [`TrainState`] (step, epoch and batches
//!   done in it, the seeds the random streams derive from, the resolved
//!   config).
//!
//! Random state: the loader order is a function of `(loader seed, epoch)`,
//! the augmentation of `(seed, step)`, and libtorch's generator is re-seeded
//! from `(seed, step)` at every step, so `(seeds, step, epoch, batch)` *is*
//! the RNG state. Files are written as `*.tmp` and renamed when complete; a
//! run killed mid-save leaves only a `.tmp` that [`latest`] ignores.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::config::PretrainConfig;
use super::error::{Result, TrainError};
use super::step::Trainer;

/// Format tag in [`TrainState::format`].
pub const STATE_FORMAT: &str = "mcsfau-train-state-v1";

/// The non-tensor part of a training checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    /// Optimizer steps taken.
    pub step: u64,
    /// The epoch the next batch comes from (0-based).
    pub epoch: u64,
    /// Batches of `epoch` already trained on.
    pub batch_in_epoch: u64,
    /// The seeds every random stream derives from: `seed` (augmentation,
    /// libtorch per step) and `loader_seed` (sample order per epoch).
    pub rng: RngState,
    /// Processes of the data-parallel run that wrote it (1: one process;
    /// absent in checkpoints from before data-parallel training).
    #[serde(default = "one")]
    pub world_size: u64,
    /// The resolved configuration of the run.
    pub config: PretrainConfig,
}

fn one() -> u64 {
    1
}

/// Seeds of the run's random streams (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RngState {
    /// `PretrainConfig::seed`.
    pub seed: u64,
    /// `data.loader.seed`.
    pub loader_seed: u64,
    /// libtorch's seed for the next step (`step_seed(seed, step + 1)`).
    pub next_torch_seed: i64,
}

/// The checkpoint folder of a run.
pub fn checkpoint_dir(run: &Path) -> PathBuf {
    run.join("checkpoints")
}

/// The file of the checkpoint at `step`.
pub fn checkpoint_path(run: &Path, step: u64) -> PathBuf {
    checkpoint_dir(run).join(format!("step-{step:08}.safetensors"))
}

/// Complete checkpoints of a run, `(step, path)` sorted by step.
pub fn list(run: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = checkpoint_dir(run);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(TrainError::io(&dir))? {
        let path = entry.map_err(TrainError::io(&dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let step = name.strip_prefix("step-").and_then(|s| s.strip_suffix(".safetensors"));
        if let Some(step) = step.and_then(|s| s.parse::<u64>().ok()) {
            out.push((step, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The newest complete checkpoint of a run.
pub fn latest(run: &Path) -> Result<Option<PathBuf>> {
    Ok(list(run)?.pop().map(|(_, p)| p))
}

/// The newest checkpoint of `run` that reads and verifies, with its state
/// and tensors, and the newer ones that did not (path, reason), newest
/// first. `None` when the run has no checkpoint; an error when none verifies.
#[allow(clippy::type_complexity)]
pub fn latest_valid(
    run: &Path,
) -> Result<Option<(PathBuf, TrainState, HashMap<String, Tensor>, Vec<(PathBuf, String)>)>> {
    let mut skipped = Vec::new();
    for (_, path) in list(run)?.into_iter().rev() {
        match read_state(&path) {
            Ok((st, tensors)) => return Ok(Some((path, st, tensors, skipped))),
            Err(e) => skipped.push((path, e.to_string())),
        }
    }
    if skipped.is_empty() {
        return Ok(None);
    }
    let (path, _) = skipped[0].clone();
    let reason = skipped.iter().map(|(_, why)| why.as_str()).collect::<Vec<_>>().join("; ");
    Err(TrainError::Checkpoint { path, reason: format!("no checkpoint of the run verifies: {reason}") })
}

fn on_cpu<'a>(prefix: &str, vars: impl IntoIterator<Item = (&'a String, &'a Tensor)>) -> Vec<(String, Tensor)> {
    vars.into_iter().map(|(n, t)| (format!("{prefix}{n}"), t.detach().to_device(Device::Cpu))).collect()
}

/// Writes `state` and the trainer's tensors to `path` atomically.
pub fn save(t: &Trainer, state: &TrainState, path: &Path) -> Result<()> {
    let bad = |reason: String| TrainError::Checkpoint { path: path.to_path_buf(), reason };
    let online = t.model.online().variables();
    let target = t.model.target().variables();
    let mut tensors = on_cpu("online.", &online);
    tensors.extend(on_cpu("target.", &target));
    tensors.extend(on_cpu("momentum.", t.opt.buffers()));
    let json = serde_json::to_vec(state).map_err(|e| bad(format!("cannot encode the state: {e}")))?;
    tensors.push(("meta".into(), Tensor::from_slice(&json)));
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
    }
    schemas::atomic::write_with(path, |tmp| Tensor::write_safetensors(&tensors, tmp)).map_err(|e| match e {
        schemas::atomic::AtomicError::Write(e) => bad(e.to_string()),
        schemas::atomic::AtomicError::Io(p, source) => TrainError::Io { path: p, source },
    })
}

/// Reads only the state of a checkpoint (the config to build the model with).
pub fn read_state(path: &Path) -> Result<(TrainState, HashMap<String, Tensor>)> {
    let bad = |reason: String| TrainError::Checkpoint { path: path.to_path_buf(), reason };
    let mut file: HashMap<String, Tensor> =
        Tensor::read_safetensors(path).map_err(|e| bad(e.to_string()))?.into_iter().collect();
    let meta = file.remove("meta").ok_or_else(|| bad("no `meta` tensor".into()))?;
    let bytes = Vec::<u8>::try_from(&meta.to_kind(Kind::Uint8)).map_err(|e: tch::TchError| bad(e.to_string()))?;
    let state: TrainState = serde_json::from_slice(&bytes).map_err(|e| bad(format!("bad state JSON: {e}")))?;
    if state.format != STATE_FORMAT {
        return Err(bad(format!("format {:?}, expected {STATE_FORMAT:?}", state.format)));
    }
    Ok((state, file))
}

/// Loads the tensors of a checkpoint (from [`read_state`]) into a trainer
/// built from the same config; every variable and buffer must be there.
pub fn restore(t: &mut Trainer, path: &Path, mut file: HashMap<String, Tensor>) -> Result<()> {
    let bad = |reason: String| TrainError::Checkpoint { path: path.to_path_buf(), reason };
    tch::no_grad(|| {
        for (prefix, vars) in [("online.", t.model.online().variables()), ("target.", t.model.target().variables())] {
            let mut vars: Vec<_> = vars.into_iter().collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            for (name, mut var) in vars {
                let key = format!("{prefix}{name}");
                let saved = file.remove(&key).ok_or_else(|| bad(format!("tensor {key} missing")))?;
                if saved.size() != var.size() {
                    return Err(bad(format!("tensor {key}: shape {:?}, model has {:?}", saved.size(), var.size())));
                }
                var.copy_(&saved);
            }
        }
        Ok(())
    })?;
    let mut buffers = BTreeMap::new();
    for (key, tensor) in std::mem::take(&mut file) {
        match key.strip_prefix("momentum.") {
            Some(name) => {
                buffers.insert(name.to_string(), tensor);
            }
            None => {
                file.insert(key, tensor);
            }
        }
    }
    if let Some(extra) = file.keys().min() {
        return Err(bad(format!("{} tensors the model does not have, e.g. {extra}", file.len())));
    }
    t.opt.load_buffers(buffers).map_err(|e| bad(e.to_string()))
}

/// Deletes all but the newest `keep` checkpoints.
pub fn prune(run: &Path, keep: usize) -> Result<()> {
    let all = list(run)?;
    for (_, path) in all.iter().take(all.len().saturating_sub(keep)) {
        std::fs::remove_file(path).map_err(TrainError::io(path))?;
    }
    Ok(())
}
