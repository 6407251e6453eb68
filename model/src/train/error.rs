//! Errors of the pretraining loop. Like the data stage's [`DataError`], the
//! loop has its own enum; it wraps the model's and the loader's.

use std::path::PathBuf;

use crate::data::DataError;
use crate::error::ModelError;

/// Result alias for the training loop.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What can stop a pretraining run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration that cannot run (bad value, unknown preset, bad TOML).
    #[error("invalid pretraining config: {0}")]
    Config(String),
    /// The shard set does not fit the run (found before training starts).
    #[error("shard set {dir}: {reason}")]
    Shards {
        /// The shard folder.
        dir: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// A manifest or id list that cannot be read.
    #[error("manifest {path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A loss term became NaN or infinite; the run stopped before the
    /// optimizer step, the last checkpoint is untouched.
    #[error("loss term {term} is {value} at step {step}; stopped (last good checkpoint: {last_checkpoint})")]
    NonFinite {
        /// `l_s`, `l_d`, `l_r`, `l_c` or `total`.
        term: &'static str,
        /// The 1-based step.
        step: u64,
        /// The value (NaN or +-inf).
        value: f64,
        /// The newest checkpoint on disk, or `none`.
        last_checkpoint: String,
    },
    /// A collective of a data-parallel run failed: another rank stopped or
    /// hung past the timeout, or the network failed.
    #[error("data-parallel training stopped: {source}{}", dist_hint(last_checkpoint))]
    Dist {
        /// What failed.
        source: crate::dist::DistError,
        /// The newest checkpoint on disk, `none`, or empty before training.
        last_checkpoint: String,
    },
    /// A checkpoint that cannot be written or read back.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Reading or writing a run file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Drawing the loss plot.
    #[error("plot {path}: {message}")]
    Plot {
        /// The PNG.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The model failed (shapes, config, libtorch).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The loader or the augmentation failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// libtorch failed in the loop itself.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

fn dist_hint(last_checkpoint: &str) -> String {
    if last_checkpoint.is_empty() {
        String::new()
    } else {
        format!(" (another rank probably failed first: see its log; last checkpoint: {last_checkpoint})")
    }
}

impl TrainError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.to_path_buf(), source }
    }
}
