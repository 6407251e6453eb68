//! Errors of the shard contract. Every variant names the file it concerns.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = SchemaError> = std::result::Result<T, E>;

/// What can go wrong when writing or reading a shard.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// Filesystem error on a shard file or folder.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The Parquet library failed (truncated file, bad footer, ...).
    #[error("{path}: not a readable Parquet shard: {source}")]
    Parquet {
        /// The shard file.
        path: PathBuf,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },
    /// Arrow failed to assemble or convert a batch.
    #[error("{path}: {source}")]
    Arrow {
        /// The shard file.
        path: PathBuf,
        /// The underlying error.
        source: arrow::error::ArrowError,
    },
    /// The file is not an mcsfau shard, or of another schema version.
    #[error("{path}: {what}: expected {expected}, found {found}")]
    SchemaMismatch {
        /// The shard file.
        path: PathBuf,
        /// What was compared (a metadata key, a column type).
        what: String,
        /// What this build of mcsfau expects.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// A column the caller asked for is not in the file.
    #[error("{path}: missing column `{column}` (file has: {available})")]
    MissingColumn {
        /// The shard file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The columns the file has, comma separated.
        available: String,
    },
    /// A column holds the wrong type or shape.
    #[error("{path}: column `{column}`: expected {expected}, found {found}")]
    ColumnType {
        /// The shard file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The expected Arrow type.
        expected: String,
        /// The Arrow type found.
        found: String,
    },
    /// A row handed to the writer breaks the contract.
    #[error("{path}: row `{sample_id}`: {message}")]
    InvalidRow {
        /// The shard being written.
        path: PathBuf,
        /// The offending row.
        sample_id: String,
        /// What is wrong with it.
        message: String,
    },
}

impl SchemaError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
