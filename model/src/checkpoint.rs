//! Checkpoints: safetensors (no pickle) plus a sidecar JSON with the
//! resolved config (docs/model.md; "resolved config in every
//! checkpoint").
//!
//! * `<name>.safetensors`: every variable of the online store as
//!   `online.<name>` and of the target store as `target.<name>` (f32 as
//!   trained, BatchNorm running statistics included).
//! * `<name>.json` beside it ([`sidecar`]): [`CheckpointMeta`] = format tag,
//!   optimizer step, the resolved [`ModelConfig`].
//! * [`export_backbone`]: the online backbone alone under torchvision's
//!   names (`conv1.weight`, `layer1.0.bn1.running_var`, ...), plus the
//!   `num_batches_tracked` counters torchvision's BatchNorm carries, so
//!   `torchvision.models.resnet50().load_state_dict(sd, strict=False)`
//!   misses only `fc.weight` and `fc.bias`.
//!
//! Files are written under a temporary name and renamed when complete.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::mcsfau::McSfau;

/// The format tag in the sidecar.
pub const FORMAT: &str = "mcsfau-checkpoint-v1";

/// What the sidecar JSON holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Always [`FORMAT`].
    pub format: String,
    /// Optimizer steps taken when saved.
    pub step: i64,
    /// The resolved model config.
    pub config: ModelConfig,
}

/// The sidecar of a checkpoint: the same path with extension `json`.
pub fn sidecar(path: &Path) -> PathBuf {
    path.with_extension("json")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io { path: path.to_path_buf(), source }
}

fn write_tensors(tensors: &[(String, Tensor)], path: &Path) -> Result<()> {
    schemas::atomic::write_with(path, |tmp| Tensor::write_safetensors(tensors, tmp)).map_err(|e| match e {
        schemas::atomic::AtomicError::Write(e) => ModelError::from(e),
        schemas::atomic::AtomicError::Io(p, source) => ModelError::Io { path: p, source },
    })
}

fn on_cpu(vars: HashMap<String, Tensor>, prefix: &str) -> Vec<(String, Tensor)> {
    let mut v: Vec<_> =
        vars.into_iter().map(|(n, t)| (format!("{prefix}{n}"), t.detach().to_device(Device::Cpu))).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Saves both stores to `path` (`.safetensors`) and the sidecar JSON.
pub fn save(model: &McSfau, path: &Path, step: i64) -> Result<()> {
    let mut tensors = on_cpu(model.online().variables(), "online.");
    tensors.extend(on_cpu(model.target().variables(), "target."));
    write_tensors(&tensors, path)?;
    let meta = CheckpointMeta { format: FORMAT.into(), step, config: model.config().clone() };
    let json = serde_json::to_string_pretty(&meta).map_err(|e| ModelError::Checkpoint {
        path: path.to_path_buf(),
        reason: format!("cannot encode the config: {e}"),
    })?;
    let side = sidecar(path);
    schemas::atomic::write(&side, json.as_bytes()).map_err(io_err(&side))?;
    tracing::info!(path = %path.display(), step, tensors = tensors.len(), "saved checkpoint");
    Ok(())
}

/// The meta of a training checkpoint (`checkpoints/step-N.safetensors`,
/// whose `meta` tensor holds the training state JSON), `None` for a file
/// without one.
fn training_meta(path: &Path) -> Result<Option<CheckpointMeta>> {
    let bad = |reason: String| ModelError::Checkpoint { path: path.to_path_buf(), reason };
    let file = Tensor::read_safetensors(path)?;
    let Some((_, meta)) = file.into_iter().find(|(n, _)| n == "meta") else { return Ok(None) };
    let bytes = Vec::<u8>::try_from(&meta.to_kind(Kind::Uint8)).map_err(|e| bad(e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("bad training-state JSON: {e}")))?;
    let step = v["step"].as_i64().ok_or_else(|| bad("the training state has no step".into()))?;
    let config: ModelConfig = serde_json::from_value(v["config"]["model"].clone())
        .map_err(|e| bad(format!("the training state's model config: {e}")))?;
    Ok(Some(CheckpointMeta { format: FORMAT.into(), step, config }))
}

/// Reads the sidecar of `path`; for a training checkpoint
/// (`checkpoints/step-N.safetensors`, no sidecar) its training state.
pub fn read_meta(path: &Path) -> Result<CheckpointMeta> {
    let side = sidecar(path);
    if !side.exists() {
        if let Some(meta) = training_meta(path)? {
            return Ok(meta);
        }
    }
    let text = std::fs::read_to_string(&side).map_err(io_err(&side))?;
    let meta: CheckpointMeta = serde_json::from_str(&text)
        .map_err(|e| ModelError::Checkpoint { path: side.clone(), reason: format!("bad sidecar JSON: {e}") })?;
    if meta.format != FORMAT {
        return Err(ModelError::Checkpoint {
            path: side,
            reason: format!("format {:?}, expected {FORMAT:?}", meta.format),
        });
    }
    Ok(meta)
}

/// Builds the model the sidecar describes on `device` and loads every
/// variable; a missing, extra or mis-shaped tensor is an error. A training
/// checkpoint (`checkpoints/step-N.safetensors`) loads too: its networks,
/// without the optimizer state.
pub fn load(path: &Path, device: Device) -> Result<(McSfau, CheckpointMeta)> {
    let meta = read_meta(path)?;
    let model = McSfau::new(&meta.config, device)?;
    let mut file: HashMap<String, Tensor> = Tensor::read_safetensors(path)?.into_iter().collect();
    let bad = |reason: String| ModelError::Checkpoint { path: path.to_path_buf(), reason };
    tch::no_grad(|| {
        for (prefix, vars) in [("online.", model.online().variables()), ("target.", model.target().variables())] {
            let mut vars: Vec<_> = vars.into_iter().collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0)); // the first mismatch by name, for a stable message
            for (name, mut var) in vars {
                let key = format!("{prefix}{name}");
                let t = file.remove(&key).ok_or_else(|| bad(format!("tensor {key} missing")))?;
                if t.size() != var.size() {
                    return Err(bad(format!("tensor {key}: shape {:?}, model has {:?}", t.size(), var.size())));
                }
                var.copy_(&t);
            }
        }
        Ok(())
    })?;
    // A training checkpoint also holds the optimizer state and its meta.
    if !sidecar(path).exists() {
        file.retain(|k, _| !k.starts_with("momentum.") && k != "meta");
    }
    if let Some(extra) = file.keys().min() {
        return Err(bad(format!("{} tensors the model does not have, e.g. {extra}", file.len())));
    }
    tracing::info!(path = %path.display(), step = meta.step, "loaded checkpoint");
    Ok((model, meta))
}

/// Writes the backbone variables of `store` (those named `backbone.*`, as in
/// [`McSfau::online`]) under torchvision's `resnet50` names to `path`;
/// `batches_tracked` fills each BatchNorm's `num_batches_tracked` (the
/// training steps that updated the running statistics). Fails when the
/// store has no backbone.
pub fn export_backbone(store: &tch::nn::VarStore, path: &Path, batches_tracked: i64) -> Result<()> {
    let mut tensors = Vec::new();
    for (name, t) in on_cpu(store.variables(), "") {
        let Some(tv) = name.strip_prefix("backbone.") else { continue };
        if let Some(bn) = tv.strip_suffix(".running_mean") {
            let count = Tensor::from_slice(&[batches_tracked]).reshape([] as [i64; 0]).to_kind(Kind::Int64);
            tensors.push((format!("{bn}.num_batches_tracked"), count));
        }
        tensors.push((tv.to_string(), t));
    }
    if tensors.is_empty() {
        return Err(ModelError::Checkpoint {
            path: path.to_path_buf(),
            reason: "no backbone.* variables to export".into(),
        });
    }
    write_tensors(&tensors, path)
}

/// What [`export_file`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exported {
    /// Tensors written (parameters, BatchNorm statistics and counters).
    pub tensors: usize,
    /// Scalars in the parameters and statistics.
    pub values: i64,
    /// The checkpoint's optimizer step.
    pub step: i64,
}

/// Exports the online backbone of a checkpoint file under torchvision's
/// names (see [`export_backbone`]): a final `model.safetensors` (step from
/// its sidecar JSON) or a training checkpoint
/// `checkpoints/step-N.safetensors` (step from its `meta` tensor). The
/// target network, the heads and the optimizer state are left out.
pub fn export_file(checkpoint: &Path, out: &Path) -> Result<Exported> {
    let bad = |reason: String| ModelError::Checkpoint { path: checkpoint.to_path_buf(), reason };
    if out.canonicalize().ok().is_some_and(|o| checkpoint.canonicalize().ok() == Some(o)) {
        return Err(bad("--out is the checkpoint itself".into()));
    }
    let file = Tensor::read_safetensors(checkpoint)?;
    if !file.iter().any(|(n, _)| n.starts_with("online.backbone.")) {
        return Err(bad("no online.backbone.* tensors (not an mcsfau checkpoint?)".into()));
    }
    let step = match file.iter().find(|(n, _)| n == "meta") {
        Some((_, meta)) => {
            let bytes = Vec::<u8>::try_from(&meta.to_kind(Kind::Uint8)).map_err(|e| bad(e.to_string()))?;
            let v: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("bad training-state JSON: {e}")))?;
            v["step"].as_i64().ok_or_else(|| bad("the training state has no step".into()))?
        }
        None => read_meta(checkpoint)?.step,
    };
    let mut tensors = Vec::new();
    let mut values = 0;
    for (name, t) in file {
        let Some(tv) = name.strip_prefix("online.backbone.") else { continue };
        if let Some(bn) = tv.strip_suffix(".running_mean") {
            let count = Tensor::from_slice(&[step]).reshape([] as [i64; 0]).to_kind(Kind::Int64);
            tensors.push((format!("{bn}.num_batches_tracked"), count));
        }
        values += t.numel() as i64;
        tensors.push((tv.to_string(), t));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    write_tensors(&tensors, out)?;
    Ok(Exported { tensors: tensors.len(), values, step })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_restores_every_variable_and_the_config() {
        tch::manual_seed(0);
        let mut cfg = ModelConfig::tiny();
        cfg.mfrr.gamma = 0.3;
        let model = McSfau::new(&cfg, Device::Cpu).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.safetensors");
        save(&model, &path, 7).unwrap();
        assert!(sidecar(&path).exists());
        let (back, meta) = load(&path, Device::Cpu).unwrap();
        assert_eq!((meta.step, &meta.config), (7, &cfg));
        for (store, other) in [(model.online(), back.online()), (model.target(), back.target())] {
            let o = other.variables();
            for (name, t) in store.variables() {
                assert!(t.equal(&o[&name]), "{name} differs after the round trip");
            }
        }
    }

    #[test]
    fn a_checkpoint_of_another_shape_is_refused_with_the_tensor_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.safetensors");
        save(&McSfau::new(&ModelConfig::tiny(), Device::Cpu).unwrap(), &path, 0).unwrap();
        let mut meta = read_meta(&path).unwrap();
        meta.config.mci.dim = 16;
        std::fs::write(sidecar(&path), serde_json::to_string(&meta).unwrap()).unwrap();
        let err = load(&path, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("tensor online.mci.p_m.2.bias: shape [32]"), "{err}");
    }
}
