//! The video side of `mcsfau detect`: every frame of any video FFmpeg reads,
//! the most prominent face's landmarks (any [`LandmarkBackend`]), the
//! 49-point similarity alignment of preprocess, and the per-frame table
//! (OpenFace-style CSV and Parquet). The model side (backbone + probe head)
//! lives in the model crate; the binary joins the two.

use std::path::Path;

use crate::error::{PipelineError, Result};
use crate::landmarks::{to49, FrameRef, LandmarkBackend};
use crate::preprocess::align;
use crate::preprocess::decode::{decode_video, DecodeStats, Select};
use crate::preprocess::track::{FaceCounts, Found, TrackConfig, Tracker};
use crate::progress::Progress;

mod table;
pub use table::{
    column_names, is_detect_parquet, to_csv, to_record_batch, write_csv, write_parquet, AuLayout, FrameRecord,
    Provenance, LEADING, OPENFACE_AUS_C, OPENFACE_AUS_R,
};

/// One decoded frame and, when a face was found, its aligned crop.
#[derive(Debug, Clone)]
pub struct FrameFace {
    /// Zero-based decoded frame index.
    pub index: i64,
    /// Presentation time, milliseconds.
    pub timestamp_ms: i64,
    /// The aligned face, `None` when no face was found (or its points were
    /// degenerate).
    pub face: Option<AlignedFace>,
}

/// A face aligned to the preprocess template.
#[derive(Debug, Clone)]
pub struct AlignedFace {
    /// The crop, packed RGB24, `size * size * 3` bytes.
    pub rgb: Vec<u8>,
    /// The 49 points in crop pixels, flattened x0, y0, x1, y1, ...
    pub landmarks: Vec<f32>,
    /// The backend's confidence.
    pub score: f32,
    /// Face box in the frame, x0, y0, x1, y1.
    pub face_box: [f32; 4],
    /// The 68 landmarks in frame pixels.
    pub points68: crate::landmarks::Points68,
}

/// How [`faces_in_video`] runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectOptions {
    /// Side of the aligned crop, pixels.
    pub size: u32,
    /// Frames per batch handed to the landmarks and to the sink.
    pub batch: usize,
    /// Doublings of a frame for the second whole-frame search when the
    /// first finds no face ([`TrackConfig::upsample`]).
    pub upsample: u32,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self { size: 256, batch: 16, upsample: crate::preprocess::track::DEFAULT_UPSAMPLE }
    }
}

/// The tracker's settings in `detect`: every frame of a video is read, so
/// the detector runs every 200 ms and the face is followed in between (its
/// pixels and landmarks must hold, or it is detected again; never across a
/// shot cut).
pub fn track_config(upsample: u32) -> TrackConfig {
    TrackConfig { redetect_ms: 200, upsample, ..Default::default() }
}

/// Decodes every frame of `video` (upright), finds a face with `backend`
/// (followed from frame to frame, `preprocess::track`), aligns it into a
/// `opts.size` crop and hands batches of up to `opts.batch` frames to
/// `sink`, in frame order. Frames without a face are passed on with `face:
/// None`, never dropped. `report` gets the stages' times and how the faces
/// were found.
pub fn faces_in_video(
    video: &Path,
    backend: &mut dyn LandmarkBackend,
    opts: &DetectOptions,
    progress: &dyn Progress,
    report: &mut VideoReport,
    mut sink: impl FnMut(Vec<FrameFace>) -> Result<()>,
) -> Result<DecodeStats> {
    use rayon::prelude::*;
    use std::time::Instant;
    // The header's frame count (MP4, AVI) gives the bar its length and ETA.
    progress.start("frames", crate::video::announced(video).unwrap_or(0));
    let mut tracker = Tracker::new(track_config(opts.upsample));
    let mut faces = FaceCounts::default();
    let (size, batch) = (opts.size, opts.batch);
    let started = Instant::now();
    let (mut landmarks, mut aligning, mut consumer) = (0f64, 0f64, 0f64);
    let result = decode_video(video, &Select::Fps(0.0), batch.max(1), |frames| {
        let t = Instant::now();
        let refs: Vec<FrameRef<'_>> =
            frames.iter().map(|f| FrameRef { width: f.width, height: f.height, rgb: &f.data, given: None }).collect();
        // Backends with a detector follow the face as preprocess does
        // (detect once, then around the track): the same faces, and HOG
        // scans the whole frame only when the track is lost.
        let found: Vec<Option<crate::landmarks::Face68>> = if backend.has_detector() {
            let times: Vec<i64> = frames.iter().map(|f| f.timestamp_ms).collect();
            let tracked = tracker.faces(backend, &refs, &times)?;
            tracked.iter().for_each(|t| faces.add_frame(t));
            tracked.into_iter().map(|t| t.face).collect()
        } else {
            let found = backend.detect(&refs)?;
            found.iter().for_each(|f| faces.add(if f.is_some() { Found::Detected } else { Found::None }));
            found
        };
        if found.len() != frames.len() {
            return Err(PipelineError::Config(format!(
                "landmark backend {} returned {} results for {} frames",
                backend.name(),
                found.len(),
                frames.len()
            )));
        }
        landmarks += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let out = frames
            .par_iter()
            .zip(found)
            .map(|(f, face)| FrameFace {
                index: f.index,
                timestamp_ms: f.timestamp_ms,
                face: face.and_then(|face| {
                    let a = align::align(&f.data, f.width, f.height, &to49(&face.points), size)?;
                    Some(AlignedFace {
                        rgb: a.rgb,
                        landmarks: a.landmarks,
                        score: face.score,
                        face_box: face.face_box,
                        points68: face.points,
                    })
                }),
            })
            .collect::<Vec<_>>();
        aligning += t.elapsed().as_secs_f64();
        progress.advance(out.len() as u64);
        let t = Instant::now();
        let r = sink(out);
        consumer += t.elapsed().as_secs_f64();
        r
    });
    let total = started.elapsed().as_secs_f64();
    *report = VideoReport {
        seconds: StageSeconds {
            decode: (total - landmarks - aligning - consumer).max(0.0),
            landmarks,
            align: aligning,
            consumer,
        },
        faces,
    };
    progress.finish();
    result
}

/// What [`faces_in_video`] reports besides the frames.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VideoReport {
    /// Wall seconds of each stage.
    pub seconds: StageSeconds,
    /// How the faces were found: detected, followed, none, follows refused, cuts.
    pub faces: FaceCounts,
}

/// Wall seconds of each stage of [`faces_in_video`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageSeconds {
    /// Demux, decode and RGB conversion.
    pub decode: f64,
    /// Face detection or tracking, and the landmarks.
    pub landmarks: f64,
    /// The 49-point alignment into crops (in parallel).
    pub align: f64,
    /// The caller's sink (in `detect`: backbone, head and table rows).
    pub consumer: f64,
}
