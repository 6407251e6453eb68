//! MFRR's landmark detector, paper section 3.2, eq. 3, as a detector that
//! *locates* the 49 points from the macro features (`mfrr.detector =
//! "locate"`, the default; docs/method.md, MFRR).
//!
//! The paper feeds F_p "into the detector for k detection iterations": the
//! detector "locates the key regions related to FAU changes" from the macro
//! representation, p_1 (the Face Alignment points) "serves as the learning
//! target of the next iteration", and p_m^n(F_p) is the prediction for
//! landmark n of F_p at iteration m. So the detector's output is a function
//! of F_p, and learning it teaches the backbone where the face's parts are:
//!
//! * `p_1` = the cached FAN/dlib 49 points of P, image pixels `(x, y)` of
//!   the image F_p is computed from (the target, never an input).
//! * `p_2 = T + u * D_0(F_p)`: the locating head reads the whole feature map
//!   and predicts each point's offset from the alignment template T
//!   (`schemas::template`, the points every crop is aligned to, at the
//!   model's image side). D_0 = 1x1 convolution `C -> loc_channels`, ReLU,
//!   flatten (channel-major, `[B, loc_channels * H * W]`), `Linear -> 98`.
//! * `p_m = sg(p_(m-1)) + u / (m - 2) * tanh(D(F_p, sg(p_(m-1)), n))` for
//!   `m = 3..k`:
//!   the refinement head D, shared by the steps, samples F_p at each point
//!   (bilinear, as [`crate::landmarks::sample_at`]), and reads the sample,
//!   the point in grid coordinates and a learned embedding of the landmark
//!   index n (`[49, loc_embed]`), so it knows which landmark it moves:
//!   `Linear(C + 2 + loc_embed -> refiner_hidden) ReLU Linear(-> 2)`. The
//!   tanh and the decaying scale keep step m under `u / (m - 2)`: the same
//!   D runs k - 2 times, and equal steps that overshoot add up along the
//!   chain (the whole chain moves a point by at most 4.5 u at k = 50).
//! * `L_d`, squared errors as a mean over `B x 49 x 2` coordinates: the
//!   m = 2 term against p_1; the later terms against p_1
//!   (`mfrr.cascade_target = "landmarks"`, the default) or against
//!   `sg(p_(m-1))` (`"previous"`, eq. 3 as written; D then learns to move
//!   nothing, since standing still scores 0). Scale (`mfrr.ld_scale`):
//!   `"unit"` (default) divides by `u^2` with `u = mfrr.loc_unit` (1/32 of
//!   the image side) and adds the locating term to the *mean* of the
//!   refinement terms, so L_d does not grow with the image side or with k
//!   and k does not dilute the locating term; `"pixel_sum"` is eq. 3's
//!   literal sum of pixel MSEs.
//! * `p_k`, detached, places the masks (eq. 4).
//!
//! The outputs' last layers start at zero, so at initialisation p_2 is the
//! template and the refinement steps move nothing: "predicting nothing" is
//! where training starts, and the log shows the detector leave it
//! (`loc_rms_px` against `loc_template_rms_px`, docs/pretrain.md).
//!
//! Variables: `locator.global.conv.*`, `locator.global.fc.*`,
//! `locator.refine.embed`, `locator.refine.fc1.*`, `locator.refine.fc2.*`.

use tch::nn::{self, Module};
use tch::{Kind, Reduction, Tensor};

use crate::config::{CascadeTarget, LdScale, ModelConfig};
use crate::landmarks::{sample_at, to_grid, LANDMARKS};
use crate::precision::at_least_f32;

/// The alignment template at `image_size`, `[49, 2]` image pixels, f64
/// (cast to the working kind where it is used).
pub fn template(image_size: i64, device: tch::Device) -> Tensor {
    let points = schemas::template::template_px(image_size as f64);
    let flat: Vec<f64> = points.iter().flat_map(|p| [p[0], p[1]]).collect();
    Tensor::from_slice(&flat).reshape([LANDMARKS, 2]).to_device(device)
}

/// The divisor of step m's largest move (`u / (m - 2)`, m >= 3).
pub fn step_scale(m: i64) -> f64 {
    (m - 2).max(1) as f64
}

/// Root-mean-square point distance `sqrt(mean ||a - b||^2)` over every
/// point of the batch, in the points' units, as f64.
///
/// # Shapes
/// `a`, `b`: `[B, N, 2]` (or broadcastable).
pub fn rms_distance(a: &Tensor, b: &Tensor) -> f64 {
    let d = a.to_kind(Kind::Double) - b.to_kind(Kind::Double);
    d.square().sum_dim_intlist(-1, false, Kind::Double).mean(Kind::Double).sqrt().double_value(&[])
}

/// The locating detector: D_0 (whole map -> p_2) and D (refinement).
#[derive(Debug)]
pub struct Locator {
    conv: nn::Conv2D,
    fc: nn::Linear,
    embed: Tensor,
    fc1: nn::Linear,
    fc2: nn::Linear,
    template: Tensor,
    image_size: i64,
    unit: f64,
    k: i64,
    scale: LdScale,
    target: CascadeTarget,
}

/// What the detector returns.
#[derive(Debug)]
pub struct Located {
    /// `p_2`, the located points, detached, `[B, 49, 2]` image pixels.
    pub p2: Tensor,
    /// `p_k`, detached, `[B, 49, 2]` image pixels (`p_2` when k = 2).
    pub points: Tensor,
    /// `L_d`, a scalar with gradient into the detector and F_p.
    pub l_d: Tensor,
}

impl Locator {
    /// Builds the detector under `p` (pass `root / "locator"`).
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        let m = &cfg.mfrr;
        let (c, side) = (cfg.feature_channels(), cfg.feature_side());
        let g = &p / "global";
        let conv = nn::conv2d(&g / "conv", c, m.loc_channels, 1, Default::default());
        let zeros = nn::LinearConfig { ws_init: nn::Init::Const(0.0), bs_init: Some(nn::Init::Const(0.0)), bias: true };
        let fc = nn::linear(&g / "fc", m.loc_channels * side * side, LANDMARKS * 2, zeros);
        let r = &p / "refine";
        let embed = r.var("embed", &[LANDMARKS, m.loc_embed], nn::Init::Randn { mean: 0.0, stdev: 1.0 });
        let fc1 = nn::linear(&r / "fc1", c + 2 + m.loc_embed, m.refiner_hidden, Default::default());
        let fc2 = nn::linear(&r / "fc2", m.refiner_hidden, 2, zeros);
        Self {
            conv,
            fc,
            embed,
            fc1,
            fc2,
            template: template(cfg.image_size, p.device()),
            image_size: cfg.image_size,
            unit: m.loc_unit,
            k: m.k,
            scale: m.ld_scale,
            target: m.cascade_target,
        }
    }

    /// `p_2 = T + u D_0(F_p)`, image pixels.
    ///
    /// # Shapes
    /// `f_p`: `[B, C, H, W]` -> `[B, 49, 2]`.
    pub fn locate(&self, f_p: &Tensor) -> Tensor {
        let h = self.conv.forward(f_p).relu().flatten(1, -1); // [B, loc_channels * H * W]
        let offsets = at_least_f32(&self.fc.forward(&h)).reshape([-1, LANDMARKS, 2]); // [B, 49, 2] units
        self.template.to_kind(offsets.kind()).unsqueeze(0) + offsets * self.unit
    }

    /// `u / (m - 2) tanh(D(F_p, p, n))`: each point's offset at step m
    /// (m >= 3), image pixels.
    ///
    /// # Shapes
    /// `f_p`: `[B, C, H, W]`, `points`: `[B, 49, 2]` -> `[B, 49, 2]`.
    pub fn refine_offsets(&self, f_p: &Tensor, points: &Tensor, m: i64) -> Tensor {
        let b = points.size()[0];
        let feats = sample_at(f_p, points, self.image_size); // [B, 49, C]
        let kind = feats.kind();
        let grid = to_grid(points, self.image_size).to_kind(kind); // [B, 49, 2]
        let ids = self.embed.to_kind(kind).unsqueeze(0).expand([b, LANDMARKS, -1], false); // [B, 49, E]
        let h = Tensor::cat(&[feats, grid, ids], -1).apply(&self.fc1).relu();
        // Step m moves a point by less than u / (m - 2) (tanh): the same D
        // runs k - 2 times, and equal steps that overshoot add up along the
        // chain (measured on the small preset at k = 50: NaN at step 5 with
        // unbounded steps, 200 px of drift with steps of one unit;
        // docs/method.md). The decaying steps bound the whole chain's move
        // by u (1 + 1/2 + ... + 1/(k-2)), 4.5 u at k = 50.
        at_least_f32(&h.apply(&self.fc2)).tanh() * (self.unit / step_scale(m)) // [B, 49, 2]
    }

    /// The points alone, as in [`Locator::run`] without a target: `(p_2,
    /// p_k)`, image pixels (for frames that have no landmarks).
    ///
    /// # Shapes
    /// `f_p`: `[B, C, H, W]` -> `([B, 49, 2], [B, 49, 2])`.
    pub fn detect(&self, f_p: &Tensor) -> (Tensor, Tensor) {
        let p2 = at_least_f32(&self.locate(f_p));
        let pk = self.refine(f_p, &p2).pop().map_or_else(|| p2.shallow_clone(), |(_, p)| p);
        (p2.detach(), pk.detach())
    }

    /// The k - 2 refinement steps from `p2`: `(sg(p_(m-1)), p_m)` for
    /// m = 3..k, in order (empty when k = 2).
    fn refine(&self, f_p: &Tensor, p2: &Tensor) -> Vec<(Tensor, Tensor)> {
        let mut p = p2.shallow_clone();
        let mut steps = Vec::new();
        for m in 3..=self.k {
            let prev = p.detach(); // sg(p_(m-1))
            p = &prev + self.refine_offsets(f_p, &prev, m).to_kind(prev.kind()); // p_m
            steps.push((prev, p.shallow_clone()));
        }
        steps
    }

    /// Runs eq. 3: `p_2` from F_p, then `k - 2` refinement steps, and L_d.
    ///
    /// # Shapes
    /// `f_p`: `[B, C, H, W]`; `p1`: `[B, 49, 2]` image pixels.
    pub fn run(&self, f_p: &Tensor, p1: &Tensor) -> Located {
        let anchor = at_least_f32(p1).detach(); // p_1
        let p2 = self.locate(f_p).to_kind(anchor.kind()); // [B, 49, 2]
        let locating = p2.mse_loss(&anchor, Reduction::Mean);
        let steps = self.refine(f_p, &p2);
        let n = steps.len();
        // Summed in step order, as the reference does.
        let mut sum = Tensor::zeros([], (anchor.kind(), anchor.device()));
        for (prev, p) in &steps {
            let target = match self.target {
                CascadeTarget::Landmarks => &anchor,
                CascadeTarget::Previous => prev,
            };
            sum += p.mse_loss(target, Reduction::Mean);
        }
        let l_d = match self.scale {
            LdScale::PixelSum => &locating + sum,
            // `validate` keeps `jitter` away from this detector; if it came
            // through, the unit scale is the meaningful one.
            LdScale::Unit | LdScale::Jitter => {
                let refine = if n > 0 { sum / n as f64 } else { sum };
                (&locating + refine) / (self.unit * self.unit)
            }
        };
        let points = steps.last().map_or_else(|| p2.detach(), |(_, p)| p.detach());
        Located { p2: p2.detach(), points, l_d }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Detector;
    use tch::Device;

    fn cfg(k: i64, scale: LdScale, target: CascadeTarget) -> ModelConfig {
        let mut c = ModelConfig::tiny();
        c.mfrr.detector = Detector::Locate;
        c.mfrr.k = k;
        c.mfrr.ld_scale = scale;
        c.mfrr.cascade_target = target;
        c
    }

    /// The template in f32, as the f32 model's points are.
    fn tpl(size: i64) -> Tensor {
        template(size, Device::Cpu).to_kind(Kind::Float)
    }

    fn feature_map(c: &ModelConfig, b: i64) -> Tensor {
        let side = c.feature_side();
        Tensor::randn([b, c.feature_channels(), side, side], (Kind::Float, Device::Cpu))
    }

    #[test]
    fn at_initialisation_p2_is_the_template_and_l_d_its_error() {
        // Zero-initialised output layers: p_2 = T, every refinement step
        // stands still, so each of the 1 + (k - 2) terms is the template's
        // MSE against p_1. With p_1 = T + 2 px in x: MSE = (4 + 0) / 2 = 2
        // px^2 per coordinate; in units of u = 2 px: 0.5; "unit" adds the
        // locating term to the mean of the k - 2 refinement terms: 1.0.
        let c = cfg(5, LdScale::Unit, CascadeTarget::Landmarks);
        let vs = nn::VarStore::new(Device::Cpu);
        let loc = Locator::new(vs.root() / "locator", &c);
        let t = tpl(c.image_size).unsqueeze(0).repeat([3, 1, 1]);
        let p1 = &t + Tensor::from_slice(&[2.0f32, 0.0]);
        let out = loc.run(&feature_map(&c, 3), &p1);
        assert!(out.p2.allclose(&t, 0.0, 1e-5, false));
        assert!(out.points.allclose(&t, 0.0, 1e-5, false));
        assert!((out.l_d.double_value(&[]) - 1.0).abs() < 1e-6, "{}", out.l_d.double_value(&[]));
        // Literal pixel sum: 1 + 3 terms of 2 px^2 each.
        let c = cfg(5, LdScale::PixelSum, CascadeTarget::Landmarks);
        let vs = nn::VarStore::new(Device::Cpu);
        let out = Locator::new(vs.root() / "locator", &c).run(&feature_map(&c, 3), &p1);
        assert!((out.l_d.double_value(&[]) - 8.0).abs() < 1e-5);
        assert!((rms_distance(&out.p2, &p1) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn l_d_does_not_grow_with_the_image_size_or_with_k() {
        // The same relative error (p_1 = T shifted by u / 2 in both axes)
        // scores the same unit-scaled L_d at 64, 128 and 256 px and at
        // k = 2, 10, 50: (u^2/4 per coordinate) / u^2 = 1/4 per term, and
        // two terms (locating + refinement mean) once k > 2.
        for size in [64i64, 128, 256] {
            for k in [2i64, 10, 50] {
                let mut c = cfg(k, LdScale::Unit, CascadeTarget::Landmarks);
                c.image_size = size;
                c.mfrr.loc_unit = 8.0 * size as f64 / 256.0;
                let vs = nn::VarStore::new(Device::Cpu);
                let loc = Locator::new(vs.root() / "locator", &c);
                let half = c.mfrr.loc_unit / 2.0;
                let p1 = tpl(size).unsqueeze(0) + half;
                let l_d = loc.run(&feature_map(&c, 2), &p1.repeat([2, 1, 1])).l_d.double_value(&[]);
                let want = if k == 2 { 0.25 } else { 0.5 };
                assert!((l_d - want).abs() < 1e-6, "{size} px, k {k}: {l_d}");
            }
        }
    }

    #[test]
    fn the_detector_output_depends_on_the_feature_map_and_reaches_it() {
        // p_2 is a function of F_p (the point of this reading of eq. 3), and
        // L_d sends gradient into F_p through both heads.
        let c = cfg(4, LdScale::Unit, CascadeTarget::Landmarks);
        let vs = nn::VarStore::new(Device::Cpu);
        let loc = Locator::new(vs.root() / "locator", &c);
        tch::no_grad(|| {
            for (name, mut t) in vs.variables() {
                if name.ends_with("fc.weight") || name.ends_with("fc2.weight") {
                    t.copy_(&(Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.1));
                }
            }
        });
        let f1 = feature_map(&c, 2).set_requires_grad(true);
        let f2 = feature_map(&c, 2);
        let p1 = tpl(c.image_size).unsqueeze(0).repeat([2, 1, 1]);
        let a = loc.run(&f1, &p1);
        let b = loc.run(&f2, &p1);
        assert!(rms_distance(&a.p2, &b.p2) > 1e-3, "p_2 ignores F_p");
        assert!(rms_distance(&a.points, &a.p2) > 1e-4, "the refinement steps move nothing");
        a.l_d.backward();
        assert!(f1.grad().abs().sum(Kind::Double).double_value(&[]) > 0.0);
    }

    #[test]
    fn previous_targets_score_a_still_refinement_zero() {
        // Eq. 3 as written: each later step targets sg(p_(m-1)); at
        // initialisation the steps stand still, so only the locating term
        // counts: (1 px^2 per coordinate in x, 0 in y) / 2 / u^2 = 0.125.
        let c = cfg(6, LdScale::Unit, CascadeTarget::Previous);
        let vs = nn::VarStore::new(Device::Cpu);
        let loc = Locator::new(vs.root() / "locator", &c);
        let p1 = tpl(c.image_size).unsqueeze(0) + Tensor::from_slice(&[1.0f32, 0.0]);
        let l_d = loc.run(&feature_map(&c, 1), &p1).l_d.double_value(&[]);
        assert!((l_d - 0.125).abs() < 1e-6, "{l_d}");
    }
}
