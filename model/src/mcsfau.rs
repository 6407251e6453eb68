//! The whole MC-SFAU model and its objective, paper section 3.4, eq. 7:
//! `L_total = L_s + L_d + L_r + alpha * L_c`, alpha = 0.05.
//!
//! [`McSfau`] owns two `VarStore`s on one device: the online store
//! (trainable: `backbone.*` q_theta = q_eps, `projector.*`, `predictor.*`,
//! the landmark detector `locator.*` (or `refiner.*` with `mfrr.detector =
//! "denoise"), `reconstructor.*`, `mci.*`) and the target store
//! (`backbone.*`, `projector.*`, frozen, same names). A training loop reads
//! top to bottom:
//!
//! ```no_run
//! # use model::{config::ModelConfig, mcsfau::{Batch, Draws, McSfau}};
//! # use tch::{nn::OptimizerConfig, Device, Kind, Tensor};
//! # fn main() -> model::error::Result<()> {
//! let cfg = ModelConfig::tiny();
//! let model = McSfau::new(&cfg, Device::Cpu)?;
//! let mut opt = tch::nn::Sgd { momentum: 0.9, wd: 5e-4, ..Default::default() }.build(model.online(), 1e-3)?;
//! # let (p, p1, p2) = (Tensor::zeros([2, 3, 64, 64], (Kind::Float, Device::Cpu)), Tensor::zeros([2, 3, 64, 64], (Kind::Float, Device::Cpu)), Tensor::zeros([2, 3, 64, 64], (Kind::Float, Device::Cpu)));
//! # let landmarks = Tensor::zeros([2, 49, 2], (Kind::Float, Device::Cpu));
//! let batch = Batch { p: &p, p1: &p1, p2: &p2, landmarks: &landmarks };
//! let draws = Draws::sample(&cfg, 2, model.device()); // jitter noise + mask decisions
//! let losses = model.losses(&batch, &draws, true)?; // l_s, l_d, l_r, l_c, total
//! opt.backward_step(&losses.total);
//! model.ema_update()?; // eq. 1
//! # Ok(()) }
//! ```
//!
//! The randomness of a step (mask draws, and the denoise detector's cascade
//! jitter) is an explicit [`Draws`] value, so a reference implementation can
//! replay it.
//!
//! View handling: the online backbone runs on P1, P2 and P separately (each
//! its own BatchNorm batch); `F_mac = q_theta(P1)` feeds MCI. With MFRR off,
//! L_d, L_r and L_c are 0 (L_c needs F_mic); with `mfrr.reconstruct` off,
//! L_r and L_c are 0 and the detector still runs; with MCI off, L_c is 0;
//! with MFDC off, L_s is 0 and the views P1, P2 are not run. Terms that are
//! off are constant zeros and their modules are not built (MFDC's heads
//! are, untrained, so that checkpoints keep one layout).

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::backbone::Backbone;
use crate::byol::{self, OnlineHeads, TargetNet};
use crate::config::Detector;
use crate::config::{MaskAt, MaskMode, ModelConfig};
use crate::error::{ModelError, Result};
use crate::interaction::Interaction;
use crate::landmarks::{self, Refiner, LANDMARKS};
use crate::locator::Locator;
use crate::masking;
use crate::precision;
use crate::reconstruction::{self, Reconstructor};

/// One training batch (all on the model's device).
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// P, the un-augmented crops, `[B, 3, S, S]`, normalised.
    pub p: &'a Tensor,
    /// P1, the first augmented view, `[B, 3, S, S]`.
    pub p1: &'a Tensor,
    /// P2, the second augmented view, `[B, 3, S, S]`.
    pub p2: &'a Tensor,
    /// p_1, the cached FAN 49 points of P, `[B, 49, 2]`, `(x, y)` pixels at S.
    pub landmarks: &'a Tensor,
}

/// The random draws of one step.
#[derive(Debug)]
pub struct Draws {
    /// Standard-normal jitter, `[k - 1, B, 49, 2]` (scaled by sigma_m
    /// inside); only the `denoise` detector reads it.
    pub noise: Tensor,
    /// Whether the masks apply: `[B]` bool per sample (`per_sample`,
    /// `per_batch`), or `[B, 49]` per landmark (`per_landmark`).
    pub apply_mask: Tensor,
}

impl Draws {
    /// Draws from libtorch's generator on `device` (seed with
    /// `tch::manual_seed`): N(0, 1) noise and Bernoulli(gamma) decisions per
    /// sample or per batch as configured.
    pub fn sample(cfg: &ModelConfig, batch: i64, device: Device) -> Self {
        let m = &cfg.mfrr;
        Self {
            noise: Tensor::randn([m.k - 1, batch, LANDMARKS, 2], (Kind::Float, device)),
            apply_mask: masking::draw_apply(batch, m.gamma, m.mask_mode, device),
        }
    }

    /// The draws of samples `offset..offset + batch` of a global batch of
    /// `total` (drawn whole, then cut): a data-parallel rank's share of
    /// what one process with the global batch draws.
    pub fn sample_part(cfg: &ModelConfig, batch: i64, offset: i64, total: i64, device: Device) -> Self {
        let all = Self::sample(cfg, total, device);
        Self { noise: all.noise.narrow(1, offset, batch), apply_mask: all.apply_mask.narrow(0, offset, batch) }
    }
}

/// The four terms of eq. 7 and their sum (scalars with gradient), plus what
/// MFRR computed on the way, for logging.
#[derive(Debug)]
pub struct Losses {
    /// L_s, eq. 2, symmetrized.
    pub l_s: Tensor,
    /// L_d, eq. 3 (0 with MFRR off).
    pub l_d: Tensor,
    /// L_r, eq. 5 (0 with MFRR off).
    pub l_r: Tensor,
    /// L_c, eq. 6 (0 with MFRR or MCI off).
    pub l_c: Tensor,
    /// L_total, eq. 7.
    pub total: Tensor,
    /// p_k, `[B, 49, 2]`, when MFRR ran.
    pub refined: Option<Tensor>,
    /// p_2 = template + D_0(F_p), `[B, 49, 2]`, when the `locate` detector
    /// ran (the diagnostics compare it with p_1 and with the template).
    pub located: Option<Tensor>,
    /// The cell mask, `[B, H, W]` bool, when MFRR ran.
    pub mask: Option<Tensor>,
    /// The online projection g(pool(F_mac)) of P1, `[B, D]`, detached (the
    /// collapse diagnostic reads it), when MFDC ran.
    pub projection: Option<Tensor>,
}

impl Losses {
    /// The five values as `f64` (`[l_s, l_d, l_r, l_c, total]`), for logs.
    pub fn values(&self) -> [f64; 5] {
        [&self.l_s, &self.l_d, &self.l_r, &self.l_c, &self.total].map(|t| t.double_value(&[]))
    }
}

/// Eq. 3's detector, as configured by `mfrr.detector`.
#[derive(Debug)]
enum LandmarkDetector {
    Locate(Box<Locator>),
    Denoise(Refiner),
}

/// MC-SFAU: online and target networks with the eq. 7 objective.
#[derive(Debug)]
pub struct McSfau {
    cfg: ModelConfig,
    online: nn::VarStore,
    target: nn::VarStore,
    backbone: Backbone,
    heads: OnlineHeads,
    detector: Option<LandmarkDetector>,
    reconstructor: Option<Reconstructor>,
    mci: Option<Interaction>,
    target_net: TargetNet,
}

impl McSfau {
    /// Builds the model on `device`; the target starts as a copy of the
    /// online backbone and projector (BYOL).
    pub fn new(cfg: &ModelConfig, device: Device) -> Result<Self> {
        cfg.validate()?;
        let online = nn::VarStore::new(device);
        let mut target = nn::VarStore::new(device);
        let root = online.root();
        let backbone = Backbone::new(&root / "backbone", cfg);
        let heads = OnlineHeads::new(root.clone(), cfg);
        let mfrr = cfg.mfrr.enabled;
        let detector = mfrr.then(|| match cfg.mfrr.detector {
            Detector::Locate => LandmarkDetector::Locate(Box::new(Locator::new(&root / "locator", cfg))),
            Detector::Denoise => LandmarkDetector::Denoise(Refiner::new(&root / "refiner", cfg)),
        });
        let reconstruct = mfrr && cfg.mfrr.reconstruct;
        let reconstructor = reconstruct.then(|| Reconstructor::new(&root / "reconstructor", cfg));
        let mci = (reconstruct && cfg.mfdc.enabled && cfg.mci.enabled).then(|| Interaction::new(&root / "mci", cfg));
        let target_net = TargetNet::new(target.root(), cfg);
        target.freeze();
        let model =
            Self { cfg: cfg.clone(), online, target, backbone, heads, detector, reconstructor, mci, target_net };
        model.copy_online_to_target()?;
        Ok(model)
    }

    /// Casts every weight and buffer of both stores to `kind` (`Kind::Float`
    /// for training; `Kind::Double` for the f64 parity test against PyTorch,
    /// where the CPU's kernel set and summation order move results by ~1e-12
    /// instead of ~1e-4). Feed inputs of the same kind afterwards.
    pub fn set_kind(&mut self, kind: Kind) {
        self.online.set_kind(kind);
        self.target.set_kind(kind);
    }

    fn copy_online_to_target(&self) -> Result<()> {
        let online = self.online.variables();
        tch::no_grad(|| {
            for (name, mut t) in self.target.variables() {
                let o = online.get(&name).ok_or_else(|| {
                    ModelError::InvalidConfig(format!("target variable {name} has no online partner"))
                })?;
                t.copy_(o);
            }
            Ok(())
        })
    }

    /// The resolved configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The device both stores live on.
    pub fn device(&self) -> Device {
        self.online.device()
    }

    /// The trainable store (give it to the optimizer).
    pub fn online(&self) -> &nn::VarStore {
        &self.online
    }

    /// The target store (EMA only, no gradients).
    pub fn target(&self) -> &nn::VarStore {
        &self.target
    }

    /// The online backbone q_theta, e.g. for the linear probe.
    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    /// The `locate` detector on normalised crops `p` (`[B, 3, S, S]`), in
    /// eval mode (BatchNorm running statistics, no gradient): `(p_2, p_k)`,
    /// each `[B, 49, 2]` image pixels at S. `None` when MFRR is off or the
    /// detector is `denoise` (which needs p_1 as its input, so it cannot
    /// find points on new frames).
    pub fn locate(&self, p: &Tensor) -> Option<(Tensor, Tensor)> {
        let Some(LandmarkDetector::Locate(locator)) = &self.detector else { return None };
        tch::no_grad(|| Some(locator.detect(&self.backbone.forward_t(p, false))))
    }

    /// Eq. 1 after an optimizer step: target <- tau target + (1 - tau) online.
    pub fn ema_update(&self) -> Result<()> {
        byol::ema_update(&self.target.variables(), &self.online.variables(), self.cfg.mfdc.tau)
    }

    /// The eq. 7 objective of one batch; `train` selects BatchNorm batch
    /// statistics and dropout. Runs under bf16 CUDA autocast when configured.
    ///
    /// # Shapes
    /// See [`Batch`] and [`Draws`]; every loss is a scalar.
    pub fn losses(&self, batch: &Batch, draws: &Draws, train: bool) -> Result<Losses> {
        self.check(batch, draws)?;
        let autocast = self.cfg.bf16_autocast && self.device().is_cuda();
        Ok(crate::precision::bf16_autocast(autocast, || self.losses_inner(batch, draws, train)))
    }

    fn losses_inner(&self, batch: &Batch, draws: &Draws, train: bool) -> Losses {
        // Losses in f32 (f64 when the model runs in f64), whatever autocast does.
        let wide = precision::wide_kind(batch.p1.kind());
        let f32 = |t: Tensor| t.to_kind(wide);
        let zero = || Tensor::zeros([], (wide, self.device()));

        // MFDC (eq. 2): online on both views, target on both views (no grad).
        let (mut l_s, mut f_mac, mut projection) = (zero(), None, None);
        if self.cfg.mfdc.enabled {
            let f1 = self.backbone.forward_t(batch.p1, train); // [B, C, H, W]
            let f2 = self.backbone.forward_t(batch.p2, train);
            let (z_online, v1) = self.heads.forward_both(&f1, train);
            let v1 = f32(v1); // [B, D]
            let v2 = f32(self.heads.forward_t(&f2, train));
            let z1 = f32(self.target_net.forward_t(batch.p1, train)); // [B, D]
            let z2 = f32(self.target_net.forward_t(batch.p2, train));
            l_s = byol::symmetric_loss(&v1, &v2, &z1, &z2);
            projection = Some(f32(z_online.detach()));
            f_mac = Some(f1);
        }

        let (mut l_d, mut l_r, mut l_c) = (zero(), zero(), zero());
        let (mut refined, mut located, mut mask) = (None, None, None);
        if let Some(detector) = &self.detector {
            let m = &self.cfg.mfrr;
            // MFRR: F_p = q_eps(P), q_eps = q_theta.
            let f_p = self.backbone.forward_t(batch.p, train); // [B, C, H, W]
                                                               // Eq. 3: p_k (detached) and L_d.
            let points = match detector {
                LandmarkDetector::Locate(locator) => {
                    let out = locator.run(&f_p, batch.landmarks);
                    located = Some(out.p2);
                    l_d = out.l_d;
                    out.points
                }
                LandmarkDetector::Denoise(refiner) => {
                    let sigmas = landmarks::sigmas(m.k, m.sigma_max);
                    let out = refiner.cascade(&f_p, batch.landmarks, &draws.noise, &sigmas);
                    l_d = out.l_d;
                    out.points
                }
            };
            // Eq. 4-5: masks at p_k (or p_1), the reconstruction, L_r; eq. 6: L_c.
            if let Some(reconstructor) = &self.reconstructor {
                let centres = match m.mask_at {
                    MaskAt::Refined => points.shallow_clone(),
                    MaskAt::Landmarks => batch.landmarks.detach(),
                };
                let (image, side) = (self.cfg.image_size, self.cfg.feature_side());
                let cells = masking::landmark_mask(&centres, &draws.apply_mask, image, side, m.r); // [B, H, W]
                let f_mask = masking::apply_mask(&f_p, &cells);
                let f_mic = reconstructor.forward_t(&f_mask, train); // [B, C, H, W]
                l_r = reconstruction::reconstruction_loss(&f_mic, &f_p);
                if let (Some(mci), Some(f_mac)) = (&self.mci, &f_mac) {
                    l_c = mci.loss(f_mac, &f_mic);
                }
                mask = Some(cells);
            }
            refined = Some(points);
        }
        let total = &l_s + &l_d + &l_r + &l_c * self.cfg.mci.alpha;
        Losses { l_s, l_d, l_r, l_c, total, refined, located, mask, projection }
    }

    fn check(&self, batch: &Batch, draws: &Draws) -> Result<()> {
        let s = self.cfg.image_size;
        let b = batch.p.size().first().copied().unwrap_or(0);
        let want = |what: &'static str, t: &Tensor, shape: Vec<i64>| {
            if t.size() == shape {
                Ok(())
            } else {
                Err(ModelError::Shape { what, expected: format!("{shape:?}"), found: t.size() })
            }
        };
        want("P", batch.p, vec![b, 3, s, s])?;
        want("P1", batch.p1, vec![b, 3, s, s])?;
        want("P2", batch.p2, vec![b, 3, s, s])?;
        want("landmarks", batch.landmarks, vec![b, LANDMARKS, 2])?;
        want("draws.noise", &draws.noise, vec![self.cfg.mfrr.k - 1, b, LANDMARKS, 2])?;
        let apply = match self.cfg.mfrr.mask_mode {
            MaskMode::PerLandmark => vec![b, LANDMARKS],
            MaskMode::PerSample | MaskMode::PerBatch => vec![b],
        };
        want("draws.apply_mask", &draws.apply_mask, apply)
    }
}
