//! The shard set a loader streams: discovery, up-front validation, and the
//! seeded epoch order (row groups across all shards, then a shuffle buffer).
//!
//! Validation happens before any thread starts, so an empty or mixed set
//! fails at once with the file named, not hours into a run (issue 7).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::reader::Columns;
use schemas::schema::col;
use schemas::{list_shards, ShardReader};

use super::error::{DataError, Result};

/// The columns the loader reads, by name (nothing else is decompressed).
pub const LOADER_COLUMNS: [&str; 3] = [col::SAMPLE_ID, col::IMAGE, col::LANDMARKS];

/// A validated set of shards: the contract (checked by
/// [`ShardReader::open`]), same dataset, same crop size, sample ids that are
/// plain relative paths and unique over the set.
pub struct ShardSet {
    readers: Vec<ShardReader>,
    dataset: String,
    crop_size: i32,
    rows: usize,
}

impl ShardSet {
    /// Every complete shard under `dir` (recursively, sorted).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let paths = list_shards(dir)?;
        if paths.is_empty() {
            return Err(DataError::EmptyShardSet { what: format!("no *.parquet shard under {}", dir.display()) });
        }
        Self::open(&paths)
    }

    /// Opens and validates `paths`: each must be an mcsfau shard of this
    /// schema version with the loader's columns, and all must agree on the
    /// dataset and the crop size (read from the `crop_size` column, every row).
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let first = paths.first().ok_or_else(|| DataError::EmptyShardSet { what: "no shard paths given".into() })?;
        let mut readers = Vec::with_capacity(paths.len());
        let mut reference: Option<(String, i32)> = None;
        let mut rows = 0;
        let mut ids = schemas::validate::IdCheck::new();
        for path in paths {
            let reader = ShardReader::open(path)?;
            reader.require_columns(&LOADER_COLUMNS)?;
            let dataset = reader.meta().dataset.clone();
            let mismatch = |what: &str, expected: String, found: String| DataError::ShardSetMismatch {
                path: path.clone(),
                what: what.into(),
                expected,
                reference: first.clone(),
                found,
            };
            if let Some((ds, _)) = reference.as_ref().filter(|(ds, _)| *ds != dataset) {
                return Err(mismatch("dataset", ds.clone(), dataset));
            }
            let (crop, file_ids) = crop_size_of(&reader)?;
            match &reference {
                None => reference = Some((dataset, crop.unwrap_or(0))),
                Some((_, cs)) => {
                    if let Some(c) = crop.filter(|c| c != cs) {
                        return Err(mismatch("crop_size", cs.to_string(), c.to_string()));
                    }
                }
            }
            for (row, id) in file_ids.iter().enumerate() {
                ids.add(path, row, id)?;
            }
            rows += reader.num_rows();
            readers.push(reader);
        }
        let (dataset, crop_size) = reference.unwrap_or_default();
        if rows == 0 {
            return Err(DataError::EmptyShardSet { what: format!("{} shard(s), all without rows", paths.len()) });
        }
        Ok(Self { readers, dataset, crop_size, rows })
    }

    /// The opened shards, in path order.
    pub fn readers(&self) -> &[ShardReader] {
        &self.readers
    }

    /// The dataset every shard holds.
    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    /// Side of the square crops, pixels.
    pub fn crop_size(&self) -> i32 {
        self.crop_size
    }

    /// Rows in all shards (before any id filter).
    pub fn num_rows(&self) -> usize {
        self.rows
    }

    /// Every `(shard, row group)` pair, in file order.
    pub fn units(&self) -> Vec<(usize, usize)> {
        self.readers.iter().enumerate().flat_map(|(s, r)| (0..r.num_row_groups()).map(move |g| (s, g))).collect()
    }
}

/// The crop size shared by every row of a shard (`None` for an empty
/// shard) and its sample ids (checked by the caller over the whole set).
fn crop_size_of(reader: &ShardReader) -> Result<(Option<i32>, Vec<String>)> {
    let mut found: Option<i32> = None;
    let mut row = 0;
    let mut ids = Vec::with_capacity(reader.num_rows());
    for batch in reader.read_all(&[col::CROP_SIZE, col::SAMPLE_ID])? {
        let c = Columns::new(reader.path(), &batch);
        ids.extend(c.strings(col::SAMPLE_ID)?.iter().map(|id| id.unwrap_or_default().to_string()));
        for v in c.i32s(col::CROP_SIZE)?.values().iter().copied() {
            match found {
                None => found = Some(v),
                Some(e) if e != v => {
                    return Err(DataError::MixedCropSize { path: reader.path().into(), row, expected: e, found: v })
                }
                _ => {}
            }
            row += 1;
        }
    }
    Ok((found, ids))
}

/// The random stream of one epoch: a pure function of `(seed, epoch)`, so
/// a resumed run sees the same order. ChaCha8 streams are independent.
pub fn epoch_rng(seed: u64, epoch: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch);
    rng
}

/// Fisher-Yates shuffle of the row groups of all shards.
pub fn shuffle_units(units: &mut [(usize, usize)], rng: &mut impl Rng) {
    for i in (1..units.len()).rev() {
        units.swap(i, rng.gen_range(0..=i));
    }
}

/// A bounded shuffle buffer: items go in in order, come out in random order;
/// every item comes out exactly once ([`ShuffleBuffer::push`] then
/// [`ShuffleBuffer::pop_any`] until empty).
pub struct ShuffleBuffer<T> {
    items: Vec<T>,
    capacity: usize,
}

impl<T> ShuffleBuffer<T> {
    /// A buffer holding up to `capacity` items (0: pass items straight through).
    pub fn new(capacity: usize) -> Self {
        Self { items: Vec::with_capacity(capacity.min(1 << 16)), capacity }
    }

    /// Adds `item`; once the buffer is full, returns a uniformly chosen item.
    pub fn push(&mut self, item: T, rng: &mut impl Rng) -> Option<T> {
        if self.capacity == 0 {
            return Some(item);
        }
        self.items.push(item);
        (self.items.len() > self.capacity).then(|| self.pop_at(rng))
    }

    /// Removes a uniformly chosen item (the end of an epoch drains the buffer).
    pub fn pop_any(&mut self, rng: &mut impl Rng) -> Option<T> {
        (!self.items.is_empty()).then(|| self.pop_at(rng))
    }

    fn pop_at(&mut self, rng: &mut impl Rng) -> T {
        let j = rng.gen_range(0..self.items.len());
        self.items.swap_remove(j)
    }
}

/// Reads a plain list of sample ids, one per line (blank lines and lines
/// starting with `#` are skipped), as a loader filter.
pub fn read_id_list(path: &Path) -> Result<HashSet<String>> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::IdList { path: path.into(), source })?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_buffer_returns_every_item_once_in_a_seeded_order() {
        let run = |seed, epoch| {
            let mut rng = epoch_rng(seed, epoch);
            let mut buf = ShuffleBuffer::new(7);
            let mut out: Vec<u32> = (0..100).filter_map(|i| buf.push(i, &mut rng)).collect();
            while let Some(x) = buf.pop_any(&mut rng) {
                out.push(x);
            }
            out
        };
        let a = run(3, 0);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(a, run(3, 0));
        assert_ne!(a, run(3, 1));
        assert_ne!(a, run(4, 0));
        assert_ne!(a, sorted, "a 7-item buffer must move items");
    }

    #[test]
    fn zero_capacity_passes_items_in_order() {
        let mut rng = epoch_rng(0, 0);
        let mut buf = ShuffleBuffer::new(0);
        let out: Vec<u32> = (0..5).filter_map(|i| buf.push(i, &mut rng)).collect();
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
        assert!(buf.pop_any(&mut rng).is_none());
    }

    #[test]
    fn id_list_skips_blanks_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ids.txt");
        std::fs::write(&p, "# train\na#000001\n\n  b#000002  \n").unwrap();
        let ids = read_id_list(&p).unwrap();
        assert_eq!(ids, ["a#000001", "b#000002"].into_iter().map(String::from).collect());
        let err = read_id_list(&dir.path().join("missing.txt")).unwrap_err().to_string();
        assert!(err.contains("missing.txt"), "{err}");
    }
}
