//! Lazy Polars scans over shards, grouped by schema, and small helpers to
//! pull columns out of collected frames.
//!
//! Shards of different datasets carry label lists of different widths
//! (BP4D 12 AUs, DISFA 8, VoxCeleb none), so one `scan_parquet` over all of
//! them would not have one schema: files are grouped by (dataset, AU list,
//! column set) from their footers (no data read) and each group is scanned
//! on its own. Every query selects only the columns it needs; Polars'
//! projection pushdown then reads only those columns' pages.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use schemas::schema::col as c;
use schemas::{list_shards, ShardReader};

use crate::error::{PipelineError, Result};
use crate::manifest::LoadedManifest;

/// Split name of rows whose dataset no manifest covers.
pub const NO_MANIFEST: &str = "all";
/// Split name of rows of a covered dataset that the manifest lacks.
pub const OUTSIDE: &str = "(outside manifest)";

/// Shards that share one schema.
#[derive(Debug, Clone)]
pub struct Group {
    /// Dataset of every row.
    pub dataset: String,
    /// AU numbers of the label lists (empty: unlabeled).
    pub au_numbers: Vec<u16>,
    /// Whether `au_intensity` is present.
    pub intensity: bool,
    /// The files, sorted.
    pub files: Vec<PathBuf>,
    /// Rows over all files (from the footers).
    pub rows: u64,
    /// Column names present.
    pub columns: BTreeSet<String>,
    /// Fixed-size list columns the files hold as plain lists (shards
    /// rewritten by DuckDB): name, item type, width. Cast on scan.
    pub list_casts: Vec<(String, DataType, usize)>,
}

impl Group {
    /// Whether every column in `names` is present.
    pub fn has(&self, names: &[&str]) -> bool {
        names.iter().all(|n| self.columns.contains(*n))
    }

    /// A lazy scan of the group's files (nothing is read until collected).
    pub fn scan(&self) -> Result<LazyFrame> {
        let paths: Vec<PlRefPath> = self.files.iter().map(|p| PlRefPath::new(p.to_string_lossy().as_ref())).collect();
        let args = ScanArgsParquet { rechunk: false, ..Default::default() };
        let lf = LazyFrame::scan_parquet_files(paths.into_iter().collect(), args).map_err(|e| pl_err("scan", e))?;
        if self.list_casts.is_empty() {
            return Ok(lf);
        }
        Ok(lf.with_columns(
            self.list_casts
                .iter()
                .map(|(name, item, n)| col(name.as_str()).cast(DataType::Array(Box::new(item.clone()), *n)))
                .collect::<Vec<_>>(),
        ))
    }
}

/// Wraps a Polars error with the query's name.
pub fn pl_err(query: &str, source: PolarsError) -> PipelineError {
    PipelineError::Polars { query: query.into(), error: source }
}

/// Groups the shards under `dir` by schema, reading footers only.
pub fn groups(dir: &Path) -> Result<Vec<Group>> {
    let mut by_key: BTreeMap<(String, Vec<u16>, Vec<String>), Group> = BTreeMap::new();
    for file in list_shards(dir)? {
        let reader = ShardReader::open(&file)?;
        let meta = reader.meta();
        let au_numbers = meta.labels.as_ref().map(|l| l.au_numbers.clone()).unwrap_or_default();
        let intensity = meta.labels.as_ref().is_some_and(|l| l.intensity);
        let columns: BTreeSet<String> =
            all_columns().into_iter().filter(|n| reader.require_columns(&[n]).is_ok()).collect();
        let list_casts = list_casts(&reader);
        let mut key_cols: Vec<String> = columns.iter().cloned().collect();
        key_cols.extend(list_casts.iter().map(|(n, _, _)| format!("{n} as list")));
        let key = (meta.dataset.clone(), au_numbers.clone(), key_cols);
        let g = by_key.entry(key).or_insert_with(|| Group {
            dataset: meta.dataset.clone(),
            au_numbers,
            intensity,
            files: Vec::new(),
            rows: 0,
            columns,
            list_casts,
        });
        g.rows += reader.num_rows() as u64;
        g.files.push(file);
    }
    Ok(by_key.into_values().collect())
}

/// The contract's fixed-size list columns that `reader`'s file holds as
/// plain lists ([`schemas::validate`] accepts them; Polars needs the cast).
fn list_casts(reader: &ShardReader) -> Vec<(String, DataType, usize)> {
    use arrow::datatypes::DataType as A;
    let Ok(file_schema) = reader.file_schema() else { return Vec::new() };
    let mut out = Vec::new();
    for field in reader.contract().fields() {
        let A::FixedSizeList(item, n) = field.data_type() else { continue };
        let Ok(found) = file_schema.field_with_name(field.name()) else { continue };
        if matches!(found.data_type(), A::FixedSizeList(..)) {
            continue;
        }
        let item = match item.data_type() {
            A::Float32 => DataType::Float32,
            A::Int8 => DataType::Int8,
            _ => continue,
        };
        out.push((field.name().clone(), item, *n as usize));
    }
    out
}

fn all_columns() -> Vec<String> {
    schemas::columns().iter().map(|c| c.name.to_string()).collect()
}

/// The manifests' (sample_id, split) pairs of `dataset`, or `None` when no
/// manifest covers it.
pub fn manifest_frame(manifests: &[LoadedManifest], dataset: &str) -> Result<Option<DataFrame>> {
    let covering: Vec<&LoadedManifest> = manifests.iter().filter(|m| m.manifest.dataset == dataset).collect();
    if covering.is_empty() {
        return Ok(None);
    }
    let ids: Vec<&str> = covering.iter().flat_map(|m| m.frames.iter().map(|f| f.sample_id.as_str())).collect();
    let splits: Vec<&str> = covering.iter().flat_map(|m| m.frames.iter().map(|f| f.split.as_str())).collect();
    let subjects: Vec<&str> = covering.iter().flat_map(|m| m.frames.iter().map(|f| f.subject.as_str())).collect();
    let df = DataFrame::new_infer_height(vec![
        Column::new(c::SAMPLE_ID.into(), ids),
        Column::new("split".into(), splits),
        Column::new("manifest_subject".into(), subjects),
    ])
    .map_err(|e| pl_err("manifest frame", e))?;
    Ok(Some(df))
}

/// `lf` with a `split` column: joined from the manifest frame when given
/// (rows it lacks get [`OUTSIDE`]), else [`NO_MANIFEST`].
pub fn with_split(lf: LazyFrame, manifest: Option<&DataFrame>) -> LazyFrame {
    match manifest {
        None => lf.with_column(lit(NO_MANIFEST).alias("split")),
        Some(m) => lf
            .join(
                m.clone().lazy().select([col(c::SAMPLE_ID), col("split")]),
                [col(c::SAMPLE_ID)],
                [col(c::SAMPLE_ID)],
                JoinArgs::new(JoinType::Left),
            )
            .with_column(col("split").fill_null(lit(OUTSIDE))),
    }
}

/// A collected column as strings (nulls as empty).
pub fn strs(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    let s = df.column(name).map_err(|e| pl_err(name, e))?;
    let s = s.cast(&DataType::String).map_err(|e| pl_err(name, e))?;
    let ca = s.str().map_err(|e| pl_err(name, e))?;
    Ok(ca.iter().map(|v| v.unwrap_or_default().to_string()).collect())
}

/// A collected column as i64 (nulls as 0).
pub fn i64s(df: &DataFrame, name: &str) -> Result<Vec<i64>> {
    let s = df.column(name).map_err(|e| pl_err(name, e))?;
    let s = s.cast(&DataType::Int64).map_err(|e| pl_err(name, e))?;
    let ca = s.i64().map_err(|e| pl_err(name, e))?;
    Ok(ca.iter().map(|v| v.unwrap_or_default()).collect())
}

/// A collected column as f64 (nulls as NaN).
pub fn f64s(df: &DataFrame, name: &str) -> Result<Vec<f64>> {
    let s = df.column(name).map_err(|e| pl_err(name, e))?;
    let s = s.cast(&DataType::Float64).map_err(|e| pl_err(name, e))?;
    let ca = s.f64().map_err(|e| pl_err(name, e))?;
    Ok(ca.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// The single value of a one-row column as i64.
pub fn one_i64(df: &DataFrame, name: &str) -> Result<i64> {
    Ok(i64s(df, name)?.first().copied().unwrap_or_default())
}

/// Collects `lf`, naming the query in errors.
pub fn collect(lf: LazyFrame, query: &str) -> Result<DataFrame> {
    tracing::debug!(query, "collect");
    lf.collect().map_err(|e| pl_err(query, e))
}
