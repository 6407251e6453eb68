//! Link fixes for libtorch; see build-support/link_libtorch.rs.
include!("build-support/link_libtorch.rs");

fn main() {
    link_libtorch();
}
