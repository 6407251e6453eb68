//! The linear probe (paper 4.1): one linear layer on standardized pooled
//! features, trained with BCE-with-logits per AU, unknown labels masked out
//! of the loss. Model selection (learning rate x weight decay grid, epochs
//! by early stopping) looks at the validation split only; the test split is
//! scored once, with the selected head, by the caller.
//!
//! * Standardization uses train statistics only. A channel whose train
//!   standard deviation is below 1e-4 of the median channel's (a ReLU
//!   channel that is always 0 on train, say) is switched off (its std set
//!   to infinity, so it contributes exactly 0): dividing by a clamped tiny
//!   std would multiply whatever it does on val/test by up to 1e6.
//! * Selection: validation mean F1 at 0.5 (the paper's protocol, the
//!   default) or validation mean average precision (`select = "ap"`), which
//!   rewards the ranking a representation gives rather than the head's
//!   calibration at 0.5.
//! * `pos_weight = "balanced"` weighs each AU's positives by its train
//!   negatives / positives in the loss (off by default, as in the paper).

use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::features::SplitFeatures;
use super::metrics::{mean, per_au_ap, per_au_scores, AuScore};
use crate::error::{ModelError, Result};

/// Decision threshold on the probabilities (paper: F1 at 0.5).
pub const THRESHOLD: f32 = 0.5;

/// The selection grid and the training schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinearConfig {
    /// AdamW learning rates tried.
    pub lrs: Vec<f64>,
    /// AdamW (decoupled) weight decays tried.
    pub weight_decays: Vec<f64>,
    /// Epochs at most per grid point.
    pub max_epochs: usize,
    /// Stop a grid point after this many epochs without a better validation
    /// mean F1; the best epoch's weights are kept.
    pub patience: usize,
    /// Rows per optimizer step.
    pub batch_size: usize,
    /// Seed of the initialisation and the row order (same for every grid point).
    pub seed: u64,
    /// The validation score that selects the grid point and the epoch.
    pub select: SelectMetric,
    /// Positive-class weight of the BCE loss.
    pub pos_weight: PosWeight,
}

/// The validation score model selection maximizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SelectMetric {
    /// Mean F1 at 0.5 (the paper's protocol).
    #[default]
    F1,
    /// Mean average precision (threshold-free).
    Ap,
}

impl std::str::FromStr for SelectMetric {
    type Err = ModelError;

    /// `f1` or `ap` (the CLI spelling).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f1" => Ok(Self::F1),
            "ap" => Ok(Self::Ap),
            _ => Err(ModelError::Probe(format!("unknown selection metric {s:?}: expected f1 or ap"))),
        }
    }
}

impl std::str::FromStr for PosWeight {
    type Err = ModelError;

    /// `none` or `balanced` (the CLI spelling).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Self::None),
            "balanced" => Ok(Self::Balanced),
            _ => Err(ModelError::Probe(format!("unknown positive weight {s:?}: expected none or balanced"))),
        }
    }
}

/// The positive-class weight of each AU in the BCE loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PosWeight {
    /// Every label weighs 1 (the paper).
    #[default]
    None,
    /// Positives weigh `negatives / positives` of the AU on train.
    Balanced,
}

impl Default for LinearConfig {
    fn default() -> Self {
        Self {
            lrs: vec![1e-3, 1e-2],
            weight_decays: vec![0.0, 1e-4, 1e-2],
            max_epochs: 40,
            patience: 8,
            batch_size: 256,
            seed: 0,
            select: SelectMetric::F1,
            pos_weight: PosWeight::None,
        }
    }
}

/// One grid point's outcome on the validation split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    /// Learning rate.
    pub lr: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// The epoch (1-based) with the best validation mean F1.
    pub best_epoch: usize,
    /// Epochs run (early stopping may end before `max_epochs`).
    pub epochs_run: usize,
    /// Validation mean F1 in [0, 1] at the best epoch.
    pub val_mean_f1: f64,
    /// Validation mean average precision at the best epoch.
    #[serde(default)]
    pub val_mean_ap: f64,
}

impl GridPoint {
    /// The score `metric` selects by.
    pub fn score(&self, metric: SelectMetric) -> f64 {
        match metric {
            SelectMetric::F1 => self.val_mean_f1,
            SelectMetric::Ap => self.val_mean_ap,
        }
    }
}

/// What model selection chose, and everything it tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The metric that chose.
    #[serde(default)]
    pub metric: SelectMetric,
    /// The chosen grid point (highest validation score; the first on ties).
    pub chosen: GridPoint,
    /// Every grid point, in grid order.
    pub grid: Vec<GridPoint>,
    /// Per-AU validation scores of the chosen head.
    pub val_scores: Vec<AuScore>,
}

/// A trained probe: feature standardization plus the linear layer.
#[derive(Debug)]
pub struct Head {
    vs: nn::VarStore,
    linear: nn::Linear,
    mean: Tensor,
    std: Tensor,
}

impl Head {
    fn new(channels: i64, aus: i64, mean: Tensor, std: Tensor) -> Self {
        let vs = nn::VarStore::new(Device::Cpu);
        let linear = nn::linear(&vs.root() / "probe", channels, aus, Default::default());
        Self { vs, linear, mean, std }
    }

    /// torch's `nn.Linear` initialisation, `U(-1/sqrt(C), 1/sqrt(C))` for
    /// the weight and the bias, drawn from `rng`.
    fn init(&self, rng: &mut ChaCha8Rng) {
        let bound = 1.0 / (self.linear.ws.size()[1] as f64).sqrt();
        let mut fill = |t: &Tensor| {
            let v: Vec<f32> = (0..t.numel()).map(|_| rng.gen_range(-bound..bound) as f32).collect();
            tch::no_grad(|| t.shallow_clone().copy_(&Tensor::from_slice(&v).view(t.size().as_slice())));
        };
        fill(&self.linear.ws);
        if let Some(b) = &self.linear.bs {
            fill(b);
        }
    }

    /// The probe's own variables (`probe.weight` `[A, C]`, `probe.bias`
    /// `[A]`): the only ones the optimizer sees.
    pub fn store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Logits of pooled features `[N, C]` (CPU) -> `[N, A]`.
    pub fn logits(&self, features: &Tensor) -> Tensor {
        let x = (features.to_device(Device::Cpu) - &self.mean) / &self.std;
        self.linear.forward(&x)
    }

    /// AU probabilities `[N, A]` of pooled features `[N, C]`, no gradient.
    pub fn probs(&self, features: &Tensor) -> Tensor {
        tch::no_grad(|| self.logits(features).sigmoid())
    }

    /// Writes `weight`, `bias`, `feature_mean`, `feature_std` to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors = [
            ("weight", self.linear.ws.detach()),
            (
                "bias",
                self.linear.bs.as_ref().map_or_else(|| Tensor::zeros([0], (Kind::Float, Device::Cpu)), |b| b.detach()),
            ),
            ("feature_mean", self.mean.shallow_clone()),
            ("feature_std", self.std.shallow_clone()),
        ];
        Tensor::write_safetensors(&tensors, path)?;
        Ok(())
    }

    /// Reads a head [`Head::save`] wrote.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |what: String| ModelError::Probe(format!("probe head {}: {what}", path.display()));
        let mut t: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(path)?.into_iter().collect();
        let mut take = |name: &str| t.remove(name).ok_or_else(|| bad(format!("tensor {name} missing")));
        let (w, b, mean, std) = (take("weight")?, take("bias")?, take("feature_mean")?, take("feature_std")?);
        let [aus, channels] = w.size()[..] else { return Err(bad(format!("weight of shape {:?}", w.size()))) };
        if b.size() != [aus] || mean.size() != [channels] || std.size() != [channels] {
            return Err(bad("bias/feature_mean/feature_std do not match the weight's shape".into()));
        }
        let mut head = Self::new(channels, aus, mean, std);
        tch::no_grad(|| {
            head.linear.ws.copy_(&w);
            if let Some(bs) = head.linear.bs.as_mut() {
                bs.copy_(&b);
            }
        });
        Ok(head)
    }

    /// (channels C, AUs A).
    pub fn shape(&self) -> (i64, i64) {
        let s = self.linear.ws.size();
        (s[1], s[0])
    }
}

/// BCE-with-logits over the known labels only (`targets` -1 = unknown):
/// the sum over known entries divided by their count (0 when none is
/// known); `pos_weight` `[A]` weighs the positive term of each AU.
///
/// # Shapes
/// `logits`, `targets`: `[N, A]`; returns a scalar.
pub fn masked_bce(logits: &Tensor, targets: &Tensor, pos_weight: Option<&Tensor>) -> Tensor {
    let mask = targets.ge(0.0).to_kind(Kind::Float); // [N, A]
    let loss =
        logits.binary_cross_entropy_with_logits(&targets.clamp(0.0, 1.0), Some(&mask), pos_weight, tch::Reduction::Sum);
    loss / mask.sum(Kind::Float).clamp_min(1.0)
}

/// Train statistics for standardization: the mean and the standard
/// deviation of every channel, with the std of near-constant channels set
/// to infinity (they contribute 0; see the module docs).
///
/// # Shapes
/// `x`: `[N, C]` -> (`[C]`, `[C]`).
pub fn standardization(x: &Tensor) -> (Tensor, Tensor) {
    let mean = x.mean_dim([0i64].as_slice(), false, Kind::Float);
    let std = x.std_dim([0i64].as_slice(), false, false);
    let positive = std.masked_select(&std.gt(0.0));
    let reference = if positive.numel() > 0 { positive.median().double_value(&[]) } else { 1.0 };
    let dead = std.le(1e-4 * reference);
    (mean, std.masked_fill(&dead, f64::INFINITY))
}

/// `negatives / positives` per AU over the known train labels (1 for an AU
/// without positives or negatives), `[A]`.
pub fn balanced_pos_weight(y: &Tensor) -> Tensor {
    let known = y.ge(0.0).to_kind(Kind::Float);
    let pos = y.eq(1.0).to_kind(Kind::Float).sum_dim_intlist(0, false, Kind::Float);
    let neg = (known.sum_dim_intlist(0, false, Kind::Float) - &pos).clamp_min(0.0);
    let w = &neg / pos.clamp_min(1.0);
    w.where_self(&(pos.gt(0.0).logical_and(&neg.gt(0.0))), &w.ones_like())
}

fn labels_tensor(f: &SplitFeatures) -> Tensor {
    Tensor::from_slice(&f.labels).view([f.len() as i64, f.aus as i64]).to_kind(Kind::Float)
}

/// The head's probabilities on a split, row-major `[N, A]`.
pub fn split_probs(head: &Head, f: &SplitFeatures) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(head.probs(&f.features).flatten(0, -1))?)
}

/// Per-AU scores of `head` on a split.
pub fn evaluate(head: &Head, f: &SplitFeatures) -> Result<Vec<AuScore>> {
    Ok(per_au_scores(&split_probs(head, f)?, &f.labels, f.aus, THRESHOLD))
}

/// Per-AU scores and average precisions of `head` on a split.
pub fn evaluate_with_ap(head: &Head, f: &SplitFeatures) -> Result<(Vec<AuScore>, Vec<f64>)> {
    let probs = split_probs(head, f)?;
    Ok((per_au_scores(&probs, &f.labels, f.aus, THRESHOLD), per_au_ap(&probs, &f.labels, f.aus)))
}

fn mean_f1(scores: &[AuScore]) -> f64 {
    mean(&scores.iter().map(|s| s.f1).collect::<Vec<_>>())
}

/// Trains one head per grid point on `train`, keeps each point's best
/// epoch by validation mean F1, and returns the best point's head.
pub fn select(train: &SplitFeatures, val: &SplitFeatures, cfg: &LinearConfig) -> Result<(Head, Selection)> {
    if cfg.lrs.is_empty() || cfg.weight_decays.is_empty() || cfg.max_epochs == 0 {
        return Err(ModelError::Probe("the selection grid is empty (lrs, weight_decays, max_epochs)".into()));
    }
    if train.aus != val.aus || train.features.size()[1] != val.features.size()[1] {
        return Err(ModelError::Probe("train and val features differ in width or AUs".into()));
    }
    let x = train.features.to_device(Device::Cpu).to_kind(Kind::Float);
    // Standardize with train statistics only (val/test never inform it).
    let (mean, std) = standardization(&x);
    let y = labels_tensor(train);
    let pos_weight = match cfg.pos_weight {
        PosWeight::None => None,
        PosWeight::Balanced => Some(balanced_pos_weight(&y)),
    };
    let mut best: Option<(Head, GridPoint, Vec<AuScore>)> = None;
    let mut grid = Vec::new();
    for &lr in &cfg.lrs {
        for &wd in &cfg.weight_decays {
            let (head, point, scores) = train_point(&x, &y, pos_weight.as_ref(), val, &mean, &std, lr, wd, cfg)?;
            tracing::info!(lr, wd, epoch = point.best_epoch, val_mean_f1 = point.val_mean_f1, "probe grid point");
            grid.push(point.clone());
            if best.as_ref().is_none_or(|b| point.score(cfg.select) > b.1.score(cfg.select)) {
                best = Some((head, point, scores));
            }
        }
    }
    let (head, chosen, val_scores) = best.ok_or_else(|| ModelError::Probe("no grid point trained".into()))?;
    Ok((head, Selection { metric: cfg.select, chosen, grid, val_scores }))
}

/// The best epoch of one grid point so far.
struct BestEpoch {
    score: f64,
    epoch: usize,
    weight: Tensor,
    bias: Tensor,
    scores: Vec<AuScore>,
    f1: f64,
    ap: f64,
}

#[allow(clippy::too_many_arguments)]
fn train_point(
    x: &Tensor,
    y: &Tensor,
    pos_weight: Option<&Tensor>,
    val: &SplitFeatures,
    mean: &Tensor,
    std: &Tensor,
    lr: f64,
    wd: f64,
    cfg: &LinearConfig,
) -> Result<(Head, GridPoint, Vec<AuScore>)> {
    // The initialisation and the row order come from a generator of our
    // own, not libtorch's global one: two probes in one process (threads)
    // then cannot change each other's draws.
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (n, c) = (x.size()[0], x.size()[1]);
    let head = Head::new(c, y.size()[1], mean.shallow_clone(), std.shallow_clone());
    head.init(&mut rng);
    let mut opt = nn::AdamW { wd, ..Default::default() }.build(&head.vs, lr)?;
    let bs = cfg.batch_size.max(1) as i64;
    let mut best: Option<BestEpoch> = None;
    let mut epochs_run = 0;
    for epoch in 1..=cfg.max_epochs {
        epochs_run = epoch;
        let mut order: Vec<i64> = (0..n).collect();
        order.shuffle(&mut rng);
        let perm = Tensor::from_slice(&order);
        for start in (0..n).step_by(bs as usize) {
            let idx = perm.narrow(0, start, bs.min(n - start));
            let loss = masked_bce(&head.logits(&x.index_select(0, &idx)), &y.index_select(0, &idx), pos_weight);
            opt.backward_step(&loss);
        }
        let (scores, aps) = evaluate_with_ap(&head, val)?;
        let (f1, ap) = (mean_f1(&scores), super::metrics::mean(&aps));
        let score = match cfg.select {
            SelectMetric::F1 => f1,
            SelectMetric::Ap => ap,
        };
        if best.as_ref().is_none_or(|b| score > b.score) {
            let bias = head
                .linear
                .bs
                .as_ref()
                .map(|b| b.detach().copy())
                .unwrap_or_else(|| Tensor::zeros([0], (Kind::Float, Device::Cpu)));
            let weight = head.linear.ws.detach().copy();
            best = Some(BestEpoch { score, epoch, weight, bias, scores, f1, ap });
        } else if best.as_ref().is_some_and(|b| epoch - b.epoch >= cfg.patience.max(1)) {
            break;
        }
    }
    let BestEpoch { epoch: best_epoch, weight: w, bias: b, scores, f1, ap, .. } =
        best.ok_or_else(|| ModelError::Probe("no epoch ran".into()))?;
    let mut head = head;
    tch::no_grad(|| {
        head.linear.ws.copy_(&w);
        if let Some(bs) = head.linear.bs.as_mut() {
            bs.copy_(&b);
        }
    });
    let point = GridPoint { lr, weight_decay: wd, best_epoch, epochs_run, val_mean_f1: f1, val_mean_ap: ap };
    Ok((head, point, scores))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_bce_ignores_unknown_labels() {
        let logits = Tensor::from_slice(&[2.0f32, -1.0, 0.5, 3.0]).view([2, 2]);
        let targets = Tensor::from_slice(&[1.0f32, -1.0, 0.0, -1.0]).view([2, 2]);
        // Known: (2.0, 1) and (0.5, 0): softplus(-2) and softplus(0.5).
        let want = ((1.0 + (-2.0f64).exp()).ln() + (1.0 + 0.5f64.exp()).ln()) / 2.0;
        assert!((masked_bce(&logits, &targets, None).double_value(&[]) - want).abs() < 1e-6);
        let none = Tensor::full([2, 2], -1.0, (Kind::Float, Device::Cpu));
        assert_eq!(masked_bce(&logits, &none, None).double_value(&[]), 0.0);
        // A positive weight of 3 on AU0 triples its positive term.
        let w = Tensor::from_slice(&[3.0f32, 1.0]);
        let want = (3.0 * (1.0 + (-2.0f64).exp()).ln() + (1.0 + 0.5f64.exp()).ln()) / 2.0;
        assert!((masked_bce(&logits, &targets, Some(&w)).double_value(&[]) - want).abs() < 1e-6);
    }

    #[test]
    fn balanced_weights_are_negatives_over_positives() {
        // AU0: 1 positive, 3 negatives -> 3; AU1: no positive -> 1.
        let y = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0]).view([4, 2]);
        assert_eq!(Vec::<f32>::try_from(balanced_pos_weight(&y)).unwrap(), vec![3.0, 1.0]);
    }

    #[test]
    fn a_channel_constant_on_train_is_never_amplified() {
        // Regression: std.clamp_min(1e-6) multiplied a channel that is
        // constant on train but not on test by up to 1e6, saturating the
        // logits. Channel 0 is constant 0.5 on train, channel 1 informative.
        let x = Tensor::from_slice(&[0.5f32, 1.0, 0.5, -1.0, 0.5, 2.0, 0.5, -2.0]).view([4, 2]);
        let (mean, std) = standardization(&x);
        assert!(f64::try_from(std.get(0)).unwrap().is_infinite());
        assert!((f64::try_from(std.get(1)).unwrap() - (10.0f64 / 4.0).sqrt()).abs() < 1e-5);
        let mut head = Head::new(2, 1, mean, std);
        tch::no_grad(|| {
            let _ = head.linear.ws.fill_(1.0);
        });
        let _ = &mut head;
        // On test, channel 0 takes values train never saw: no effect at all.
        let a = head.logits(&Tensor::from_slice(&[0.5f32, 1.0]).view([1, 2]));
        let b = head.logits(&Tensor::from_slice(&[40.0f32, 1.0]).view([1, 2]));
        assert_eq!(f64::try_from(a.squeeze()).unwrap(), f64::try_from(b.squeeze()).unwrap());
        assert!(bool::try_from(b.isfinite().all()).unwrap());
    }
}
