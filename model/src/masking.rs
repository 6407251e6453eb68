//! MFRR landmark masks, paper section 3.2, eq. 4:
//! `F_mask = M(F_p, {B(p_k^n, gamma, r)})`.
//!
//! For each of the 49 refined points a square of side `r` (image pixels)
//! centred on the point; a feature-map cell is masked when its centre
//! `((j + 0.5) * s, (i + 0.5) * s)`, `s = S / W` the stride, lies inside any
//! square, boundary included (`|c - p| <= r / 2` on both axes). Masked cells
//! are zeroed across all channels. The squares are applied to a sample when
//! its Bernoulli(gamma) draw (`apply`, see [`draw_apply`]) is true; the draw
//! is per sample (SPEC) or one for the whole batch (ablation).
//!
//! Everything is one batched tensor expression on the points' device.

use tch::{Device, Kind, Tensor};

use crate::config::MaskMode;
use crate::precision::at_least_f32;

/// The cell mask: true where a cell is zeroed.
///
/// # Shapes
/// * `points`: `[B, N, 2]` image pixels `(x, y)`.
/// * `apply`: `[B]` bool (one decision per sample) or `[B, N]` (one per
///   landmark: only the squares whose draw is true count).
/// * returns `[B, H, W]` bool (H = W = `side`).
pub fn landmark_mask(points: &Tensor, apply: &Tensor, image_size: i64, side: i64, r: f64) -> Tensor {
    let (dev, stride) = (points.device(), image_size as f64 / side as f64);
    let points = at_least_f32(points); // f32, or f64 for the f64 parity test
    let centres = (Tensor::arange(side, (points.kind(), dev)) + 0.5) * stride; // [W]
    let half = r / 2.0;
    let px = points.select(2, 0).unsqueeze(-1); // [B, N, 1]
    let py = points.select(2, 1).unsqueeze(-1); // [B, N, 1]
    let in_x = (&centres - px).abs().le(half); // [B, N, W]
    let in_y = (&centres - py).abs().le(half); // [B, N, H]
    let inside = in_y.unsqueeze(-1).logical_and(&in_x.unsqueeze(-2)); // [B, N, H, W]
    let apply = apply.to_kind(Kind::Bool);
    if apply.dim() == 2 {
        let drawn = inside.logical_and(&apply.unsqueeze(-1).unsqueeze(-1)); // [B, N, H, W]
        return drawn.any_dim(1, false); // [B, H, W]
    }
    let any = inside.any_dim(1, false); // [B, H, W]
    any.logical_and(&apply.view([-1, 1, 1]))
}

/// Zeroes the masked cells.
///
/// # Shapes
/// `f`: `[B, C, H, W]`, `mask`: `[B, H, W]` bool -> `[B, C, H, W]`.
pub fn apply_mask(f: &Tensor, mask: &Tensor) -> Tensor {
    let keep = mask.logical_not().unsqueeze(1).to_kind(f.kind()); // [B, 1, H, W]
    f * keep
}

/// The Bernoulli(gamma) decisions, drawn from libtorch's generator on
/// `device` (seed with `tch::manual_seed`): `[B]` bool per sample;
/// `PerBatch` draws once and repeats it; `PerLandmark` draws `[B, N]`.
pub fn draw_apply(batch: i64, gamma: f64, mode: MaskMode, device: Device) -> Tensor {
    let opts = (Kind::Float, device);
    match mode {
        MaskMode::PerSample => Tensor::rand([batch], opts).lt(gamma),
        MaskMode::PerBatch => Tensor::rand([1], opts).lt(gamma).expand([batch], false).contiguous(),
        MaskMode::PerLandmark => Tensor::rand([batch, crate::landmarks::LANDMARKS], opts).lt(gamma),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_of(points: &[f32], apply: bool) -> Vec<bool> {
        let pts = Tensor::from_slice(points).reshape([1, -1, 2]);
        let m = landmark_mask(&pts, &Tensor::from_slice(&[apply]), 256, 8, 40.0);
        Vec::<bool>::try_from(m.flatten(0, -1)).unwrap()
    }

    #[test]
    fn a_square_masks_the_cells_whose_centres_it_covers() {
        // Cell centres at 16, 48, 80, ...; a 40 px square at (48, 48) covers
        // centres within 20 px: only cell (1, 1).
        let m = mask_of(&[48.0, 48.0], true);
        assert_eq!(m.iter().filter(|&&b| b).count(), 1);
        assert!(m[8 + 1]);
        // At (32, 32) it covers centres 16 and 48 on both axes (16 px
        // away each), not 80: four cells.
        let m = mask_of(&[32.0, 32.0], true);
        assert_eq!(m.iter().filter(|&&b| b).count(), 4);
        // The boundary counts: |68 - 48| = 20.
        assert!(mask_of(&[68.0, 48.0], true)[8 + 1]);
        assert!(!mask_of(&[68.1, 48.0], true)[8 + 1]);
        // x and y are not swapped: (x=16, y=112) is row 3, column 0.
        assert!(mask_of(&[16.0, 112.0], true)[3 * 8]);
        // No draw, no mask.
        assert!(!mask_of(&[48.0, 48.0], false).iter().any(|&b| b));
    }

    #[test]
    fn per_batch_draws_are_shared_and_per_sample_draws_vary() {
        tch::manual_seed(3);
        let b = draw_apply(64, 0.5, MaskMode::PerBatch, Device::Cpu);
        let n = b.to_kind(Kind::Int64).sum(Kind::Int64).int64_value(&[]);
        assert!(n == 0 || n == 64);
        let s = draw_apply(4000, 0.6, MaskMode::PerSample, Device::Cpu);
        let rate = s.to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
        assert!((rate - 0.6).abs() < 0.03, "{rate}");
        let l = draw_apply(100, 0.6, MaskMode::PerLandmark, Device::Cpu);
        assert_eq!(l.size(), [100, 49]);
        let rate = l.to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
        assert!((rate - 0.6).abs() < 0.03, "{rate}");
    }

    #[test]
    fn per_landmark_draws_mask_only_the_drawn_squares() {
        // Two points far apart: (48, 48) -> cell (1, 1), (208, 208) -> (6, 6).
        let pts = Tensor::from_slice(&[48.0f32, 48.0, 208.0, 208.0]).reshape([1, 2, 2]);
        let apply = Tensor::from_slice(&[false, true]).reshape([1, 2]);
        let m = Vec::<bool>::try_from(landmark_mask(&pts, &apply, 256, 8, 40.0).flatten(0, -1)).unwrap();
        assert!(!m[8 + 1] && m[6 * 8 + 6]);
        assert_eq!(m.iter().filter(|&&b| b).count(), 1);
    }
}
