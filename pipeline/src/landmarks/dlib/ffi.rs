//! Raw bindings to `pipeline/cpp/dlib_shim.cpp` and the error-buffer helper.

use std::ffi::{c_char, CStr};

/// Opaque `mcsfau_detector` (a dlib `frontal_face_detector`).
#[repr(C)]
pub(super) struct Detector {
    _private: [u8; 0],
}

/// Opaque `mcsfau_predictor` (a dlib `shape_predictor`).
#[repr(C)]
pub(super) struct Predictor {
    _private: [u8; 0],
}

extern "C" {
    pub(super) fn mcsfau_detector_new(out: *mut *mut Detector, err: *mut c_char, len: usize) -> i32;
    pub(super) fn mcsfau_detector_free(d: *mut Detector);
    #[allow(clippy::too_many_arguments)]
    pub(super) fn mcsfau_detector_run(
        d: *mut Detector,
        rgb: *const u8,
        width: i64,
        height: i64,
        upsample: u32,
        adjust_threshold: f64,
        boxes: *mut i64,
        scores: *mut f64,
        max_faces: usize,
        n_found: *mut usize,
        err: *mut c_char,
        len: usize,
    ) -> i32;
    pub(super) fn mcsfau_predictor_load(
        path: *const c_char,
        out: *mut *mut Predictor,
        err: *mut c_char,
        len: usize,
    ) -> i32;
    pub(super) fn mcsfau_predictor_free(p: *mut Predictor);
    pub(super) fn mcsfau_predictor_num_parts(p: *const Predictor) -> usize;
    #[allow(clippy::too_many_arguments)]
    pub(super) fn mcsfau_predictor_run(
        p: *const Predictor,
        rgb: *const u8,
        width: i64,
        height: i64,
        face_box: *const i64,
        xy: *mut f32,
        num_parts: usize,
        err: *mut c_char,
        len: usize,
    ) -> i32;
}

/// A buffer the shim writes its error messages into.
pub(super) struct ErrBuf([c_char; 512]);

impl ErrBuf {
    pub(super) fn new() -> Self {
        Self([0; 512])
    }

    pub(super) fn ptr(&mut self) -> *mut c_char {
        self.0.as_mut_ptr()
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// The message the shim wrote (NUL-terminated by the shim).
    pub(super) fn message(&self) -> String {
        // SAFETY: the buffer starts zeroed and the shim always NUL-terminates
        // within `len`, so there is a terminator inside the array.
        unsafe { CStr::from_ptr(self.0.as_ptr()) }.to_string_lossy().into_owned()
    }
}
