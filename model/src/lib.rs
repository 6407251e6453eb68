//! The mcsfau model stage, on libtorch through tch: MC-SFAU (paper section 3,
//! docs/method.md) and its parts.
//!
//! * [`config`]: typed configuration, presets `paper`, `small` and `tiny`.
//! * [`backbone`]: ResNet-50 with torchvision's variable names.
//! * [`byol`]: MFDC, eq. 1-2 (heads, target stream, EMA, L_s).
//! * [`locator`]: MFRR's landmark detector, eq. 3 (L_d): locates the 49
//!   points from F_p (the default reading).
//! * [`landmarks`]: the earlier reading of eq. 3, a denoising cascade (kept
//!   for comparison), and the bilinear sampling both detectors use.
//! * [`masking`]: MFRR landmark masks, eq. 4.
//! * [`transformer`], [`reconstruction`]: MFRR reconstruction, eq. 5 (L_r).
//! * [`interaction`]: MCI, eq. 6 (L_c).
//! * [`mcsfau`]: the whole model and eq. 7.
//! * [`precision`]: bf16 autocast on CUDA.
//! * [`checkpoint`]: safetensors checkpoints and the torchvision export.
//! * [`summary`]: parameter counts per component.
//! * [`probe`]: the linear probe, per-AU F1, paired t-test (paper 4.1).
//! * [`visualize`]: figure 5, crops with refined landmarks and masked regions.
//! * [`runtime`]: what libtorch this process runs on (version, CUDA, threads).
//! * [`data`]: shard sets, the streaming loader, on-device augmentation.
//! * [`train`]: the pretraining loop, checkpoints and resume.
//! * [`supervised`]: the same backbone trained with labels (the yardstick's
//!   architecture ceiling).
//!
//! The device is chosen once by the caller and reaches models only through
//! the `VarStore`.

pub mod backbone;
pub mod byol;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod dist;
pub mod error;
pub mod interaction;
pub mod landmarks;
pub mod locator;
pub mod masking;
pub mod mcsfau;
pub mod precision;
pub mod probe;
pub mod reconstruction;
pub mod runtime;
pub mod summary;
pub mod supervised;
pub mod train;
pub mod transformer;
pub mod visualize;
