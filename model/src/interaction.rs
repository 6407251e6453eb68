//! MCI, the macro-micro interaction, paper section 3.3, eq. 6:
//! `C_mac = P_M(pool(F_mac))`, `C_mic = P_R(pool(F_mic))`,
//! `L_c = KL(softmax(C_mic) || softmax(C_mac))`.
//!
//! Direction: `KL(q || p) = sum_i q_i (log q_i - log p_i)` with `q =
//! softmax(C_mic)` (the micro distribution as the reference) and `p =
//! softmax(C_mac)`, summed over the D' entries and averaged over the batch.
//! In PyTorch: `F.kl_div(F.log_softmax(C_mac, -1), F.log_softmax(C_mic, -1),
//! reduction="batchmean", log_target=True)`. Gradients reach both heads and
//! both streams.
//!
//! Each head is `Linear(C -> hidden) ReLU Linear(hidden -> D')`, variables
//! `p_m.0.*`, `p_m.2.*` (`p_r.*` likewise), as a PyTorch `nn.Sequential`.

use tch::nn;
use tch::{Reduction, Tensor};

use crate::byol::pool;
use crate::config::ModelConfig;
use crate::precision::wide_kind;

/// `Linear ReLU Linear`.
#[derive(Debug)]
struct Head {
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Head {
    fn new(p: nn::Path, c: i64, hidden: i64, dim: i64) -> Self {
        Self {
            fc1: nn::linear(&p / 0, c, hidden, Default::default()),
            fc2: nn::linear(&p / 2, hidden, dim, Default::default()),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        x.apply(&self.fc1).relu().apply(&self.fc2)
    }
}

/// The two MCI heads.
#[derive(Debug)]
pub struct Interaction {
    p_m: Head,
    p_r: Head,
}

impl Interaction {
    /// Builds `p_m` and `p_r` under `p` (pass `root / "mci"`).
    pub fn new(p: nn::Path, cfg: &ModelConfig) -> Self {
        let (c, h, d) = (cfg.feature_channels(), cfg.mci.hidden, cfg.mci.dim);
        Self { p_m: Head::new(&p / "p_m", c, h, d), p_r: Head::new(&p / "p_r", c, h, d) }
    }

    /// `(C_mac, C_mic)`.
    ///
    /// # Shapes
    /// `f_mac`, `f_mic`: `[B, C, H, W]` -> `([B, D'], [B, D'])`.
    pub fn embed(&self, f_mac: &Tensor, f_mic: &Tensor) -> (Tensor, Tensor) {
        (self.p_m.forward(&pool(f_mac)), self.p_r.forward(&pool(f_mic)))
    }

    /// `L_c` of eq. 6 for the two feature maps.
    pub fn loss(&self, f_mac: &Tensor, f_mic: &Tensor) -> Tensor {
        let (c_mac, c_mic) = self.embed(f_mac, f_mic);
        kl_mic_mac(&c_mic, &c_mac)
    }
}

/// `KL(softmax(c_mic) || softmax(c_mac))`, batch mean (see the module docs).
///
/// # Shapes
/// `c_mic`, `c_mac`: `[B, D']` -> scalar.
pub fn kl_mic_mac(c_mic: &Tensor, c_mac: &Tensor) -> Tensor {
    let b = c_mac.size()[0] as f64;
    let kind = wide_kind(c_mac.kind());
    let log_p_mac = c_mac.to_kind(kind).log_softmax(-1, kind);
    let log_q_mic = c_mic.to_kind(kind).log_softmax(-1, kind);
    log_p_mac.kl_div(&log_q_mic, Reduction::Sum, true) / b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_matches_the_hand_formula_and_its_direction() {
        // q = softmax([0, ln 3]) = (1/4, 3/4), p = softmax([0, 0]) = (1/2, 1/2).
        let c_mic = Tensor::from_slice(&[0.0f32, 3f32.ln()]).reshape([1, 2]);
        let c_mac = Tensor::from_slice(&[0.0f32, 0.0]).reshape([1, 2]);
        let want = 0.25 * (0.25f64 / 0.5).ln() + 0.75 * (0.75f64 / 0.5).ln();
        assert!((kl_mic_mac(&c_mic, &c_mac).double_value(&[]) - want).abs() < 1e-6);
        // The other direction differs: KL(p || q).
        let other = 0.5 * (0.5f64 / 0.25).ln() + 0.5 * (0.5f64 / 0.75).ln();
        assert!((kl_mic_mac(&c_mac, &c_mic).double_value(&[]) - other).abs() < 1e-6);
    }
}
