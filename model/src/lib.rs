//! The mcsfau model stage, on libtorch through tch.
//!
//! * [`runtime`]: what libtorch this process runs on (version, CUDA, threads).
//!
//! The device is chosen once by the caller and reaches models only through
//! the `VarStore`.

pub mod runtime;
