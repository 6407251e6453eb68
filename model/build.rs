//! Link fixes for libtorch (see build-support/link_libtorch.rs) and the c10d
//! shim of data-parallel training (csrc/dist.cpp).
include!("../build-support/link_libtorch.rs");

use std::path::{Path, PathBuf};

fn main() {
    link_libtorch();
    build_dist_shim();
}

/// Compiles `csrc/dist.cpp` against the headers of the libtorch tch links
/// (PyPI torch ships c10d's), with Gloo's headers from Debian's
/// `libgloo-dev`. With a CUDA libtorch and the `nvidia-nccl` wheel's
/// `nccl.h` next to it, the NCCL backend is compiled in too.
fn build_dist_shim() {
    println!("cargo:rerun-if-changed=csrc/dist.cpp");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("DEP_TCH_LIBTORCH_LIB not set: torch-sys found no libtorch (scripts/setup.sh installs it)");
    };
    // Resolved: .venv/libtorch is a link into site-packages/torch.
    let lib = std::fs::canonicalize(&lib).unwrap_or_else(|_| PathBuf::from(lib));
    let torch = lib.parent().unwrap_or(Path::new("/")).to_path_buf();
    if !Path::new("/usr/include/gloo/config.h").exists() {
        panic!(
            "Gloo's headers (/usr/include/gloo) are missing; install them with \
             `apt-get install libgloo-dev` (scripts/setup.sh does)"
        );
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .opt_level(2)
        .debug(false)
        .warnings(false)
        .define("USE_C10D_GLOO", None)
        .include(torch.join("include"))
        .include(torch.join("include/torch/csrc/api/include"))
        .file("csrc/dist.cpp");
    // PyPI torch: site-packages/torch next to site-packages/nvidia/{nccl,cu13}.
    let nvidia = torch.parent().map(|p| p.join("nvidia"));
    let nccl = nvidia.as_ref().map(|n| n.join("nccl/include")).filter(|p| p.join("nccl.h").exists());
    // cuda_runtime_api.h from nvidia-cuda-runtime; crt/ and nv/target from
    // nvidia-cuda-crt and nvidia-cuda-cccl (scripts/setup.sh adds those two).
    let cuda = nvidia.as_ref().and_then(|n| {
        std::fs::read_dir(n).ok()?.flatten().map(|e| e.path().join("include")).find(|p| {
            p.join("cuda_runtime_api.h").exists()
                && p.join("crt/host_config.h").exists()
                && p.join("nv/target").exists()
        })
    });
    let with_nccl = lib.join("libtorch_cuda.so").exists() && nccl.is_some() && cuda.is_some();
    if let (true, Some(nccl), Some(cuda)) = (with_nccl, &nccl, &cuda) {
        build.define("USE_C10D_NCCL", None).define("MCSFAU_NCCL", None).include(nccl).include(cuda);
    } else {
        println!(
            "cargo:warning=building data-parallel training without NCCL (a CPU-only libtorch, or no nccl.h / \
             CUDA headers next to it: scripts/setup.sh installs nvidia-cuda-crt and nvidia-cuda-cccl)"
        );
    }
    build.compile("mcsfau_dist");
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
    if with_nccl {
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
    }
}
