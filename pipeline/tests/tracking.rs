//! Face tracking (`preprocess::track`) against a scripted backend: frames
//! are drawn with coloured rectangles; the "detector" finds the red ones
//! (frontal faces) only, the "landmarker" places points on whatever face
//! pixels lie in the box it is given, with a score of the share of the box
//! they fill (nothing in the box: points on the box, score 0).

use pipeline::error::Result;
use pipeline::landmarks::{DetectedFace, Face68, FrameRef, LandmarkBackend, Points68};
use pipeline::preprocess::track::{FaceCounts, Found, TrackConfig, Tracker};

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

#[derive(Default)]
struct Scripted {
    full_scans: usize,
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
                // Red faces: each run of columns holding red pixels is one
                // face (the rectangles never share columns).
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
                    .filter_map(|&(x0, x1)| {
                        pixels_box(f, [x0 as f32, 0.0, x1 as f32, f.height as f32 - 1.0], |p| p == RED)
                    })
                    .map(|(b, n)| DetectedFace { face_box: b, score: n as f64 / 100.0 })
                    .collect()
            })
            .collect())
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
    let (out, full) = run(&frames, &[0, 1000, 2000, 3000], TrackConfig::default());
    for (k, (found, p0, score)) in out.iter().enumerate() {
        assert_eq!(*found, Found::Detected, "frame {k}");
        assert_eq!(p0.unwrap(), [20.0, 30.0], "frame {k}: the small face's points, not the big one's");
        assert!((score - 20.0).abs() < 1e-3, "frame {k}: the detector's score is stored ({score})");
    }
    assert_eq!(full, 1, "the whole frame is scanned once; later frames only around the track");
    // Without a track the largest face is taken (what every frame got before).
    let (out, _) = run(&[frame(&[small, big]), frame(&[small, big])], &[0, 40], TrackConfig::default());
    assert_eq!(out[0].1.unwrap(), [120.0, 10.0]);
}

#[test]
fn a_face_the_detector_misses_is_followed_then_lost() {
    let face = ([40, 30, 89, 89], RED);
    let profile = ([45, 30, 94, 89], GREEN); // the detector does not see green
    let frames =
        vec![frame(&[face]), frame(&[profile]), frame(&[profile]), frame(&[profile]), frame(&[face]), frame(&[])];
    let times = [0, 400, 800, 1600, 2000, 2400];
    let (out, _) = run(&frames, &times, TrackConfig::default());
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
    let (out, _) = run(&frames, &[0, 40, 80, 120], TrackConfig { min_score: 0.0, ..TrackConfig::default() });
    assert_eq!(
        out.iter().map(|o| o.0).collect::<Vec<_>>(),
        [Found::Detected, Found::None, Found::Detected, Found::Detected]
    );
    // A low score alone also drops a followed face.
    let faint = ([40, 30, 89, 89], GREEN);
    let frames = vec![frame(&[face]), frame(&[faint]), frame(&[face]), frame(&[face])];
    let strict = TrackConfig { min_score: 1.5, ..TrackConfig::default() };
    let (out, _) = run(&frames, &[0, 40, 80, 120], strict);
    assert_eq!(out[1].0, Found::None);
    let (out, _) = run(&frames, &[0, 40, 80, 120], TrackConfig::default());
    assert_eq!(out[1].0, Found::Followed);
}

#[test]
fn between_detections_the_face_is_followed_and_a_miss_is_detected_again() {
    let face = ([40, 30, 89, 89], RED);
    let moved = ([120, 30, 169, 89], RED); // jumps away: the old box no longer holds
    let frames =
        vec![frame(&[face]), frame(&[face]), frame(&[face]), frame(&[moved]), frame(&[moved]), frame(&[moved])];
    let cfg = TrackConfig { redetect_ms: 200, ..TrackConfig::default() };
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
