// Shared by the build scripts of every package that links libtorch (included
// with `include!`). Two link fixes tch's own build does not carry to
// downstream binaries and test executables:
//
// 1. rpath to libtorch's lib folder, so `mcsfau` and the test executables run
//    without LD_LIBRARY_PATH. torch-sys (`links = "tch"`) exports the folder as
//    DEP_TCH_LIBTORCH_LIB to packages that depend on it directly.
// 2. `--no-as-needed` around libtorch_cuda: nothing references its symbols
//    directly, so `--as-needed` drops it and CUDA then reads as unavailable on
//    a GPU machine (tch-rs issues #291, #980). Only when the library exists
//    (a CPU-only libtorch has none).
fn link_libtorch() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB not set: binaries will need LD_LIBRARY_PATH");
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
