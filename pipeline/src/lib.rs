//! The mcsfau data pipeline: everything between raw dataset files and shards.
//!
//! * [`video`]: FFmpeg decoding (ffmpeg-next) to RGB frames.
//! * [`landmarks`]: the landmark backend trait and the 68 -> 49 mapping.
//! * [`manifest`]: subject splits and frame manifests (BP4D, DISFA).
//! * [`detect`]: faces in any video, aligned, and the per-frame AU table.
//! * [`audit`]: Polars checks over shards, with a Markdown/JSON/PNG report.
//! * [`fixtures`]: small deterministic labeled shards for tests and demos.
//! * [`preprocess`]: `mcsfau preprocess`, raw datasets to shards.
//! * [`synth`]: look-alike VoxCeleb2 / BP4D / DISFA trees with drawn faces.
//!
//! The pipeline never depends on the model crate; the two meet at
//! [`schemas`] and at the shard files on disk.

pub mod audit;
pub mod detect;
pub mod error;
pub mod fixtures;
pub mod landmarks;
pub mod manifest;
pub mod preprocess;
pub mod progress;
pub mod synth;
pub mod video;

pub use error::{PipelineError, Result};
