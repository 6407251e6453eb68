//! [`PretrainConfig`]: everything a pretraining run depends on, typed and
//! serialisable (TOML files, the resolved copy in `RUN/config.json` and in
//! every checkpoint). `Default` = the paper's setting (section 4.2): SGD,
//! momentum 0.9, weight decay 5e-4, batch 256, lr 1e-3 with cosine decay,
//! 400 epochs.
//!
//! # Presets
//! * `paper`: the defaults.
//! * `small`: the small model ([`ModelConfig::small`], 128x128, 8x8 map) at
//!   batch 32, lr 0.05 (the paper's 1e-3 is for batch 256 over 400 epochs;
//!   a few hundred CPU steps need more), diagnostics every 25 steps: CPU
//!   experiments that exercise every mechanism (`just bench-ablation`).
//! * `tiny`: the tiny model ([`ModelConfig::tiny`]) at 64x64, batch 4, one
//!   decode worker, a log line every step and a checkpoint every 10 steps;
//!   for CPU tests.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{Result, TrainError};
use crate::config::ModelConfig;
use crate::data::{AugmentConfig, LoaderConfig};

/// The preset names [`PretrainConfig::preset`] knows.
pub const PRESETS: &str = "paper, small, tiny";

/// A whole pretraining run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainConfig {
    /// The MC-SFAU model.
    pub model: ModelConfig,
    /// The optimizer and its learning-rate schedule.
    pub optim: OptimConfig,
    /// The loader and the augmentation.
    pub data: DataConfig,
    /// How long to train.
    pub schedule: ScheduleConfig,
    /// Logging and checkpoint cadence.
    pub output: OutputConfig,
    /// Seed of the augmentation draws and of libtorch's generator (cascade
    /// jitter, mask draws, dropout), which is re-seeded from `(seed, step)`
    /// at every step so a resumed run draws what an uninterrupted one does.
    /// The sample order has its own seed, `data.loader.seed`.
    pub seed: u64,
    /// Data-parallel training (several processes; docs/distributed.md).
    pub dist: DistConfig,
    /// Testing hooks; leave at the defaults for real runs.
    pub debug: DebugConfig,
}

/// How the ranks of a data-parallel run train together. `data.loader.
/// batch_size` is per rank: the global batch is `WORLD_SIZE` times it.
/// Nothing here matters to a single process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistConfig {
    /// BatchNorm statistics while training: `sync` (over every rank's
    /// batch, as one process with the global batch computes them), `local`
    /// (each rank's own batch, torch DDP's default) or `frozen` (running
    /// statistics, never updated).
    pub batch_norm: crate::dist::norm::BatchNormMode,
    /// Gradient all-reduce bucket size, MiB (torch DDP: 25).
    pub bucket_mb: f64,
    /// Overlap the gradient all-reduce with backward (c10d's DDP reducer:
    /// each bucket is reduced as soon as its gradients are ready); off
    /// reduces all buckets after backward.
    pub overlap: bool,
}

impl Default for DistConfig {
    fn default() -> Self {
        Self { batch_norm: crate::dist::norm::BatchNormMode::Sync, bucket_mb: 25.0, overlap: true }
    }
}

/// SGD with momentum and weight decay (`torch.optim.SGD` semantics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Peak learning rate (paper: 1e-3). 0 keeps every weight at its
    /// initialisation while BatchNorm running statistics still follow the
    /// data: the "random init, settled statistics" baseline of an ablation.
    pub lr: f64,
    /// Momentum (paper: 0.9).
    pub momentum: f64,
    /// L2 weight decay added to every gradient (paper: 5e-4).
    pub weight_decay: f64,
    /// Cosine decay of the lr from `lr` to `min_lr` over the run's steps
    /// (paper: on); off keeps `lr` constant.
    pub cosine: bool,
    /// The lr at the last step when `cosine` is on.
    pub min_lr: f64,
}

/// What the loader streams and how the views are drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Batch size, decode workers, prefetch, shuffle, sample-order seed.
    pub loader: LoaderConfig,
    /// The P1/P2 augmentations (paper table 8 switches).
    pub augment: AugmentConfig,
}

/// Length of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// Epochs over the shard set (paper: 400).
    pub epochs: u64,
    /// Stop after this many optimizer steps instead (the cosine decay then
    /// spans these steps); `None`: `epochs` full epochs.
    pub max_steps: Option<u64>,
}

/// Logging, plotting and checkpoint cadence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Write a `log.jsonl` record every this many steps (>= 1).
    pub log_every: u64,
    /// Save a checkpoint every this many steps (>= 1); one is always saved
    /// at the end.
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk (the newest ones; >= 1).
    pub keep_checkpoints: usize,
    /// Redraw `losses.png` at every checkpoint (always drawn at the end).
    pub plot: bool,
    /// Compute the learning diagnostics (collapse, per-term backbone
    /// gradient norms, landmark drift, mask coverage; `train::diagnostics`)
    /// every this many steps and log them; 0 turns them off. Each costs
    /// four extra backward passes.
    pub diagnostics_every: u64,
}

/// Hooks for testing the guards; all off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DebugConfig {
    /// Make L_r NaN at this step (1-based), to exercise the non-finite guard.
    pub nan_at_step: Option<u64>,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            model: ModelConfig::paper(),
            optim: OptimConfig::default(),
            data: DataConfig::default(),
            schedule: ScheduleConfig::default(),
            output: OutputConfig::default(),
            seed: 0,
            dist: DistConfig::default(),
            debug: DebugConfig::default(),
        }
    }
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self { lr: 1e-3, momentum: 0.9, weight_decay: 5e-4, cosine: true, min_lr: 0.0 }
    }
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self { epochs: 400, max_steps: None }
    }
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self { log_every: 10, checkpoint_every: 1000, keep_checkpoints: 3, plot: true, diagnostics_every: 100 }
    }
}

impl PretrainConfig {
    /// The paper's setting (= `Default`).
    pub fn paper() -> Self {
        Self::default()
    }

    /// The CPU-test setting: tiny model, 64x64, batch 4, lr 0.01 (the tiny
    /// model at batch 4 barely moves at 1e-3), every step logged.
    pub fn tiny() -> Self {
        Self {
            model: ModelConfig::tiny(),
            optim: OptimConfig { lr: 0.01, ..OptimConfig::default() },
            data: DataConfig {
                loader: LoaderConfig {
                    batch_size: 4,
                    workers: 1,
                    prefetch: 2,
                    shuffle_buffer: 64,
                    ..LoaderConfig::default()
                },
                augment: AugmentConfig::default(),
            },
            schedule: ScheduleConfig { epochs: 10, max_steps: None },
            output: OutputConfig {
                log_every: 1,
                checkpoint_every: 10,
                keep_checkpoints: 3,
                plot: true,
                diagnostics_every: 5,
            },
            ..Self::default()
        }
    }

    /// The CPU-experiment setting (see the module docs).
    pub fn small() -> Self {
        Self {
            model: ModelConfig::small(),
            optim: OptimConfig { lr: 0.05, ..OptimConfig::default() },
            data: DataConfig {
                loader: LoaderConfig {
                    batch_size: 32,
                    workers: 1,
                    prefetch: 2,
                    shuffle_buffer: 512,
                    ..LoaderConfig::default()
                },
                augment: AugmentConfig::default(),
            },
            schedule: ScheduleConfig { epochs: 10, max_steps: None },
            output: OutputConfig {
                log_every: 10,
                checkpoint_every: 100,
                keep_checkpoints: 2,
                plot: true,
                diagnostics_every: 25,
            },
            ..Self::default()
        }
    }

    /// A preset by name.
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "paper" => Ok(Self::paper()),
            "small" => Ok(Self::small()),
            "tiny" => Ok(Self::tiny()),
            _ => Err(TrainError::Config(format!("unknown preset {name:?}: expected one of {PRESETS} or a .toml file"))),
        }
    }

    /// A preset name, or a TOML file (fields left out keep the paper's values).
    pub fn resolve(name_or_file: &str) -> Result<Self> {
        let path = Path::new(name_or_file);
        if name_or_file.ends_with(".toml") || path.is_file() {
            Self::from_toml_file(path)
        } else {
            Self::preset(name_or_file)
        }
    }

    /// Reads a TOML file.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|source| TrainError::Io { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))
    }

    /// Checks the values the loop relies on (the model and the augmentation
    /// check their own when built).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Config(m));
        let o = &self.optim;
        let lr_ok = o.lr.is_finite() && o.lr >= 0.0 && o.min_lr.is_finite() && o.min_lr >= 0.0;
        if !lr_ok || o.min_lr > o.lr {
            return bad(format!("optim.lr {} must be >= 0 and optim.min_lr {} in [0, lr]", o.lr, o.min_lr));
        }
        let wd_ok = o.weight_decay.is_finite() && o.weight_decay >= 0.0;
        if !(0.0..1.0).contains(&o.momentum) || !wd_ok {
            return bad(format!(
                "optim.momentum {} must lie in [0, 1), weight_decay {} >= 0",
                o.momentum, o.weight_decay
            ));
        }
        if self.schedule.epochs == 0 || self.schedule.max_steps == Some(0) {
            return bad("schedule.epochs and schedule.max_steps must be >= 1".into());
        }
        let out = &self.output;
        if out.log_every == 0 || out.checkpoint_every == 0 || out.keep_checkpoints == 0 {
            return bad("output.log_every, checkpoint_every and keep_checkpoints must be >= 1".into());
        }
        if !(self.dist.bucket_mb.is_finite() && self.dist.bucket_mb > 0.0) {
            return bad(format!("dist.bucket_mb {} must be > 0", self.dist.bucket_mb));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_defaults_are_the_papers_values() {
        let c = PretrainConfig::paper();
        assert_eq!((c.optim.lr, c.optim.momentum, c.optim.weight_decay, c.optim.cosine), (1e-3, 0.9, 5e-4, true));
        assert_eq!((c.data.loader.batch_size, c.schedule.epochs), (256, 400));
        assert_eq!(c.model, ModelConfig::paper());
        c.validate().unwrap();
        PretrainConfig::tiny().validate().unwrap();
        let s = PretrainConfig::small();
        assert_eq!((s.model.image_size, s.model.feature_side(), s.data.loader.batch_size), (128, 8, 32));
        s.validate().unwrap();
    }

    #[test]
    fn a_toml_file_overrides_only_what_it_names_and_rejects_typos() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run.toml");
        std::fs::write(&p, "seed = 3\n[optim]\nlr = 0.01\n[data.loader]\nbatch_size = 8\n").unwrap();
        let c = PretrainConfig::resolve(p.to_str().unwrap()).unwrap();
        assert_eq!((c.seed, c.optim.lr, c.data.loader.batch_size), (3, 0.01, 8));
        assert_eq!((c.optim.momentum, c.schedule.epochs), (0.9, 400));
        std::fs::write(&p, "[optim]\nlearning_rate = 0.01\n").unwrap();
        let err = PretrainConfig::resolve(p.to_str().unwrap()).unwrap_err().to_string();
        assert!(err.contains("run.toml") && err.contains("learning_rate"), "{err}");
        assert!(PretrainConfig::resolve("huge").is_err());
        let json = serde_json::to_string(&PretrainConfig::tiny()).unwrap();
        assert_eq!(serde_json::from_str::<PretrainConfig>(&json).unwrap(), PretrainConfig::tiny());
    }

    #[test]
    fn a_poisoned_lr_is_refused_before_training() {
        let mut c = PretrainConfig::tiny();
        c.optim.lr = f64::NAN;
        assert!(c.validate().unwrap_err().to_string().contains("optim.lr"));
    }
}
