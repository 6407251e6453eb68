//! Action units: the local deformation each AU applies to the 68 points, the
//! region of the face each AU may change, and smooth AU activity over time.
//!
//! Every AU only moves points and draws marks (wrinkles, folds, dimples) in
//! its own region ([`region`]); `tests/synth_locality.rs` renders each AU at
//! intensity 0 and 4 and checks that every changed pixel lies in the region.

use rand::Rng;

use super::face::{Identity, P};
use crate::landmarks::Points68;

/// The AUs the generator draws: the union of the BP4D and DISFA protocols.
pub const AUS: [u8; 15] = [1, 2, 4, 6, 7, 9, 10, 12, 14, 15, 17, 23, 24, 25, 26];

/// Intensity 0-5 of each AU in [`AUS`], in that order.
pub type AuIntensities = [f32; 15];

/// Position of `au` in [`AUS`].
pub fn slot(au: u8) -> Option<usize> {
    AUS.iter().position(|&a| a == au)
}

/// The part of the face an AU may change: a union of canonical-coordinate
/// boxes `[x0, y0, x1, y1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// The boxes.
    pub boxes: Vec<[f32; 4]>,
}

impl Region {
    /// Whether `p` lies in a box grown by `margin` on every side.
    pub fn contains(&self, p: P, margin: f32) -> bool {
        self.boxes
            .iter()
            .any(|b| p[0] >= b[0] - margin && p[0] <= b[2] + margin && p[1] >= b[1] - margin && p[1] <= b[3] + margin)
    }
}

/// Both eyes' boxes from a per-eye box given for the right eye (image left)
/// as offsets from its outer corner x and its inner corner x.
fn both_eyes(n: &Points68, outer: f32, inner: f32, y0: f32, y1: f32) -> Vec<[f32; 4]> {
    vec![[n[36][0] - outer, y0, n[39][0] + inner, y1], [n[42][0] - inner, y0, n[45][0] + outer, y1]]
}

/// Boxes beside both mouth corners: from `out` outside the corner to
/// `inside` inside it.
fn both_corners(n: &Points68, out: f32, inside: f32, y0: f32, y1: f32) -> Vec<[f32; 4]> {
    vec![[n[48][0] - out, y0, n[48][0] + inside, y1], [n[54][0] - inside, y0, n[54][0] + out, y1]]
}

/// The region of `au` for the face `id` (canonical coordinates). Margins
/// cover stroke widths; the test adds 1.5 pixels for anti-aliasing.
pub fn region(au: u8, id: &Identity) -> Region {
    let n = id.neutral();
    let brow_top = n[17..27].iter().map(|p| p[1]).fold(f32::MAX, f32::min);
    let brow_bottom = n[17..27].iter().map(|p| p[1]).fold(f32::MIN, f32::max);
    let brows_x = n[17][0] - 0.1;
    let lips_top = n[48..55].iter().map(|p| p[1]).fold(f32::MAX, f32::min);
    let lips_bottom = n[54..60].iter().map(|p| p[1]).fold(f32::MIN, f32::max);
    let (mx0, mx1) = (n[48][0] - 0.05, n[54][0] + 0.05);
    let boxes = match au {
        // Brows up (inner or outer half) with forehead wrinkles.
        1 | 2 => vec![[brows_x, brow_top - 0.5, -brows_x, brow_bottom + id.brow_th * 1.6 + 0.02]],
        // Brows down and together, with glabella furrows.
        4 => vec![[brows_x, brow_top - 0.12, -brows_x, brow_bottom + id.brow_th * 1.6 + 0.08]],
        // Lower lids up, crow's feet, infraorbital crease, cheek raised.
        6 => both_eyes(&n, 0.24, 0.05, id.eye_y - 0.11, id.eye_y + 0.36),
        // Lids tightened.
        7 => both_eyes(&n, 0.04, 0.04, id.eye_y - id.eye_h - 0.04, id.eye_y + id.eye_h + 0.08),
        // Nose wrinkled, nostrils raised.
        9 => vec![[-id.nose_w - 0.1, n[27][1] - 0.07, id.nose_w + 0.1, n[33][1] + 0.05]],
        // Upper lip raised.
        10 => vec![[mx0, lips_top - 0.09, mx1, id.mouth_y + 0.03]],
        // Lip corners pulled up and out, nasolabial folds.
        12 => vec![[n[48][0] - 0.32, id.nose_y - 0.01, n[54][0] + 0.32, lips_bottom + 0.14]],
        // Corners pulled in (the lip curves through them change across the
        // mouth), dimples beside them.
        14 => vec![[n[48][0] - 0.16, lips_top - 0.04, n[54][0] + 0.16, lips_bottom + 0.06]],
        // Corners pulled down (the whole mouth's curves change), lines below them.
        15 => {
            let mut b = both_corners(&n, 0.16, 0.0, lips_top - 0.04, lips_bottom + 0.27);
            b.push([mx0, lips_top - 0.04, mx1, lips_bottom + 0.04]);
            b
        }
        // Lower lip pushed up, chin wrinkled.
        17 => vec![[mx0, id.mouth_y - 0.03, mx1, id.chin_y - 0.07]],
        // Lips narrowed / pressed, bulges around them.
        23 => vec![[mx0, lips_top - 0.04, mx1, lips_bottom + 0.04]],
        24 => vec![[mx0 - 0.04, lips_top - 0.1, mx1 + 0.04, lips_bottom + 0.11]],
        // Lips apart.
        25 => vec![[mx0, lips_top - 0.04, mx1, lips_bottom + 0.1]],
        // Jaw dropped: lower face outline and lower lip.
        26 => vec![[-1.05, n[3][1].min(lips_top) - 0.05, 1.05, id.chin_y + 0.32]],
        _ => Vec::new(),
    };
    Region { boxes }
}

fn add(p: &mut P, dx: f32, dy: f32) {
    p[0] += dx;
    p[1] += dy;
}

/// Mirrors an offset given for the image-left point onto the right one.
fn pair(p: &mut Points68, left: usize, right: usize, dx: f32, dy: f32) {
    add(&mut p[left], dx, dy);
    add(&mut p[right], -dx, dy);
}

/// The 68 points of `id` with `aus` applied (canonical coordinates).
/// Each AU moves only points inside its [`region`].
pub fn deform(id: &Identity, aus: &AuIntensities) -> Points68 {
    let neutral = id.neutral();
    let mut p = neutral;
    let s = |au: u8| slot(au).map_or(0.0, |i| (aus[i] / 5.0).clamp(0.0, 1.0) * id.au_gain);
    let (up, lo) = (id.lip_up, id.lip_lo);
    // AU1 inner brow raiser.
    for (k, w) in [(19, 0.35), (20, 0.7), (21, 1.0)] {
        pair(&mut p, k, 43 - k, 0.0, -0.11 * w * s(1));
    }
    // AU2 outer brow raiser.
    for (k, w) in [(17, 1.0), (18, 0.8), (19, 0.35)] {
        pair(&mut p, k, 43 - k, 0.0, -0.11 * w * s(2));
    }
    // AU4 brow lowerer: down and toward the midline.
    for (k, w) in [(18, 0.3), (19, 0.6), (20, 0.85), (21, 1.0)] {
        pair(&mut p, k, 43 - k, 0.05 * w * s(4), 0.07 * w * s(4));
    }
    // AU6 cheek raiser and AU7 lid tightener: lower lids up (AU7 upper lids down too).
    for k in [40, 41, 46, 47] {
        add(&mut p[k], 0.0, -id.eye_h * (0.3 * s(6) + 0.5 * s(7)));
    }
    for k in [37, 38, 43, 44] {
        add(&mut p[k], 0.0, id.eye_h * 0.25 * s(7));
    }
    // AU9 nose wrinkler: nostrils up and wider.
    for (k, w) in [(31, 1.0), (32, 0.8)] {
        pair(&mut p, k, 66 - k, -0.02 * w * s(9), -0.045 * w * s(9));
    }
    add(&mut p[33], 0.0, -0.03 * s(9));
    // AU10 upper lip raiser.
    for (k, w) in [(49, 0.6), (50, 1.0), (51, 1.0), (52, 1.0), (53, 0.6), (61, 0.6), (62, 0.85), (63, 0.6)] {
        add(&mut p[k], 0.0, -0.06 * w * s(10));
    }
    // AU12 lip corner puller: corners out and up, the lips follow.
    pair(&mut p, 48, 54, -0.08 * s(12), -0.08 * s(12));
    pair(&mut p, 60, 64, -0.06 * s(12), -0.065 * s(12));
    pair(&mut p, 49, 53, -0.02 * s(12), -0.04 * s(12));
    pair(&mut p, 59, 55, -0.02 * s(12), -0.04 * s(12));
    pair(&mut p, 61, 63, 0.0, -0.02 * s(12));
    pair(&mut p, 67, 65, 0.0, -0.02 * s(12));
    // AU14 dimpler: corners pulled in.
    pair(&mut p, 48, 54, 0.05 * s(14), 0.0);
    pair(&mut p, 60, 64, 0.04 * s(14), 0.0);
    // AU15 lip corner depressor.
    pair(&mut p, 48, 54, 0.0, 0.07 * s(15));
    pair(&mut p, 60, 64, 0.0, 0.05 * s(15));
    // AU17 chin raiser: lower lip pushed up.
    for (k, w) in [(56, 1.0), (57, 1.0), (58, 1.0), (55, 0.5), (59, 0.5)] {
        add(&mut p[k], 0.0, -0.035 * w * s(17));
    }
    // AU23 lip tightener: lips thinner, corners in.
    let taper = |k: usize| 1.0 - (neutral[k][0] / id.mouth_w).abs() * 0.3;
    for k in [49, 50, 51, 52, 53] {
        add(&mut p[k], 0.0, 0.45 * up * s(23) * taper(k));
    }
    for k in [55, 56, 57, 58, 59] {
        add(&mut p[k], 0.0, -0.45 * lo * s(23) * taper(k));
    }
    pair(&mut p, 48, 54, 0.03 * s(23), 0.0);
    pair(&mut p, 60, 64, 0.025 * s(23), 0.0);
    // AU24 lip pressor: lips pressed flat.
    for k in [50, 51, 52] {
        add(&mut p[k], 0.0, 0.35 * up * s(24));
    }
    for k in [56, 57, 58] {
        add(&mut p[k], 0.0, -0.35 * lo * s(24));
    }
    // AU25 lips part.
    for (k, w) in [(61, 0.7), (62, 1.0), (63, 0.7)] {
        add(&mut p[k], 0.0, -0.015 * w * s(25));
    }
    for (k, w) in [(65, 0.7), (66, 1.0), (67, 0.7), (55, 0.5), (56, 0.8), (57, 0.9), (58, 0.8), (59, 0.5)] {
        add(&mut p[k], 0.0, 0.07 * w * s(25));
    }
    // AU26 jaw drop: the lower jaw, lower lip and inner mouth go down.
    for (k, q) in p.iter_mut().enumerate().take(12).skip(5) {
        let w = (std::f32::consts::PI * (k as f32 - 4.0) / 8.0).sin().powi(2);
        add(q, 0.0, 0.2 * w * s(26));
    }
    for (k, w) in [(65, 0.65), (66, 0.8), (67, 0.65), (55, 0.55), (56, 0.7), (57, 0.75), (58, 0.7), (59, 0.55)] {
        add(&mut p[k], 0.0, 0.2 * w * s(26));
    }
    for k in [48, 54, 60, 64] {
        add(&mut p[k], 0.0, 0.03 * s(26));
    }
    // The lower inner lip never rises above the upper one.
    for (u, l) in [(61, 67), (62, 66), (63, 65)] {
        p[l][1] = p[l][1].max(p[u][1]);
    }
    p
}

/// One smooth AU event: intensity rises and falls as a raised cosine.
#[derive(Debug, Clone, Copy)]
struct Event {
    start: f32,
    len: f32,
    peak: f32,
}

/// AU intensities for `frames` frames at `fps`: per AU a few random events,
/// each a raised-cosine bump (1-2.5 s, peak 1.5-5; at most 5π intensity per second), so activity is smooth
/// in time and every AU is active about a third of the time.
pub fn activity(rng: &mut impl Rng, frames: usize, fps: f32) -> Vec<AuIntensities> {
    let dur = frames as f32 / fps;
    let events: Vec<Vec<Event>> = AUS
        .iter()
        .map(|_| {
            let mut ev = Vec::new();
            let mut t = rng.gen_range(-1.5..1.0f32);
            while t < dur {
                let len = rng.gen_range(1.0..2.5f32);
                ev.push(Event { start: t, len, peak: rng.gen_range(1.5..5.0) });
                t += len + rng.gen_range(0.5..3.5f32);
            }
            ev
        })
        .collect();
    (0..frames)
        .map(|f| {
            let t = f as f32 / fps;
            let mut a = [0.0f32; 15];
            for (k, ev) in events.iter().enumerate() {
                let v: f32 = ev
                    .iter()
                    .map(|e| {
                        let u = (t - e.start) / e.len;
                        if (0.0..=1.0).contains(&u) {
                            e.peak * 0.5 * (1.0 - (2.0 * std::f32::consts::PI * u).cos())
                        } else {
                            0.0
                        }
                    })
                    .sum();
                a[k] = v.min(5.0);
            }
            a
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn each_au_moves_points_only_inside_its_region() {
        let id = Identity::sample(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        let n = deform(&id, &[0.0; 15]);
        for (i, &au) in AUS.iter().enumerate() {
            let mut a = [0.0; 15];
            a[i] = 5.0;
            let d = deform(&id, &a);
            let r = region(au, &id);
            let moved: Vec<usize> = (0..68).filter(|&k| d[k] != n[k]).collect();
            assert!(!moved.is_empty(), "AU{au} moves no point");
            for k in moved {
                assert!(r.contains(n[k], 0.0) && r.contains(d[k], 0.0), "AU{au} moves point {k} outside its region");
            }
        }
    }

    #[test]
    fn activity_is_smooth_and_bounded() {
        let a = activity(&mut rand_chacha::ChaCha8Rng::seed_from_u64(7), 250, 25.0);
        for w in a.windows(2) {
            for (a, b) in w[0].iter().zip(&w[1]) {
                assert!((b - a).abs() <= 5.0 * std::f32::consts::PI / 25.0, "faster than a 1 s bump to 5");
                assert!((0.0..=5.0).contains(a));
            }
        }
        assert!((0..15).all(|k| a.iter().any(|f| f[k] >= 2.0)), "every AU is visibly active at some point");
    }
}
