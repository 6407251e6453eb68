//! Build script: libtorch link fixes (FAN runs on tch) and the dlib shim.
include!("../build-support/link_libtorch.rs");

fn main() {
    link_libtorch();
    build_dlib_shim();
}

/// Compiles `cpp/dlib_shim.cpp` against Debian's dlib (`pkg-config dlib-1`).
/// Always at -O2 without debug info: dlib is header templates, and at -O0
/// HOG face detection takes seconds per frame instead of ~60 ms.
fn build_dlib_shim() {
    println!("cargo:rerun-if-changed=cpp/dlib_shim.cpp");
    let dlib = match pkg_config::Config::new().probe("dlib-1") {
        Ok(lib) => lib,
        Err(e) => panic!(
            "dlib not found through pkg-config ({e}); install it with \
             `apt-get install libdlib-dev libdlib-data libopenblas-dev pkg-config` \
             (scripts/setup.sh does)"
        ),
    };
    let mut build = cc::Build::new();
    build.cpp(true).std("c++14").opt_level(2).debug(false).warnings(false).file("cpp/dlib_shim.cpp");
    for inc in &dlib.include_paths {
        build.include(inc);
    }
    build.compile("mcsfau_dlib_shim");
}
