//! One pretraining step (paper section 3.4), top to bottom: views of the
//! loader batch, the step's random draws, the four losses of eq. 7, the
//! non-finite guard, (every N steps) the learning diagnostics, backward,
//! the SGD update, the EMA update of eq. 1.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tch::Device;

use super::diagnostics::{self, Diagnostics};
use super::error::{Result, TrainError};
use super::sgd::Sgd;
use crate::config::ModelConfig;
use crate::data::{self, Augmenter};
use crate::dist::{grad, norm, Backend, DistError, Group, Reducer};
use crate::mcsfau::{Batch, Draws, McSfau};

/// The terms of eq. 7 of one step, as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossValues {
    /// L_s (MFDC, eq. 2).
    pub l_s: f64,
    /// L_d (landmark refinement, eq. 3).
    pub l_d: f64,
    /// L_r (reconstruction, eq. 5).
    pub l_r: f64,
    /// L_c (MCI, eq. 6), unweighted.
    pub l_c: f64,
    /// L_total = L_s + L_d + L_r + alpha L_c (eq. 7).
    pub total: f64,
}

impl LossValues {
    /// `(name, value)` of every term, in eq. 7 order, total last.
    pub fn named(&self) -> [(&'static str, f64); 5] {
        [("l_s", self.l_s), ("l_d", self.l_d), ("l_r", self.l_r), ("l_c", self.l_c), ("total", self.total)]
    }

    /// The first term that is NaN or infinite.
    pub fn first_non_finite(&self) -> Option<(&'static str, f64)> {
        self.named().into_iter().find(|(_, v)| !v.is_finite())
    }
}

/// What a step works with: the model, its optimizer, the view sampler.
#[derive(Debug)]
pub struct Trainer {
    /// Online and target networks.
    pub model: McSfau,
    /// SGD over the online store.
    pub opt: Sgd,
    /// Draws P1 and P2.
    pub augmenter: Augmenter,
    /// Seed of the per-step libtorch generator and the augmentation.
    pub seed: u64,
    /// Step (1-based) at which L_r is made NaN, for testing the guard.
    pub nan_at_step: Option<u64>,
    /// Compute [`Diagnostics`] every this many steps (0: never).
    pub diagnostics_every: u64,
    /// This rank's part in a data-parallel run (None: one process).
    pub dist: Option<RankPart>,
}

/// What a step reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutput {
    /// The loss terms.
    pub losses: LossValues,
    /// The learning diagnostics, on the steps they are due.
    pub diagnostics: Option<Diagnostics>,
}

/// The libtorch seed of `step`: a pure function of `(seed, step)` (a
/// SplitMix64 round), so a resumed run re-creates the generator state
/// without saving libtorch's internal state.
pub fn step_seed(seed: u64, step: u64) -> i64 {
    let mut z = seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 1) as i64
}

/// A data-parallel rank's part in every step: draw for the global batch,
/// keep this rank's rows, average the losses and gradients over the ranks.
#[derive(Debug, Clone)]
pub struct RankPart {
    /// The process group.
    pub group: Arc<Group>,
    /// Samples per rank (every rank's batch has exactly this many).
    pub batch: usize,
    /// Gradient bucket size, bytes.
    pub bucket_bytes: usize,
    /// The reducer that averages the gradients during backward (None:
    /// after it, bucket by bucket).
    pub reducer: Option<Arc<Reducer>>,
    /// Average the BatchNorm running statistics over the ranks before each
    /// checkpoint (`local` mode, where each rank's differ; training itself
    /// never reads them), so every rank holds the same model.
    pub sync_buffers: bool,
}

impl RankPart {
    /// Where the group's collectives take host values: the CPU for Gloo,
    /// the model's GPU for NCCL.
    pub(crate) fn value_device(&self, model: Device) -> Device {
        match self.group.backend() {
            Backend::Gloo => Device::Cpu,
            Backend::Nccl => model,
        }
    }
}

/// Step `step` (1-based) on `batch` at learning rate `lr`. A NaN or
/// infinite term returns [`TrainError::NonFinite`] before any weight moves
/// (on every rank of a data-parallel run: the terms are averaged first).
pub fn train_step(t: &mut Trainer, batch: &data::Batch, step: u64, lr: f64) -> Result<StepOutput> {
    let dist_err = |e: DistError| TrainError::Dist { source: e, last_checkpoint: String::new() };
    // Every random draw of this step comes from (seed, step).
    tch::manual_seed(step_seed(t.seed, step));
    let cfg: &ModelConfig = t.model.config();
    let device = t.model.device();
    let b = batch.len();
    // P, P1, P2 and P's landmarks on the device; cascade jitter and mask
    // decisions. A rank draws for the global batch and keeps its rows.
    let (views, draws) = match &t.dist {
        None => (t.augmenter.views(&batch.images, &batch.landmarks, step)?, Draws::sample(cfg, b as i64, device)),
        Some(d) => {
            if b != d.batch {
                return Err(TrainError::Config(format!(
                    "rank {} got a batch of {b}, not {} (data-parallel batches are full)",
                    d.group.rank(),
                    d.batch
                )));
            }
            let (offset, total) = (d.group.rank() * b, d.group.world() * b);
            let views = t.augmenter.views_part(&batch.images, &batch.landmarks, step, offset, total)?;
            (views, Draws::sample_part(cfg, b as i64, offset as i64, total as i64, device))
        }
    };
    let inputs = Batch { p: &views.p, p1: &views.p1, p2: &views.p2, landmarks: &views.landmarks };
    if let Some(r) = t.dist.as_ref().and_then(|d| d.reducer.as_ref()) {
        r.rebuild().map_err(dist_err)?;
    }
    // Eq. 7: L_total = L_s + L_d + L_r + alpha L_c.
    let mut losses = t.model.losses(&inputs, &draws, true)?;
    if let Some(e) = norm::take_error() {
        return Err(dist_err(e));
    }
    if t.nan_at_step == Some(step) {
        losses.l_r = &losses.l_r * f64::NAN;
        losses.total = &losses.total + &losses.l_r;
    }
    let mut v = losses.values();
    if let Some(d) = &t.dist {
        // The global batch's losses (every term is a batch mean, the ranks'
        // batches are equal): what rank 0 logs and every rank checks.
        let mean = grad::mean_values(&d.group, &v, d.value_device(device), "averaging the losses").map_err(dist_err)?;
        v.copy_from_slice(&mean[..5]);
    }
    let [l_s, l_d, l_r, l_c, total] = v;
    let values = LossValues { l_s, l_d, l_r, l_c, total };
    if let Some((term, value)) = values.first_non_finite() {
        return Err(TrainError::NonFinite { term, step, value, last_checkpoint: String::new() });
    }
    // Separate backward passes into the backbone, graph kept (no RNG drawn,
    // nothing accumulated): a resumed run logs the same values.
    let due = t.diagnostics_every > 0 && step % t.diagnostics_every == 0;
    let diagnostics = due.then(|| diagnostics::diagnose(&t.model, &inputs, &losses));
    // Backward through the online store (the ranks' mean gradient: reduced
    // bucket by bucket during backward, or after it), SGD, then the
    // target's EMA (eq. 1): identical on every rank.
    t.opt.zero_grad();
    if let Some(r) = t.dist.as_ref().and_then(|d| d.reducer.as_ref()) {
        r.prepare(&losses.total).map_err(dist_err)?;
    }
    losses.total.f_backward().map_err(|e| match &t.dist {
        // a synchronised BatchNorm's backward all-reduce failed
        Some(d) => dist_err(DistError {
            rank: d.group.rank(),
            world: d.group.world(),
            what: "backward".into(),
            message: e.to_string(),
        }),
        None => TrainError::Torch(e),
    })?;
    if let Some(d) = t.dist.as_ref().filter(|d| d.reducer.is_none()) {
        grad::average_gradients(&d.group, &t.opt.gradients(), d.bucket_bytes).map_err(dist_err)?;
    }
    t.opt.step(lr);
    t.model.ema_update()?;
    Ok(StepOutput { losses: values, diagnostics })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_seeds_differ_by_step_and_seed_and_are_non_negative() {
        let a: Vec<i64> = (0..100).map(|s| step_seed(0, s)).collect();
        let mut u = a.clone();
        u.sort();
        u.dedup();
        assert_eq!(u.len(), 100);
        assert!(a.iter().all(|&s| s >= 0));
        assert_ne!(step_seed(1, 5), step_seed(0, 5));
        assert_eq!(step_seed(1, 5), step_seed(1, 5));
    }

    #[test]
    fn the_first_non_finite_term_is_named() {
        let v = LossValues { l_s: 1.0, l_d: f64::INFINITY, l_r: f64::NAN, l_c: 0.0, total: f64::NAN };
        assert_eq!(v.first_non_finite().map(|(n, _)| n), Some("l_d"));
        let ok = LossValues { l_d: 2.0, l_r: 0.5, total: 3.5, ..v };
        assert!(ok.first_non_finite().is_none());
    }
}
