//! On-device augmentation for MFDC (paper section 3.1): two views P1, P2 of
//! each face by random resized crop, random rotation and color jitter (the
//! paper's "mixed augmentation", table 8), plus the un-augmented P and its
//! landmarks for MFRR (section 3.2).
//!
//! Everything runs as batched tensor operations on the batch's device: crop
//! and rotation are one `affine_grid` + `grid_sample` per view, jitter is
//! per-sample factors broadcast over the batch. Only the random parameters
//! (a few numbers per sample) are drawn on the host, from a ChaCha stream
//! fixed by `(seed, step, view)`, so a run is reproducible on any device and
//! a resumed run draws the same views. The paper gives no magnitudes; the
//! defaults and why are in `docs/loader.md`.

pub mod ops;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::NUM_LANDMARKS;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::error::{DataError, Result};
use ops::{adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, affine_theta, normalize, warp};

/// Which augmentations make the views, and how strong. Each one can be
/// switched off alone (paper table 8). `Default` = the mixed augmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Random resized crop on/off.
    pub crop: bool,
    /// Crop area range, fraction of the image area (output keeps the input size).
    pub crop_scale: [f64; 2],
    /// Crop aspect-ratio range (width / height), sampled log-uniformly.
    pub crop_ratio: [f64; 2],
    /// Random rotation on/off.
    pub rotate: bool,
    /// Largest rotation, degrees; angles are uniform in [-max, max],
    /// positive = counter-clockwise. Corners outside the image turn black.
    pub rotate_degrees: f64,
    /// Color jitter on/off.
    pub color_jitter: bool,
    /// Probability that a view gets color jitter (per sample, per view).
    pub jitter_prob: f64,
    /// Brightness factor range 1 +- this (unitless, >= 0).
    pub brightness: f64,
    /// Contrast factor range 1 +- this (unitless, >= 0).
    pub contrast: f64,
    /// Saturation factor range 1 +- this (unitless, >= 0).
    pub saturation: f64,
    /// Hue shift range +- this, turns of the color wheel (0 to 0.5; 0 = off).
    pub hue: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            crop: true,
            crop_scale: [0.5, 1.0],
            crop_ratio: [3.0 / 4.0, 4.0 / 3.0],
            rotate: true,
            rotate_degrees: 15.0,
            color_jitter: true,
            jitter_prob: 0.8,
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.2,
            hue: 0.1,
        }
    }
}

impl AugmentConfig {
    /// No augmentation at all: both views equal P.
    pub fn identity() -> Self {
        Self { crop: false, rotate: false, color_jitter: false, ..Self::default() }
    }

    fn check(&self) -> Result<()> {
        let bad = |field, message: &str| Err(DataError::Config { field, message: message.into() });
        let [s0, s1] = self.crop_scale;
        if !(0.0 < s0 && s0 <= s1 && s1 <= 1.0) {
            return bad("crop_scale", "expected 0 < min <= max <= 1");
        }
        let [r0, r1] = self.crop_ratio;
        if !(0.0 < r0 && r0 <= r1) {
            return bad("crop_ratio", "expected 0 < min <= max");
        }
        if !(0.0..=180.0).contains(&self.rotate_degrees) {
            return bad("rotate_degrees", "expected 0 to 180");
        }
        if !(0.0..=1.0).contains(&self.jitter_prob) {
            return bad("jitter_prob", "expected a probability, 0 to 1");
        }
        if [self.brightness, self.contrast, self.saturation].iter().any(|v| !(0.0..=1.0).contains(v)) {
            return bad("brightness/contrast/saturation", "expected 0 to 1");
        }
        if !(0.0..=0.5).contains(&self.hue) {
            return bad("hue", "expected 0 to 0.5");
        }
        Ok(())
    }
}

/// What the pretraining step consumes, all on the batch's device.
#[derive(Debug)]
pub struct Views {
    /// Un-augmented images P, float `[B, 3, H, W]`, ImageNet-normalized.
    pub p: Tensor,
    /// P's 49 landmarks, float `[B, 49, 2]`, crop pixels (P is not warped).
    pub landmarks: Tensor,
    /// First augmented view P1 (online stream), like `p`.
    pub p1: Tensor,
    /// Second augmented view P2 (target stream), like `p`.
    pub p2: Tensor,
}

/// Per-sample parameters of one view, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewParams {
    /// Sampling matrices, one `[a, b, tx, c, d, ty]` per sample (see [`affine_theta`]).
    pub theta: Vec<[f64; 6]>,
    /// Brightness, contrast, saturation factors and hue shift per sample
    /// (`[1, 1, 1, 0]` where jitter is not applied).
    pub jitter: Vec<[f32; 4]>,
}

/// Draws views with a fixed configuration and seed.
#[derive(Debug, Clone)]
pub struct Augmenter {
    cfg: AugmentConfig,
    seed: u64,
}

impl Augmenter {
    /// Checks `cfg` and keeps `seed` for every draw.
    pub fn new(cfg: AugmentConfig, seed: u64) -> Result<Self> {
        cfg.check()?;
        Ok(Self { cfg, seed })
    }

    /// The configuration.
    pub fn config(&self) -> &AugmentConfig {
        &self.cfg
    }

    /// P, its landmarks, and two views of a loader batch at training `step`.
    ///
    /// # Shapes
    /// `images`: uint8 `[B, 3, H, W]`; `landmarks`: float `[B, 49, 2]`.
    pub fn views(&self, images: &Tensor, landmarks: &Tensor, step: u64) -> Result<Views> {
        let size = images.size();
        if images.kind() != Kind::Uint8 || size.len() != 4 || size[1] != 3 {
            return Err(DataError::Config {
                field: "images",
                message: format!("expected uint8 [B, 3, H, W], got {:?} {size:?}", images.kind()),
            });
        }
        if landmarks.size() != [size[0], NUM_LANDMARKS as i64, 2] {
            return Err(DataError::Config {
                field: "landmarks",
                message: format!("expected [{}, {NUM_LANDMARKS}, 2], got {:?}", size[0], landmarks.size()),
            });
        }
        let b = size[0] as usize;
        self.views_part(images, landmarks, step, 0, b)
    }

    /// [`Augmenter::views`] of rows `offset..offset + B` of a global batch
    /// of `total` samples: each sample gets the parameters it gets in the
    /// whole batch, so the ranks of a data-parallel run together draw what
    /// one process with the global batch draws.
    pub fn views_part(
        &self,
        images: &Tensor,
        landmarks: &Tensor,
        step: u64,
        offset: usize,
        total: usize,
    ) -> Result<Views> {
        let b = images.size().first().copied().unwrap_or(0).max(0) as usize;
        if offset + b > total {
            return Err(DataError::Config {
                field: "images",
                message: format!("rows {offset}..{} lie outside a global batch of {total}", offset + b),
            });
        }
        let x = images.to_kind(Kind::Float) / 255.0; // [B, 3, H, W] in [0, 1]
        let part = |v: u64| {
            let all = self.sample(total, step, v);
            ViewParams {
                theta: all.theta[offset..offset + b].to_vec(),
                jitter: all.jitter[offset..offset + b].to_vec(),
            }
        };
        let p1 = self.apply(&x, &part(0));
        let p2 = self.apply(&x, &part(1));
        Ok(Views { p: normalize(&x), landmarks: landmarks.shallow_clone(), p1: normalize(&p1), p2: normalize(&p2) })
    }

    /// The parameters of view `view` (0 or 1) at `step` for `batch` samples.
    pub fn sample(&self, batch: usize, step: u64, view: u64) -> ViewParams {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(step.wrapping_mul(2).wrapping_add(view));
        let c = &self.cfg;
        let mut theta = Vec::with_capacity(batch);
        let mut jitter = Vec::with_capacity(batch);
        for _ in 0..batch {
            let (w, h, cx, cy) = if c.crop { crop_box(c, &mut rng) } else { (1.0, 1.0, 0.0, 0.0) };
            let angle = if c.rotate && c.rotate_degrees > 0.0 {
                rng.gen_range(-c.rotate_degrees..=c.rotate_degrees).to_radians()
            } else {
                0.0
            };
            theta.push(affine_theta(w, h, cx, cy, angle));
            let mut factor = |strength: f64| {
                if strength > 0.0 {
                    rng.gen_range((1.0 - strength).max(0.0)..=1.0 + strength) as f32
                } else {
                    1.0
                }
            };
            let j = [factor(c.brightness), factor(c.contrast), factor(c.saturation)];
            let hue = if c.hue > 0.0 { rng.gen_range(-c.hue..=c.hue) as f32 } else { 0.0 };
            let apply = c.color_jitter && rng.gen_bool(c.jitter_prob);
            jitter.push(if apply { [j[0], j[1], j[2], hue] } else { [1.0, 1.0, 1.0, 0.0] });
        }
        ViewParams { theta, jitter }
    }

    /// One view of `x` (float `[B, 3, H, W]` in [0, 1]) with `params`, in
    /// [0, 1]: warp (crop + rotation), then brightness, contrast, saturation,
    /// hue, in that fixed order. Disabled steps are skipped, so the identity
    /// configuration returns `x` unchanged.
    pub fn apply(&self, x: &Tensor, params: &ViewParams) -> Tensor {
        let (dev, b) = (x.device(), params.theta.len() as i64);
        let mut y = x.shallow_clone();
        if self.cfg.crop || self.cfg.rotate {
            let theta = Tensor::from_slice(params.theta.as_flattened()).view([b, 2, 3]).to_device(dev);
            y = warp(&y, &theta);
        }
        if self.cfg.color_jitter {
            let j = Tensor::from_slice(params.jitter.as_flattened()).view([b, 4]).to_device(dev);
            let col = |k: i64| j.select(1, k).view([b, 1, 1, 1]);
            y = adjust_brightness(&y, &col(0));
            y = adjust_contrast(&y, &col(1));
            y = adjust_saturation(&y, &col(2));
            if self.cfg.hue > 0.0 {
                y = adjust_hue(&y, &col(3).view([b, 1, 1]));
            }
        }
        y
    }
}

/// A random crop `(w, h, cx, cy)` in normalized units: area uniform in
/// `crop_scale`, log-uniform aspect ratio, sides clamped to the image (where
/// torchvision retries ten times, then falls back to the centre crop), centre
/// uniform over the positions that keep the crop inside the image.
fn crop_box(c: &AugmentConfig, rng: &mut ChaCha8Rng) -> (f64, f64, f64, f64) {
    let area = rng.gen_range(c.crop_scale[0]..=c.crop_scale[1]);
    let ratio = rng.gen_range(c.crop_ratio[0].ln()..=c.crop_ratio[1].ln()).exp();
    let w = (area * ratio).sqrt().min(1.0);
    let h = (area / ratio).sqrt().min(1.0);
    let cx = rng.gen_range(-(1.0 - w)..=(1.0 - w));
    let cy = rng.gen_range(-(1.0 - h)..=(1.0 - h));
    (w, h, cx, cy)
}
