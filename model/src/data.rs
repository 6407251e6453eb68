//! The data stage of pretraining: shard sets, the streaming loader, and the
//! on-device augmentation (issue 7). User documentation: `docs/loader.md`.
//!
//! * [`shards`]: [`ShardSet`] discovery and validation, the seeded epoch order.
//! * [`loader`]: [`Loader`], worker threads, prefetch, device transfer.
//! * [`stats`]: [`LoaderStats`], throughput and data-wait time.

mod decode;
pub mod error;
pub mod loader;
pub mod shards;
pub mod stats;

pub use error::{DataError, Result};
pub use loader::{Batch, EpochIter, Loader, LoaderConfig};
pub use shards::{read_id_list, ShardSet};
pub use stats::LoaderStats;
