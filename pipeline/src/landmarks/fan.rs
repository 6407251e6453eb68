//! The `fan` landmark backend: 2D-FAN (Bulat & Tzimiropoulos, ICCV 2017;
//! face_alignment's `2DFAN4`) in tch, on face boxes from dlib's HOG detector.
//!
//! As face_alignment (docs/landmarks.md): a 256x256 crop around each face box (side 200 * scale,
//! scale = (w + h) / 195, centre moved up by 0.12 of the box height, zero
//! padding), RGB in [0, 1]; the last stack's 68 heatmaps (64x64) decode to
//! points by argmax plus a quarter pixel toward the larger neighbour. The
//! score is the mean heatmap peak over the 68 points.
//!
//! Weights: a safetensors file from `scripts/convert_fan.py` (its metadata
//! gives the network shape). The device is the caller's choice, given once
//! at [`FanBackend::load`] (the `VarStore` carries it). Crops are cut on the
//! CPU in parallel (rayon), inference runs in batches of `batch_size`.

mod crop;
mod net;
pub mod service;
mod weights;

use std::path::Path;

use rayon::prelude::*;
use tch::{nn, Device, Kind, Tensor};

pub use crop::{decode, CropTransform, CROP, HEATMAP};
pub use net::{Fan, FanConfig, Pool, FAN_POINTS};
pub use weights::{read_config, FORMAT};

use crate::error::{PipelineError, Result};
use crate::landmarks::dlib::{check_frame, DetectedFace, DetectorConfig, FaceDetector};
use crate::landmarks::{Face68, FrameRef, LandmarkBackend};

/// Faces per forward pass by default (2DFAN4 at 256x256 needs ~40 MB of
/// activations per face in inference).
pub const DEFAULT_BATCH: usize = 16;

/// 2D-FAN on dlib HOG face boxes. `Send`, not `Sync`.
pub struct FanBackend {
    net: Fan,
    vs: nn::VarStore,
    detector: FaceDetector,
    batch_size: usize,
}

impl FanBackend {
    /// Loads converted weights onto `device`, with dlib's HOG detector
    /// (`detector`) finding the face boxes. Fails with
    /// [`PipelineError::LandmarkModel`] naming the file if it is missing,
    /// not converted by `scripts/convert_fan.py`, or lacks a tensor.
    pub fn load(weights: &Path, device: Device, detector: DetectorConfig) -> Result<Self> {
        let cfg = read_config(weights)?;
        let mut vs = nn::VarStore::new(device);
        let net = Fan::new(&vs.root(), &cfg);
        vs.load(weights).map_err(|e| PipelineError::LandmarkModel {
            path: weights.to_path_buf(),
            message: format!("cannot load FAN weights ({cfg:?}): {e}"),
        })?;
        vs.freeze();
        tracing::info!(?cfg, ?device, path = %weights.display(), "FAN weights loaded");
        Ok(Self { net, vs, detector: FaceDetector::new(detector), batch_size: DEFAULT_BATCH })
    }

    /// Sets the number of faces per forward pass (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The network (e.g. to compare heatmaps in tests).
    pub fn net(&self) -> &Fan {
        &self.net
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Landmarks for caller-given face boxes (x0, y0, x1, y1 in source
    /// pixels, as a face detector reports them), one per frame.
    pub fn landmarks_in_boxes(&self, frames: &[FrameRef<'_>], boxes: &[[f32; 4]]) -> Result<Vec<Face68>> {
        check_inputs(frames, boxes)?;
        let mut faces = Vec::with_capacity(frames.len());
        for (chunk_frames, chunk_boxes) in frames.chunks(self.batch_size).zip(boxes.chunks(self.batch_size)) {
            let (input, transforms) = cut_crops(chunk_frames, chunk_boxes);
            let heatmaps = run_net(&self.net, self.vs.device(), Precision::F32, &input, chunk_frames.len());
            faces.extend(decode_all(&heatmaps, &transforms, chunk_boxes));
        }
        Ok(faces)
    }
}

/// Floating-point format of the network's weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit float (the reference).
    #[default]
    F32,
    /// IEEE half precision (CUDA).
    F16,
    /// bfloat16.
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = PipelineError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "bf16" => Ok(Self::Bf16),
            _ => Err(PipelineError::Config(format!("unknown precision `{s}`, expected f32, f16 or bf16"))),
        }
    }
}

impl Precision {
    /// The tensor kind.
    pub fn kind(self) -> Kind {
        match self {
            Self::F32 => Kind::Float,
            Self::F16 => Kind::Half,
            Self::Bf16 => Kind::BFloat16,
        }
    }
}

/// Checks frames and boxes for [`FanBackend::landmarks_in_boxes`] and the
/// inference service's clients.
pub(crate) fn check_inputs(frames: &[FrameRef<'_>], boxes: &[[f32; 4]]) -> Result<()> {
    if frames.len() != boxes.len() {
        return Err(PipelineError::Landmarks {
            backend: "fan",
            frame: frames.len().min(boxes.len()),
            message: format!("{} frames but {} face boxes", frames.len(), boxes.len()),
        });
    }
    frames.iter().enumerate().try_for_each(|(i, f)| check_frame("fan", f, i))
}

/// Cuts the 256x256 crops (CPU, in parallel): planar RGB in [0, 1],
/// [N, 3, 256, 256] row-major, and their transforms.
pub(crate) fn cut_crops(frames: &[FrameRef<'_>], boxes: &[[f32; 4]]) -> (Vec<f32>, Vec<CropTransform>) {
    let transforms: Vec<CropTransform> = boxes.iter().map(|b| CropTransform::from_box(*b)).collect();
    let plane = 3 * CROP * CROP;
    let mut input = vec![0f32; frames.len() * plane];
    input.par_chunks_mut(plane).zip(frames.par_iter().zip(&transforms)).for_each(|(out, (f, t))| t.cut(f, out));
    (input, transforms)
}

/// Runs the network on `n` crops; the last stack's heatmaps on the CPU as
/// [N, 68, 64, 64] row-major f32.
pub(crate) fn run_net(net: &Fan, device: Device, precision: Precision, input: &[f32], n: usize) -> Vec<f32> {
    let xs = Tensor::from_slice(input)
        .view([n as i64, 3, CROP as i64, CROP as i64])
        .to_device(device)
        .to_kind(precision.kind());
    let hm = tch::no_grad(|| net.forward(&xs)).to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
    let len = hm.numel();
    let mut out = vec![0f32; len];
    hm.copy_data(&mut out, len);
    out
}

/// Points and scores from heatmaps, one face per transform.
pub(crate) fn decode_all(heatmaps: &[f32], transforms: &[CropTransform], boxes: &[[f32; 4]]) -> Vec<Face68> {
    let per_face = FAN_POINTS as usize * HEATMAP * HEATMAP;
    transforms
        .iter()
        .zip(boxes)
        .enumerate()
        .map(|(k, (t, b))| {
            let (points, score) = decode(&heatmaps[k * per_face..(k + 1) * per_face], t);
            Face68 { points, score, face_box: *b }
        })
        .collect()
}

impl LandmarkBackend for FanBackend {
    fn name(&self) -> &'static str {
        "fan"
    }

    fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Option<Face68>>> {
        self.detect_frames(frames)
    }

    fn has_detector(&self) -> bool {
        true
    }

    fn find_faces(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<DetectedFace>>> {
        self.detector.detect_all(frames)
    }

    fn find_faces_upsampled(&mut self, frames: &[FrameRef<'_>], upsample: u32) -> Result<Vec<Vec<DetectedFace>>> {
        self.detector.detect_all_upsampled(frames, upsample)
    }

    fn points_in_boxes(&mut self, frames: &[FrameRef<'_>], boxes: &[[f32; 4]]) -> Result<Vec<Face68>> {
        self.landmarks_in_boxes(frames, boxes)
    }
}

impl FanBackend {
    /// [`LandmarkBackend::detect`] through a shared reference (dlib HOG boxes,
    /// then the network on the frames that have a face). The backend is
    /// `Send` but not `Sync` (tch tensors are not): drive it from one thread
    /// and hand it whole batches.
    pub fn detect_frames(&self, frames: &[FrameRef<'_>]) -> Result<Vec<Option<Face68>>> {
        largest_then_points(&self.detector, frames, |f, b| self.landmarks_in_boxes(f, b))
    }
}

/// The detector's largest face in each frame, then `points` on the frames
/// that have one (in one call, so a network sees one batch); `None` for
/// the others. An error naming a frame of the batch names it in `frames`.
pub(crate) fn largest_then_points(
    detector: &FaceDetector,
    frames: &[FrameRef<'_>],
    mut points: impl FnMut(&[FrameRef<'_>], &[[f32; 4]]) -> Result<Vec<Face68>>,
) -> Result<Vec<Option<Face68>>> {
    let found = detector.detect_largest(frames)?;
    let (idx, boxes): (Vec<usize>, Vec<[f32; 4]>) =
        found.iter().enumerate().filter_map(|(i, f)| f.map(|f| (i, f.face_box))).unzip();
    let with_face: Vec<FrameRef<'_>> = idx.iter().map(|&i| frames[i]).collect();
    let faces = points(&with_face, &boxes).map_err(|e| match e {
        PipelineError::Landmarks { backend, frame, message } => {
            PipelineError::Landmarks { backend, frame: idx.get(frame).copied().unwrap_or(frame), message }
        }
        other => other,
    })?;
    let mut out = vec![None; frames.len()];
    for (i, face) in idx.into_iter().zip(faces) {
        out[i] = Some(face);
    }
    Ok(out)
}
