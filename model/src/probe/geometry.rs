//! How well the pretrained landmark detector (MFRR's `locate` detector,
//! eq. 3) finds the 49 points on the probe's frames: frames it never saw,
//! of another dataset, with the shard's landmarks as the truth. It tells
//! whether the geometry pretraining taught the backbone transfers.
//!
//! Distances are root-mean-square point distances `sqrt(mean ||a - b||^2)`
//! over every point of every frame, in the model's image pixels (the crops
//! are resized to the checkpoint's input side, and their landmarks with
//! them), beside the alignment template's, the floor that "predicting
//! nothing" scores.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::features::{split_loader, ExtractSpec};
use super::Progress;
use crate::data::augment::ops::normalize;
use crate::data::ShardSet;
use crate::error::Result;
use crate::locator;
use crate::mcsfau::McSfau;

/// The detector's error on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorError {
    /// The split measured (the probe's test split).
    pub split: String,
    /// Frames measured.
    pub frames: usize,
    /// Side of the model's input, pixels (the unit of the distances).
    pub image_size: i64,
    /// RMS distance of p_2 (the located points) to the shard's landmarks.
    pub p2_rms_px: f64,
    /// RMS distance of p_k (after the refinement steps).
    pub pk_rms_px: f64,
    /// RMS distance of the alignment template (the floor).
    pub template_rms_px: f64,
}

impl DetectorError {
    /// One line for the console and the Markdown report.
    pub fn line(&self) -> String {
        format!(
            "landmark detector on the {} frames ({}): RMS error p_2 {:.2} px, p_k {:.2} px, template {:.2} px (at {} px)",
            self.split, self.frames, self.p2_rms_px, self.pk_rms_px, self.template_rms_px, self.image_size
        )
    }
}

/// Sum of squared point distances of `a` to `b` and the number of points.
fn squared(a: &Tensor, b: &Tensor) -> (f64, i64) {
    let d = a.to_kind(Kind::Double) - b.to_kind(Kind::Double); // [B, 49, 2]
    (d.square().sum(Kind::Double).double_value(&[]), d.size()[0] * d.size()[1])
}

/// Runs the checkpoint's detector over the split's frames; `None` when the
/// checkpoint has no `locate` detector (MFRR off, or the `denoise` reading).
pub fn detector_error(
    model: &McSfau,
    device: Device,
    spec: &ExtractSpec,
    progress: &dyn Progress,
) -> Result<Option<DetectorError>> {
    let s = model.config().image_size;
    let probe = Tensor::zeros([1, 3, s, s], (Kind::Float, device));
    if model.locate(&probe).is_none() {
        return Ok(None);
    }
    let loader = split_loader(ShardSet::open(spec.shard_paths)?, spec, device)?;
    let template = locator::template(s, device).unsqueeze(0); // [1, 49, 2]
    let (mut p2_sum, mut pk_sum, mut t_sum, mut points, mut frames) = (0.0, 0.0, 0.0, 0i64, 0usize);
    progress.start(&format!("landmarks {}", spec.split), spec.ids.len() as u64);
    for batch in loader.epoch(0) {
        let batch = batch?;
        let side = batch.images.size()[2];
        let mut x = batch.images.to_kind(Kind::Float) / 255.0; // [B, 3, H, W]
        if side != s {
            x = x.internal_upsample_bilinear2d_aa([s, s], false, None, None);
        }
        let truth = batch.landmarks.to_kind(Kind::Double) * (s as f64 / side as f64); // [B, 49, 2] at S
        let Some((p2, pk)) = model.locate(&normalize(&x.contiguous())) else { return Ok(None) };
        let (a, n) = squared(&p2, &truth);
        p2_sum += a;
        pk_sum += squared(&pk, &truth).0;
        t_sum += squared(&template.expand_as(&truth), &truth).0;
        points += n;
        frames += batch.len();
        progress.advance(batch.len() as u64);
    }
    progress.finish();
    if points == 0 {
        return Ok(None);
    }
    let rms = |sum: f64| (sum / points as f64).sqrt();
    Ok(Some(DetectorError {
        split: spec.split.to_string(),
        frames,
        image_size: s,
        p2_rms_px: rms(p2_sum),
        pk_rms_px: rms(pk_sum),
        template_rms_px: rms(t_sum),
    }))
}
