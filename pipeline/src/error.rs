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
}

impl PipelineError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
