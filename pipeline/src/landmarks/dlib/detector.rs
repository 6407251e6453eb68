//! dlib's HOG frontal face detector (Dalal-Triggs HOG + linear SVM, 5
//! pose-specific filters; King, "Max-Margin Object Detection", 2015).

use std::ptr::NonNull;
use std::sync::Mutex;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::check_frame;
use super::ffi;
use crate::error::{PipelineError, Result};
use crate::landmarks::FrameRef;

/// Most doublings [`DetectorConfig::upsample`] accepts (8x the frame side).
pub const MAX_UPSAMPLE: u32 = 3;

/// How the HOG detector runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorConfig {
    /// Times the frame is doubled in size before detection. 0 finds faces of
    /// about 80x80 pixels and larger; each doubling halves that and costs ~4x
    /// the time.
    pub upsample: u32,
    /// Added to the detector's decision threshold (0 = dlib's default;
    /// negative values accept less certain faces).
    pub adjust_threshold: f64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self { upsample: 0, adjust_threshold: 0.0 }
    }
}

/// A face found by the detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectedFace {
    /// Box x0, y0, x1, y1 (dlib's left, top, right, bottom: inclusive pixel
    /// indices of the source frame).
    pub face_box: [f32; 4],
    /// The detector's SVM score (unbounded; > 0 above the default threshold).
    pub score: f64,
}

impl DetectedFace {
    /// Box area in pixels (dlib's `rectangle::area` convention, inclusive).
    pub fn area(&self) -> f32 {
        let [x0, y0, x1, y1] = self.face_box;
        (x1 - x0 + 1.0).max(0.0) * (y1 - y0 + 1.0).max(0.0)
    }
}

/// One dlib detector. dlib's `object_detector::operator()` is not `const`
/// (it keeps scratch buffers), so one instance serves one thread at a time.
pub struct HogDetector {
    ptr: NonNull<ffi::Detector>,
    cfg: DetectorConfig,
}

// SAFETY: the detector owns its state and is only used through `&mut self`,
// so moving it to another thread is fine; it is deliberately not `Sync`.
unsafe impl Send for HogDetector {}

impl HogDetector {
    /// Builds a detector from dlib's built-in model (deserializing it takes
    /// up to a second). `cfg.upsample` must be at most [`MAX_UPSAMPLE`].
    pub fn new(cfg: DetectorConfig) -> Result<Self> {
        if cfg.upsample > MAX_UPSAMPLE {
            return Err(PipelineError::Landmarks {
                backend: "dlib",
                frame: 0,
                message: format!("upsample = {} (at most {MAX_UPSAMPLE} doublings)", cfg.upsample),
            });
        }
        let mut err = ffi::ErrBuf::new();
        let mut raw = std::ptr::null_mut();
        // SAFETY: `raw` and `err` are valid for writes of the given sizes.
        let rc = unsafe { ffi::mcsfau_detector_new(&mut raw, err.ptr(), err.len()) };
        match NonNull::new(raw) {
            Some(ptr) if rc == 0 => Ok(Self { ptr, cfg }),
            _ => Err(PipelineError::Landmarks {
                backend: "dlib",
                frame: 0,
                message: format!("cannot build the HOG face detector: {}", err.message()),
            }),
        }
    }

    /// All faces in `frame` (`index` names the frame in errors), best score
    /// first.
    pub fn detect(&mut self, frame: &FrameRef<'_>, index: usize) -> Result<Vec<DetectedFace>> {
        self.detect_upsampled(frame, index, self.cfg.upsample)
    }

    /// [`HogDetector::detect`] with the frame doubled `upsample` times
    /// (at most [`MAX_UPSAMPLE`]) instead of the configured number; boxes
    /// in the frame's own pixels.
    pub fn detect_upsampled(&mut self, frame: &FrameRef<'_>, index: usize, upsample: u32) -> Result<Vec<DetectedFace>> {
        check_frame("dlib", frame, index)?;
        if upsample > MAX_UPSAMPLE {
            return Err(PipelineError::Landmarks {
                backend: "dlib",
                frame: index,
                message: format!("upsample = {upsample} (at most {MAX_UPSAMPLE} doublings)"),
            });
        }
        let mut capacity = 16usize;
        loop {
            let mut boxes = vec![0i64; 4 * capacity];
            let mut scores = vec![0f64; capacity];
            let mut found = 0usize;
            let mut err = ffi::ErrBuf::new();
            // SAFETY: the frame buffer holds width*height*3 bytes (checked
            // above); `boxes`/`scores` hold `capacity` entries.
            let rc = unsafe {
                ffi::mcsfau_detector_run(
                    self.ptr.as_ptr(),
                    frame.rgb.as_ptr(),
                    i64::from(frame.width),
                    i64::from(frame.height),
                    upsample,
                    self.cfg.adjust_threshold,
                    boxes.as_mut_ptr(),
                    scores.as_mut_ptr(),
                    capacity,
                    &mut found,
                    err.ptr(),
                    err.len(),
                )
            };
            if rc != 0 {
                return Err(PipelineError::Landmarks {
                    backend: "dlib",
                    frame: index,
                    message: format!("face detection failed: {}", err.message()),
                });
            }
            if found > capacity {
                capacity = found;
                continue;
            }
            return Ok((0..found)
                .map(|i| DetectedFace { face_box: [0, 1, 2, 3].map(|k| boxes[4 * i + k] as f32), score: scores[i] })
                .collect());
        }
    }
}

impl Drop for HogDetector {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `mcsfau_detector_new` and is freed once.
        unsafe { ffi::mcsfau_detector_free(self.ptr.as_ptr()) }
    }
}

/// The most prominent face: the largest box, ties broken by score.
pub fn largest(faces: &[DetectedFace]) -> Option<DetectedFace> {
    faces.iter().copied().max_by(|a, b| a.area().total_cmp(&b.area()).then(a.score.total_cmp(&b.score)))
}

/// A pool of [`HogDetector`]s that runs a batch of frames on all rayon
/// threads: each worker checks a detector out, so at most one per thread is
/// ever built, and they are kept for the next batch. `Send + Sync`.
pub struct FaceDetector {
    cfg: DetectorConfig,
    pool: Mutex<Vec<HogDetector>>,
}

impl FaceDetector {
    /// An empty pool; detectors are built on first use.
    pub fn new(cfg: DetectorConfig) -> Self {
        Self { cfg, pool: Mutex::new(Vec::new()) }
    }

    /// The configuration.
    pub fn config(&self) -> &DetectorConfig {
        &self.cfg
    }

    /// The most prominent face of each frame, `None` where none was found.
    pub fn detect_largest(&self, frames: &[FrameRef<'_>]) -> Result<Vec<Option<DetectedFace>>> {
        self.map_frames(frames, |det, frame, i| Ok(largest(&det.detect(frame, i)?)))
    }

    /// Every face of each frame, with the detector's scores.
    pub fn detect_all(&self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<DetectedFace>>> {
        self.map_frames(frames, |det, frame, i| det.detect(frame, i))
    }

    /// Every face of each frame doubled `upsample` times (boxes in the
    /// frame's own pixels).
    pub fn detect_all_upsampled(&self, frames: &[FrameRef<'_>], upsample: u32) -> Result<Vec<Vec<DetectedFace>>> {
        self.map_frames(frames, |det, frame, i| det.detect_upsampled(frame, i, upsample))
    }

    /// Runs `f` on every frame in parallel with a pooled detector.
    pub(super) fn map_frames<T: Send>(
        &self,
        frames: &[FrameRef<'_>],
        f: impl Fn(&mut HogDetector, &FrameRef<'_>, usize) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        frames
            .par_iter()
            .enumerate()
            .map_init(
                || self.checkout(),
                |det, (i, frame)| match det.as_mut().map(|c| c.det.as_mut()) {
                    Ok(Some(d)) => f(d, frame, i),
                    Ok(None) => unreachable!("a checkout holds its detector until dropped"),
                    Err(e) => Err(PipelineError::Landmarks { backend: "dlib", frame: i, message: e.clone() }),
                },
            )
            .collect()
    }

    fn checkout(&self) -> std::result::Result<Checkout<'_>, String> {
        let pooled = self.pool.lock().map_err(|_| "detector pool poisoned".to_string())?.pop();
        let det = match pooled {
            Some(d) => d,
            None => HogDetector::new(self.cfg).map_err(|e| e.to_string())?,
        };
        Ok(Checkout { det: Some(det), pool: &self.pool })
    }
}

/// A detector on loan from the pool; goes back on drop.
struct Checkout<'a> {
    det: Option<HogDetector>,
    pool: &'a Mutex<Vec<HogDetector>>,
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if let (Some(det), Ok(mut pool)) = (self.det.take(), self.pool.lock()) {
            pool.push(det);
        }
    }
}
