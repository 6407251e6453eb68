//! Averaging across ranks after the fact: tensors are packed into flat
//! buckets of about [`BUCKET_BYTES`] (torch DDP's default bucket size), all
//! buckets are all-reduced together (each one collective, in flight at the
//! same time), then divided by the world size and unpacked.
//!
//! Used for the gradients with `dist.overlap = false` (by default the
//! [`super::Reducer`] averages them during backward), for the BatchNorm
//! statistics of `local` mode, and for the step's few host numbers.

use tch::{Kind, Tensor};

use super::{DistError, Group};

/// Bytes per bucket (torch DDP: `bucket_cap_mb = 25`).
pub const BUCKET_BYTES: usize = 25 << 20;

/// Buckets of consecutive gradients of one dtype and device, each at most
/// `cap` bytes (a larger gradient is a bucket alone).
fn buckets(grads: &[Tensor], cap: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    let mut key = None;
    for (i, g) in grads.iter().enumerate() {
        let size = g.numel() * g.kind().elt_size_in_bytes();
        let k = (g.kind(), g.device());
        let fits = key == Some(k) && bytes + size <= cap;
        match out.last_mut() {
            Some(last) if fits => last.push(i),
            _ => {
                out.push(vec![i]);
                bytes = 0;
                key = Some(k);
            }
        }
        bytes += size;
    }
    out
}

/// Replaces every gradient by its mean over the ranks of `group`.
pub fn average_gradients(group: &Group, grads: &[Tensor], cap: usize) -> Result<(), DistError> {
    average(group, grads, cap, "averaging gradients")
}

/// Replaces every tensor by its mean over the ranks, in buckets of `cap` bytes.
pub fn average(group: &Group, tensors: &[Tensor], cap: usize, what: &str) -> Result<(), DistError> {
    let w = group.world() as f64;
    packed(tensors, cap, |flats| group.all_reduce_sum(flats, what), |flat| flat / w)
}

/// Rank `root`'s values into every tensor on every rank, packed into flat
/// buckets like the gradients (one collective per bucket, not per tensor:
/// a ResNet's BatchNorm statistics are hundreds of small tensors).
pub fn broadcast_packed(group: &Group, tensors: &[Tensor], root: usize, what: &str) -> Result<(), DistError> {
    packed(tensors, BUCKET_BYTES, |flats| group.broadcast(flats, root, what), Tensor::shallow_clone)
}

/// Packs `tensors` into flat buckets of at most `cap` bytes, runs
/// `collective` on the buckets (in place), and copies `finish(bucket)`
/// back into the tensors.
fn packed(
    tensors: &[Tensor],
    cap: usize,
    collective: impl FnOnce(&[&Tensor]) -> Result<(), DistError>,
    finish: impl Fn(&Tensor) -> Tensor,
) -> Result<(), DistError> {
    if tensors.is_empty() {
        return Ok(());
    }
    let plan = buckets(tensors, cap.max(1));
    tch::no_grad(|| {
        let flats: Vec<Tensor> = plan
            .iter()
            .map(|b| Tensor::cat(&b.iter().map(|&i| tensors[i].reshape([-1])).collect::<Vec<_>>(), 0))
            .collect();
        collective(&flats.iter().collect::<Vec<_>>())?;
        for (b, flat) in plan.iter().zip(&flats) {
            let done = finish(flat);
            let mut off = 0;
            for &i in b {
                let mut t = tensors[i].shallow_clone();
                let n = t.numel() as i64;
                t.copy_(&done.narrow(0, off, n).view_as(&t));
                off += n;
            }
        }
        Ok(())
    })
}

/// The mean over the ranks of a few host numbers (the step's losses),
/// reduced in float64 on `device` (the backend's: CPU for Gloo, the GPU
/// for NCCL).
pub fn mean_values(group: &Group, values: &[f64], device: tch::Device, what: &str) -> Result<Vec<f64>, DistError> {
    let t = Tensor::from_slice(values).to_kind(Kind::Double).to_device(device);
    group.all_reduce_sum(&[&t], what)?;
    let t = (t / group.world() as f64).to_device(tch::Device::Cpu);
    Vec::<f64>::try_from(&t).map_err(|e| DistError {
        rank: group.rank(),
        world: group.world(),
        what: what.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn buckets_hold_consecutive_gradients_up_to_the_cap() {
        let f = |n: i64| Tensor::zeros([n], (Kind::Float, Device::Cpu));
        let d = |n: i64| Tensor::zeros([n], (Kind::Double, Device::Cpu));
        // 4-byte floats: 10 + 10 fit in 80 bytes, 30 does not; a double breaks a bucket.
        let grads = [f(10), f(10), f(30), f(5), d(2), f(1)];
        assert_eq!(buckets(&grads, 80), vec![vec![0, 1], vec![2], vec![3], vec![4], vec![5]]);
        assert_eq!(buckets(&grads, 1 << 20), vec![vec![0, 1, 2, 3], vec![4], vec![5]]);
        assert_eq!(buckets(&grads[..1], 1), vec![vec![0]], "a gradient over the cap is a bucket alone");
    }
}
