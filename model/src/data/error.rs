//! Errors of the data stage (shard set, loader, augmentation). Every variant
//! that concerns a file names it.

use std::path::PathBuf;

/// Result alias for the data stage.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// What can go wrong while opening, streaming or augmenting shards.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A shard broke the contract (unreadable, wrong schema version, missing
    /// column); the message names the file.
    #[error(transparent)]
    Shard(#[from] schemas::SchemaError),
    /// There is nothing to load.
    #[error("empty shard set: {what}")]
    EmptyShardSet {
        /// Where the shards were looked for, or why none is left.
        what: String,
    },
    /// Two shards of one set disagree on something that must be uniform.
    #[error("{path}: {what}: expected {expected} (as in {reference}), found {found}")]
    ShardSetMismatch {
        /// The shard that disagrees.
        path: PathBuf,
        /// What differs (`dataset`, `crop_size`).
        what: String,
        /// The value of the reference shard.
        expected: String,
        /// The first shard of the set, which fixed the expected value.
        reference: PathBuf,
        /// The value found in `path`.
        found: String,
    },
    /// A shard holds rows of different crop sizes.
    #[error("{path}: row {row}: crop_size {found}, but earlier rows of the file have {expected}")]
    MixedCropSize {
        /// The shard.
        path: PathBuf,
        /// Zero-based row in the file.
        row: usize,
        /// The crop size of the first row.
        expected: i32,
        /// The crop size of this row.
        found: i32,
    },
    /// Reading a list of sample ids failed.
    #[error("{path}: {source}")]
    IdList {
        /// The id-list file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configuration value is out of range.
    #[error("invalid {field}: {message}")]
    Config {
        /// The configuration field.
        field: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
    /// libtorch failed.
    #[error("{context}: {source}")]
    Torch {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: tch::TchError,
    },
    /// A loader thread died without finishing its epoch (a panic).
    #[error("loader {thread} thread stopped before the end of the epoch")]
    LoaderStopped {
        /// Which thread (`reader`, `decoder`).
        thread: &'static str,
    },
}

impl DataError {
    /// Wraps a libtorch error with what was being done.
    pub(crate) fn torch(context: impl Into<String>) -> impl FnOnce(tch::TchError) -> Self {
        let context = context.into();
        move |source| Self::Torch { context, source }
    }
}
