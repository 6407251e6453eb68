//! `mcsfau synth`: miniature VoxCeleb2, BP4D and DISFA trees with drawn faces.
//!
//! The real datasets are licensed and cannot be fetched; every ingestion path
//! is exercised instead on look-alikes with the exact raw layouts of
//! docs/synth.md. The faces are drawn by the generator itself, so the landmarks
//! and the AU labels are known exactly:
//!
//! * [`face`]: identity parameters, the neutral iBUG-68 shape, head pose.
//! * [`clip`]: per-clip head motion, lighting and AU activity.
//! * [`au`]: AU deformations, each AU's region, smooth AU activity.
//! * [`canvas`], [`draw`] and [`details`]: the anti-aliased renderer (tiny-skia).
//! * [`encode`]: videos through the `ffmpeg` CLI, JPEGs, landmark sidecars.
//! * [`layouts`]: the three dataset trees; [`preview`]: the contact sheet.
//!
//! Same seed, same bytes: every subject and clip draws from its own ChaCha
//! stream keyed by the seed and its name, and the encoders run bit-exact
//! and single-threaded.

pub mod au;
pub mod canvas;
pub mod clip;
pub mod details;
pub mod draw;
pub mod encode;
pub mod face;
pub mod layouts;
pub mod preview;
pub mod visibility;

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{PipelineError, Result};
use crate::progress::{NoProgress, Progress};

pub use au::{AuIntensities, AUS};

/// Which dataset tree to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// `dev/mp4/<id>/<ytid>/<clip>.mp4`, 224x224, 25 fps, H.264 + AAC.
    VoxCeleb2,
    /// `Sequences/<subject>/<task>/<frame>.jpg` + `AUCoding/AU_OCC/*.csv`.
    Bp4d,
    /// `Videos_LeftCamera/LeftVideo<subject>_comp.avi` + `ActionUnit_Labels/`.
    Disfa,
}

impl Layout {
    /// The name used on the command line and in shards.
    pub fn name(self) -> &'static str {
        match self {
            Layout::VoxCeleb2 => "voxceleb2",
            Layout::Bp4d => "bp4d",
            Layout::Disfa => "disfa",
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Layout {
    type Err = PipelineError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "voxceleb2" => Ok(Layout::VoxCeleb2),
            "bp4d" => Ok(Layout::Bp4d),
            "disfa" => Ok(Layout::Disfa),
            other => Err(PipelineError::Config(format!("unknown layout `{other}` (voxceleb2, bp4d or disfa)"))),
        }
    }
}

/// Sizes and seed of a generated tree. The default generates in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Subjects (VoxCeleb identities, BP4D or DISFA subjects). Default 3.
    /// At most 41 for BP4D and 27 for DISFA (the real subject lists).
    pub subjects: usize,
    /// Seed of every random choice. Default 0.
    pub seed: u64,
    /// VoxCeleb2: YouTube videos per identity; BP4D: tasks per subject
    /// (at most 8); DISFA: ignored (one video per subject). Default 1.
    pub videos_per_subject: usize,
    /// VoxCeleb2 only: clips per YouTube video. Default 2.
    pub clips_per_video: usize,
    /// Length of every clip / task sequence / DISFA video, seconds. Default 2.
    pub seconds: f32,
    /// BP4D and DISFA frame size as a fraction of the real one (1040x1392
    /// and 1024x768); the aspect ratio is kept. Default 0.25.
    pub frame_scale: f32,
    /// Where to write the contact sheet PNG, if anywhere.
    pub preview: Option<PathBuf>,
    /// Strength of the drawn AUs (landmark deformations and skin marks)
    /// relative to the default 1; the labels do not change. A benchmark
    /// property: at 1 several AUs move the face by under a pixel in a
    /// 128 px crop at the occurrence threshold ([`visibility`]). Default 1.
    pub au_gain: f32,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            subjects: 3,
            seed: 0,
            videos_per_subject: 1,
            clips_per_video: 2,
            seconds: 2.0,
            frame_scale: 0.25,
            preview: None,
            au_gain: 1.0,
        }
    }
}

/// One generated clip (VoxCeleb2 clip, BP4D task sequence, DISFA video).
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSummary {
    /// Subject name (`id00012`, `F001`, `SN001`).
    pub subject: String,
    /// VoxCeleb YouTube id, BP4D task, or DISFA video name.
    pub video: String,
    /// VoxCeleb clip number (`00001`); empty otherwise.
    pub clip: String,
    /// The video file, or the BP4D frame folder.
    pub media: PathBuf,
    /// The landmark sidecar CSV.
    pub sidecar: PathBuf,
    /// Frame numbers: decoded frame indices (videos) or file-name numbers (BP4D).
    pub frame_numbers: Vec<i64>,
    /// The AU intensities drawn in each frame, in [`AUS`] order.
    pub aus: Vec<AuIntensities>,
    /// Label files written for this clip (BP4D: one CSV; DISFA: one per AU).
    pub labels: Vec<PathBuf>,
    /// Frame size in pixels.
    pub size: (u32, u32),
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSummary {
    /// The layout.
    pub layout: Layout,
    /// The tree's root folder.
    pub root: PathBuf,
    /// Subject names, in generation order.
    pub subjects: Vec<String>,
    /// Every clip, in a stable order.
    pub clips: Vec<ClipSummary>,
    /// Frames over all clips.
    pub frames: usize,
    /// Label files written.
    pub label_files: usize,
    /// The contact sheet, if one was asked for.
    pub preview: Option<PathBuf>,
}

/// A ChaCha stream keyed by the seed and a path of names (FNV-1a), so that
/// a subject's face does not change when other sizes change.
pub fn rng_for(seed: u64, parts: &[&str]) -> ChaCha8Rng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for part in parts {
        for b in part.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    ChaCha8Rng::seed_from_u64(h)
}

/// Generates `layout` under `out` with the sizes of `cfg`.
pub fn generate(layout: Layout, out: &Path, cfg: &SynthConfig) -> Result<SynthSummary> {
    generate_with_progress(layout, out, cfg, &NoProgress)
}

/// [`generate`], reporting one unit of progress per clip.
pub fn generate_with_progress(
    layout: Layout,
    out: &Path,
    cfg: &SynthConfig,
    progress: &dyn Progress,
) -> Result<SynthSummary> {
    if cfg.subjects == 0
        || cfg.videos_per_subject == 0
        || cfg.clips_per_video == 0
        || !cfg.seconds.is_finite()
        || cfg.seconds <= 0.0
        || !cfg.frame_scale.is_finite()
        || cfg.frame_scale <= 0.0
    {
        return Err(PipelineError::Config(format!(
            "subjects ({}), videos ({}), clips ({}), seconds ({}) and frame scale ({}) must be positive",
            cfg.subjects, cfg.videos_per_subject, cfg.clips_per_video, cfg.seconds, cfg.frame_scale
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| PipelineError::io(out, e))?;
    let summary = layouts::generate(layout, out, cfg, progress)?;
    tracing::info!(
        layout = layout.name(),
        clips = summary.clips.len(),
        frames = summary.frames,
        labels = summary.label_files,
        "synthetic tree written to {}",
        out.display()
    );
    Ok(summary)
}
