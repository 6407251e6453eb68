//! Errors of the shard contract. Every variant names the file it concerns.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = SchemaError> = std::result::Result<T, E>;

/// What can go wrong when writing or reading a shard.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// Filesystem error on a shard file or folder.
    #[error("{path}: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The Parquet library failed to read (truncated file, bad footer, ...).
    /// Shown as one readable line; the library's own text (which can hold
    /// debug dumps) is not repeated as a source.
    #[error("{path}: not a readable Parquet shard: {}", crate::validate::readable_parquet_error(error))]
    Parquet {
        /// The shard file.
        path: PathBuf,
        /// The underlying error.
        error: parquet::errors::ParquetError,
    },
    /// The Parquet library failed to write (full disk, ...).
    #[error("{path}: writing the shard failed: {error}")]
    ParquetWrite {
        /// The shard file being written (its temporary name).
        path: PathBuf,
        /// The underlying error.
        error: parquet::errors::ParquetError,
    },
    /// A value breaks the contract (null, wrong list length, bad or
    /// duplicate sample id).
    #[error("{path}: {location}: {message}")]
    Invalid {
        /// The shard file.
        path: PathBuf,
        /// Row group / row / column.
        location: String,
        /// What is wrong, with what was expected.
        message: String,
    },
    /// Arrow failed to assemble or convert a batch.
    #[error("{path}: {error}")]
    Arrow {
        /// The shard file.
        path: PathBuf,
        /// The underlying error.
        error: arrow::error::ArrowError,
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
        Self::Io { path: path.into(), error: source }
    }
}

/// An error and its causes on one line, `outer: cause: cause`, leaving out a
/// cause whose text the line already holds (errors that print their source
/// in their own message would otherwise show it twice).
pub fn display_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Repeats {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let e = Repeats { path: "out/x".into(), source: std::io::Error::other("File exists") };
        assert_eq!(display_chain(&e), "out/x: File exists");
        let wrapped = std::io::Error::other(e);
        assert_eq!(display_chain(&wrapped), "out/x: File exists");
    }
}
