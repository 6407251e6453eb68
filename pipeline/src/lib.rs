//! The mcsfau data pipeline: everything between raw dataset files and shards.
//!
//! * [`video`]: FFmpeg decoding (ffmpeg-next) to RGB frames.
//!
//! The pipeline never depends on the model crate; the two meet at
//! [`schemas`] and at the shard files on disk.

pub mod error;
pub mod progress;
pub mod video;

pub use error::{PipelineError, Result};
