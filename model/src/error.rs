//! The model crate's error type.

use std::path::PathBuf;

/// Everything the model stage can fail on.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A preset name that does not exist.
    #[error("unknown model preset {name:?}: expected one of {expected}")]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// The names that exist.
        expected: &'static str,
    },
    /// A configuration that cannot build a model.
    #[error("invalid model config: {0}")]
    InvalidConfig(String),
    /// An input tensor with the wrong shape.
    #[error("{what}: expected shape {expected}, found {found:?}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// The expected shape, in words.
        expected: String,
        /// The shape found.
        found: Vec<i64>,
    },
    /// A checkpoint that does not match the model.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The linear probe could not run or found its invariants broken.
    #[error("probe: {0}")]
    Probe(String),
    /// Reading shards (the data stage).
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A shard broke the contract.
    #[error(transparent)]
    Shard(#[from] schemas::SchemaError),
    /// An error from libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Result with [`ModelError`].
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
