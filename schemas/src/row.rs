//! [`FaceRow`]: one face crop as the writer takes it.

use crate::schema::NUM_LANDMARKS;

/// AU labels of one frame, in the shard's `au_numbers` order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Labels {
    /// 1 present, 0 absent, -1 unknown.
    pub occurrence: Vec<i8>,
    /// 0-5, -1 unknown; empty when the dataset has no intensities.
    pub intensity: Vec<i8>,
}

/// One aligned face crop with its provenance, geometry and labels.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaceRow {
    /// Unique, stable id (see [`FaceRow::make_sample_id`]).
    pub sample_id: String,
    /// Dataset name.
    pub dataset: String,
    /// Subject (unit of splitting).
    pub subject: String,
    /// Video within the subject.
    pub video: String,
    /// Clip within the video (empty when not applicable).
    pub clip: String,
    /// Zero-based frame index (BP4D: the frame number of the file).
    pub frame_index: i64,
    /// Presentation time, milliseconds.
    pub timestamp_ms: i64,
    /// JPEG bytes of the crop.
    pub image: Vec<u8>,
    /// Crop side in pixels.
    pub crop_size: i32,
    /// 49 (x, y) points in crop pixels, flattened.
    pub landmarks: Vec<f32>,
    /// Landmark confidence.
    pub landmark_score: f32,
    /// Landmark backend name.
    pub landmark_source: String,
    /// Face box in the source frame, x0, y0, x1, y1.
    pub face_box: [f32; 4],
    /// Source frame width.
    pub source_width: i32,
    /// Source frame height.
    pub source_height: i32,
    /// Frame -> crop affine map `[a, b, tx, c, d, ty]`.
    pub crop_transform: [f32; 6],
    /// Labels, `None` for unlabeled datasets.
    pub labels: Option<Labels>,
    /// The face detector's score on this frame; NaN where the box was
    /// followed from an earlier frame or the backend has no detector.
    pub detector_score: f32,
}

impl FaceRow {
    /// The canonical sample id: `<dataset>/<subject>/<video>/<clip>#<frame:06>`
    /// (the clip part is left out when empty).
    pub fn make_sample_id(dataset: &str, subject: &str, video: &str, clip: &str, frame_index: i64) -> String {
        if clip.is_empty() {
            format!("{dataset}/{subject}/{video}#{frame_index:06}")
        } else {
            format!("{dataset}/{subject}/{video}/{clip}#{frame_index:06}")
        }
    }

    /// Checks the row against the contract; `Err` carries the reason.
    pub fn check(&self, n_au: Option<(usize, bool)>) -> Result<(), String> {
        if self.sample_id.is_empty() {
            return Err("empty sample_id".into());
        }
        if self.landmarks.len() != 2 * NUM_LANDMARKS {
            return Err(format!("{} landmark values, expected {}", self.landmarks.len(), 2 * NUM_LANDMARKS));
        }
        if self.image.is_empty() {
            return Err("empty image".into());
        }
        match (n_au, &self.labels) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err("labels given for an unlabeled shard".into()),
            (Some(_), None) => Err("labels missing in a labeled shard".into()),
            (Some((n, intensity)), Some(l)) => {
                if l.occurrence.len() != n {
                    return Err(format!("{} occurrence labels, expected {n}", l.occurrence.len()));
                }
                if intensity && l.intensity.len() != n {
                    return Err(format!("{} intensity labels, expected {n}", l.intensity.len()));
                }
                Ok(())
            }
        }
    }
}
