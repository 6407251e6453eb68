//! Face tracking (`preprocess::track`) against a scripted backend: frames
//! are drawn with coloured rectangles; the "detector" finds the red ones
//! (frontal faces) only, the "landmarker" places points on whatever face
//! pixels lie in the box it is given, with a score of the share of the box
//! they fill (nothing in the box: points on the box, score 0).

use pipeline::error::Result;
use pipeline::landmarks::{DetectedFace, Face68, FrameRef, LandmarkBackend, Points68};
use pipeline::preprocess::track::{FaceCounts, Found, TrackConfig, Tracked, Tracker};

const W: u32 = 200;
const H: u32 = 120;

/// A frame with rectangles (x0, y0, x1, y1 inclusive, colour).
fn frame(rects: &[([u32; 4], [u8; 3])]) -> Vec<u8> {
    let mut rgb = vec![0u8; (W * H * 3) as usize];
    for (r, c) in rects {
        for y in r[1]..=r[3] {
            for x in r[0]..=r[2] {
                let i = ((y * W + x) * 3) as usize;
                rgb[i..i + 3].copy_from_slice(c);
            }
        }
    }
    rgb
}

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];

/// Bounding box of the pixels of `f` inside `b` that satisfy `is_face`.
fn pixels_box(f: &FrameRef<'_>, b: [f32; 4], is_face: impl Fn(&[u8]) -> bool) -> Option<([f32; 4], usize)> {
    let (mut lo, mut hi, mut n) = ([f32::MAX; 2], [f32::MIN; 2], 0usize);
    let clamp = |v: f32, m: u32| (v.max(0.0) as u32).min(m - 1);
    for y in clamp(b[1], f.height)..=clamp(b[3], f.height) {
        for x in clamp(b[0], f.width)..=clamp(b[2], f.width) {
            let i = ((y * f.width + x) * 3) as usize;
            if is_face(&f.rgb[i..i + 3]) {
                lo = [lo[0].min(x as f32), lo[1].min(y as f32)];
                hi = [hi[0].max(x as f32), hi[1].max(y as f32)];
                n += 1;
            }
        }
    }
    (n > 0).then_some(([lo[0], lo[1], hi[0], hi[1]], n))
}

fn grid(b: [f32; 4]) -> Points68 {
    let mut p = [[0f32; 2]; 68];
    for (k, q) in p.iter_mut().enumerate() {
        let (i, j) = ((k % 17) as f32 / 16.0, (k / 17) as f32 / 3.0);
        *q = [b[0] + i * (b[2] - b[0]), b[1] + j * (b[3] - b[1])];
    }
    p
}

/// Narrower red faces are found only in an upsampled search.
const SMALL: u32 = 20;

/// Red faces at least `min_width` columns wide: each run of columns holding
/// red pixels is one face (the rectangles never share columns).
fn red_faces(f: &FrameRef<'_>, min_width: u32) -> Vec<DetectedFace> {
    let has_red = |x: u32| (0..f.height).any(|y| f.rgb[((y * f.width + x) * 3) as usize..][..3] == RED);
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for x in 0..f.width {
        if has_red(x) {
            match runs.last_mut() {
                Some((_, end)) if *end + 1 == x => *end = x,
                _ => runs.push((x, x)),
            }
        }
    }
    runs.iter()
        .filter(|&&(x0, x1)| x1 + 1 - x0 >= min_width)
        .filter_map(|&(x0, x1)| pixels_box(f, [x0 as f32, 0.0, x1 as f32, f.height as f32 - 1.0], |p| p == RED))
        .map(|(b, n)| DetectedFace { face_box: b, score: n as f64 / 100.0 })
        .collect()
}

#[derive(Default)]
struct Scripted {
    full_scans: usize,
    upsampled: usize,
}

impl LandmarkBackend for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }
    fn detect(&mut self, _frames: &[FrameRef<'_>]) -> Result<Vec<Option<Face68>>> {
        unreachable!("the tracker uses find_faces and points_in_boxes")
    }
    fn has_detector(&self) -> bool {
        true
    }
    fn find_faces(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<DetectedFace>>> {
        Ok(frames
            .iter()
            .map(|f| {
                self.full_scans += usize::from(f.width == W && f.height == H);
                red_faces(f, SMALL)
            })
            .collect())
    }
    /// Upsampled, the "detector" also finds red faces narrower than
    /// [`SMALL`] columns, which it misses at the frame's own scale.
    fn find_faces_upsampled(&mut self, frames: &[FrameRef<'_>], upsample: u32) -> Result<Vec<Vec<DetectedFace>>> {
        assert!(upsample > 0);
        self.upsampled += frames.len();
        Ok(frames.iter().map(|f| red_faces(f, 0)).collect())
    }
    fn points_in_boxes(&mut self, frames: &[FrameRef<'_>], boxes: &[[f32; 4]]) -> Result<Vec<Face68>> {
        Ok(frames
            .iter()
            .zip(boxes)
            .map(|(f, b)| {
                let area = (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
                match pixels_box(f, *b, |p| p != [0, 0, 0]) {
                    Some((fb, n)) => Face68 { points: grid(fb), score: n as f32 / area, face_box: *b },
                    None => Face68 { points: grid(*b), score: 0.0, face_box: *b },
                }
            })
            .collect())
    }
}

/// The default thresholds without the pixel checks (shot cuts, the
/// followed box's appearance): the flat rectangles of these frames cannot
/// be verified by their texture; `the_pixel_checks_*` tests below cover them.
fn geometry() -> TrackConfig {
    TrackConfig { cut_distance: 2.0, min_agreement: -1.0, ..TrackConfig::default() }
}

/// Per frame: how the face was found, its first point, the detector score.
type Outcome = (Found, Option<[f32; 2]>, f32);

fn run(frames: &[Vec<u8>], times: &[i64], cfg: TrackConfig) -> (Vec<Outcome>, usize) {
    let mut backend = Scripted::default();
    let mut tracker = Tracker::new(cfg);
    let refs: Vec<FrameRef<'_>> =
        frames.iter().map(|f| FrameRef { width: W, height: H, rgb: f, given: None }).collect();
    let mut out = Vec::new();
    // two batches, so the track carries across calls
    let half = refs.len() / 2;
    for (r, t) in [(&refs[..half], &times[..half]), (&refs[half..], &times[half..])] {
        for tr in tracker.faces(&mut backend, r, t).unwrap() {
            out.push((tr.found, tr.face.map(|f| f.points[0]), tr.detector_score));
        }
    }
    (out, backend.full_scans)
}

#[test]
fn the_tracked_face_wins_over_a_larger_face_that_appears_later() {
    let small = ([20, 30, 59, 79], RED); // left half, 40x50
    let big = ([120, 10, 189, 109], RED); // right half, 70x100
    let frames = vec![frame(&[small]), frame(&[small]), frame(&[small, big]), frame(&[small, big])];
    let (out, full) = run(&frames, &[0, 1000, 2000, 3000], geometry());
    for (k, (found, p0, score)) in out.iter().enumerate() {
        assert_eq!(*found, Found::Detected, "frame {k}");
        assert_eq!(p0.unwrap(), [20.0, 30.0], "frame {k}: the small face's points, not the big one's");
        assert!((score - 20.0).abs() < 1e-3, "frame {k}: the detector's score is stored ({score})");
    }
    assert_eq!(full, 1, "the whole frame is scanned once; later frames only around the track");
    // Without a track the largest face is taken (what every frame got before).
    let (out, _) = run(&[frame(&[small, big]), frame(&[small, big])], &[0, 40], geometry());
    assert_eq!(out[0].1.unwrap(), [120.0, 10.0]);
}

#[test]
fn a_face_the_detector_misses_is_followed_then_lost() {
    let face = ([40, 30, 89, 89], RED);
    let profile = ([45, 30, 94, 89], GREEN); // the detector does not see green
    let frames =
        vec![frame(&[face]), frame(&[profile]), frame(&[profile]), frame(&[profile]), frame(&[face]), frame(&[])];
    let times = [0, 400, 800, 1600, 2000, 2400];
    let (out, _) = run(&frames, &times, geometry());
    let found: Vec<Found> = out.iter().map(|o| o.0).collect();
    assert_eq!(
        found,
        [Found::Detected, Found::Followed, Found::Followed, Found::None, Found::Detected, Found::None],
        "followed within 1 s of the last detection, then lost; an empty frame has no face"
    );
    assert_eq!(out[1].1.unwrap(), [45.0, 30.0], "the followed frame's points are on the profile face");
    assert!(out[1].2.is_nan() && !out[0].2.is_nan(), "no detector score on followed frames");
    let mut counts = FaceCounts::default();
    found.iter().for_each(|f| counts.add(*f));
    assert_eq!((counts.frames, counts.detected, counts.followed, counts.no_face), (6, 2, 2, 2));
    assert!((counts.no_face_rate() - 1.0 / 3.0).abs() < 1e-9);
}

#[test]
fn followed_landmarks_that_do_not_hold_are_dropped() {
    let face = ([40, 30, 89, 89], RED);
    // A small green blob in a corner of the old box: points far from the
    // face the box was cut for (they imply a box that overlaps little).
    let drifted = ([40, 30, 49, 39], GREEN);
    let frames = vec![frame(&[face]), frame(&[drifted]), frame(&[face]), frame(&[face])];
    let (out, _) = run(&frames, &[0, 40, 80, 120], TrackConfig { min_score: 0.0, ..geometry() });
    assert_eq!(
        out.iter().map(|o| o.0).collect::<Vec<_>>(),
        [Found::Detected, Found::None, Found::Detected, Found::Detected]
    );
    // A low score alone also drops a followed face.
    let faint = ([40, 30, 89, 89], GREEN);
    let frames = vec![frame(&[face]), frame(&[faint]), frame(&[face]), frame(&[face])];
    let strict = TrackConfig { min_score: 1.5, ..geometry() };
    let (out, _) = run(&frames, &[0, 40, 80, 120], strict);
    assert_eq!(out[1].0, Found::None);
    let (out, _) = run(&frames, &[0, 40, 80, 120], geometry());
    assert_eq!(out[1].0, Found::Followed);
}

#[test]
fn between_detections_the_face_is_followed_and_a_miss_is_detected_again() {
    let face = ([40, 30, 89, 89], RED);
    let moved = ([120, 30, 169, 89], RED); // jumps away: the old box no longer holds
    let frames =
        vec![frame(&[face]), frame(&[face]), frame(&[face]), frame(&[moved]), frame(&[moved]), frame(&[moved])];
    let cfg = TrackConfig { redetect_ms: 200, ..geometry() };
    let times = [0, 40, 80, 120, 160, 400];
    let (out, full) = run(&frames, &times, cfg);
    let found: Vec<Found> = out.iter().map(|o| o.0).collect();
    // 40, 80: followed without the detector; 120: the followed box fails,
    // so the detector runs on the whole frame and the face that moved starts
    // a new track; 160 follows it, 400 detects it.
    assert_eq!(found[..3], [Found::Detected, Found::Followed, Found::Followed]);
    assert_eq!(found[3], Found::Detected, "{found:?}");
    assert_eq!(out[3].1.unwrap(), [120.0, 30.0]);
    assert_eq!(found[4..], [Found::Detected, Found::Detected], "{found:?}");
    assert!(full >= 2, "the miss was re-detected on the whole frame");
}

/// The colour of a pixel (x, y) of a painted rectangle.
type Paint<'a> = &'a dyn Fn(u32, u32) -> [u8; 3];

/// A frame of `background` with rectangles painted by `paint(x, y)`.
fn painted(background: [u8; 3], rects: &[([u32; 4], Paint<'_>)]) -> Vec<u8> {
    let mut rgb: Vec<u8> = (0..W * H).flat_map(|_| background).collect();
    for (r, paint) in rects {
        for y in r[1]..=r[3] {
            for x in r[0]..=r[2] {
                let i = ((y * W + x) * 3) as usize;
                rgb[i..i + 3].copy_from_slice(&paint(x, y));
            }
        }
    }
    rgb
}

/// A checked face: `bright` and `dark` squares of 4 px (`across`: stripes
/// 4 px high instead, the same colours in the same shares).
fn checks(bright: [u8; 3], dark: [u8; 3], across: bool) -> impl Fn(u32, u32) -> [u8; 3] {
    move |x, y| {
        let on = if across { y / 4 % 2 == 0 } else { (x / 4 + y / 4) % 2 == 0 };
        if on {
            bright
        } else {
            dark
        }
    }
}

/// One batch through a fresh tracker.
fn track(frames: &[Vec<u8>], times: &[i64], cfg: TrackConfig) -> (Vec<Tracked>, Scripted) {
    let mut backend = Scripted::default();
    let refs: Vec<FrameRef<'_>> =
        frames.iter().map(|f| FrameRef { width: W, height: H, rgb: f, given: None }).collect();
    (Tracker::new(cfg).faces(&mut backend, &refs, times).unwrap(), backend)
}

const FACE: [u32; 4] = [40, 30, 89, 89];

#[test]
fn the_pixel_checks_refuse_a_followed_box_that_no_longer_shows_the_face() {
    let red = checks(RED, [100, 0, 0], false);
    // The detector misses green faces: the same checks in green are followed
    // (a profile the frontal detector misses), stripes in the same colours
    // (no cut) are not the face the box was cut for.
    let turned = checks(GREEN, [0, 100, 0], false);
    let other = checks(GREEN, [0, 100, 0], true);
    let frames =
        [painted([0; 3], &[(FACE, &red)]), painted([0; 3], &[(FACE, &turned)]), painted([0; 3], &[(FACE, &other)])];
    let (out, _) = track(&frames, &[0, 400, 800], TrackConfig::default());
    let found: Vec<(Found, bool, bool)> = out.iter().map(|t| (t.found, t.refused, t.cut)).collect();
    assert_eq!(
        found,
        [(Found::Detected, false, false), (Found::Followed, false, false), (Found::None, true, false)],
        "the stripes are refused and the whole frame searched (no face there)"
    );
    let mut counts = FaceCounts::default();
    out.iter().for_each(|t| counts.add_frame(t));
    assert_eq!((counts.followed, counts.refused, counts.cuts), (1, 1, 0));
    // Without the appearance check the stripes were followed.
    let (out, _) = track(&frames, &[0, 400, 800], geometry());
    assert_eq!(out[2].found, Found::Followed);
}

#[test]
fn the_pixel_checks_never_follow_a_face_across_a_shot_cut() {
    let red = checks(RED, [100, 0, 0], false);
    let turned = checks(GREEN, [0, 100, 0], false);
    // The next shot: another background; a face the detector misses sits
    // where the tracked one was and looks the same (the box would agree).
    let frames = [painted([0; 3], &[(FACE, &red)]), painted([0, 0, 160], &[(FACE, &turned)])];
    for redetect_ms in [0, 200] {
        let cfg = TrackConfig { redetect_ms, ..TrackConfig::default() };
        let (out, _) = track(&frames, &[0, 40], cfg);
        let found: Vec<(Found, bool, bool)> = out.iter().map(|t| (t.found, t.refused, t.cut)).collect();
        assert_eq!(found, [(Found::Detected, false, false), (Found::None, false, true)], "redetect {redetect_ms} ms");
        let (out, _) = track(&frames, &[0, 40], TrackConfig { cut_distance: 2.0, ..cfg });
        assert_eq!(out[1].found, Found::Followed, "without the cut check it was followed");
    }
}

#[test]
fn a_small_face_is_found_by_the_upsampled_search_and_then_tracked_at_that_scale() {
    let small = ([60, 40, 71, 55], RED); // 12 columns: under SMALL
    let frames = vec![frame(&[small]), frame(&[small]), frame(&[small])];
    let (out, backend) = track(&frames, &[0, 1000, 2000], geometry());
    assert!(out.iter().all(|t| t.found == Found::Detected), "{:?}", out.iter().map(|t| t.found).collect::<Vec<_>>());
    assert_eq!(out[0].face.as_ref().unwrap().face_box, [60.0, 40.0, 71.0, 55.0]);
    assert_eq!(backend.full_scans, 1, "after the first frame only the region around the track is searched");
    assert_eq!(backend.upsampled, 3, "the whole first frame, then the region, upsampled");
    let (out, _) = track(&frames, &[0, 1000, 2000], TrackConfig { upsample: 0, ..geometry() });
    assert!(out.iter().all(|t| t.found == Found::None), "without upsampling it is never found");
    // Frames without a face, every 40 ms (detect): the costly upsampled search
    // runs once per follow_ms (1 s), and again right after a shot cut.
    let empty = || painted([0; 3], &[]);
    let mut frames: Vec<Vec<u8>> = (0..30).map(|_| empty()).collect();
    frames.extend((0..5).map(|_| painted([0, 0, 160], &[])));
    let times: Vec<i64> = (0..35).map(|k| 40 * k).collect();
    let (out, backend) = track(&frames, &times, TrackConfig { redetect_ms: 200, ..TrackConfig::default() });
    assert!(out.iter().all(|t| t.found == Found::None));
    assert_eq!(out.iter().filter(|t| t.cut).count(), 1);
    assert_eq!(backend.full_scans, 35, "the whole frame at its own scale: every frame");
    assert_eq!(backend.upsampled, 3, "upsampled: at 0 ms, 1000 ms and the cut at 1200 ms");
}
