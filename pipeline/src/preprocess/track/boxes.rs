//! Boxes: intersection over union, the box followed landmarks imply, and
//! the detector's search in a region around the track.

use crate::error::Result;
use crate::landmarks::{given::bounding_box, DetectedFace, FrameRef, LandmarkBackend};

/// The detector box relative to the landmarks' bounding box, learned at
/// each detection: the box that followed landmarks imply.
#[derive(Debug, Clone, Copy)]
pub(super) struct Calibration {
    /// Box centre offset, in landmark-box widths/heights.
    dx: f32,
    dy: f32,
    /// Box size, in landmark-box widths/heights.
    sw: f32,
    sh: f32,
}

impl Calibration {
    pub(super) fn learn(detected: [f32; 4], points: &crate::landmarks::Points68) -> Option<Self> {
        let l = bounding_box(points);
        let (lw, lh) = (l[2] - l[0], l[3] - l[1]);
        if !(lw > 1.0 && lh > 1.0) {
            return None;
        }
        let c = |b: [f32; 4]| ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
        let ((bx, by), (lx, ly)) = (c(detected), c(l));
        Some(Self {
            dx: (bx - lx) / lw,
            dy: (by - ly) / lh,
            sw: (detected[2] - detected[0]) / lw,
            sh: (detected[3] - detected[1]) / lh,
        })
    }

    pub(super) fn implied(&self, points: &crate::landmarks::Points68) -> [f32; 4] {
        let l = bounding_box(points);
        let (lw, lh) = (l[2] - l[0], l[3] - l[1]);
        let (cx, cy) = ((l[0] + l[2]) / 2.0 + self.dx * lw, (l[1] + l[3]) / 2.0 + self.dy * lh);
        let (w, h) = (self.sw * lw, self.sh * lh);
        [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
    }
}

/// Intersection over union of two boxes (x0, y0, x1, y1).
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: [f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// The face among `faces` overlapping `track` most, if at least `min_iou`.
pub(super) fn best_match(faces: &[DetectedFace], track: [f32; 4], min_iou: f32) -> Option<DetectedFace> {
    faces
        .iter()
        .map(|f| (iou(f.face_box, track), f))
        .filter(|(o, _)| *o >= min_iou)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, f)| *f)
}

/// `b` grown by `k` times its width and height on each side.
pub(super) fn grow(b: [f32; 4], k: f32) -> [f32; 4] {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    [b[0] - k * w, b[1] - k * h, b[2] + k * w, b[3] + k * h]
}

/// Faces the detector finds inside `region` of `frame` (clipped to the
/// frame) doubled `upsample` times, in frame coordinates.
pub(super) fn detect_in(
    backend: &mut dyn LandmarkBackend,
    frame: &FrameRef<'_>,
    region: [f32; 4],
    upsample: u32,
) -> Result<Vec<DetectedFace>> {
    let (w, h) = (frame.width as i64, frame.height as i64);
    let x0 = (region[0].floor() as i64).clamp(0, w);
    let y0 = (region[1].floor() as i64).clamp(0, h);
    let x1 = (region[2].ceil() as i64 + 1).clamp(0, w);
    let y1 = (region[3].ceil() as i64 + 1).clamp(0, h);
    if x1 - x0 < 16 || y1 - y0 < 16 {
        return Ok(Vec::new());
    }
    let (rw, rh) = ((x1 - x0) as usize, (y1 - y0) as usize);
    let mut rgb = Vec::with_capacity(rw * rh * 3);
    for y in y0 as usize..y1 as usize {
        let row = (y * w as usize + x0 as usize) * 3;
        rgb.extend_from_slice(&frame.rgb[row..row + rw * 3]);
    }
    let sub = [FrameRef { width: rw as u32, height: rh as u32, rgb: &rgb, given: None }];
    let found = if upsample == 0 { backend.find_faces(&sub)? } else { backend.find_faces_upsampled(&sub, upsample)? };
    let (dx, dy) = (x0 as f32, y0 as f32);
    Ok(found
        .into_iter()
        .next()
        .unwrap_or_default()
        .into_iter()
        .map(|f| DetectedFace {
            face_box: [f.face_box[0] + dx, f.face_box[1] + dy, f.face_box[2] + dx, f.face_box[3] + dy],
            score: f.score,
        })
        .collect())
}
