//! The earlier reading of MFRR's landmark refinement, paper section 3.2,
//! eq. 3, kept for comparison (`mfrr.detector = "denoise"`): a denoising
//! cascade that keeps eq. 3's form. It was measured not to learn (its input
//! sits within a fraction of a feature cell of its target; docs/method.md),
//! and the default detector is [`crate::locator`], which locates the points
//! from F_p. This module also holds the bilinear sampling both use.
//!
//! * `p_1` = the cached FAN 49 points of P, image pixels `(x, y)`.
//! * for `m = 2..k`: `p'_(m-1) = sg(p_(m-1)) + sigma_m * eps_m`,
//!   `p_m = p'_(m-1) + D(F_p, p'_(m-1))`, with `eps_m ~ N(0, 1)` passed in
//!   (so a reference implementation can feed the same noise) and `sigma_m`
//!   falling linearly from `sigma_max` (m = 2) to 0 (m = k), see [`sigmas`].
//! * `L_d = sum_(m=2..k) MSE(p_m, sg(p_(m-1)))`, each MSE a mean over
//!   `B x 49 x 2` coordinates in pixels (`mfrr.ld_scale = "pixel_sum"`, the
//!   literal form), or by default (`"jitter"`, our decision, docs/method.md)
//!   `L_d = 1/(k-1) sum_m MSE_m / sigma_max^2`: scale-free, so it neither
//!   grows with the image side nor with k, and a head that predicts no
//!   offset scores ~1/3 where the literal form scored ~431 at 256 px.
//! * `mfrr.cascade_target = "landmarks"` trains every step toward p_1
//!   instead of `sg(p_(m-1))` (an anchored cascade that cannot drift).
//! * The output `p_k` is detached; it places the masks (eq. 4), or p_1 does
//!   (`mfrr.mask_at = "landmarks"`).
//!
//! Each step's input is detached (`sg(p_(m-1))`), so every term trains D as
//! a one-step denoiser and no gradient runs along the 49-step chain; F_p
//! does receive gradients through the bilinear samples.
//!
//! D, the refiner head shared by all steps and landmarks: sample F_p at the
//! points (`grid_sample`, bilinear, zero padding, `align_corners = false`,
//! image pixel `x` maps to `2x/S - 1`), concatenate the normalised point,
//! `Linear(C + 2 -> h) ReLU Linear(h -> 2)`, the offset in pixels.
//! Variables: `refiner.fc1.*`, `refiner.fc2.*`.

use tch::nn;
use tch::{Reduction, Tensor};

use crate::config::{CascadeTarget, LdScale, ModelConfig};
use crate::precision::{at_least_f32, wide_kind};

/// Number of landmarks (49-point scheme, docs/preprocess.md).
pub const LANDMARKS: i64 = 49;

/// The jitter scale of each refinement step m = 2..k (`k - 1` values),
/// linear from `sigma_max` down to 0; `[sigma_max]` when k = 2.
pub fn sigmas(k: i64, sigma_max: f64) -> Vec<f64> {
    let steps = (k - 1).max(0);
    if steps <= 1 {
        return vec![sigma_max; steps as usize];
    }
    (0..steps).map(|j| sigma_max * (steps - 1 - j) as f64 / (steps - 1) as f64).collect()
}

/// Image pixels `(x, y)` -> grid_sample coordinates in `[-1, 1]`
/// (`align_corners = false`: the image spans `[0, S]`).
pub fn to_grid(points: &Tensor, image_size: i64) -> Tensor {
    points * (2.0 / image_size as f64) - 1.0
}

/// Bilinear samples of a feature map at image-pixel points.
///
/// # Shapes
/// `f`: `[B, C, H, W]`, `points`: `[B, N, 2]` -> `[B, N, C]`.
pub fn sample_at(f: &Tensor, points: &Tensor, image_size: i64) -> Tensor {
    // In f32 even under bf16 autocast (f64 when the points are f64): a bf16
    // grid would round a point to ~0.5 px at 256. Interpolation 0 =
    // bilinear, padding 0 = zeros (torch's defaults).
    let kind = wide_kind(points.kind());
    let grid = to_grid(&points.to_kind(kind), image_size).unsqueeze(1); // [B, 1, N, 2]
    let sampled = f.to_kind(kind).grid_sampler(&grid, 0, 0, false); // [B, C, 1, N]
    sampled.squeeze_dim(2).transpose(1, 2) // [B, N, C]
}

/// The refiner head D, shared across steps and landmarks.
#[derive(Debug)]
pub struct Refiner {
    fc1: nn::Linear,
    fc2: nn::Linear,
    image_size: i64,
    scale: LdScale,
    target: CascadeTarget,
    sigma_max: f64,
}

/// What the cascade returns.
#[derive(Debug)]
pub struct Refined {
    /// `p_k`, detached, `[B, 49, 2]` image pixels.
    pub points: Tensor,
    /// `L_d`, a scalar with gradient into D and F_p.
    pub l_d: Tensor,
}

impl Refiner {
    /// Builds D under `p` (pass `root / "refiner"`).
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        let (c, h) = (cfg.feature_channels(), cfg.mfrr.refiner_hidden);
        Self {
            fc1: nn::linear(&p / "fc1", c + 2, h, Default::default()),
            fc2: nn::linear(&p / "fc2", h, 2, Default::default()),
            image_size: cfg.image_size,
            scale: cfg.mfrr.ld_scale,
            target: cfg.mfrr.cascade_target,
            sigma_max: cfg.mfrr.sigma_max,
        }
    }

    /// `D(F_p, p)`: the offsets in pixels.
    ///
    /// # Shapes
    /// `f_p`: `[B, C, H, W]`, `points`: `[B, N, 2]` -> `[B, N, 2]`.
    pub fn offsets(&self, f_p: &Tensor, points: &Tensor) -> Tensor {
        let feats = sample_at(f_p, points, self.image_size); // [B, N, C]
        let grid = to_grid(points, self.image_size).to_kind(feats.kind()); // [B, N, 2]
        Tensor::cat(&[feats, grid], -1).apply(&self.fc1).relu().apply(&self.fc2)
        // [B, N, 2]
    }

    /// Runs the cascade p_1 -> p_k (eq. 3) and returns `p_k` and `L_d`.
    /// `sigmas` has one entry per step (see [`sigmas`]); with `k - 1 = 0`
    /// steps, `p_k = p_1` and `L_d = 0`.
    ///
    /// # Shapes
    /// * `f_p`: `[B, C, H, W]`; `p1`: `[B, N, 2]` image pixels.
    /// * `noise`: `[k - 1, B, N, 2]`, standard normal.
    pub fn cascade(&self, f_p: &Tensor, p1: &Tensor, noise: &Tensor, sigmas: &[f64]) -> Refined {
        let anchor = at_least_f32(p1).detach(); // p_1, [B, N, 2]
        let mut p = anchor.shallow_clone();
        let mut terms = Vec::with_capacity(sigmas.len());
        for (m, &sigma) in sigmas.iter().enumerate() {
            let prev = p.detach(); // sg(p_(m-1))
            let jittered = &prev + noise.get(m as i64) * sigma; // p'_(m-1)
            p = &jittered + self.offsets(f_p, &jittered).to_kind(prev.kind()); // p_m
            let target = match self.target {
                CascadeTarget::Previous => &prev,
                CascadeTarget::Landmarks => &anchor,
            };
            terms.push(p.mse_loss(target, Reduction::Mean));
        }
        // Summed in step order, as the reference does.
        let steps = terms.len();
        let sum = terms.into_iter().fold(Tensor::zeros([], (p.kind(), f_p.device())), |acc, t| acc + t);
        let l_d = match self.scale {
            LdScale::PixelSum => sum,
            // `validate` keeps `unit` (the locate detector's) away from here.
            LdScale::Jitter | LdScale::Unit if steps > 0 => sum / (steps as f64 * self.sigma_max * self.sigma_max),
            LdScale::Jitter | LdScale::Unit => sum,
        };
        Refined { points: p.detach(), l_d }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn sigmas_fall_linearly_to_zero() {
        assert_eq!(sigmas(5, 3.0), vec![3.0, 2.0, 1.0, 0.0]);
        assert_eq!(sigmas(2, 4.0), vec![4.0]);
        let s = sigmas(50, 4.0);
        assert_eq!((s.len(), s[0], s[48]), (49, 4.0, 0.0));
    }

    /// L_d of a refiner that predicts no offset, with every noise entry 1:
    /// each step then moves every coordinate by exactly sigma_m.
    fn l_d_without_offsets(cfg: &ModelConfig) -> f64 {
        let vs = nn::VarStore::new(Device::Cpu);
        let refiner = Refiner::new(vs.root() / "refiner", cfg);
        tch::no_grad(|| {
            for (name, mut t) in vs.variables() {
                if name.starts_with("refiner.fc2.") {
                    let _ = t.zero_();
                }
            }
        });
        let (b, side) = (2, cfg.feature_side());
        let f_p = Tensor::randn([b, cfg.feature_channels(), side, side], (Kind::Float, Device::Cpu));
        let p1 = Tensor::full([b, LANDMARKS, 2], cfg.image_size as f64 / 2.0, (Kind::Float, Device::Cpu));
        let noise = Tensor::ones([cfg.mfrr.k - 1, b, LANDMARKS, 2], (Kind::Float, Device::Cpu));
        refiner.cascade(&f_p, &p1, &noise, &sigmas(cfg.mfrr.k, cfg.mfrr.sigma_max)).l_d.double_value(&[])
    }

    fn with(image_size: i64, scale: LdScale, target: CascadeTarget) -> ModelConfig {
        let mut cfg = ModelConfig::tiny();
        cfg.image_size = image_size;
        cfg.mfrr.k = 5; // sigma_m = sigma_max * [1, 2/3, 1/3, 0]
        cfg.mfrr.sigma_max = 4.0 * image_size as f64 / 256.0;
        cfg.mfrr.ld_scale = scale;
        cfg.mfrr.cascade_target = target;
        cfg
    }

    #[test]
    fn l_d_does_not_grow_with_the_image_size() {
        // Regression: the literal pixel sum was ~431 at 256 px against L_s
        // <= 4, most of it jitter no head can predict. Hand-computed: the
        // step MSEs are sigma_m^2, sum_m sigma_m^2 = (1 + 4/9 + 1/9) sigma_max^2.
        let sum = 14.0 / 9.0;
        for size in [64, 128, 256] {
            let s = 4.0 * size as f64 / 256.0; // sigma_max at this size
            let jitter = l_d_without_offsets(&with(size, LdScale::Jitter, CascadeTarget::Previous));
            assert!((jitter - sum / 4.0).abs() < 1e-5, "{size} px: scale-free L_d {jitter}");
            let pixels = l_d_without_offsets(&with(size, LdScale::PixelSum, CascadeTarget::Previous));
            assert!((pixels - sum * s * s).abs() < 1e-4 * pixels, "{size} px: pixel-sum L_d {pixels}");
        }
    }

    #[test]
    fn an_anchored_cascade_measures_the_distance_to_p1() {
        // Targets p_1: the step errors are the cumulative jitter, (1, 5/3,
        // 2, 2) sigma_max, squared and summed.
        let cfg = with(64, LdScale::PixelSum, CascadeTarget::Landmarks);
        let want: f64 = [1.0f64, 5.0 / 3.0, 2.0, 2.0].iter().map(|c| c * c).sum();
        let got = l_d_without_offsets(&cfg);
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }

    #[test]
    fn sampling_a_ramp_reads_the_ramp_at_cell_centres() {
        // 4x4 map over a 64 px image: cell (i, j) centre at (16j + 8, 16i + 8).
        let f = Tensor::arange(16, (Kind::Float, Device::Cpu)).reshape([1, 1, 4, 4]);
        let pts = Tensor::from_slice(&[8.0f32, 8.0, 24.0, 8.0, 8.0, 24.0, 16.0, 8.0]).reshape([1, 4, 2]);
        let got = Vec::<f32>::try_from(sample_at(&f, &pts, 64).flatten(0, -1)).unwrap();
        assert_eq!(got, vec![0.0, 1.0, 4.0, 0.5]);
    }
}
