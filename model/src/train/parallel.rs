//! The data-parallel side of [`super::pretrain`]: joining the group, making
//! every rank start from rank 0's weights, agreeing on the end of an epoch,
//! and what a resume at another world size does. The collectives
//! themselves are in [`crate::dist`].

use std::sync::Arc;
use std::time::Duration;

use tch::Device;

use super::config::DistConfig;
use super::error::{Result, TrainError};
use super::step::{RankPart, Trainer};
use crate::dist::norm::BatchNormMode;
use crate::dist::{grad, Backend, DistError, Group, Launch, Reducer};

/// How this process takes part in a data-parallel run.
#[derive(Debug, Clone)]
pub struct DistOptions {
    /// Rank, world size and rendezvous (from torchrun's or Slurm's variables).
    pub launch: Launch,
    /// The collective library; `None`: NCCL on CUDA, Gloo on the CPU.
    pub backend: Option<Backend>,
    /// How long the rendezvous and each collective may wait.
    pub timeout: Duration,
}

impl DistOptions {
    /// `launch` with the default backend and timeout.
    pub fn new(launch: Launch) -> Self {
        Self { launch, backend: None, timeout: crate::dist::DEFAULT_TIMEOUT }
    }
}

pub(crate) fn dist_error(e: DistError) -> TrainError {
    TrainError::Dist { source: e, last_checkpoint: String::new() }
}

/// The device of this rank: `cuda:LOCAL_RANK` when the run is on CUDA (one
/// process per GPU), else `device`.
pub(crate) fn rank_device(device: Device, d: &DistOptions) -> Result<Device> {
    match device {
        Device::Cuda(_) => {
            let count = tch::Cuda::device_count().max(0) as usize;
            if d.launch.local_rank >= count {
                return Err(TrainError::Config(format!(
                    "LOCAL_RANK {} but this machine has {count} CUDA device(s): start at most one process per GPU",
                    d.launch.local_rank
                )));
            }
            Ok(Device::Cuda(d.launch.local_rank))
        }
        other => Ok(other),
    }
}

/// Joins the group (waits for every rank, up to the timeout).
pub(crate) fn join(d: &DistOptions, device: Device) -> Result<Arc<Group>> {
    let backend = d.backend.unwrap_or(Backend::for_device(device));
    if backend == Backend::Nccl && !device.is_cuda() {
        return Err(TrainError::Config("the NCCL backend needs a CUDA device (use gloo on the CPU)".into()));
    }
    if backend == Backend::Nccl && !Group::has_nccl() {
        return Err(TrainError::Config(
            "this build of mcsfau has no NCCL backend (it was built against a CPU-only libtorch)".into(),
        ));
    }
    tracing::info!(
        rank = d.launch.rank,
        world = d.launch.world,
        backend = backend.name(),
        master = %format!("{}:{}", d.launch.master_addr, d.launch.master_port),
        "joining the data-parallel group"
    );
    Ok(Arc::new(Group::new(&d.launch, backend, d.timeout).map_err(dist_error)?))
}

/// The part every step needs.
pub(crate) fn rank_part(group: &Arc<Group>, batch: usize, cfg: &DistConfig) -> RankPart {
    RankPart {
        group: group.clone(),
        batch,
        bucket_bytes: (cfg.bucket_mb * (1 << 20) as f64).max(1.0) as usize,
        sync_buffers: cfg.batch_norm == BatchNormMode::Local,
        reducer: None,
    }
}

/// With `dist.overlap`, hooks the trainer's parameters to c10d's reducer
/// (after the weights are shared: the hooks average gradients only).
pub(crate) fn attach_reducer(t: &mut Trainer, overlap: bool) -> Result<()> {
    let params = t.opt.parameters();
    if let Some(part) = t.dist.as_mut().filter(|_| overlap) {
        let reducer = Reducer::new(&part.group, &params, part.bucket_bytes).map_err(dist_error)?;
        part.reducer = Some(Arc::new(reducer));
    }
    Ok(())
}

/// Copies rank 0's weights, BatchNorm statistics and momentum buffers to
/// every rank (all ranks seed alike, this makes it certain).
pub(crate) fn broadcast_state(t: &Trainer, part: &RankPart) -> Result<()> {
    let mut tensors = Vec::new();
    for vs in [t.model.online(), t.model.target()] {
        let mut vars: Vec<_> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        tensors.extend(vars.into_iter().map(|(_, v)| v));
    }
    tensors.extend(t.opt.buffers().values().map(|b| b.shallow_clone()));
    grad::broadcast_packed(&part.group, &tensors, 0, "sharing rank 0's weights").map_err(dist_error)
}

/// With per-rank BatchNorm statistics (`local`), replaces every rank's
/// running statistics by their mean over the ranks; nothing otherwise.
/// Every rank calls it at the same steps (before a checkpoint).
pub(crate) fn sync_buffers(t: &Trainer) -> Result<()> {
    let Some(part) = t.dist.as_ref().filter(|p| p.sync_buffers) else { return Ok(()) };
    let buffers: Vec<tch::Tensor> = [t.model.online(), t.model.target()]
        .into_iter()
        .flat_map(|vs| {
            let mut v: Vec<_> = vs.variables().into_iter().filter(|(n, _)| crate::byol::is_buffer(n)).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v.into_iter().map(|(_, t)| t)
        })
        .collect();
    grad::average(&part.group, &buffers, part.bucket_bytes, "averaging the BatchNorm statistics").map_err(dist_error)
}

/// Fails on every rank unless all ranks start from the same step, epoch
/// and batch (a resume where the ranks found different checkpoints: the
/// run folder was not shared, or was written to meanwhile).
pub(crate) fn check_same_start(part: &RankPart, start: [u64; 3], model_device: Device) -> Result<()> {
    let device = part.value_device(model_device);
    // Equal everywhere iff the mean of the squares is the square of the mean.
    let v: Vec<f64> = start.iter().map(|&x| x as f64).collect();
    let sq: Vec<f64> = v.iter().map(|x| x * x).collect();
    let m =
        grad::mean_values(&part.group, &[v, sq].concat(), device, "comparing the ranks' start").map_err(dist_error)?;
    if (0..3).any(|i| (m[3 + i] - m[i] * m[i]).abs() > 1e-6 * m[3 + i].max(1.0)) {
        return Err(TrainError::Config(format!(
            "the ranks start from different points (this rank: step {}, epoch {}, batch {}): on --resume every \
             rank must read the same checkpoint, so --out must be one folder all ranks see",
            start[0], start[1], start[2]
        )));
    }
    Ok(())
}

/// Whether every rank has a batch for the next step (a rank whose slice ran
/// out, or whose loader failed, ends the epoch for all).
pub(crate) fn all_have_batch(part: &RankPart, have: bool, model_device: Device) -> Result<bool> {
    let device = part.value_device(model_device);
    let mean = grad::mean_values(&part.group, &[if have { 1.0 } else { 0.0 }], device, "agreeing on the next batch")
        .map_err(dist_error)?;
    Ok(mean.first().is_some_and(|&m| m > 1.0 - 1e-9))
}

/// `MCSFAU_TEST_ABORT_AT_STEP=N`: abort this process (like a kill) when it
/// is about to train step N. For the tests of a rank dying mid-run.
pub(crate) fn abort_hook() -> Option<u64> {
    std::env::var("MCSFAU_TEST_ABORT_AT_STEP").ok()?.trim().parse().ok()
}

/// The data-parallel options of this process from its environment (see
/// [`Launch::from_vars`]) and the CLI's `--dist-backend auto|gloo|nccl`
/// and `--dist-timeout` seconds; `None` without launcher variables.
pub fn options_from_env(backend: &str, timeout_s: u64) -> std::result::Result<Option<DistOptions>, String> {
    let backend = match backend {
        "auto" => None,
        "gloo" => Some(Backend::Gloo),
        "nccl" => Some(Backend::Nccl),
        other => return Err(format!("--dist-backend {other:?}: expected auto, gloo or nccl")),
    };
    let Some(launch) = Launch::from_env()? else { return Ok(None) };
    Ok(Some(DistOptions { launch, backend, timeout: Duration::from_secs(timeout_s.max(1)) }))
}
