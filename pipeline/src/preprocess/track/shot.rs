//! The tracker's two checks on pixels (issue 23), both cheap next to a
//! detector run:
//! * **Shot cuts.** A coarse colour histogram of the whole frame (4 levels
//!   per channel, 64 bins, from about 64x64 samples); consecutive frames
//!   whose histograms differ by at least [`super::TrackConfig::cut_distance`]
//!   (half the L1 distance: 0 the same colours, 1 none in common) are a cut,
//!   and the track ends there.
//! * **Appearance.** A 16x16 grey patch of the tracked box, taken when the
//!   detector last found the face; a followed frame's patch of the same box
//!   must correlate with it (normalised cross-correlation at least
//!   [`super::TrackConfig::min_agreement`]), or the follow is refused.

use crate::landmarks::FrameRef;

/// Samples per side of a [`Patch`].
const PATCH: usize = 16;

/// A frame's coarse colour histogram, normalised to sum 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram([f32; 64]);

impl Histogram {
    /// The histogram of `frame` (an empty frame gives all zeros).
    pub fn of(frame: &FrameRef<'_>) -> Self {
        let (w, h) = (frame.width as usize, frame.height as usize);
        let (sx, sy) = ((w / 64).max(1), (h / 64).max(1));
        let mut bins = [0f32; 64];
        let mut n = 0f32;
        for y in (sy / 2..h).step_by(sy) {
            for x in (sx / 2..w).step_by(sx) {
                let p = &frame.rgb[(y * w + x) * 3..][..3];
                bins[(usize::from(p[0] >> 6) << 4) | (usize::from(p[1] >> 6) << 2) | usize::from(p[2] >> 6)] += 1.0;
                n += 1.0;
            }
        }
        if n > 0.0 {
            bins.iter_mut().for_each(|b| *b /= n);
        }
        Self(bins)
    }

    /// Half the L1 distance of two histograms, in [0, 1].
    pub fn distance(&self, other: &Self) -> f32 {
        0.5 * self.0.iter().zip(&other.0).map(|(a, b)| (a - b).abs()).sum::<f32>()
    }
}

/// Grey levels of a box sampled on a 16x16 grid (nearest pixel; samples
/// outside the frame are black), zero mean and unit norm; `None` for a flat
/// box (nothing to compare).
#[derive(Debug, Clone, PartialEq)]
pub struct Patch(Vec<f32>);

impl Patch {
    /// The patch of `face_box` (x0, y0, x1, y1) in `frame`.
    pub fn of(frame: &FrameRef<'_>, face_box: [f32; 4]) -> Option<Self> {
        let (w, h) = (frame.width as i64, frame.height as i64);
        let mut v = Vec::with_capacity(PATCH * PATCH);
        for j in 0..PATCH {
            let y = (face_box[1] + (j as f32 + 0.5) / PATCH as f32 * (face_box[3] - face_box[1])).round() as i64;
            for i in 0..PATCH {
                let x = (face_box[0] + (i as f32 + 0.5) / PATCH as f32 * (face_box[2] - face_box[0])).round() as i64;
                let grey = if (0..w).contains(&x) && (0..h).contains(&y) {
                    let p = &frame.rgb[((y * w + x) * 3) as usize..][..3];
                    0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
                } else {
                    0.0
                };
                v.push(grey);
            }
        }
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        v.iter_mut().for_each(|g| *g -= mean);
        let norm = v.iter().map(|g| g * g).sum::<f32>().sqrt();
        // Under one grey level of spread per sample: a flat box.
        (norm >= PATCH as f32).then(|| Self(v.into_iter().map(|g| g / norm).collect()))
    }

    /// Normalised cross-correlation of two patches, in [-1, 1].
    pub fn agreement(&self, other: &Self) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
        (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).flat_map(|(x, y)| f(x, y)).collect()
    }

    #[test]
    fn histograms_tell_a_shift_from_a_new_scene() {
        let stripes = |dx: u32| move |x: u32, _| if (x + dx) / 20 % 2 == 0 { [200, 40, 40] } else { [20, 20, 200] };
        let (a, b) = (frame(160, 90, stripes(0)), frame(160, 90, stripes(7)));
        let c = frame(160, 90, |_, y| [(y * 2) as u8, 150, 90]);
        let of = |rgb: &[u8]| Histogram::of(&FrameRef { width: 160, height: 90, rgb, given: None });
        assert!(of(&a).distance(&of(&a)) < 1e-6);
        assert!(of(&a).distance(&of(&b)) < 0.1, "the same colours moved: {}", of(&a).distance(&of(&b)));
        assert!((of(&a).distance(&of(&c)) - 1.0).abs() < 1e-5, "no colour in common");
    }

    #[test]
    fn patches_agree_on_the_same_picture_and_not_on_another() {
        // A left-to-right ramp, and a top-to-bottom one (uncorrelated).
        let rgb = frame(100, 80, |x, _| [(2 * x) as u8, 90, (2 * x) as u8]);
        let other = frame(100, 80, |_, y| [(2 * y) as u8, 90, (2 * y) as u8]);
        let flat = frame(100, 80, |_, _| [128, 128, 128]);
        fn f(rgb: &[u8]) -> FrameRef<'_> {
            FrameRef { width: 100, height: 80, rgb, given: None }
        }
        let b = [20.0, 10.0, 69.0, 59.0];
        let p = Patch::of(&f(&rgb), b).unwrap();
        assert!((p.agreement(&p) - 1.0).abs() < 1e-5);
        assert!(p.agreement(&Patch::of(&f(&other), b).unwrap()).abs() < 0.1);
        assert_eq!(Patch::of(&f(&flat), b), None, "a flat box has nothing to compare");
        // A box partly outside the frame samples black there, no panic.
        assert!(Patch::of(&f(&rgb), [-40.0, -40.0, 30.0, 30.0]).is_some());
    }
}
