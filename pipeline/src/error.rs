//! Errors of the data pipeline. Every variant names the file it concerns.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

/// What can go wrong between raw files and shards.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Filesystem error.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// FFmpeg could not open or decode a file.
    #[error("{path}: {stage}: {message}")]
    Decode {
        /// The media file.
        path: PathBuf,
        /// What was being done (open, find stream, decode, scale).
        stage: &'static str,
        /// FFmpeg's message.
        message: String,
    },
    /// A label file breaks its dataset's format.
    #[error("{path}: line {line}: {message}")]
    Label {
        /// The label file.
        path: PathBuf,
        /// One-based line number.
        line: usize,
        /// What was found and what was expected.
        message: String,
    },
    /// An input file or folder is missing or unusable (landmark sidecar,
    /// frame image, `--root`, `--out`).
    #[error("{path}: {message}")]
    Input {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A landmark model file is missing, unreadable or not what was expected.
    #[error("{path}: {message}")]
    LandmarkModel {
        /// The model file.
        path: PathBuf,
        /// What is wrong with it, and how to fix it where we know.
        message: String,
    },
    /// A landmark backend could not process a frame of a batch.
    #[error("landmarks ({backend}), frame {frame} of the batch: {message}")]
    Landmarks {
        /// The backend's name.
        backend: &'static str,
        /// Index of the frame within the batch handed to the backend.
        frame: usize,
        /// What went wrong, or what was expected.
        message: String,
    },
    /// An external tool (the `ffmpeg` CLI) failed on a file.
    #[error("{path}: {tool}: {message}")]
    Tool {
        /// The file being written or read.
        path: PathBuf,
        /// The tool.
        tool: &'static str,
        /// What went wrong (its stderr, or the spawn error).
        message: String,
    },
    /// An image could not be encoded or decoded.
    #[error("{path}: {message}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// The codec's message.
        message: String,
    },
    /// A text file (CSV, label file) does not have the expected format.
    #[error("{path}: line {line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was found and what was expected.
        message: String,
    },
    /// Invalid settings (sizes, names) given by the caller.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A shard could not be written or read.
    #[error(transparent)]
    Shard(#[from] schemas::SchemaError),
    /// A manifest or split request is invalid (unknown dataset, protocol, ...).
    #[error("{0}")]
    Manifest(String),
    /// A manifest or split file is malformed; `line` is 1-based (0: the file as a whole).
    #[error("{path}:{line}: {message}")]
    ManifestFile {
        /// The file.
        path: PathBuf,
        /// 1-based line number, 0 when the problem is not on one line.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// A path (sample id, file reference) escapes the dataset root.
    #[error("{path}: row {row}: `{value}` escapes the dataset root ({why})")]
    PathEscape {
        /// The file holding the value.
        path: PathBuf,
        /// Row (shard row or 1-based line) of the value.
        row: usize,
        /// The offending value.
        value: String,
        /// `..` component, absolute path, wrong dataset prefix.
        why: String,
    },
    /// A row names a subject that the subject split does not know.
    #[error("{path}: row {row}: unknown {dataset} subject `{subject}` (not in {split_file})")]
    UnknownSubject {
        /// The shard.
        path: PathBuf,
        /// Row within the shard.
        row: usize,
        /// Dataset name.
        dataset: String,
        /// The subject.
        subject: String,
        /// The split file (or protocol) consulted.
        split_file: String,
    },
    /// A Polars query of the audit failed.
    #[error("audit query `{query}`: {error}")]
    Polars {
        /// Which query.
        query: String,
        /// Polars' error (kept out of `source()` so that it prints once).
        error: polars::error::PolarsError,
    },
    /// A plot could not be drawn.
    #[error("{path}: plot: {message}")]
    Plot {
        /// The PNG file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl PipelineError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// Produces `path` atomically ([`schemas::atomic::write_with`]): `write`
/// gets a temporary path in the same folder; on success the file is
/// renamed to `path`, on error removed.
pub fn atomic<T>(path: &std::path::Path, write: impl FnOnce(&std::path::Path) -> Result<T>) -> Result<T> {
    schemas::atomic::write_with(path, write).map_err(|e| match e {
        schemas::atomic::AtomicError::Write(e) => e,
        schemas::atomic::AtomicError::Io(p, e) => PipelineError::io(p, e),
    })
}

/// Writes `bytes` to `path` atomically.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    schemas::atomic::write(path, bytes).map_err(|e| PipelineError::io(path, e))
}
