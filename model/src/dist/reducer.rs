//! [`Reducer`]: gradient averaging overlapped with backward, by c10d's
//! `Reducer` (the engine of torch's DistributedDataParallel). Autograd
//! hooks on every parameter's gradient accumulator mark it ready; a bucket
//! (the first 1 MiB, then `dist.bucket_mb`) is all-reduced as soon as all
//! its gradients are, while backward goes on; at the end of backward the
//! gradients hold their mean over the ranks. After the first step the
//! buckets follow the order the gradients became ready in. Every parameter
//! must get a gradient every step (MC-SFAU's do; the reducer's error lists
//! any that did not, by name with `TORCH_DISTRIBUTED_DEBUG=DETAIL`).

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use tch::Tensor;

use super::group::{Group, ERR_LEN};
use super::DistError;

extern "C" {
    fn mcsfau_dist_reducer_new(
        group: *mut c_void,
        params: *const *mut torch_sys::C_tensor,
        names: *const *const c_char,
        n: usize,
        bucket_bytes: i64,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut c_void;
    fn mcsfau_dist_reducer_prepare(
        reducer: *mut c_void,
        output: *mut torch_sys::C_tensor,
        err: *mut c_char,
        err_len: usize,
    ) -> i32;
    fn mcsfau_dist_reducer_rebuild(reducer: *mut c_void, err: *mut c_char, err_len: usize) -> i32;
    fn mcsfau_dist_reducer_free(reducer: *mut c_void);
}

/// A reducer over a fixed list of parameters (the same order on every rank).
#[derive(Debug)]
pub struct Reducer {
    raw: *mut c_void,
    group: Arc<Group>,
}

// Called from the training thread only; c10d's reducer locks internally
// for its autograd hooks.
unsafe impl Send for Reducer {}
unsafe impl Sync for Reducer {}

impl Drop for Reducer {
    fn drop(&mut self) {
        // SAFETY: `raw` came from mcsfau_dist_reducer_new, freed once,
        // before the group it uses (held by `self.group`).
        unsafe { mcsfau_dist_reducer_free(self.raw) }
    }
}

impl Reducer {
    /// Hooks `params` (trainable leaves, with their names for the
    /// reducer's messages) for averaging over `group`.
    pub fn new(group: &Arc<Group>, params: &[(String, Tensor)], bucket_bytes: usize) -> Result<Self, DistError> {
        let ptrs: Vec<*mut torch_sys::C_tensor> = params.iter().map(|(_, t)| t.as_ptr() as *mut _).collect();
        let names: Vec<CString> =
            params.iter().map(|(n, _)| CString::new(n.replace('\0', "")).unwrap_or_default()).collect();
        let name_ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
        let mut err = vec![0 as c_char; ERR_LEN];
        let cap = i64::try_from(bucket_bytes).unwrap_or(i64::MAX);
        // SAFETY: live tensors, an error buffer of ERR_LEN bytes; the group
        // outlives the reducer (an Arc held by it).
        let raw = unsafe {
            mcsfau_dist_reducer_new(
                group.raw(),
                ptrs.as_ptr(),
                name_ptrs.as_ptr(),
                ptrs.len(),
                cap,
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        if raw.is_null() {
            return Err(group.error("setting up the gradient reducer", &err));
        }
        Ok(Self { raw, group: group.clone() })
    }

    /// Before each step's forward: once, after the first backward, orders
    /// the buckets as the gradients became ready (as DDP does).
    pub fn rebuild(&self) -> Result<(), DistError> {
        let mut err = vec![0 as c_char; ERR_LEN];
        // SAFETY: an error buffer of ERR_LEN bytes.
        let rc = unsafe { mcsfau_dist_reducer_rebuild(self.raw, err.as_mut_ptr(), ERR_LEN) };
        if rc == 0 {
            Ok(())
        } else {
            Err(self.group.error("re-bucketing the gradient reducer", &err))
        }
    }

    /// Arms the hooks for the backward pass from `loss` (call right before
    /// it, every step).
    pub fn prepare(&self, loss: &Tensor) -> Result<(), DistError> {
        let mut err = vec![0 as c_char; ERR_LEN];
        // SAFETY: a live tensor and an error buffer of ERR_LEN bytes.
        let rc = unsafe { mcsfau_dist_reducer_prepare(self.raw, loss.as_ptr() as *mut _, err.as_mut_ptr(), ERR_LEN) };
        if rc == 0 {
            Ok(())
        } else {
            Err(self.group.error("preparing the gradient reducer", &err))
        }
    }
}
