//! Following the face of a clip from frame to frame, for backends with a
//! face detector (`fan`, `dlib`).
//!
//! Per clip, frames in order:
//! * **Detect.** Without a track the detector scans the whole frame and the
//!   largest face starts one. With a track it scans only a region around
//!   the tracked box (the box grown by half its size on each side), which
//!   is cheaper and keeps background faces out; the face overlapping the
//!   track most (IoU >= [`TrackConfig::match_iou`]) continues it. When the
//!   region has none, the whole frame is scanned for one.
//! * **Follow.** When no detection continues the track (a profile the
//!   frontal HOG detector misses, motion blur), the tracked box is reused
//!   for up to [`TrackConfig::follow_ms`] after the last detection. The
//!   landmarks found in it are kept only if they *hold*: the box they imply
//!   overlaps the box used (IoU >= [`TrackConfig::hold_iou`]) and, for
//!   backends with a confidence (FAN's mean heatmap peak), their score is at
//!   least [`TrackConfig::min_score`].
//! * **Lose.** Otherwise the track ends, and the largest face the detector
//!   finds in the whole frame starts a new one (none: the frame has no face).
//! * **Between detections** ([`TrackConfig::redetect_ms`], 0 in preprocess,
//!   200 ms in `detect`, which reads every frame) the detector is not run
//!   and the box is followed, under the same hold rule.
//!
//! The landmarks of a whole batch go to the backend in one call (the FAN
//! service batches them with other clips'); only detection is sequential.

use crate::error::Result;
use crate::landmarks::{given::bounding_box, DetectedFace, Face68, FrameRef, LandmarkBackend};

/// Tracking thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackConfig {
    /// A detection continues the track when its IoU with the tracked box is at least this.
    pub match_iou: f32,
    /// Followed landmarks hold when the box they imply has at least this IoU with the box used.
    pub hold_iou: f32,
    /// Followed landmarks hold when their score is at least this (backends with a confidence).
    pub min_score: f32,
    /// Longest time a box is followed without a detection, milliseconds.
    pub follow_ms: i64,
    /// Within this long of the last detection the detector is not run at
    /// all and the box is followed (its landmarks must hold), milliseconds;
    /// 0 detects on every frame (preprocess: sampled frames are far apart).
    pub redetect_ms: i64,
}

impl Default for TrackConfig {
    fn default() -> Self {
        Self { match_iou: 0.3, hold_iou: 0.5, min_score: 0.25, follow_ms: 1000, redetect_ms: 0 }
    }
}

/// How a frame's face was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The detector found it (its score is stored).
    Detected,
    /// The tracked box was reused and the landmarks held.
    Followed,
    /// No face.
    None,
}

/// A frame's face and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    /// The face, `None` where none was found or a followed face did not hold.
    pub face: Option<Face68>,
    /// The detector's score where it found the face; NaN otherwise.
    pub detector_score: f32,
    /// How it was found.
    pub found: Found,
}

/// Per-clip counts of how faces were found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FaceCounts {
    /// Frames given to the landmark stage.
    pub frames: u64,
    /// Faces the detector found.
    pub detected: u64,
    /// Faces followed from an earlier detection.
    pub followed: u64,
    /// Frames without a face.
    pub no_face: u64,
}

impl FaceCounts {
    /// Adds one frame's outcome.
    pub fn add(&mut self, found: Found) {
        self.frames += 1;
        match found {
            Found::Detected => self.detected += 1,
            Found::Followed => self.followed += 1,
            Found::None => self.no_face += 1,
        }
    }

    /// Adds another clip's counts.
    pub fn merge(&mut self, o: &FaceCounts) {
        self.frames += o.frames;
        self.detected += o.detected;
        self.followed += o.followed;
        self.no_face += o.no_face;
    }

    /// Share of frames without a face (0 when there were no frames).
    pub fn no_face_rate(&self) -> f64 {
        if self.frames == 0 {
            0.0
        } else {
            self.no_face as f64 / self.frames as f64
        }
    }
}

/// The detector box relative to the landmarks' bounding box, learned at
/// each detection: the box that followed landmarks imply.
#[derive(Debug, Clone, Copy)]
struct Calibration {
    /// Box centre offset, in landmark-box widths/heights.
    dx: f32,
    dy: f32,
    /// Box size, in landmark-box widths/heights.
    sw: f32,
    sh: f32,
}

impl Calibration {
    fn learn(detected: [f32; 4], points: &crate::landmarks::Points68) -> Option<Self> {
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

    fn implied(&self, points: &crate::landmarks::Points68) -> [f32; 4] {
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

#[derive(Debug, Clone, Copy)]
struct Track {
    face_box: [f32; 4],
    last_detected_ms: i64,
}

/// The tracker of one clip.
#[derive(Debug, Default)]
pub struct Tracker {
    cfg: TrackConfig,
    track: Option<Track>,
    calibration: Option<Calibration>,
}

enum Plan {
    Detected([f32; 4], f32),
    Followed([f32; 4]),
    None,
}

impl Tracker {
    /// A tracker with these thresholds, no track yet.
    pub fn new(cfg: TrackConfig) -> Self {
        Self { cfg, track: None, calibration: None }
    }

    /// Faces of the next frames of the clip (in order; `times_ms` are their
    /// presentation times).
    pub fn faces(
        &mut self,
        backend: &mut dyn LandmarkBackend,
        frames: &[FrameRef<'_>],
        times_ms: &[i64],
    ) -> Result<Vec<Tracked>> {
        let mut plans = Vec::with_capacity(frames.len());
        for (frame, &t) in frames.iter().zip(times_ms) {
            plans.push(self.plan(backend, frame, t)?);
        }
        let (idx, boxes): (Vec<usize>, Vec<[f32; 4]>) = plans
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Plan::Detected(b, _) | Plan::Followed(b) => Some((i, *b)),
                Plan::None => None,
            })
            .unzip();
        let with_box: Vec<FrameRef<'_>> = idx.iter().map(|&i| frames[i]).collect();
        let mut faces = backend.points_in_boxes(&with_box, &boxes)?.into_iter();
        let mut out = Vec::with_capacity(frames.len());
        let mut lost_at_end = false;
        for plan in &plans {
            let tracked = match *plan {
                Plan::None => Tracked { face: None, detector_score: f32::NAN, found: Found::None },
                Plan::Detected(b, score) => {
                    let face = faces.next();
                    if let Some(c) = face.as_ref().and_then(|f| Calibration::learn(b, &f.points)) {
                        self.calibration = Some(c);
                    }
                    let found = if face.is_some() { Found::Detected } else { Found::None };
                    Tracked { face, detector_score: score, found }
                }
                Plan::Followed(b) => {
                    let face = faces.next().filter(|f| self.holds(f, b));
                    let found = if face.is_some() { Found::Followed } else { Found::None };
                    Tracked { face, detector_score: f32::NAN, found }
                }
            };
            lost_at_end = matches!(plan, Plan::Followed(_)) && tracked.face.is_none();
            out.push(tracked);
        }
        if lost_at_end {
            self.track = None;
        }
        // A followed face that does not hold ends the track; the detector
        // then looks at the whole frame (also where it was skipped) and the
        // largest face there starts a new one.
        let retry: Vec<usize> =
            (0..out.len()).filter(|&i| matches!(plans[i], Plan::Followed(_)) && out[i].face.is_none()).collect();
        if !retry.is_empty() {
            let saved = (self.cfg.redetect_ms, self.cfg.follow_ms);
            (self.cfg.redetect_ms, self.cfg.follow_ms) = (0, -1);
            self.track = None;
            let again: Vec<FrameRef<'_>> = retry.iter().map(|&i| frames[i]).collect();
            let times: Vec<i64> = retry.iter().map(|&i| times_ms[i]).collect();
            let found = self.faces(backend, &again, &times);
            (self.cfg.redetect_ms, self.cfg.follow_ms) = saved;
            for (&i, t) in retry.iter().zip(found?) {
                out[i] = t;
            }
        }
        Ok(out)
    }

    fn holds(&self, face: &Face68, used: [f32; 4]) -> bool {
        let Some(c) = self.calibration else { return false };
        face.score >= self.cfg.min_score && iou(c.implied(&face.points), used) >= self.cfg.hold_iou
    }

    fn plan(&mut self, backend: &mut dyn LandmarkBackend, frame: &FrameRef<'_>, t: i64) -> Result<Plan> {
        let Some(track) = self.track else {
            return self.start(backend, frame, t, None);
        };
        if t - track.last_detected_ms < self.cfg.redetect_ms {
            return Ok(Plan::Followed(track.face_box));
        }
        // The region around the track first, then the whole frame.
        let near = detect_in(backend, frame, grow(track.face_box, 0.5))?;
        let (matched, all) = match best_match(&near, track.face_box, self.cfg.match_iou) {
            Some(m) => (Some(m), None),
            None => {
                let all = backend.find_faces(std::slice::from_ref(frame))?.pop().unwrap_or_default();
                (best_match(&all, track.face_box, self.cfg.match_iou), Some(all))
            }
        };
        if let Some(f) = matched {
            self.track = Some(Track { face_box: f.face_box, last_detected_ms: t });
            return Ok(Plan::Detected(f.face_box, f.score as f32));
        }
        if t - track.last_detected_ms <= self.cfg.follow_ms {
            return Ok(Plan::Followed(track.face_box));
        }
        self.start(backend, frame, t, all)
    }

    fn start(
        &mut self,
        backend: &mut dyn LandmarkBackend,
        frame: &FrameRef<'_>,
        t: i64,
        faces: Option<Vec<DetectedFace>>,
    ) -> Result<Plan> {
        let faces = match faces {
            Some(f) => f,
            None => backend.find_faces(std::slice::from_ref(frame))?.pop().unwrap_or_default(),
        };
        match crate::landmarks::dlib::largest(&faces) {
            Some(f) => {
                self.track = Some(Track { face_box: f.face_box, last_detected_ms: t });
                Ok(Plan::Detected(f.face_box, f.score as f32))
            }
            None => {
                self.track = None;
                Ok(Plan::None)
            }
        }
    }
}

/// The face among `faces` overlapping `track` most, if at least `min_iou`.
fn best_match(faces: &[DetectedFace], track: [f32; 4], min_iou: f32) -> Option<DetectedFace> {
    faces
        .iter()
        .map(|f| (iou(f.face_box, track), f))
        .filter(|(o, _)| *o >= min_iou)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, f)| *f)
}

/// `b` grown by `k` times its width and height on each side.
fn grow(b: [f32; 4], k: f32) -> [f32; 4] {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    [b[0] - k * w, b[1] - k * h, b[2] + k * w, b[3] + k * h]
}

/// Faces the detector finds inside `region` of `frame` (clipped to the
/// frame), in frame coordinates.
fn detect_in(backend: &mut dyn LandmarkBackend, frame: &FrameRef<'_>, region: [f32; 4]) -> Result<Vec<DetectedFace>> {
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
    let sub = FrameRef { width: rw as u32, height: rh as u32, rgb: &rgb, given: None };
    let found = backend.find_faces(std::slice::from_ref(&sub))?.pop().unwrap_or_default();
    let (dx, dy) = (x0 as f32, y0 as f32);
    Ok(found
        .into_iter()
        .map(|f| DetectedFace {
            face_box: [f.face_box[0] + dx, f.face_box[1] + dy, f.face_box[2] + dx, f.face_box[3] + dy],
            score: f.score,
        })
        .collect())
}
