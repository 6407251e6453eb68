//! [`ShardReader`]: open a shard, check its contract, read chosen columns.
//!
//! Columns are always selected by name; a missing column or a column of the
//! wrong type is an error naming the file and the column.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, FixedSizeListArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Int8Type, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use crate::error::{Result, SchemaError};
use crate::schema::{arrow_schema, meta_key, LabelSpec, ShardMeta, SCHEMA_NAME, SCHEMA_VERSION};
use crate::validate::{check_footer_nulls, check_schema, normalize_batch, RowMap};

/// Sorted list of the complete shards (`*.parquet`) under `dir`, recursively.
/// Temporary files of unfinished writes (`.*.tmp`) are never listed.
pub fn list_shards(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| SchemaError::io(&d, e))?;
        for entry in entries {
            let path = entry.map_err(|e| SchemaError::io(&d, e))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".parquet") && !name.starts_with('.') {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// An opened, contract-checked shard.
pub struct ShardReader {
    path: PathBuf,
    builder_meta: parquet::arrow::arrow_reader::ArrowReaderMetadata,
    meta: ShardMeta,
    contract: SchemaRef,
}

/// The batches of a [`ShardReader::batches`] read: checked for nulls and cast
/// to the contract's types (files rewritten by other tools), errors naming
/// the file, row group, row and column.
pub struct ShardBatches {
    inner: ParquetRecordBatchReader,
    path: PathBuf,
    contract: SchemaRef,
    rows: RowMap,
    read: usize,
}

impl Iterator for ShardBatches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = match self.inner.next()? {
            Ok(b) => b,
            Err(error) => {
                // the footer was fine, a page is not: say where reading stopped
                return Some(Err(SchemaError::Invalid {
                    path: self.path.clone(),
                    location: format!("rows from {}", self.rows.locate(self.read)),
                    message: format!("not a readable Parquet shard: {error} (a data page is corrupt)"),
                }));
            }
        };
        let first = self.read;
        self.read += batch.num_rows();
        Some(normalize_batch(&self.path, batch, &self.contract, &self.rows, first))
    }
}

impl ShardReader {
    /// Opens `path` and checks it against the contract from its footer (no
    /// data read): the schema name and version and the `mcsfau.*` metadata,
    /// every column's name and Arrow type ([`check_schema`]), and that the
    /// footer statistics count no nulls.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| SchemaError::io(path, e))?;
        let builder_meta = parquet::arrow::arrow_reader::ArrowReaderMetadata::load(&file, Default::default())
            .map_err(|error| SchemaError::Parquet { path: path.to_path_buf(), error })?;
        let kv = builder_meta.schema().metadata().clone();
        let get = |k: &str| kv.get(k).cloned().unwrap_or_default();
        let mismatch = |what: &str, expected: String, found: String| SchemaError::SchemaMismatch {
            path: path.to_path_buf(),
            what: what.into(),
            expected,
            found,
        };
        if get(meta_key::SCHEMA) != SCHEMA_NAME {
            return Err(mismatch(meta_key::SCHEMA, SCHEMA_NAME.into(), found_or_none(get(meta_key::SCHEMA))));
        }
        if get(meta_key::SCHEMA_VERSION) != SCHEMA_VERSION.to_string() {
            return Err(mismatch(
                meta_key::SCHEMA_VERSION,
                SCHEMA_VERSION.to_string(),
                found_or_none(get(meta_key::SCHEMA_VERSION)),
            ));
        }
        let labels = match kv.get(meta_key::AU_NUMBERS) {
            None => None,
            Some(s) => {
                let au_numbers: Vec<u16> = serde_json::from_str(s).map_err(|e| {
                    mismatch(meta_key::AU_NUMBERS, "a JSON array of AU numbers".into(), format!("{s:?} ({e})"))
                })?;
                let intensity = builder_meta.schema().field_with_name(crate::schema::col::AU_INTENSITY).is_ok();
                Some(LabelSpec { au_numbers, intensity })
            }
        };
        let meta = ShardMeta {
            dataset: get(meta_key::DATASET),
            labels,
            tool_version: get(meta_key::TOOL_VERSION),
            preprocess_config: get(meta_key::PREPROCESS_CONFIG),
        };
        if meta.dataset.is_empty() || meta.dataset.contains(['/', '\\']) || meta.dataset.chars().any(char::is_control) {
            return Err(mismatch(meta_key::DATASET, "a dataset name".into(), format!("{:?}", meta.dataset)));
        }
        if let Some(l) = &meta.labels {
            if l.au_numbers.is_empty() {
                return Err(mismatch(meta_key::AU_NUMBERS, "at least one AU".into(), "[]".into()));
            }
        }
        check_schema(path, builder_meta.schema(), meta.labels.as_ref())?;
        let contract = arrow_schema(&meta);
        let names: Vec<String> = contract.fields().iter().map(|f| f.name().clone()).collect();
        check_footer_nulls(path, builder_meta.metadata(), &names)?;
        Ok(Self { path: path.to_path_buf(), builder_meta, meta, contract })
    }

    /// The contract's Arrow schema for this shard (what [`Self::batches`] yields).
    pub fn contract(&self) -> &SchemaRef {
        &self.contract
    }

    /// The file's own Arrow schema (before the casts [`Self::batches`] applies).
    pub fn file_schema(&self) -> Result<SchemaRef> {
        Ok(self.builder_meta.schema().clone())
    }

    /// Rows of every row group, in file order.
    pub fn row_group_rows(&self) -> Vec<usize> {
        self.builder_meta.metadata().row_groups().iter().map(|g| g.num_rows() as usize).collect()
    }

    /// The shard's file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The shard's metadata (dataset, label spec, provenance).
    pub fn meta(&self) -> &ShardMeta {
        &self.meta
    }

    /// Number of rows in the file (from the footer; reads no data).
    pub fn num_rows(&self) -> usize {
        self.builder_meta.metadata().file_metadata().num_rows() as usize
    }

    /// Number of row groups in the file.
    pub fn num_row_groups(&self) -> usize {
        self.builder_meta.metadata().num_row_groups()
    }

    /// Checks that every column in `names` exists.
    pub fn require_columns(&self, names: &[&str]) -> Result<()> {
        let schema = self.builder_meta.schema();
        for name in names {
            if schema.field_with_name(name).is_err() {
                let available = schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
                return Err(SchemaError::MissingColumn { path: self.path.clone(), column: (*name).into(), available });
            }
        }
        Ok(())
    }

    /// Record batches of the named columns, optionally only some row groups,
    /// validated and in the contract's types ([`ShardBatches`]).
    pub fn batches(&self, names: &[&str], row_groups: Option<Vec<usize>>, batch_size: usize) -> Result<ShardBatches> {
        self.require_columns(names)?;
        let file = File::open(&self.path).map_err(|e| SchemaError::io(&self.path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.builder_meta.clone());
        let mask = ProjectionMask::columns(builder.parquet_schema(), names.iter().copied());
        let mut builder = builder.with_projection(mask).with_batch_size(batch_size.max(1));
        let groups: Vec<usize> = row_groups.clone().unwrap_or_else(|| (0..self.num_row_groups()).collect());
        if let Some(groups) = row_groups {
            if let Some(&g) = groups.iter().find(|&&g| g >= self.num_row_groups()) {
                return Err(SchemaError::Invalid {
                    path: self.path.clone(),
                    location: format!("row group {g}"),
                    message: format!("the file has {} row groups", self.num_row_groups()),
                });
            }
            builder = builder.with_row_groups(groups);
        }
        let inner = builder.build().map_err(|error| SchemaError::Parquet { path: self.path.clone(), error })?;
        Ok(ShardBatches {
            inner,
            path: self.path.clone(),
            contract: self.contract.clone(),
            rows: RowMap::new(&groups, &self.row_group_rows()),
            read: 0,
        })
    }

    /// Reads the named columns of the whole file (batches of up to 64 Ki rows).
    pub fn read_all(&self, names: &[&str]) -> Result<Vec<RecordBatch>> {
        self.batches(names, None, 65_536)?.collect()
    }
}

fn found_or_none(s: String) -> String {
    if s.is_empty() {
        "nothing (not an mcsfau shard?)".into()
    } else {
        s
    }
}

/// Typed column access on a batch read from `path`, with errors that name both.
pub struct Columns<'a> {
    path: &'a Path,
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    /// Wraps `batch`, read from `path`.
    pub fn new(path: &'a Path, batch: &'a RecordBatch) -> Self {
        Self { path, batch }
    }

    fn column(&self, name: &str) -> Result<&'a dyn Array> {
        self.batch.column_by_name(name).map(|a| a.as_ref()).ok_or_else(|| SchemaError::MissingColumn {
            path: self.path.to_path_buf(),
            column: name.into(),
            available: self.batch.schema().fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>().join(", "),
        })
    }

    fn type_error(&self, name: &str, expected: &str, found: &DataType) -> SchemaError {
        SchemaError::ColumnType {
            path: self.path.to_path_buf(),
            column: name.into(),
            expected: expected.into(),
            found: format!("{found:?}"),
        }
    }

    /// A `string` column.
    pub fn strings(&self, name: &str) -> Result<&'a arrow::array::StringArray> {
        let a = self.column(name)?;
        a.as_string_opt::<i32>().ok_or_else(|| self.type_error(name, "Utf8", a.data_type()))
    }

    /// A `binary` column.
    pub fn binary(&self, name: &str) -> Result<&'a arrow::array::BinaryArray> {
        let a = self.column(name)?;
        a.as_binary_opt::<i32>().ok_or_else(|| self.type_error(name, "Binary", a.data_type()))
    }

    /// An `int64` column.
    pub fn i64s(&self, name: &str) -> Result<&'a arrow::array::Int64Array> {
        let a = self.column(name)?;
        a.as_primitive_opt().ok_or_else(|| self.type_error(name, "Int64", a.data_type()))
    }

    /// An `int32` column.
    pub fn i32s(&self, name: &str) -> Result<&'a arrow::array::Int32Array> {
        let a = self.column(name)?;
        a.as_primitive_opt().ok_or_else(|| self.type_error(name, "Int32", a.data_type()))
    }

    /// A `float32` column.
    pub fn f32s(&self, name: &str) -> Result<&'a arrow::array::Float32Array> {
        let a = self.column(name)?;
        a.as_primitive_opt().ok_or_else(|| self.type_error(name, "Float32", a.data_type()))
    }

    fn fixed(&self, name: &str, width: Option<usize>, item: &str) -> Result<&'a FixedSizeListArray> {
        let a = self.column(name)?;
        let expected = format!("FixedSizeList<{item}, {}>", width.map_or("n".into(), |w| w.to_string()));
        let list = a.as_fixed_size_list_opt().ok_or_else(|| self.type_error(name, &expected, a.data_type()))?;
        if width.is_some_and(|w| list.value_length() as usize != w) {
            return Err(self.type_error(name, &expected, a.data_type()));
        }
        Ok(list)
    }

    /// A fixed-size `float32` list column as one flat slice (`rows * width`).
    pub fn fixed_f32(&self, name: &str, width: usize) -> Result<&'a [f32]> {
        let list = self.fixed(name, Some(width), "Float32")?;
        let values = list.values();
        let prim = values
            .as_primitive_opt::<Float32Type>()
            .ok_or_else(|| self.type_error(name, "FixedSizeList<Float32>", list.data_type()))?;
        let off = list.offset() * width;
        Ok(&prim.values()[off..off + list.len() * width])
    }

    /// A fixed-size `int8` list column as one flat slice and its width.
    pub fn fixed_i8(&self, name: &str) -> Result<(&'a [i8], usize)> {
        let list = self.fixed(name, None, "Int8")?;
        let width = list.value_length() as usize;
        let values = list.values();
        let prim = values
            .as_primitive_opt::<Int8Type>()
            .ok_or_else(|| self.type_error(name, "FixedSizeList<Int8>", list.data_type()))?;
        let off = list.offset() * width;
        Ok((&prim.values()[off..off + list.len() * width], width))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{FaceRow, Labels};
    use crate::schema::col;
    use crate::writer::{ShardWriter, WriterOptions};

    fn row(i: i64, labels: bool) -> FaceRow {
        FaceRow {
            sample_id: FaceRow::make_sample_id("bp4d", "F001", "T1", "", i),
            dataset: "bp4d".into(),
            subject: "F001".into(),
            video: "T1".into(),
            frame_index: i,
            timestamp_ms: i * 40,
            image: vec![0xFF, 0xD8, i as u8],
            crop_size: 256,
            landmarks: (0..98).map(|k| k as f32 + i as f32).collect(),
            landmark_score: 0.9,
            landmark_source: "synthetic".into(),
            detector_score: f32::NAN,
            face_box: [1.0, 2.0, 3.0, 4.0],
            source_width: 640,
            source_height: 480,
            crop_transform: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            labels: labels.then(|| Labels { occurrence: vec![1, 0, -1], intensity: vec![3, 0, -1] }),
            ..Default::default()
        }
    }

    fn meta(labels: bool) -> ShardMeta {
        ShardMeta {
            dataset: "bp4d".into(),
            labels: labels.then(|| LabelSpec { au_numbers: vec![1, 2, 4], intensity: true }),
            tool_version: "test".into(),
            preprocess_config: "{}".into(),
        }
    }

    #[test]
    fn round_trip_rolls_files_and_keeps_values() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WriterOptions { rows_per_file: 5, row_group_size: 2, zstd_level: 3 };
        let mut w = ShardWriter::new(dir.path(), "part", meta(true), opts).unwrap();
        for i in 0..12 {
            w.push(row(i, true)).unwrap();
        }
        let files = w.finish().unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(list_shards(dir.path()).unwrap(), files);
        let r = ShardReader::open(&files[0]).unwrap();
        assert_eq!(r.num_rows(), 5);
        assert_eq!(r.num_row_groups(), 3);
        assert_eq!(r.meta().labels.as_ref().unwrap().au_numbers, vec![1, 2, 4]);
        // one row group at a time, batches of 2: the second batch starts at row 2
        let batches: Vec<_> = r
            .batches(&[col::SAMPLE_ID, col::LANDMARKS, col::AU_INTENSITY], Some(vec![1, 2]), 2)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
        let b = &batches[0];
        assert_eq!(b.num_columns(), 3);
        let c = Columns::new(r.path(), b);
        assert_eq!(c.strings(col::SAMPLE_ID).unwrap().value(0), "bp4d/F001/T1#000002");
        assert_eq!(c.fixed_f32(col::LANDMARKS, 98).unwrap()[0..2], [2.0, 3.0]);
        assert_eq!(c.fixed_i8(col::AU_INTENSITY).unwrap().0[0..3], [3, 0, -1]);
        let all = r.read_all(&[col::SAMPLE_ID]).unwrap();
        assert_eq!(all.iter().map(|b| b.num_rows()).sum::<usize>(), 5);
    }

    #[test]
    fn missing_column_and_wrong_schema_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ShardWriter::new(dir.path(), "vox", meta(false), WriterOptions::default()).unwrap();
        w.push(row(0, false)).unwrap();
        let f = w.finish().unwrap().remove(0);
        let r = ShardReader::open(&f).unwrap();
        let err = r.batches(&[col::AU_OCCURRENCE], None, 8).err().unwrap().to_string();
        assert!(err.contains("vox-00000.parquet") && err.contains("au_occurrence"), "{err}");
        std::fs::write(dir.path().join("junk.parquet"), b"not parquet").unwrap();
        let err = ShardReader::open(&dir.path().join("junk.parquet")).err().unwrap().to_string();
        assert!(err.contains("junk.parquet"), "{err}");
    }

    #[test]
    fn unfinished_writes_are_invisible() {
        let dir = tempfile::tempdir().unwrap();
        let mut w =
            ShardWriter::new(dir.path(), "p", meta(false), WriterOptions { row_group_size: 1, ..Default::default() })
                .unwrap();
        w.push(row(0, false)).unwrap();
        assert!(list_shards(dir.path()).unwrap().is_empty(), "an open file must not be listed");
        drop(w);
        assert!(list_shards(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn rows_breaking_the_contract_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ShardWriter::new(dir.path(), "p", meta(true), WriterOptions::default()).unwrap();
        let mut r = row(0, true);
        r.landmarks.pop();
        let err = w.push(r).err().unwrap().to_string();
        assert!(err.contains("97 landmark values"), "{err}");
        assert!(w.push(row(1, false)).is_err());
    }
}
