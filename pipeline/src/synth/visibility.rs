//! How far each drawn AU moves the face in an aligned crop at the
//! occurrence threshold (intensity 2, where BP4D-style labels turn 1): the
//! largest displacement of any of the 68 landmarks, in crop pixels, after
//! the similarity alignment preprocessing applies (the neutral face's 49
//! points fitted to the template of a `crop_size` crop).
//!
//! An AU that moves no landmark by a pixel is nearly invisible to any model
//! at that size (its skin marks, where it has any, are faint strokes under
//! JPEG); `mcsfau synth --au-visibility` prints the table and the benchmark
//! (`just bench-ablation`) uses it to choose `--au-gain`.

use super::au::{deform, slot, AUS};
use super::face::Identity;
use super::rng_for;
use crate::landmarks::{to49, Points68};
use crate::preprocess::align::{template, Similarity};

/// Displacement of one AU at the threshold, over sampled identities.
#[derive(Debug, Clone, PartialEq)]
pub struct AuVisibility {
    /// AU number.
    pub au: u8,
    /// Mean over identities of the largest landmark displacement, crop px.
    pub mean_px: f32,
    /// Smallest over identities, crop px.
    pub min_px: f32,
}

/// The occurrence threshold of the look-alike labels (intensity >= 2).
pub const THRESHOLD: f32 = 2.0;

/// The largest displacement of the 68 points between `a` and `b` after `t`.
fn max_move(t: &Similarity, a: &Points68, b: &Points68) -> f32 {
    a.iter()
        .zip(b)
        .map(|(p, q)| {
            let (p, q) = (t.apply(*p), t.apply(*q));
            ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt()
        })
        .fold(0.0, f32::max)
}

/// Per AU in [`AUS`], the threshold displacement in a `crop_size` crop over
/// `identities` identities drawn from `seed`, with deformations scaled by
/// `au_gain`.
pub fn au_visibility(crop_size: u32, identities: usize, seed: u64, au_gain: f32) -> Vec<AuVisibility> {
    let ids: Vec<Identity> = (0..identities.max(1))
        .map(|i| Identity { au_gain, ..Identity::sample(&mut rng_for(seed, &["visibility", &i.to_string()])) })
        .collect();
    let dst = template(crop_size);
    AUS.iter()
        .map(|&au| {
            let moves: Vec<f32> = ids
                .iter()
                .map(|id| {
                    let neutral = deform(id, &[0.0; 15]);
                    let t = Similarity::fit(&to49(&neutral), &dst).expect("a face fits the template");
                    let mut a = [0.0; 15];
                    a[slot(au).expect("AUS lists it")] = THRESHOLD;
                    max_move(&t, &deform(id, &a), &neutral)
                })
                .collect();
            let mean_px = moves.iter().sum::<f32>() / moves.len() as f32;
            AuVisibility { au, mean_px, min_px: moves.iter().copied().fold(f32::INFINITY, f32::min) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displacement_scales_with_the_crop_and_the_gain() {
        let a = au_visibility(64, 8, 0, 1.0);
        let b = au_visibility(128, 8, 0, 1.0);
        let c = au_visibility(128, 8, 0, 2.0);
        assert_eq!(a.len(), AUS.len());
        for ((x, y), z) in a.iter().zip(&b).zip(&c) {
            assert!(x.mean_px > 0.0 && x.min_px <= x.mean_px, "AU{}: {x:?}", x.au);
            // Twice the crop, twice the pixels; twice the gain, twice the move.
            assert!((y.mean_px / x.mean_px - 2.0).abs() < 1e-3, "AU{}", x.au);
            assert!((z.mean_px / y.mean_px - 2.0).abs() < 0.05, "AU{}: {} vs {}", x.au, z.mean_px, y.mean_px);
        }
    }
}
