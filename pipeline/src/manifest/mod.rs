//! Reproducible subject splits and frame manifests of BP4D and DISFA.
//!
//! * [`splits`]: the subject protocols (the paper's 3-way split by a seeded
//!   ranking, the published 3-fold lists) as CSV files under `manifests/`.
//! * [`format`]: the frame-manifest files (JSON summary + frames CSV), with
//!   [`load`] for readers such as the probe.
//! * [`build`](mod@build): manifests from shards, and [`verify`] against shards.
//!
//! The file formats are documented in `docs/manifests.md`.

pub mod build;
pub mod format;
pub mod splits;

pub use build::{build, verify, ManifestDiff, SplitDiff};
pub use format::{load, save, FrameRow, LoadedManifest, SplitManifest, SplitSummary};
pub use splits::{Dataset, Protocol, SubjectSplit};
