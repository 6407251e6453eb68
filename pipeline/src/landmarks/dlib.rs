//! The `dlib` landmark backend, the offline default: dlib's HOG frontal face
//! detector picks the most prominent (largest) face, and dlib's 68-point
//! shape predictor (Kazemi & Sullivan 2014) places the iBUG-68 points.
//!
//! Uses Debian's `libdlib-dev` through a small C++ shim
//! (`pipeline/cpp/dlib_shim.cpp`, built by `pipeline/build.rs`) and the model
//! Debian's `libdlib-data` ships at [`DEFAULT_SHAPE_PREDICTOR`].
//!
//! Licence: dlib's 68-point model was trained on the iBUG 300-W dataset,
//! whose licence excludes commercial use. Debian labels the file CC0, but
//! check 300-W's terms before using its landmarks commercially.
//!
//! Threads: one [`ShapePredictor`] (immutable, `Sync`) is shared by all
//! threads; HOG detectors (mutable scratch, one per thread) come from a pool
//! inside [`FaceDetector`]. A [`DlibBackend`] runs each batch on all rayon
//! threads, so one backend instance is enough per process.

mod detector;
mod ffi;
mod predictor;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use detector::{largest, DetectedFace, DetectorConfig, FaceDetector, HogDetector, MAX_UPSAMPLE};
pub use predictor::ShapePredictor;

use crate::error::{PipelineError, Result};
use crate::landmarks::{Face68, FrameRef, LandmarkBackend};

/// Where Debian's `libdlib-data` installs dlib's 68-point model.
pub const DEFAULT_SHAPE_PREDICTOR: &str = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";

/// Options of the `dlib` backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DlibConfig {
    /// The 68-point shape predictor file (default [`DEFAULT_SHAPE_PREDICTOR`]).
    pub shape_predictor: PathBuf,
    /// The face detector.
    pub detector: DetectorConfig,
}

impl Default for DlibConfig {
    fn default() -> Self {
        Self { shape_predictor: DEFAULT_SHAPE_PREDICTOR.into(), detector: DetectorConfig::default() }
    }
}

/// HOG face detection + 68-point shape prediction. `Send + Sync`.
pub struct DlibBackend {
    detector: FaceDetector,
    predictor: Arc<ShapePredictor>,
}

impl DlibBackend {
    /// Loads the shape predictor named in `cfg` (~1 s); fails with
    /// [`PipelineError::LandmarkModel`] naming the file if it is missing or
    /// not a 68-point dlib model.
    pub fn new(cfg: &DlibConfig) -> Result<Self> {
        let predictor = Arc::new(ShapePredictor::load(&cfg.shape_predictor)?);
        Ok(Self::with_predictor(predictor, cfg.detector))
    }

    /// A backend sharing an already loaded predictor.
    pub fn with_predictor(predictor: Arc<ShapePredictor>, detector: DetectorConfig) -> Self {
        Self { detector: FaceDetector::new(detector), predictor }
    }

    /// The shared shape predictor.
    pub fn predictor(&self) -> &Arc<ShapePredictor> {
        &self.predictor
    }

    /// Landmarks for caller-given face boxes (x0, y0, x1, y1, inclusive pixel
    /// indices), one per frame, skipping detection.
    pub fn landmarks_in_boxes(&self, frames: &[FrameRef<'_>], boxes: &[[f32; 4]]) -> Result<Vec<Face68>> {
        if frames.len() != boxes.len() {
            return Err(PipelineError::Landmarks {
                backend: "dlib",
                frame: frames.len().min(boxes.len()),
                message: format!("{} frames but {} face boxes", frames.len(), boxes.len()),
            });
        }
        use rayon::prelude::*;
        frames
            .par_iter()
            .zip(boxes.par_iter())
            .enumerate()
            .map(|(i, (frame, &face_box))| {
                let points = self.predictor.predict(frame, face_box, i)?;
                Ok(Face68 { points, score: 1.0, face_box })
            })
            .collect()
    }
}

impl LandmarkBackend for DlibBackend {
    fn name(&self) -> &'static str {
        "dlib"
    }

    /// `score` is 1.0: dlib's shape predictor has no confidence (the HOG
    /// detector's SVM score is available through [`FaceDetector`]).
    fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Option<Face68>>> {
        self.detect_frames(frames)
    }

    fn has_detector(&self) -> bool {
        true
    }

    fn find_faces(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<DetectedFace>>> {
        self.detector.detect_all(frames)
    }

    fn find_faces_upsampled(&mut self, frames: &[FrameRef<'_>], upsample: u32) -> Result<Vec<Vec<DetectedFace>>> {
        self.detector.detect_all_upsampled(frames, upsample)
    }

    fn points_in_boxes(&mut self, frames: &[FrameRef<'_>], boxes: &[[f32; 4]]) -> Result<Vec<Face68>> {
        self.landmarks_in_boxes(frames, boxes)
    }
}

impl DlibBackend {
    /// [`LandmarkBackend::detect`] through a shared reference, for callers
    /// that share one backend between threads (it is `Sync`).
    pub fn detect_frames(&self, frames: &[FrameRef<'_>]) -> Result<Vec<Option<Face68>>> {
        let predictor = &self.predictor;
        self.detector.map_frames(frames, |det, frame, i| {
            let Some(face) = largest(&det.detect(frame, i)?) else {
                return Ok(None);
            };
            let points = predictor.predict(frame, face.face_box, i)?;
            Ok(Some(Face68 { points, score: 1.0, face_box: face.face_box }))
        })
    }
}

/// Checks that a frame's buffer is packed RGB24 of its stated size.
pub(crate) fn check_frame(backend: &'static str, frame: &FrameRef<'_>, index: usize) -> Result<()> {
    let expected = frame.width as usize * frame.height as usize * 3;
    if frame.width == 0 || frame.height == 0 || frame.rgb.len() != expected {
        return Err(PipelineError::Landmarks {
            backend,
            frame: index,
            message: format!(
                "expected a {}x{} RGB24 frame of {expected} bytes, got {} bytes",
                frame.width,
                frame.height,
                frame.rgb.len()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_model_file_is_a_clear_error() {
        let cfg = DlibConfig { shape_predictor: "/nonexistent/sp68.dat".into(), ..Default::default() };
        let err = DlibBackend::new(&cfg).err().expect("must fail");
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/sp68.dat") && msg.contains("libdlib-data"), "{msg}");
    }

    #[test]
    fn non_model_file_is_rejected_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("junk.dat");
        std::fs::write(&path, b"not a dlib model").expect("write");
        let err = ShapePredictor::load(&path).expect_err("must fail");
        assert!(matches!(err, PipelineError::LandmarkModel { .. }), "{err}");
        assert!(err.to_string().contains("junk.dat"), "{err}");
    }

    #[test]
    fn blank_frame_has_no_face_and_short_buffer_is_an_error() {
        let det = FaceDetector::new(DetectorConfig::default());
        let rgb = vec![128u8; 120 * 100 * 3];
        let ok = FrameRef { width: 120, height: 100, rgb: &rgb, given: None };
        let bad = FrameRef { width: 121, height: 100, rgb: &rgb, given: None };
        assert_eq!(det.detect_largest(&[ok, ok]).expect("runs"), vec![None, None]);
        let err = det.detect_largest(&[ok, bad]).expect_err("size mismatch");
        assert!(err.to_string().contains("frame 1"), "{err}");
    }

    #[test]
    fn backends_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        fn movable<T: Send>() {}
        shareable::<DlibBackend>();
        // tch tensors are not `Sync`: one thread drives FAN (it batches).
        movable::<crate::landmarks::fan::FanBackend>();
    }

    #[test]
    fn largest_face_wins_ties_by_score() {
        let f = |b: [f32; 4], score| DetectedFace { face_box: b, score };
        let faces = [f([0., 0., 9., 9.], 3.0), f([0., 0., 19., 19.], 0.1), f([5., 5., 24., 24.], 0.5)];
        assert_eq!(largest(&faces), Some(faces[2]));
        assert_eq!(largest(&[]), None);
    }
}
