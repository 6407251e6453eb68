//! The data stage of pretraining: shard sets, the streaming loader, and the
//! on-device augmentation (issue 7). User documentation: `docs/loader.md`.
//!
//! * [`shards`]: [`ShardSet`] discovery and validation, the seeded epoch order.
//! * [`loader`]: [`Loader`], worker threads, prefetch, device transfer.
//! * [`stats`]: [`LoaderStats`], throughput and data-wait time.
//! * [`augment`]: [`Augmenter`], the views P1, P2 and P on the device.

pub mod augment;
mod decode;
pub mod error;
pub mod loader;
mod read;
pub mod shards;
pub mod stats;

pub use augment::{AugmentConfig, Augmenter, Views};
pub use error::{DataError, Result};
pub use loader::{Batch, EpochIter, Loader, LoaderConfig};
pub use shards::{read_id_list, ShardSet};
pub use stats::LoaderStats;
