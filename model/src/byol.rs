//! MFDC, the macro dual-stream contrast (paper section 3.1, eq. 1 and 2):
//! BYOL's online projector g_theta and predictor f_theta, the target stream
//! (backbone q_xi and projector g_xi, never trained by gradients), the EMA
//! update of eq. 1 and the loss of eq. 2.
//!
//! * Heads (SPEC 3.1, BYOL's sizes): `Linear(in -> 4096) BN ReLU
//!   Linear(4096 -> 256)`; the projector reads the global-average-pooled
//!   backbone feature (2048), the predictor reads the projector's output
//!   (256). Variables are named like a PyTorch `nn.Sequential` (`0`, `1`,
//!   `3`), so `projector.0.weight` etc.
//! * Eq. 2: `L_s = 2 - 2 cos(V_mac, V_tar)`, batch mean. [`symmetric_loss`]
//!   averages the two view orders as BYOL does:
//!   `(loss(f(g(q(P1))), g'(q'(P2))) + loss(f(g(q(P2))), g'(q'(P1)))) / 2`.
//! * Eq. 1: `xi <- tau xi + (1 - tau) theta` over the parameters paired by
//!   name ([`ema_update`]); BatchNorm running statistics are buffers, not
//!   parameters: the target's own (no-grad, train-mode) forwards keep them,
//!   as in BYOL's reference code.

use std::collections::HashMap;

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::backbone::Backbone;
use crate::config::ModelConfig;
use crate::dist::norm::Norm;
use crate::error::{ModelError, Result};

/// `Linear(c_in -> hidden) BatchNorm1d ReLU Linear(hidden -> c_out)`, the
/// BYOL projector/predictor (variables `0`, `1`, `3` as in `nn.Sequential`).
#[derive(Debug)]
pub struct Mlp {
    fc1: nn::Linear,
    bn: Norm,
    fc2: nn::Linear,
}

impl Mlp {
    /// An MLP head under `p`.
    pub fn new(p: nn::Path, c_in: i64, hidden: i64, c_out: i64) -> Self {
        Self {
            fc1: nn::linear(&p / 0, c_in, hidden, Default::default()),
            bn: Norm::new1d(&p / 1, hidden),
            fc2: nn::linear(&p / 3, hidden, c_out, Default::default()),
        }
    }
}

impl ModuleT for Mlp {
    /// # Shapes
    /// `xs`: `[B, c_in]` -> `[B, c_out]`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        xs.apply(&self.fc1).apply_t(&self.bn, train).relu().apply(&self.fc2)
    }
}

/// Global average pool: `[B, C, H, W]` -> `[B, C]`.
pub fn pool(f: &Tensor) -> Tensor {
    f.mean_dim(&[2i64, 3][..], false, f.kind())
}

/// The online stream's heads g_theta (projector) and f_theta (predictor).
#[derive(Debug)]
pub struct OnlineHeads {
    /// g_theta, `projector.*`.
    pub projector: Mlp,
    /// f_theta, `predictor.*`.
    pub predictor: Mlp,
}

impl OnlineHeads {
    /// Builds `projector` and `predictor` under `p`.
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        let (c, h, d) = (cfg.feature_channels(), cfg.mfdc.hidden, cfg.mfdc.dim);
        Self { projector: Mlp::new(&p / "projector", c, h, d), predictor: Mlp::new(&p / "predictor", d, h, d) }
    }

    /// `V_mac = f(g(pool(F_mac)))`.
    ///
    /// # Shapes
    /// `f_mac`: `[B, C, H, W]` -> `[B, D]`.
    pub fn forward_t(&self, f_mac: &Tensor, train: bool) -> Tensor {
        self.forward_both(f_mac, train).1
    }

    /// `(g(pool(F_mac)), f(g(pool(F_mac))))`: the projection (watched for
    /// collapse) and `V_mac`.
    ///
    /// # Shapes
    /// `f_mac`: `[B, C, H, W]` -> `([B, D], [B, D])`.
    pub fn forward_both(&self, f_mac: &Tensor, train: bool) -> (Tensor, Tensor) {
        let z = self.projector.forward_t(&pool(f_mac), train);
        let v = self.predictor.forward_t(&z, train);
        (z, v)
    }
}

/// The target ("guide") stream q_xi + g_xi, in its own `VarStore` with the
/// same names as the online one (`backbone.*`, `projector.*`).
#[derive(Debug)]
pub struct TargetNet {
    /// q_xi.
    pub backbone: Backbone,
    /// g_xi.
    pub projector: Mlp,
}

impl TargetNet {
    /// Builds `backbone` and `projector` under `p` (the target store's root).
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        Self {
            backbone: Backbone::new(&p / "backbone", cfg),
            projector: Mlp::new(&p / "projector", cfg.feature_channels(), cfg.mfdc.hidden, cfg.mfdc.dim),
        }
    }

    /// `V_tar = g_xi(pool(q_xi(P)))`, without gradient.
    ///
    /// # Shapes
    /// `xs`: `[B, 3, S, S]` -> `[B, D]`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        tch::no_grad(|| self.projector.forward_t(&pool(&self.backbone.forward_t(xs, train)), train))
    }
}

/// Eq. 2 for one view order: `2 - 2 cos(v, z)` per sample, batch mean
/// (`cos` of the L2-normalised vectors, norms clamped at 1e-12 like
/// `F.normalize`).
///
/// # Shapes
/// `v`, `z`: `[B, D]` -> scalar.
pub fn byol_loss(v: &Tensor, z: &Tensor) -> Tensor {
    let v = normalize(v);
    let z = normalize(z);
    let kind = crate::precision::wide_kind(v.kind());
    let cos = (v * z).sum_dim_intlist(-1, false, kind); // [B]
    (cos * -2.0 + 2.0).mean(kind)
}

fn normalize(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2, -1, true).clamp_min(1e-12)
}

/// The symmetrized L_s: the mean of [`byol_loss`] over both view orders.
/// `v1`, `v2` are online predictions of views 1 and 2, `z1`, `z2` the target
/// projections of views 1 and 2.
pub fn symmetric_loss(v1: &Tensor, v2: &Tensor, z1: &Tensor, z2: &Tensor) -> Tensor {
    (byol_loss(v1, &z2.detach()) + byol_loss(v2, &z1.detach())) * 0.5
}

/// Whether a variable is a BatchNorm buffer (not updated by the EMA).
pub fn is_buffer(name: &str) -> bool {
    name.ends_with("running_mean") || name.ends_with("running_var") || name.ends_with("num_batches_tracked")
}

/// Eq. 1, in place and without gradient: for every non-buffer variable of
/// `target`, `target <- tau * target + (1 - tau) * online[name]`.
/// Fails, before changing anything, when a target parameter has no online
/// partner of the same name and shape.
pub fn ema_update(target: &HashMap<String, Tensor>, online: &HashMap<String, Tensor>, tau: f64) -> Result<()> {
    let mut pairs = Vec::with_capacity(target.len());
    for (name, t) in target.iter().filter(|(n, _)| !is_buffer(n)) {
        match online.get(name) {
            Some(o) if o.size() == t.size() => pairs.push((t, o)),
            found => {
                return Err(ModelError::InvalidConfig(format!(
                    "EMA: target parameter {name} {:?} has no online partner of that shape (found {:?})",
                    t.size(),
                    found.map(|o| o.size())
                )))
            }
        }
    }
    tch::no_grad(|| {
        for (t, o) in pairs {
            let mut t = t.shallow_clone();
            let _ = t.g_mul_scalar_(tau);
            let _ = t.g_add_(&(o * (1.0 - tau)));
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn byol_loss_is_zero_for_parallel_and_four_for_opposite_vectors() {
        let v = Tensor::from_slice(&[1.0f32, 2.0, 3.0, -1.0, 0.5, 2.0]).reshape([2, 3]);
        assert!(byol_loss(&v, &(&v * 3.0)).double_value(&[]).abs() < 1e-6);
        assert!((byol_loss(&v, &(-&v)).double_value(&[]) - 4.0).abs() < 1e-6);
    }

    #[test]
    fn ema_moves_parameters_and_leaves_buffers() {
        let t = HashMap::from([
            ("a.weight".to_string(), Tensor::zeros([2], (Kind::Float, Device::Cpu))),
            ("a.running_mean".to_string(), Tensor::zeros([2], (Kind::Float, Device::Cpu))),
        ]);
        let o = HashMap::from([
            ("a.weight".to_string(), Tensor::ones([2], (Kind::Float, Device::Cpu))),
            ("a.running_mean".to_string(), Tensor::ones([2], (Kind::Float, Device::Cpu))),
        ]);
        ema_update(&t, &o, 0.99).unwrap();
        assert!((t["a.weight"].double_value(&[0]) - 0.01).abs() < 1e-7);
        assert_eq!(t["a.running_mean"].double_value(&[0]), 0.0);
        let missing = HashMap::from([("b.weight".to_string(), Tensor::zeros([2], (Kind::Float, Device::Cpu)))]);
        assert!(ema_update(&missing, &o, 0.99).is_err());
    }
}
