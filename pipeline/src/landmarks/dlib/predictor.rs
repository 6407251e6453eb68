//! dlib's shape predictor: an ensemble of regression trees (Kazemi &
//! Sullivan, "One Millisecond Face Alignment with an Ensemble of Regression
//! Trees", CVPR 2014).

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use super::{check_frame, ffi};
use crate::error::{PipelineError, Result};
use crate::landmarks::{FrameRef, Points68, NUM_POINTS_68};

/// A loaded 68-point shape predictor. Prediction is `const` in dlib, so one
/// instance is shared by all threads (`Send + Sync`; wrap it in an `Arc`).
pub struct ShapePredictor {
    ptr: NonNull<ffi::Predictor>,
    path: PathBuf,
}

// SAFETY: dlib's `shape_predictor::operator()` is const and keeps no mutable
// state; the model is immutable after loading.
unsafe impl Send for ShapePredictor {}
// SAFETY: as above, concurrent `predict` calls only read the model.
unsafe impl Sync for ShapePredictor {}

impl ShapePredictor {
    /// Loads a dlib shape predictor file with 68 parts (~1 s for the 95 MB
    /// iBUG-300W model).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let model_err = |message: String| PipelineError::LandmarkModel { path: path.clone(), message };
        if !path.is_file() {
            return Err(model_err(
                "dlib shape predictor not found; on Debian/Ubuntu install it with \
                 `apt-get install libdlib-data` (it lands in \
                 /usr/share/dlib/shape_predictor_68_face_landmarks.dat), or pass the \
                 path of shape_predictor_68_face_landmarks.dat"
                    .into(),
            ));
        }
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| model_err("path contains a NUL byte".into()))?;
        let mut err = ffi::ErrBuf::new();
        let mut raw = std::ptr::null_mut();
        // SAFETY: `c_path` is NUL-terminated; `raw` and `err` are writable.
        let rc = unsafe { ffi::mcsfau_predictor_load(c_path.as_ptr(), &mut raw, err.ptr(), err.len()) };
        let ptr = match NonNull::new(raw) {
            Some(ptr) if rc == 0 => ptr,
            _ => return Err(model_err(format!("not a dlib shape predictor file: {}", err.message().trim()))),
        };
        let predictor = Self { ptr, path };
        // SAFETY: `ptr` is a live predictor.
        let parts = unsafe { ffi::mcsfau_predictor_num_parts(predictor.ptr.as_ptr()) };
        if parts != NUM_POINTS_68 {
            return Err(PipelineError::LandmarkModel {
                path: predictor.path.clone(),
                message: format!("shape predictor has {parts} parts, expected {NUM_POINTS_68}"),
            });
        }
        tracing::info!(path = %predictor.path.display(), "dlib shape predictor loaded");
        Ok(predictor)
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The 68 points of the face inside `face_box` (x0, y0, x1, y1 inclusive
    /// pixel indices, rounded to integers as dlib's rectangles are). Points
    /// are whole source-frame pixels (dlib's `point` is integer).
    pub fn predict(&self, frame: &FrameRef<'_>, face_box: [f32; 4], index: usize) -> Result<Points68> {
        check_frame("dlib", frame, index)?;
        let rect = face_box.map(|v| v.round() as i64);
        let mut xy = [0f32; 2 * NUM_POINTS_68];
        let mut err = ffi::ErrBuf::new();
        // SAFETY: the frame holds width*height*3 bytes (checked), `rect` has
        // 4 entries and `xy` 2*68 as the shim expects for a 68-part model.
        let rc = unsafe {
            ffi::mcsfau_predictor_run(
                self.ptr.as_ptr(),
                frame.rgb.as_ptr(),
                i64::from(frame.width),
                i64::from(frame.height),
                rect.as_ptr(),
                xy.as_mut_ptr(),
                NUM_POINTS_68,
                err.ptr(),
                err.len(),
            )
        };
        if rc != 0 {
            return Err(PipelineError::Landmarks {
                backend: "dlib",
                frame: index,
                message: format!("shape prediction failed: {}", err.message()),
            });
        }
        Ok(std::array::from_fn(|i| [xy[2 * i], xy[2 * i + 1]]))
    }
}

impl Drop for ShapePredictor {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `mcsfau_predictor_load` and is freed once.
        unsafe { ffi::mcsfau_predictor_free(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for ShapePredictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShapePredictor").field("path", &self.path).finish()
    }
}
