//! The linear probe (SPEC.md 4): one linear layer on standardized pooled
//! features, trained with BCE-with-logits per AU, unknown labels masked out
//! of the loss. Model selection (learning rate x weight decay grid, epochs
//! by early stopping) looks at the validation split only; the test split is
//! scored once, with the selected head, by the caller.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::features::SplitFeatures;
use super::metrics::{mean, per_au_scores, AuScore};
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
    /// Best validation mean F1 in [0, 1].
    pub val_mean_f1: f64,
}

/// What model selection chose, and everything it tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The chosen grid point (highest validation mean F1; the first on ties).
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
/// the sum over known entries divided by their count (0 when none is known).
///
/// # Shapes
/// `logits`, `targets`: `[N, A]`; returns a scalar.
pub fn masked_bce(logits: &Tensor, targets: &Tensor) -> Tensor {
    let mask = targets.ge(0.0).to_kind(Kind::Float); // [N, A]
    let loss =
        logits.binary_cross_entropy_with_logits(&targets.clamp(0.0, 1.0), Some(&mask), None, tch::Reduction::Sum);
    loss / mask.sum(Kind::Float).clamp_min(1.0)
}

fn labels_tensor(f: &SplitFeatures) -> Tensor {
    Tensor::from_slice(&f.labels).view([f.len() as i64, f.aus as i64]).to_kind(Kind::Float)
}

/// Per-AU scores of `head` on a split.
pub fn evaluate(head: &Head, f: &SplitFeatures) -> Result<Vec<AuScore>> {
    let probs: Vec<f32> = Vec::<f32>::try_from(head.probs(&f.features).flatten(0, -1))?;
    Ok(per_au_scores(&probs, &f.labels, f.aus, THRESHOLD))
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
    let mean = x.mean_dim([0i64].as_slice(), false, Kind::Float);
    let std = x.std_dim([0i64].as_slice(), false, false).clamp_min(1e-6);
    let y = labels_tensor(train);
    let mut best: Option<(Head, GridPoint, Vec<AuScore>)> = None;
    let mut grid = Vec::new();
    for &lr in &cfg.lrs {
        for &wd in &cfg.weight_decays {
            let (head, point, scores) = train_point(&x, &y, val, &mean, &std, lr, wd, cfg)?;
            tracing::info!(lr, wd, epoch = point.best_epoch, val_mean_f1 = point.val_mean_f1, "probe grid point");
            grid.push(point.clone());
            if best.as_ref().is_none_or(|b| point.val_mean_f1 > b.1.val_mean_f1) {
                best = Some((head, point, scores));
            }
        }
    }
    let (head, chosen, val_scores) = best.ok_or_else(|| ModelError::Probe("no grid point trained".into()))?;
    Ok((head, Selection { chosen, grid, val_scores }))
}

#[allow(clippy::too_many_arguments)]
fn train_point(
    x: &Tensor,
    y: &Tensor,
    val: &SplitFeatures,
    mean: &Tensor,
    std: &Tensor,
    lr: f64,
    wd: f64,
    cfg: &LinearConfig,
) -> Result<(Head, GridPoint, Vec<AuScore>)> {
    tch::manual_seed(cfg.seed as i64);
    let (n, c) = (x.size()[0], x.size()[1]);
    let head = Head::new(c, y.size()[1], mean.shallow_clone(), std.shallow_clone());
    let mut opt = nn::AdamW { wd, ..Default::default() }.build(&head.vs, lr)?;
    let bs = cfg.batch_size.max(1) as i64;
    let mut best: Option<(f64, usize, Tensor, Tensor, Vec<AuScore>)> = None;
    let mut epochs_run = 0;
    for epoch in 1..=cfg.max_epochs {
        epochs_run = epoch;
        let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        for start in (0..n).step_by(bs as usize) {
            let idx = perm.narrow(0, start, bs.min(n - start));
            let loss = masked_bce(&head.logits(&x.index_select(0, &idx)), &y.index_select(0, &idx));
            opt.backward_step(&loss);
        }
        let scores = evaluate(&head, val)?;
        let f1 = mean_f1(&scores);
        if best.as_ref().is_none_or(|b| f1 > b.0) {
            let bias = head
                .linear
                .bs
                .as_ref()
                .map(|b| b.detach().copy())
                .unwrap_or_else(|| Tensor::zeros([0], (Kind::Float, Device::Cpu)));
            best = Some((f1, epoch, head.linear.ws.detach().copy(), bias, scores));
        } else if best.as_ref().is_some_and(|b| epoch - b.1 >= cfg.patience.max(1)) {
            break;
        }
    }
    let (f1, best_epoch, w, b, scores) = best.ok_or_else(|| ModelError::Probe("no epoch ran".into()))?;
    let mut head = head;
    tch::no_grad(|| {
        head.linear.ws.copy_(&w);
        if let Some(bs) = head.linear.bs.as_mut() {
            bs.copy_(&b);
        }
    });
    let point = GridPoint { lr, weight_decay: wd, best_epoch, epochs_run, val_mean_f1: f1 };
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
        assert!((masked_bce(&logits, &targets).double_value(&[]) - want).abs() < 1e-6);
        let none = Tensor::full([2, 2], -1.0, (Kind::Float, Device::Cpu));
        assert_eq!(masked_bce(&logits, &none).double_value(&[]), 0.0);
    }
}
