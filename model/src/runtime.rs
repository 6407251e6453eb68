//! Facts about the libtorch this process runs on, for `mcsfau doctor`.

use serde::Serialize;

/// The libtorch version tch was built against (torch-sys checks it at build).
pub const BUILT_AGAINST: &str = "2.11.0";

/// What libtorch reports about itself and the machine.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeInfo {
    /// Version of the loaded libtorch, read next to the loaded library
    /// (`torch/version.py` or libtorch's `build-version`), else [`BUILT_AGAINST`].
    pub libtorch_version: String,
    /// Folder of the loaded `libtorch_cpu.so`.
    pub libtorch_path: Option<String>,
    /// Whether CUDA is usable.
    pub cuda_available: bool,
    /// Number of CUDA devices.
    pub cuda_devices: i64,
    /// Name of CUDA device 0, when there is one.
    pub cuda_device_name: Option<String>,
    /// Whether cuDNN is usable.
    pub cudnn_available: bool,
    /// libtorch intra-op threads.
    pub torch_threads: i32,
    /// libtorch inter-op threads.
    pub torch_interop_threads: i32,
    /// Data-parallel collective backends compiled in (`gloo` always,
    /// `nccl` when built against a CUDA libtorch with NCCL's headers).
    pub collective_backends: Vec<&'static str>,
}

/// Parses `--device`: `cpu`, `cuda`, `cuda:N`, and `auto` where
/// `allow_auto` (CUDA when available, else the CPU). A CUDA device libtorch
/// does not see is refused here, with the count it sees, instead of a
/// libtorch panic at the first tensor moved there.
pub fn parse_device(s: &str, allow_auto: bool) -> Result<tch::Device, String> {
    let cuda = |n: usize| {
        let count = tch::Cuda::device_count().max(0) as usize;
        if n < count {
            Ok(tch::Device::Cuda(n))
        } else if count == 0 {
            Err(format!("--device {s}: libtorch sees no CUDA device (run `mcsfau doctor`); use --device cpu"))
        } else {
            Err(format!("--device {s}: libtorch sees {count} CUDA device(s), cuda:0 to cuda:{}", count - 1))
        }
    };
    match s {
        "cpu" => Ok(tch::Device::Cpu),
        "auto" if allow_auto => Ok(tch::Device::cuda_if_available()),
        "cuda" => cuda(0),
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => cuda(n),
            _ => Err(format!("--device {s:?}: expected {}cpu, cuda or cuda:N", if allow_auto { "auto, " } else { "" })),
        },
    }
}

/// Queries libtorch. `libtorch_cuda.so` is linked with `--no-as-needed`
/// (build-support/link_libtorch.rs), so this sees what training would see.
pub fn runtime_info() -> RuntimeInfo {
    let cuda_available = tch::Cuda::is_available();
    let libtorch_path = loaded_library_dir("libtorch_cpu.so");
    let libtorch_version = libtorch_path.as_deref().and_then(version_near).unwrap_or_else(|| BUILT_AGAINST.to_string());
    RuntimeInfo {
        libtorch_version,
        libtorch_path,
        cuda_available,
        cuda_devices: tch::Cuda::device_count(),
        cuda_device_name: cuda_available.then(cuda_device_name).flatten(),
        cudnn_available: tch::Cuda::cudnn_is_available(),
        torch_threads: tch::get_num_threads(),
        torch_interop_threads: tch::get_num_interop_threads(),
        collective_backends: if crate::dist::Group::has_nccl() { vec!["gloo", "nccl"] } else { vec!["gloo"] },
    }
}

/// Runs a tiny computation, so a broken libtorch shows before real work.
pub fn smoke() -> Result<(), String> {
    let r = std::panic::catch_unwind(|| {
        let x = tch::Tensor::arange(6, (tch::Kind::Float, tch::Device::Cpu)).reshape([2, 3]);
        let s = x.sum(tch::Kind::Float).double_value(&[]);
        (s - 15.0).abs() < 1e-6
    });
    match r {
        Ok(true) => Ok(()),
        Ok(false) => Err("libtorch computed a wrong sum of 0..6".into()),
        Err(_) => Err("libtorch panicked on a tensor sum".into()),
    }
}

fn loaded_library_dir(name: &str) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with(name))
        .and_then(|p| std::path::Path::new(p).parent().map(|d| d.display().to_string()))
}

/// `torch/lib/../version.py` (PyTorch wheel) or `libtorch/lib/../build-version`.
fn version_near(lib_dir: &str) -> Option<String> {
    let root = std::path::Path::new(lib_dir).parent()?;
    if let Ok(s) = std::fs::read_to_string(root.join("version.py")) {
        let line = s.lines().find(|l| l.starts_with("__version__"))?;
        return Some(line.split(['\'', '"']).nth(1)?.to_string());
    }
    std::fs::read_to_string(root.join("build-version")).ok().map(|s| s.trim().to_string())
}

fn cuda_device_name() -> Option<String> {
    // tch has no device-name API; nvidia-smi is the portable fallback.
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader", "-i", "0"])
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
