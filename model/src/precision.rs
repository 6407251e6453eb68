//! bf16 autocast on CUDA (docs/model.md: "bf16 autocast on CUDA as a config
//! option"; [`crate::config::ModelConfig::bf16_autocast`]).
//!
//! `tch::autocast` (tch 0.24) only switches CUDA autocast on; the reduced
//! dtype stays libtorch's CUDA default, float16. libtorch_cpu exports
//! `at::autocast::set_autocast_dtype(c10::DeviceType, c10::ScalarType)` and
//! its getter; tch does not wrap them, so they are declared here by their
//! C++ (Itanium ABI) symbol names. Both enums are `int8_t`-backed, which the
//! C calling convention passes like an `i8`. Autocast is a thread-local
//! setting of libtorch: the dtype is set right before each autocast region.
//!
//! [`wide_kind`] / [`at_least_f32`]: the losses, the landmark coordinates
//! and the masks are computed in f32 even when the networks run in bf16, and
//! in f64 when the model runs in f64 (the PyTorch parity test,
//! `model/tests/parity.rs`, runs both sides in f64 so that the CPU's kernel
//! set cannot move the result).

use tch::{Kind, Tensor};

/// The kind the numerically sensitive parts use for a tensor of `kind`:
/// f64 stays f64, everything else (bf16, f16, f32, integers) becomes f32.
pub fn wide_kind(kind: Kind) -> Kind {
    if kind == Kind::Double {
        Kind::Double
    } else {
        Kind::Float
    }
}

/// `t` in [`wide_kind`] (no copy when it already is).
pub fn at_least_f32(t: &Tensor) -> Tensor {
    t.to_kind(wide_kind(t.kind()))
}

/// `c10::DeviceType::CUDA`.
const DEVICE_CUDA: i8 = 1;
/// `c10::ScalarType::BFloat16`.
const SCALAR_BF16: i8 = 15;

extern "C" {
    #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
    fn at_set_autocast_dtype(device_type: i8, dtype: i8);
    #[link_name = "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE"]
    fn at_get_autocast_dtype(device_type: i8) -> i8;
}

/// The dtype CUDA autocast reduces to on this thread (`None` for a code
/// this module does not map).
pub fn cuda_autocast_dtype() -> Option<Kind> {
    // SAFETY: a plain getter of a thread-local enum in libtorch, no pointers.
    match unsafe { at_get_autocast_dtype(DEVICE_CUDA) } {
        5 => Some(Kind::Half),
        6 => Some(Kind::Float),
        SCALAR_BF16 => Some(Kind::BFloat16),
        _ => None,
    }
}

fn set_cuda_autocast_bf16() {
    // SAFETY: a plain setter of a thread-local enum in libtorch, no pointers;
    // BFloat16 is a valid CUDA autocast dtype.
    unsafe { at_set_autocast_dtype(DEVICE_CUDA, SCALAR_BF16) }
}

/// Runs `f` under CUDA autocast to bfloat16 when `enabled` (and CUDA is
/// available); otherwise runs it unchanged.
pub fn bf16_autocast<T>(enabled: bool, f: impl FnOnce() -> T) -> T {
    if !enabled {
        return f();
    }
    set_cuda_autocast_bf16();
    tch::autocast(true, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cuda_autocast_dtype_becomes_bf16() {
        // Runs on a test thread of its own: the setting is thread-local.
        std::thread::spawn(|| {
            assert_eq!(cuda_autocast_dtype(), Some(Kind::Half), "libtorch's default");
            let inside = bf16_autocast(true, cuda_autocast_dtype);
            assert_eq!(inside, Some(Kind::BFloat16));
            assert_eq!(bf16_autocast(false, || 7), 7);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn wide_kind_keeps_f64_and_widens_the_rest_to_f32() {
        assert_eq!(wide_kind(Kind::Double), Kind::Double);
        for k in [Kind::BFloat16, Kind::Half, Kind::Float, Kind::Int64] {
            assert_eq!(wide_kind(k), Kind::Float);
        }
        let t = Tensor::from_slice(&[1.5f64]);
        assert_eq!(at_least_f32(&t).kind(), Kind::Double);
        assert_eq!(at_least_f32(&t.to_kind(Kind::BFloat16)).kind(), Kind::Float);
    }
}
