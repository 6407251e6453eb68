//! `mcsfau preprocess`: raw dataset files -> aligned face crops in shards.
//!
//! * [`sources`]: dataset layouts -> clips; [`labels`]: AU label files;
//! * [`decode`]: which frames, decoded upright; [`align`]: template, warp, JPEG;
//! * [`backend`]: the `--landmarks` choice; [`clip`]: one clip to rows;
//! * [`contact`]: a contact sheet PNG of crops with landmarks;
//! * [`run`]: the parallel run; [`resume`]: completion records;
//!   [`partition`]: fan-out over N machines; [`report`]: errors and summary.
//!
//! Output folder (`--out`):
//! * `shards/<part>-<hash>-00000.parquet`: the face crops (shard contract);
//! * `progress/<part>-<hash>.json`: completion records (resumption);
//! * `errors-<part>.csv`, `faces-<part>.csv`, `summary-<part>.json`: this
//!   part's report ([`track`]: how faces were found).

pub mod align;
pub mod backend;
pub mod clip;
pub mod contact;
pub mod decode;
pub mod guard;
pub mod labels;
pub mod partition;
pub mod report;
pub mod resume;
pub mod run;
pub mod sources;
pub mod track;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use backend::{BackendPool, LandmarkSpec};
pub use partition::Partition;
pub use report::{Failure, RunSummary};
pub use run::{run, RunOutcome};
pub use sources::Dataset;

/// A resolved preprocess configuration (stored in every shard's metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessConfig {
    /// Which dataset layout `root` has.
    pub dataset: Dataset,
    /// Dataset root.
    pub root: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// VoxCeleb2 sampling rate, frames per second of video (<= 0: every frame).
    /// BP4D and DISFA always take exactly their labeled frames.
    pub fps: f64,
    /// Landmark backend as given (`fan:WEIGHTS`, `dlib`, `dataset`, `synthetic`).
    pub landmarks: String,
    /// Device of the landmark network (`cpu`, `cuda`).
    pub device: String,
    /// Side of the square crop, pixels.
    pub crop_size: u32,
    /// JPEG quality of the crops, 1-100.
    pub jpeg_quality: u8,
    /// Worker threads (decode, align, encode; one landmark backend each on CPU).
    pub jobs: usize,
    /// Frames per landmark batch of a clip; crops per FAN forward pass.
    pub batch_size: usize,
    /// Weights and activations of the FAN network.
    #[serde(default)]
    pub landmark_precision: crate::landmarks::fan::Precision,
    /// Doublings of a frame for the second whole-frame face search when the
    /// first finds none (`--upsample`; 0 in records of older runs, which had none).
    #[serde(default)]
    pub upsample: u32,
    /// Clips per work unit (one shard file and one completion record each).
    pub clips_per_unit: usize,
    /// This run's part of the clips.
    pub partition: Partition,
}

impl PreprocessConfig {
    /// Defaults for `dataset`: 1 fps, 256 px crops, JPEG quality 90, all
    /// cores, batches of 64 frames, 64 VoxCeleb2 clips (a few hundred frames)
    /// or 1 BP4D/DISFA clip (hundreds to thousands of frames) per unit.
    pub fn new(dataset: Dataset, root: PathBuf, out: PathBuf) -> Self {
        Self {
            dataset,
            root,
            out,
            fps: 1.0,
            landmarks: "synthetic".into(),
            device: "cpu".into(),
            crop_size: 256,
            jpeg_quality: 90,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            batch_size: 64,
            landmark_precision: crate::landmarks::fan::Precision::F32,
            upsample: track::DEFAULT_UPSAMPLE,
            clips_per_unit: if dataset == Dataset::Voxceleb2 { 64 } else { 1 },
            partition: Partition::default(),
        }
    }
}

/// Shared state of the workers of one run.
pub struct Context {
    /// The configuration.
    pub config: PreprocessConfig,
    /// The landmark backend choice.
    pub spec: LandmarkSpec,
    /// The landmark backends.
    pub pool: BackendPool,
    /// Stage timers.
    pub timers: clip::Timers,
}
