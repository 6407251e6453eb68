//! [`Group`]: a c10d process group (TCPStore rendezvous + Gloo or NCCL
//! backend) behind the C ABI of `model/csrc/dist.cpp`.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::time::Duration;

use tch::{Device, Tensor};

use super::Launch;

/// A collective that failed, or a group that could not be made.
#[derive(Debug, thiserror::Error)]
#[error("rank {rank} of {world}: {what}: {message}")]
pub struct DistError {
    /// This process's rank.
    pub rank: usize,
    /// The world size.
    pub world: usize,
    /// What was being done.
    pub what: String,
    /// c10d's message.
    pub message: String,
}

/// The collective library behind a [`Group`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Gloo: CPU tensors (the CPU tests, CPU training).
    Gloo,
    /// NCCL: CUDA tensors, one GPU per process.
    Nccl,
}

impl Backend {
    /// NCCL for a CUDA device, Gloo otherwise (what torch users pick).
    pub fn for_device(device: Device) -> Self {
        if device.is_cuda() {
            Self::Nccl
        } else {
            Self::Gloo
        }
    }

    /// The name c10d uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gloo => "gloo",
            Self::Nccl => "nccl",
        }
    }
}

mod ffi {
    use super::*;
    extern "C" {
        pub fn mcsfau_dist_new(
            backend: *const c_char,
            host: *const c_char,
            port: u16,
            rank: c_int,
            size: c_int,
            timeout_ms: i64,
            local_rank: c_int,
            err: *mut c_char,
            err_len: usize,
        ) -> *mut c_void;
        pub fn mcsfau_dist_free(group: *mut c_void);
        pub fn mcsfau_dist_has_nccl() -> c_int;
        pub fn mcsfau_dist_all_reduce_sum(
            group: *mut c_void,
            tensors: *const *mut torch_sys::C_tensor,
            n: usize,
            err: *mut c_char,
            err_len: usize,
        ) -> c_int;
        pub fn mcsfau_dist_broadcast(
            group: *mut c_void,
            tensors: *const *mut torch_sys::C_tensor,
            n: usize,
            root: c_int,
            err: *mut c_char,
            err_len: usize,
        ) -> c_int;
        pub fn mcsfau_dist_sync_batch_norm(
            group: *mut c_void,
            x: *mut torch_sys::C_tensor,
            w: *mut torch_sys::C_tensor,
            b: *mut torch_sys::C_tensor,
            running_mean: *mut torch_sys::C_tensor,
            running_var: *mut torch_sys::C_tensor,
            momentum: f64,
            eps: f64,
            err: *mut c_char,
            err_len: usize,
        ) -> *mut torch_sys::C_tensor;
    }
}

pub(super) const ERR_LEN: usize = 2048;

/// A process group of every rank of the job.
#[derive(Debug)]
pub struct Group {
    raw: *mut c_void,
    rank: usize,
    world: usize,
    backend: Backend,
}

// The c10d backend is made for use from several threads (torch calls it
// from the autograd engine's); mcsfau issues collectives from one thread
// at a time, in the same order on every rank.
unsafe impl Send for Group {}
unsafe impl Sync for Group {}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: `raw` came from mcsfau_dist_new and is freed once.
        unsafe { ffi::mcsfau_dist_free(self.raw) }
    }
}

pub(super) fn message(buf: &[c_char]) -> String {
    // SAFETY: the C side writes a NUL-terminated string into the buffer.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().trim().to_string();
    if s.is_empty() {
        "no message".into()
    } else {
        s
    }
}

impl Group {
    /// Whether this build has the NCCL backend.
    pub fn has_nccl() -> bool {
        // SAFETY: no arguments, no state.
        unsafe { ffi::mcsfau_dist_has_nccl() != 0 }
    }

    /// Meets the other ranks at `launch`'s rendezvous (waiting up to
    /// `timeout` for all of them) and makes the backend.
    pub fn new(launch: &Launch, backend: Backend, timeout: Duration) -> Result<Self, DistError> {
        let fail = |message: String| DistError {
            rank: launch.rank,
            world: launch.world,
            what: format!("joining the {} group at {}:{}", backend.name(), launch.master_addr, launch.master_port),
            message,
        };
        let host = CString::new(launch.master_addr.as_str()).map_err(|e| fail(e.to_string()))?;
        let name = CString::new(backend.name()).map_err(|e| fail(e.to_string()))?;
        let mut err = vec![0 as c_char; ERR_LEN];
        let ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        // SAFETY: valid C strings and an error buffer of ERR_LEN bytes.
        let raw = unsafe {
            ffi::mcsfau_dist_new(
                name.as_ptr(),
                host.as_ptr(),
                launch.master_port,
                launch.rank as c_int,
                launch.world as c_int,
                ms,
                launch.local_rank as c_int,
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        if raw.is_null() {
            return Err(fail(message(&err)));
        }
        Ok(Self { raw, rank: launch.rank, world: launch.world, backend })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn world(&self) -> usize {
        self.world
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The C handle, for the reducer.
    pub(super) fn raw(&self) -> *mut c_void {
        self.raw
    }

    pub(super) fn error(&self, what: &str, err: &[c_char]) -> DistError {
        DistError { rank: self.rank, world: self.world, what: what.to_string(), message: message(err) }
    }

    /// Sums each tensor over the ranks, in place (one collective per
    /// tensor, all in flight together). Contiguous tensors on the backend's
    /// device (CPU for Gloo, this rank's GPU for NCCL).
    pub fn all_reduce_sum(&self, tensors: &[&Tensor], what: &str) -> Result<(), DistError> {
        let ptrs: Vec<*mut torch_sys::C_tensor> = tensors.iter().map(|t| t.as_ptr() as *mut _).collect();
        let mut err = vec![0 as c_char; ERR_LEN];
        // SAFETY: live tensors, an error buffer of ERR_LEN bytes.
        let rc =
            unsafe { ffi::mcsfau_dist_all_reduce_sum(self.raw, ptrs.as_ptr(), ptrs.len(), err.as_mut_ptr(), ERR_LEN) };
        if rc == 0 {
            Ok(())
        } else {
            Err(self.error(what, &err))
        }
    }

    /// Rank `root`'s values into each tensor on every rank, in place.
    pub fn broadcast(&self, tensors: &[&Tensor], root: usize, what: &str) -> Result<(), DistError> {
        let ptrs: Vec<*mut torch_sys::C_tensor> = tensors.iter().map(|t| t.as_ptr() as *mut _).collect();
        let mut err = vec![0 as c_char; ERR_LEN];
        // SAFETY: as in all_reduce_sum.
        let rc = unsafe {
            ffi::mcsfau_dist_broadcast(self.raw, ptrs.as_ptr(), ptrs.len(), root as c_int, err.as_mut_ptr(), ERR_LEN)
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(self.error(what, &err))
        }
    }

    /// Training-mode BatchNorm over the batches of every rank (autograd
    /// through it all-reduces the gradient sums), updating the running
    /// statistics in place.
    #[allow(clippy::too_many_arguments)]
    pub fn sync_batch_norm(
        &self,
        x: &Tensor,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        running_mean: Option<&Tensor>,
        running_var: Option<&Tensor>,
        momentum: f64,
        eps: f64,
    ) -> Result<Tensor, DistError> {
        let p = |t: Option<&Tensor>| t.map_or(std::ptr::null_mut(), |t| t.as_ptr() as *mut _);
        let mut err = vec![0 as c_char; ERR_LEN];
        // SAFETY: live tensors or null; the result is a new at::Tensor that
        // tch owns (and frees with delete, as it allocates its own).
        let out = unsafe {
            ffi::mcsfau_dist_sync_batch_norm(
                self.raw,
                x.as_ptr() as *mut _,
                p(weight),
                p(bias),
                p(running_mean),
                p(running_var),
                momentum,
                eps,
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        if out.is_null() {
            return Err(self.error("synchronised BatchNorm", &err));
        }
        // SAFETY: a fresh tensor from `new at::Tensor`.
        Ok(unsafe { Tensor::from_ptr(out) })
    }
}
