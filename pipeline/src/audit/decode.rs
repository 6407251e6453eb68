//! JPEG decode spot check on a seeded sample of rows: the only check that
//! reads image bytes, and only those of the sampled rows (Parquet row
//! selection over `sample_id`, `image`, `crop_size`).
//!
//! The sample: all rows of all shards, in `list_shards` order, numbered
//! 0..N; `k = min(decode_sample, N)` distinct numbers drawn with
//! `rand::seq::index::sample` from ChaCha8 seeded with `seed`. A row passes
//! when its bytes decode as JPEG to a `crop_size` x `crop_size` image.

use std::fs::File;
use std::path::PathBuf;

use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};
use parquet::arrow::ProjectionMask;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use schemas::reader::Columns;
use schemas::schema::col as c;
use schemas::validate::RowMap;
use schemas::SchemaError;
use serde::Serialize;

use super::scan::Group;
use super::{AuditOptions, Check};
use crate::error::Result;
use crate::progress::Progress;

/// Outcome of the spot check.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct DecodeStats {
    /// Rows in the shards.
    pub population: u64,
    /// Rows sampled.
    pub sampled: u64,
    /// Rows that decoded to the expected size.
    pub ok: u64,
    /// Seed of the sample.
    pub seed: u64,
}

/// Selection of the sorted, file-local row numbers `rows` out of `total`.
fn selection(rows: &[usize], total: usize) -> RowSelection {
    let mut sel = Vec::new();
    let mut at = 0;
    for &r in rows {
        if r > at {
            sel.push(RowSelector::skip(r - at));
        }
        sel.push(RowSelector::select(1));
        at = r + 1;
    }
    if total > at {
        sel.push(RowSelector::skip(total - at));
    }
    RowSelection::from(sel)
}

/// Decodes the seeded sample of rows of every group.
pub fn spot_check(groups: &[Group], opts: &AuditOptions, progress: &dyn Progress) -> Result<(DecodeStats, Check)> {
    const NAME: &str = "images/jpeg_decode";
    let mut files: Vec<(PathBuf, u64)> = groups.iter().flat_map(|g| g.files.iter().cloned()).map(|f| (f, 0)).collect();
    files.sort();
    let mut contracts = Vec::with_capacity(files.len());
    for (f, n) in files.iter_mut() {
        let reader = schemas::ShardReader::open(f)?;
        *n = reader.num_rows() as u64;
        contracts.push(reader.contract().clone());
    }
    let population: u64 = files.iter().map(|(_, n)| n).sum();
    let mut stats = DecodeStats { population, seed: opts.seed, ..Default::default() };
    let k = opts.decode_sample.min(population as usize);
    if k == 0 {
        return Ok((stats, Check::skipped(NAME, "no rows sampled (--decode-sample 0 or no shards)")));
    }
    if groups.iter().any(|g| !g.has(&[c::IMAGE])) {
        return Ok((stats, Check::skipped(NAME, "shards without an `image` column")));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut picks: Vec<u64> =
        rand::seq::index::sample(&mut rng, population as usize, k).into_iter().map(|i| i as u64).collect();
    picks.sort_unstable();
    progress.start("audit: JPEG spot check", k as u64);
    let mut failures = Vec::new();
    let mut start = 0u64;
    let mut p = 0usize;
    for ((file, n), contract) in files.iter().zip(&contracts) {
        let mut local = Vec::new();
        while p < picks.len() && picks[p] < start + n {
            local.push((picks[p] - start) as usize);
            p += 1;
        }
        start += n;
        if local.is_empty() {
            continue;
        }
        let f = File::open(file).map_err(|e| SchemaError::Io { path: file.clone(), error: e })?;
        let perr = |source| SchemaError::Parquet { path: file.clone(), error: source };
        let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(perr)?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), [c::SAMPLE_ID, c::IMAGE, c::CROP_SIZE]);
        let reader =
            builder.with_projection(mask).with_row_selection(selection(&local, *n as usize)).build().map_err(perr)?;
        for batch in reader {
            let batch = batch.map_err(|source| SchemaError::Arrow { path: file.clone(), error: source })?;
            // the validator's casts and null checks, as every reader gets them
            let batch = schemas::validate::normalize_batch(file, batch, contract, &RowMap::sampled(), 0)?;
            let cols = Columns::new(file, &batch);
            let (ids, images, crops) = (cols.strings(c::SAMPLE_ID)?, cols.binary(c::IMAGE)?, cols.i32s(c::CROP_SIZE)?);
            for i in 0..batch.num_rows() {
                progress.advance(1);
                let side = crops.value(i) as u32;
                match image::load_from_memory_with_format(images.value(i), image::ImageFormat::Jpeg) {
                    Ok(img) if img.width() == side && img.height() == side => stats.ok += 1,
                    Ok(img) => failures.push(format!(
                        "{}: decoded {}x{}, expected {side}x{side}",
                        ids.value(i),
                        img.width(),
                        img.height()
                    )),
                    Err(e) => failures.push(format!("{}: {e}", ids.value(i))),
                }
                stats.sampled += 1;
            }
        }
    }
    progress.finish();
    failures.sort();
    let n = failures.len() as u64;
    failures.truncate(opts.max_examples);
    let what = format!("of {} sampled rows (seed {}) failed to decode as crop_size JPEGs", stats.sampled, opts.seed);
    Ok((stats, Check::from_count(NAME, n, &what, failures)))
}
