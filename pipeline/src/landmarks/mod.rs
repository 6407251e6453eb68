//! Facial landmarks: one trait for every backend, and the 68 -> 49 mapping.
//!
//! Backends (each in its own module) find iBUG-68 points in source frames;
//! preprocess keeps the 49-point subset ([`to49`]) for the shards.
//! Backends: `fan` (2D-FAN in tch), `dlib` (HOG detector + 68-point shape
//! predictor), `dataset` (points the dataset ships), `synthetic` (the exact
//! points of `mcsfau synth`'s drawing model, from its sidecar files).

pub mod given;

use crate::error::Result;

pub mod dlib;
pub mod fan;

pub use dlib::DetectedFace;

/// Points in the iBUG-68 scheme.
pub const NUM_POINTS_68: usize = 68;
/// Points kept for MC-SFAU (docs/preprocess.md, "Landmarks").
pub const NUM_POINTS_49: usize = 49;

/// The iBUG-68 indices of the 49 kept points, in order: without the jaw line
/// (0-16) and without the inner-mouth corners (60 and 64).
pub const KEEP_49: [usize; NUM_POINTS_49] = {
    let mut out = [0usize; NUM_POINTS_49];
    let mut i = 17;
    let mut k = 0;
    while i < NUM_POINTS_68 {
        if i != 60 && i != 64 {
            out[k] = i;
            k += 1;
        }
        i += 1;
    }
    out
};

/// 68 (x, y) points in source-frame pixels.
pub type Points68 = [[f32; 2]; NUM_POINTS_68];
/// 49 (x, y) points.
pub type Points49 = [[f32; 2]; NUM_POINTS_49];

/// The single place where 68 points become 49 (docs/preprocess.md).
pub fn to49(p: &Points68) -> Points49 {
    KEEP_49.map(|i| p[i])
}

/// One face found in a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Face68 {
    /// The 68 points, source-frame pixels.
    pub points: Points68,
    /// Confidence (FAN: mean heatmap peak; 1.0 where the backend has none).
    pub score: f32,
    /// Face box in the source frame, x0, y0, x1, y1.
    pub face_box: [f32; 4],
}

/// A frame handed to a backend: packed RGB24, row-major.
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub rgb: &'a [u8],
    /// Points the dataset ships for this frame (sidecar / dataset files), if any.
    pub given: Option<&'a Points68>,
}

/// A landmark backend. Works on batches so network backends can use the GPU
/// efficiently; returns one entry per frame, `None` where no face was found.
///
/// Backends with a face detector (`fan`, `dlib`) also expose its two halves,
/// so preprocess can follow a face from frame to frame
/// (`preprocess::track`): [`LandmarkBackend::find_faces`] and
/// [`LandmarkBackend::points_in_boxes`].
pub trait LandmarkBackend: Send {
    /// Name stored in the shards' `landmark_source` column.
    fn name(&self) -> &'static str;
    /// Finds the most prominent face in each frame.
    fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Option<Face68>>>;
    /// Tags the next calls with the clip they serve (a batching backend
    /// reports how many clips shared a batch); no-op by default.
    fn set_clip(&mut self, _clip: u64) {}
    /// Whether the backend finds faces itself (and so can track them);
    /// `false` for points the dataset gives.
    fn has_detector(&self) -> bool {
        false
    }
    /// Every face the detector finds in each frame, with its score.
    fn find_faces(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<DetectedFace>>> {
        Err(crate::error::PipelineError::Config(format!(
            "the `{}` landmark backend has no face detector ({} frames asked)",
            self.name(),
            frames.len()
        )))
    }
    /// [`LandmarkBackend::find_faces`] on the frames doubled `upsample`
    /// times (smaller faces, ~4x the cost per doubling), boxes in the
    /// frames' own pixels. Backends that cannot upsample find none.
    fn find_faces_upsampled(&mut self, frames: &[FrameRef<'_>], upsample: u32) -> Result<Vec<Vec<DetectedFace>>> {
        let _ = upsample;
        Ok(vec![Vec::new(); frames.len()])
    }
    /// Landmarks for caller-given face boxes (detector convention), one per frame.
    fn points_in_boxes(&mut self, frames: &[FrameRef<'_>], boxes: &[[f32; 4]]) -> Result<Vec<Face68>> {
        Err(crate::error::PipelineError::Config(format!(
            "the `{}` landmark backend takes no face boxes ({} asked)",
            self.name(),
            boxes.len().min(frames.len())
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_49_drops_jaw_and_inner_mouth_corners() {
        assert_eq!(KEEP_49[0], 17);
        assert_eq!(KEEP_49[48], 67);
        assert!(!KEEP_49.contains(&60) && !KEEP_49.contains(&64));
        assert!(KEEP_49.windows(2).all(|w| w[0] < w[1]), "order kept");
        let mut p = [[0.0f32; 2]; 68];
        for (i, q) in p.iter_mut().enumerate() {
            *q = [i as f32, -(i as f32)];
        }
        let p49 = to49(&p);
        assert_eq!(p49[43], [61.0, -61.0]); // 17..=59 are 43 points, then 61
    }
}
