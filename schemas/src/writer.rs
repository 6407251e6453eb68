//! [`ShardWriter`]: rows in, complete Parquet shards out, atomically.
//!
//! Rows are buffered into row groups; a file is written under a hidden
//! temporary name (`.<name>.tmp`) and renamed into place only once its footer
//! is written, so a killed process never leaves a partial file that looks
//! complete. Readers ([`crate::list_shards`]) ignore temporary names.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, FixedSizeListBuilder, Float32Builder, Int32Builder, Int64Builder, Int8Builder,
    StringBuilder,
};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Result, SchemaError};
use crate::row::FaceRow;
use crate::schema::{arrow_schema, col, ShardMeta, NUM_LANDMARKS};

/// How shards are laid out on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// Rows per file before a new file is started. Default 8,192 (about
    /// 150 MB of 256x256 JPEG crops: big enough for fast scans, small enough
    /// to lose little when a run dies).
    pub rows_per_file: usize,
    /// Rows per Parquet row group. Default 512: a loader reads one group at a
    /// time, and 512 crops are ~10 MB.
    pub row_group_size: usize,
    /// zstd level (1-22). Default 3. JPEG bytes barely compress; the other
    /// columns shrink several-fold.
    pub zstd_level: i32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self { rows_per_file: 8192, row_group_size: 512, zstd_level: 3 }
    }
}

/// Writes rows into `<dir>/<stem>-NNNNN.parquet` files.
pub struct ShardWriter {
    dir: PathBuf,
    stem: String,
    meta: ShardMeta,
    schema: SchemaRef,
    options: WriterOptions,
    buffer: Vec<FaceRow>,
    current: Option<OpenFile>,
    next_index: usize,
    finished: Vec<PathBuf>,
}

struct OpenFile {
    tmp: PathBuf,
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: usize,
}

impl ShardWriter {
    /// A writer for rows described by `meta`; creates `dir` if needed.
    pub fn new(dir: &Path, stem: &str, meta: ShardMeta, options: WriterOptions) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| SchemaError::io(dir, e))?;
        let schema = arrow_schema(&meta);
        Ok(Self {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
            meta,
            schema,
            options,
            buffer: Vec::new(),
            current: None,
            next_index: 0,
            finished: Vec::new(),
        })
    }

    /// Adds a row; it reaches disk with its row group.
    pub fn push(&mut self, row: FaceRow) -> Result<()> {
        let n_au = self.meta.labels.as_ref().map(|l| (l.au_numbers.len(), l.intensity));
        row.check(n_au).map_err(|message| SchemaError::InvalidRow {
            path: self.dir.join(&self.stem),
            sample_id: row.sample_id.clone(),
            message,
        })?;
        self.buffer.push(row);
        let room = self.options.rows_per_file - self.current.as_ref().map_or(0, |f| f.rows);
        if self.buffer.len() >= self.options.row_group_size.min(room) {
            self.flush_group()?;
        }
        Ok(())
    }

    fn flush_group(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        if self.current.is_none() {
            self.current = Some(self.open_next()?);
        }
        let rows = std::mem::take(&mut self.buffer);
        let batch = to_record_batch(&self.schema, &rows).map_err(|source| SchemaError::Arrow {
            path: self.current.as_ref().map(|f| f.path.clone()).unwrap_or_default(),
            error: source,
        })?;
        let file = self.current.as_mut().expect("opened above");
        file.writer
            .write(&batch)
            .map_err(|source| SchemaError::ParquetWrite { path: file.tmp.clone(), error: source })?;
        file.writer.flush().map_err(|source| SchemaError::ParquetWrite { path: file.tmp.clone(), error: source })?;
        file.rows += rows.len();
        if file.rows >= self.options.rows_per_file {
            self.close_current()?;
        }
        Ok(())
    }

    fn open_next(&mut self) -> Result<OpenFile> {
        let name = format!("{}-{:05}.parquet", self.stem, self.next_index);
        self.next_index += 1;
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let f = File::create(&tmp).map_err(|e| SchemaError::io(&tmp, e))?;
        let level = ZstdLevel::try_new(self.options.zstd_level)
            .map_err(|source| SchemaError::ParquetWrite { path: tmp.clone(), error: source })?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(self.options.row_group_size.max(1)))
            .build();
        let writer = ArrowWriter::try_new(f, self.schema.clone(), Some(props))
            .map_err(|source| SchemaError::ParquetWrite { path: tmp.clone(), error: source })?;
        Ok(OpenFile { tmp, path, writer, rows: 0 })
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some(f) = self.current.take() {
            let OpenFile { tmp, path, writer, .. } = f;
            let file =
                writer.into_inner().map_err(|source| SchemaError::ParquetWrite { path: tmp.clone(), error: source })?;
            file.sync_all().map_err(|e| SchemaError::io(&tmp, e))?;
            drop(file);
            std::fs::rename(&tmp, &path).map_err(|e| SchemaError::io(&path, e))?;
            self.finished.push(path);
        }
        Ok(())
    }

    /// Writes what is buffered, completes the open file, and returns every
    /// file this writer produced.
    pub fn finish(mut self) -> Result<Vec<PathBuf>> {
        self.flush_group()?;
        self.close_current()?;
        Ok(std::mem::take(&mut self.finished))
    }
}

fn fixed_f32(rows: &[FaceRow], width: i32, get: impl Fn(&FaceRow) -> &[f32]) -> ArrayRef {
    let mut b = FixedSizeListBuilder::with_capacity(Float32Builder::new(), width, rows.len())
        .with_field(Arc::new(Field::new("item", DataType::Float32, false)));
    for r in rows {
        b.values().append_slice(get(r));
        b.append(true);
    }
    Arc::new(b.finish())
}

fn fixed_i8(rows: &[FaceRow], width: i32, get: impl Fn(&FaceRow) -> &[i8]) -> ArrayRef {
    let mut b = FixedSizeListBuilder::with_capacity(Int8Builder::new(), width, rows.len())
        .with_field(Arc::new(Field::new("item", DataType::Int8, false)));
    for r in rows {
        b.values().append_slice(get(r));
        b.append(true);
    }
    Arc::new(b.finish())
}

fn strings(rows: &[FaceRow], get: impl Fn(&FaceRow) -> &str) -> ArrayRef {
    let mut b = StringBuilder::new();
    rows.iter().for_each(|r| b.append_value(get(r)));
    Arc::new(b.finish())
}

/// Assembles rows into a batch of `schema` (column order from the schema).
pub fn to_record_batch(schema: &SchemaRef, rows: &[FaceRow]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let n_au = |r: &FaceRow| r.labels.as_ref().map_or(0, |l| l.occurrence.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let a: ArrayRef = match field.name().as_str() {
            col::SAMPLE_ID => strings(rows, |r| &r.sample_id),
            col::DATASET => strings(rows, |r| &r.dataset),
            col::SUBJECT => strings(rows, |r| &r.subject),
            col::VIDEO => strings(rows, |r| &r.video),
            col::CLIP => strings(rows, |r| &r.clip),
            col::LANDMARK_SOURCE => strings(rows, |r| &r.landmark_source),
            col::FRAME_INDEX | col::TIMESTAMP_MS => {
                let mut b = Int64Builder::new();
                let ts = field.name() == col::TIMESTAMP_MS;
                rows.iter().for_each(|r| b.append_value(if ts { r.timestamp_ms } else { r.frame_index }));
                Arc::new(b.finish())
            }
            col::CROP_SIZE | col::SOURCE_WIDTH | col::SOURCE_HEIGHT => {
                let mut b = Int32Builder::new();
                for r in rows {
                    b.append_value(match field.name().as_str() {
                        col::CROP_SIZE => r.crop_size,
                        col::SOURCE_WIDTH => r.source_width,
                        _ => r.source_height,
                    });
                }
                Arc::new(b.finish())
            }
            col::IMAGE => {
                let mut b = BinaryBuilder::new();
                rows.iter().for_each(|r| b.append_value(&r.image));
                Arc::new(b.finish())
            }
            col::LANDMARKS => fixed_f32(rows, (2 * NUM_LANDMARKS) as i32, |r| &r.landmarks),
            col::LANDMARK_SCORE | col::DETECTOR_SCORE => {
                let mut b = Float32Builder::new();
                let det = field.name() == col::DETECTOR_SCORE;
                rows.iter().for_each(|r| b.append_value(if det { r.detector_score } else { r.landmark_score }));
                Arc::new(b.finish())
            }
            col::FACE_BOX => fixed_f32(rows, 4, |r| &r.face_box),
            col::CROP_TRANSFORM => fixed_f32(rows, 6, |r| &r.crop_transform),
            col::AU_OCCURRENCE => {
                let w = rows.first().map_or(0, n_au) as i32;
                fixed_i8(rows, w, |r| r.labels.as_ref().map_or(&[], |l| &l.occurrence))
            }
            col::AU_INTENSITY => {
                let w = rows.first().map_or(0, n_au) as i32;
                fixed_i8(rows, w, |r| r.labels.as_ref().map_or(&[], |l| &l.intensity))
            }
            other => {
                return Err(arrow::error::ArrowError::SchemaError(format!("writer does not know column `{other}`")))
            }
        };
        arrays.push(a);
    }
    RecordBatch::try_new(schema.clone(), arrays)
}
