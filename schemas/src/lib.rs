//! The shard contract of mcsfau.
//!
//! A *shard* is a Parquet file with one row per aligned face crop. The
//! pipeline writes shards, the model reads them; this crate is the only place
//! either side learns what a shard holds. See `schemas/README.md` for the
//! user-facing description of every column (tested against [`columns`]).
//!
//! * [`schema`]: column names, the Arrow schema, and the key-value metadata.
//! * [`writer`]: [`ShardWriter`], atomic (temporary name, then rename).
//! * [`reader`]: [`ShardReader`], by-name column selection with version check.
//! * [`validate`]: the one validator every reader goes through (types,
//!   metadata, nulls, sample-id syntax and uniqueness).
//! * [`atomic`]: temporary name, then rename, for every file mcsfau writes.

pub mod atomic;
pub mod error;
pub mod figure;
pub mod reader;
pub mod row;
pub mod schema;
pub mod template;
pub mod validate;
pub mod writer;

pub use error::{Result, SchemaError};
pub use reader::{list_shards, ShardBatches, ShardReader};
pub use row::{FaceRow, Labels};
pub use schema::{columns, LabelSpec, ShardMeta, NUM_LANDMARKS, SCHEMA_NAME, SCHEMA_VERSION};
pub use writer::{ShardWriter, WriterOptions};
