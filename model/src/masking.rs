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

/// The cell mask: true where a cell is zeroed.
///
/// # Shapes
/// * `points`: `[B, N, 2]` image pixels `(x, y)`; `apply`: `[B]` bool.
/// * returns `[B, H, W]` bool (H = W = `side`).
pub fn landmark_mask(points: &Tensor, apply: &Tensor, image_size: i64, side: i64, r: f64) -> Tensor {
    let (dev, stride) = (points.device(), image_size as f64 / side as f64);
    let centres = (Tensor::arange(side, (Kind::Float, dev)) + 0.5) * stride; // [W]
    let half = r / 2.0;
    let points = points.to_kind(Kind::Float);
    let px = points.select(2, 0).unsqueeze(-1); // [B, N, 1]
    let py = points.select(2, 1).unsqueeze(-1); // [B, N, 1]
    let in_x = (&centres - px).abs().le(half); // [B, N, W]
    let in_y = (&centres - py).abs().le(half); // [B, N, H]
    let inside = in_y.unsqueeze(-1).logical_and(&in_x.unsqueeze(-2)); // [B, N, H, W]
    let any = inside.any_dim(1, false); // [B, H, W]
    any.logical_and(&apply.to_kind(Kind::Bool).view([-1, 1, 1]))
}

/// Zeroes the masked cells.
///
/// # Shapes
/// `f`: `[B, C, H, W]`, `mask`: `[B, H, W]` bool -> `[B, C, H, W]`.
pub fn apply_mask(f: &Tensor, mask: &Tensor) -> Tensor {
    let keep = mask.logical_not().unsqueeze(1).to_kind(f.kind()); // [B, 1, H, W]
    f * keep
}

/// The Bernoulli(gamma) decision per sample (`[B]` bool), drawn from
/// libtorch's generator on `device` (seed with `tch::manual_seed`).
/// `PerBatch` draws once and repeats it.
pub fn draw_apply(batch: i64, gamma: f64, mode: MaskMode, device: Device) -> Tensor {
    let n = match mode {
        MaskMode::PerSample => batch,
        MaskMode::PerBatch => 1,
    };
    let draw = Tensor::rand([n], (Kind::Float, device)).lt(gamma); // [n]
    draw.expand([batch], false).contiguous()
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
    }
}
