//! Pretraining (paper section 4.2, issue 7): the loop that streams shards
//! through the on-device augmentation into MC-SFAU, with logs, loss plots,
//! checkpoints and resume. User documentation: `docs/pretrain.md`.
//!
//! * [`config`]: [`PretrainConfig`] and its presets.
//! * [`step`]: one step, top to bottom ([`train_step`]).
//! * [`diagnostics`]: collapse, per-term gradients, drift, mask coverage.
//! * [`sgd`]: SGD with momentum and weight decay, checkpointable.
//! * [`run`]: the loop ([`pretrain`]).
//! * [`state`]: training checkpoints and resume.
//! * [`log`]: `log.jsonl` and the progress callback.
//! * [`plot`]: the loss curves, `losses.png`.
//! * [`manifest`]: `--manifest` id selection.
//! * [`parallel`]: data-parallel runs (several processes, docs/distributed.md).
//! * [`synth`]: synthetic face shards for tests and the GPU check.

pub mod config;
pub mod diagnostics;
pub mod error;
pub mod log;
pub mod manifest;
pub mod parallel;
pub mod plot;
pub mod run;
pub mod sgd;
pub mod state;
pub mod step;
pub mod synth;

pub use config::PretrainConfig;
pub use error::{Result, TrainError};
pub use log::{LogRecord, NoProgress, TrainProgress};
pub use parallel::DistOptions;
pub use run::{pretrain, RunOptions, RunSummary};
pub use step::{train_step, LossValues, Trainer};
