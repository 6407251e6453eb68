//! The bad-input corpus: one generator per class of broken input a user can
//! hand mcsfau (shards, label files, videos), each made from a good input so
//! that exactly one thing is wrong. `tests/test_bad_inputs.rs` runs every
//! applicable command on every case.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float32Array, ListArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

/// One broken shard set: the folder holding it, the file that is broken,
/// and a word the error must contain.
#[derive(Debug, Clone)]
pub struct ShardCase {
    /// Case name (also the folder name).
    pub name: &'static str,
    /// The shard folder to hand to the command.
    pub shards: PathBuf,
    /// The broken file (its name must appear in the message).
    pub file: PathBuf,
    /// What the message must say (case-insensitive).
    pub needle: &'static str,
    /// Commands that never read the broken part (and must accept the set).
    pub not_for: &'static [&'static str],
    /// Commands that skip the broken row with a warning naming the file and
    /// the sample (exit 0: a long run does not die for one bad row).
    pub warn_only: &'static [&'static str],
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// Every column of `path` as one batch (read with the raw Parquet reader,
/// not mcsfau's validator), with the schema's key-value metadata.
pub fn read_raw(path: &Path) -> RecordBatch {
    let f = std::fs::File::open(path).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    // the builder's schema carries the key-value metadata (the reader's does not)
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    let batches: Vec<RecordBatch> = batches.into_iter().map(|b| b.with_schema(schema.clone()).unwrap()).collect();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

/// Writes `batch` as a Parquet file (its schema metadata as key-value metadata).
pub fn write_raw(path: &Path, batch: &RecordBatch) {
    let f = std::fs::File::create(path).unwrap();
    let kv: Vec<parquet::file::metadata::KeyValue> = batch
        .schema()
        .metadata()
        .iter()
        .map(|(k, v)| parquet::file::metadata::KeyValue::new(k.clone(), v.clone()))
        .collect();
    let props = parquet::file::properties::WriterProperties::builder().set_key_value_metadata(Some(kv)).build();
    let mut w = ArrowWriter::try_new(f, batch.schema(), Some(props)).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// `batch` with column `name` replaced by `array` of field `field` (or dropped).
fn replace(batch: &RecordBatch, name: &str, new: Option<(Field, ArrayRef)>) -> RecordBatch {
    let schema = batch.schema();
    let mut fields = Vec::new();
    let mut cols = Vec::new();
    for (f, c) in schema.fields().iter().zip(batch.columns()) {
        if f.name() == name {
            if let Some((nf, nc)) = &new {
                fields.push(nf.clone());
                cols.push(nc.clone());
            }
        } else {
            fields.push(f.as_ref().clone());
            cols.push(c.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())), cols).unwrap()
}

fn with_metadata(batch: &RecordBatch, key: &str, value: Option<&str>) -> RecordBatch {
    let mut md = batch.schema().metadata().clone();
    match value {
        Some(v) => md.insert(key.to_string(), v.to_string()),
        None => md.remove(key),
    };
    let schema = Schema::new_with_metadata(batch.schema().fields().clone(), md);
    RecordBatch::try_new(Arc::new(schema), batch.columns().to_vec()).unwrap()
}

fn sample_ids_with_first(batch: &RecordBatch, first: &str) -> (Field, ArrayRef) {
    let ids = batch.column_by_name("sample_id").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
    let mut v: Vec<String> = ids.iter().map(|s| s.unwrap().to_string()).collect();
    v[0] = first.into();
    (Field::new("sample_id", DataType::Utf8, false), Arc::new(StringArray::from(v)))
}

/// Makes every shard case under `out` from the good shard folder `good`
/// (flat, one dataset). The first file (sorted) is the one broken.
pub fn shard_cases(good: &Path, out: &Path) -> Vec<ShardCase> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(good)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    let victim_name = files[0].file_name().unwrap().to_owned();
    let bytes = std::fs::read(&files[0]).unwrap();
    let raw = read_raw(&files[0]);
    let mut cases = Vec::new();
    let mut case = |name: &'static str, needle: &'static str, make: &dyn Fn(&Path)| {
        let dir = out.join(name);
        copy_dir(good, &dir);
        let file = dir.join(&victim_name);
        make(&file);
        // a row-level defect of a column a command never reads is not its input
        let not_for: &'static [&'static str] =
            if matches!(name, "short_landmark_list" | "nan_landmarks") { &["manifest build"] } else { &[] };
        let warn_only: &'static [&'static str] =
            if name == "nan_landmarks" { &["pretrain", "probe", "masks"] } else { &[] };
        cases.push(ShardCase { name, shards: dir, file, needle, not_for, warn_only });
    };
    case("truncated", "not a readable parquet shard", &|f| std::fs::write(f, &bytes[..bytes.len() * 3 / 5]).unwrap());
    case("zero_bytes", "not a readable parquet shard", &|f| std::fs::write(f, b"").unwrap());
    case("not_parquet", "not a readable parquet shard", &|f| std::fs::write(f, b"sample_id,frame\nx,1\n").unwrap());
    case("footer_bit_flip", "not a readable parquet shard", &|f| {
        let mut b = bytes.clone();
        let n = b.len();
        let footer = u32::from_le_bytes(b[n - 8..n - 4].try_into().unwrap()) as usize;
        for k in 0..8 {
            b[n - 8 - footer / 2 + k] ^= 0xA5;
        }
        std::fs::write(f, b).unwrap();
    });
    case("page_header_bit_flip", "readable Parquet", &|f| {
        let mut b = bytes.clone();
        for byte in &mut b[4..12] {
            *byte ^= 0xFF;
        }
        std::fs::write(f, b).unwrap();
    });
    case("frame_index_as_string", "frame_index", &|f| {
        let fi = raw.column_by_name("frame_index").unwrap();
        let s = arrow::compute::cast(fi, &DataType::Utf8).unwrap();
        write_raw(f, &replace(&raw, "frame_index", Some((Field::new("frame_index", DataType::Utf8, false), s))));
    });
    case("missing_landmarks", "landmarks", &|f| write_raw(f, &replace(&raw, "landmarks", None)));
    case("escaping_sample_id", "sample_id", &|f| {
        write_raw(f, &replace(&raw, "sample_id", Some(sample_ids_with_first(&raw, "bp4d/../../../etc/passwd#000001"))))
    });
    case("absolute_sample_id", "sample_id", &|f| {
        write_raw(f, &replace(&raw, "sample_id", Some(sample_ids_with_first(&raw, "/etc/passwd#000001"))))
    });
    case("duplicate_sample_ids", "duplicate", &|f| {
        // a second copy of the first file under another name
        std::fs::copy(f, f.with_file_name("zz-copy-00000.parquet")).unwrap();
    });
    case("null_subject", "null", &|f| {
        let s = raw.column_by_name("subject").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        let v: Vec<Option<&str>> = (0..s.len()).map(|i| if i == 1 { None } else { Some(s.value(i)) }).collect();
        let a: ArrayRef = Arc::new(StringArray::from(v));
        write_raw(f, &replace(&raw, "subject", Some((Field::new("subject", DataType::Utf8, true), a))));
    });
    case("short_landmark_list", "landmarks", &|f| {
        // a plain list (as DuckDB writes) whose second row has 97 values
        let lm = raw.column_by_name("landmarks").unwrap();
        let list = lm.as_any().downcast_ref::<arrow::array::FixedSizeListArray>().unwrap();
        let vals = list.values().as_any().downcast_ref::<Float32Array>().unwrap();
        let w = list.value_length() as usize;
        let mut offsets = vec![0i32];
        let mut flat = Vec::new();
        for r in 0..list.len() {
            let take = if r == 1 { w - 1 } else { w };
            flat.extend((0..take).map(|k| vals.value(r * w + k)));
            offsets.push(flat.len() as i32);
        }
        let item = Arc::new(Field::new("element", DataType::Float32, true));
        let a = ListArray::new(
            item.clone(),
            arrow::buffer::OffsetBuffer::new(offsets.into()),
            Arc::new(Float32Array::from(flat)),
            None,
        );
        write_raw(
            f,
            &replace(&raw, "landmarks", Some((Field::new("landmarks", DataType::List(item), true), Arc::new(a)))),
        );
    });
    case("nan_landmarks", "not finite", &|f| {
        let lm = raw.column_by_name("landmarks").unwrap();
        let list = lm.as_any().downcast_ref::<arrow::array::FixedSizeListArray>().unwrap();
        let vals = list.values().as_any().downcast_ref::<Float32Array>().unwrap();
        let mut v: Vec<f32> = vals.values().to_vec();
        v[list.value_length() as usize] = f32::NAN; // row 1, x of point 0
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        let a = arrow::array::FixedSizeListArray::new(item, list.value_length(), Arc::new(Float32Array::from(v)), None);
        let field = raw.schema().field_with_name("landmarks").unwrap().clone();
        write_raw(f, &replace(&raw, "landmarks", Some((field, Arc::new(a)))));
    });
    case("not_an_mcsfau_shard", "mcsfau.schema", &|f| write_raw(f, &with_metadata(&raw, "mcsfau.schema", None)));
    case("schema_version_2", "schema_version", &|f| {
        write_raw(f, &with_metadata(&raw, "mcsfau.schema_version", Some("2")))
    });
    cases
}

/// One broken label file of a synthetic BP4D or DISFA tree.
#[derive(Debug, Clone)]
pub struct LabelCase {
    /// Case name.
    pub name: &'static str,
    /// `bp4d` or `disfa`.
    pub dataset: &'static str,
    /// The label file changed, relative to the tree's root.
    pub file: String,
    /// What its errors-table row must say (`None`: no row, the input is fine).
    pub row: Option<&'static str>,
    /// Whether the clip's rows are still written (a warning row: the bad
    /// cells are stored as unknown) or not (an error row: the clip is skipped).
    pub kept: bool,
}

/// Applies `case` to the tree at `root` (made by `mcsfau synth`).
pub fn break_label_file(root: &Path, case: &LabelCase) {
    let path = root.join(&case.file);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let new = match case.name {
        "bp4d_header_only" => format!("{}\n", lines[0]),
        "bp4d_bad_cell" => {
            let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            let mut cells: Vec<&str> = l[2].split(',').collect();
            cells[1] = "7";
            l[2] = cells.join(",");
            l.join("\n") + "\n"
        }
        "bp4d_bom_crlf_spaces" | "disfa_bom_crlf_spaces" => {
            let body: Vec<String> = lines.iter().map(|l| l.split(',').collect::<Vec<_>>().join(" , ")).collect();
            format!("\u{feff}{}\r\n\r\n", body.join("\r\n"))
        }
        "bp4d_missing_file" => {
            std::fs::remove_file(&path).unwrap();
            return;
        }
        "disfa_missing_line" => {
            let mut l = lines.clone();
            l.remove(2);
            l.join("\n") + "\n"
        }
        "disfa_bad_intensity" => {
            let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            l[1] = format!("{},9", l[1].split(',').next().unwrap());
            l.join("\n") + "\n"
        }
        other => panic!("unknown label case {other}"),
    };
    std::fs::write(&path, new).unwrap();
}

/// A copy of `good` (an H.264 MP4 with its index first) cut to `fraction`
/// of its bytes: the header announces every frame, the data ends early.
pub fn truncated_video(good: &Path, out: &Path, fraction: f64) {
    let b = std::fs::read(good).unwrap();
    std::fs::write(out, &b[..(b.len() as f64 * fraction) as usize]).unwrap();
}
