//! The mcsfau model stage, on libtorch through tch.
//!
//! * [`runtime`]: what libtorch this process runs on (version, CUDA, threads).
//! * [`data`]: shard sets, the streaming loader, on-device augmentation.
//!
//! The device is chosen once by the caller and reaches models only through
//! the `VarStore`.

pub mod data;
pub mod runtime;
