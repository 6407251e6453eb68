//! Learning diagnostics, logged every `output.diagnostics_every` steps
//! (`log.jsonl` field `diagnostics`, the bottom row of `losses.png`): what
//! tells a run that learns from one that only lowers its loss.
//!
//! * `proj_std`: the standard deviation across the batch of the
//!   L2-normalised online projections g(pool(F_mac)), averaged over the D
//!   dimensions and multiplied by sqrt(D). About 1 when the projections
//!   spread over the sphere, falling to 0 when they collapse to one point
//!   (the failure BYOL-style objectives are known for; SimSiam's measure).
//! * `grad_norm`: the L2 norm of the gradient each loss term (as weighted in
//!   eq. 7: `alpha L_c`) sends into the online backbone alone, from separate
//!   backward passes (`torch.autograd.grad`, nothing accumulated): which
//!   term drives the representation.
//! * `drift_px`: the mean distance ||p_k - p_1|| in pixels between the
//!   refined points and the cached landmarks (where the masks sit).
//! * `loc_rms_px` (the `locate` detector): the root-mean-square distance
//!   `sqrt(mean ||p_2 - p_1||^2)` over the batch's points, in the model's
//!   image pixels: how well the detector finds the landmarks from F_p.
//! * `loc_template_rms_px`: the same distance for the alignment template
//!   (`sqrt(mean ||T - p_1||^2)`), the floor that "predicting nothing"
//!   scores. A detector that learns falls below it.
//! * `mask_fraction`: the fraction of feature-map cells masked in the batch.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::locator;
use crate::mcsfau::{Batch, Losses, McSfau};

/// The gradient norm each term of eq. 7 sends into the backbone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TermGradients {
    /// From L_s.
    pub l_s: f64,
    /// From L_d.
    pub l_d: f64,
    /// From L_r.
    pub l_r: f64,
    /// From alpha * L_c.
    pub l_c: f64,
}

/// One step's diagnostics (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// Spread of the normalised projections x sqrt(D): ~1 healthy, -> 0
    /// collapse (MFDC on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proj_std: Option<f64>,
    /// Backbone gradient norm per term.
    pub grad_norm: TermGradients,
    /// Mean ||p_k - p_1|| in pixels (MFRR on).
    pub drift_px: Option<f64>,
    /// RMS ||p_2 - p_1|| in pixels (the `locate` detector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loc_rms_px: Option<f64>,
    /// RMS ||T - p_1|| in pixels, the template's floor (the `locate` detector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loc_template_rms_px: Option<f64>,
    /// Fraction of feature cells masked in the batch (MFRR on).
    pub mask_fraction: Option<f64>,
}

impl TermGradients {
    /// Each term's share of the summed norms (for the docs' tables).
    pub fn shares(&self) -> [f64; 4] {
        let v = [self.l_s, self.l_d, self.l_r, self.l_c];
        let sum: f64 = v.iter().sum();
        v.map(|x| if sum > 0.0 { x / sum } else { 0.0 })
    }
}

/// The spread of L2-normalised rows across the batch, x sqrt(D).
///
/// # Shapes
/// `z`: `[B, D]`, B >= 2.
pub fn projection_spread(z: &Tensor) -> f64 {
    let d = z.size()[1] as f64;
    let z = z.to_kind(Kind::Double);
    let unit = &z / z.norm_scalaropt_dim(2, [-1i64].as_slice(), true).clamp_min(1e-12);
    unit.std_dim([0i64].as_slice(), false, false).mean(Kind::Double).double_value(&[]) * d.sqrt()
}

fn grad_norm(term: &Tensor, params: &[Tensor]) -> f64 {
    if !term.requires_grad() || params.is_empty() {
        return 0.0;
    }
    let grads = Tensor::run_backward(&[term], params, true, false);
    grads.iter().map(|g| g.to_kind(Kind::Double).square().sum(Kind::Double).double_value(&[])).sum::<f64>().sqrt()
}

/// Diagnostics of a step whose `losses` still hold their graph (call before
/// the step's own backward).
pub fn diagnose(model: &McSfau, batch: &Batch, losses: &Losses) -> Diagnostics {
    let params: Vec<Tensor> = {
        let mut v: Vec<(String, Tensor)> = model
            .online()
            .variables()
            .into_iter()
            .filter(|(n, t)| n.starts_with("backbone.") && t.requires_grad())
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.into_iter().map(|(_, t)| t).collect()
    };
    let alpha = model.config().mci.alpha;
    let grad_norm = TermGradients {
        l_s: grad_norm(&losses.l_s, &params),
        l_d: grad_norm(&losses.l_d, &params),
        l_r: grad_norm(&losses.l_r, &params),
        l_c: grad_norm(&(&losses.l_c * alpha), &params),
    };
    let drift_px = losses.refined.as_ref().map(|p| {
        let d = p.to_kind(Kind::Double) - batch.landmarks.to_kind(Kind::Double); // [B, 49, 2]
        d.square().sum_dim_intlist(-1, false, Kind::Double).sqrt().mean(Kind::Double).double_value(&[])
    });
    let mask_fraction = losses.mask.as_ref().map(|m| m.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]));
    let loc_rms_px = losses.located.as_ref().map(|p2| locator::rms_distance(p2, batch.landmarks));
    let loc_template_rms_px = losses.located.as_ref().map(|_| {
        let t = locator::template(model.config().image_size, batch.landmarks.device()).unsqueeze(0);
        locator::rms_distance(&t, batch.landmarks)
    });
    Diagnostics {
        proj_std: losses.projection.as_ref().map(projection_spread),
        grad_norm,
        drift_px,
        loc_rms_px,
        loc_template_rms_px,
        mask_fraction,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn spread_is_one_for_spread_rows_and_zero_for_collapse() {
        // The 2 x 2 identity: unit rows, per-dimension std (population) 1/2,
        // x sqrt(2) = 0.707; a 4 x 4 identity: sqrt(3)/4 * 2 = 0.866. Large
        // random batches approach 1.
        let e = Tensor::eye(2, (Kind::Float, Device::Cpu));
        assert!((projection_spread(&e) - 0.5 * 2f64.sqrt()).abs() < 1e-9);
        let z = Tensor::randn([4096, 16], (Kind::Float, Device::Cpu));
        let s = projection_spread(&z);
        assert!((s - 1.0).abs() < 0.05, "{s}");
        // Collapse: every row the same direction, any length.
        let c = Tensor::ones([8, 16], (Kind::Float, Device::Cpu))
            * Tensor::arange(8, (Kind::Float, Device::Cpu)).unsqueeze(1).g_add_scalar(1.0);
        assert!(projection_spread(&c) < 1e-9);
    }

    #[test]
    fn shares_sum_to_one() {
        let g = TermGradients { l_s: 1.0, l_d: 3.0, l_r: 0.0, l_c: 0.0 };
        assert_eq!(g.shares(), [0.25, 0.75, 0.0, 0.0]);
    }
}
