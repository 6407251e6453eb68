//! The per-frame table of `mcsfau detect`: OpenFace 2's column names where
//! it has one, as CSV and as Parquet with the run's provenance.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Float64Array, Int64Array, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::error::{PipelineError, Result};

/// The AUs OpenFace 2 writes an intensity (`AUxx_r`) for.
pub const OPENFACE_AUS_R: [u16; 17] = [1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45];
/// The AUs OpenFace 2 writes a presence (`AUxx_c`) for.
pub const OPENFACE_AUS_C: [u16; 18] = [1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45];

/// Which AU columns a table has, in order, and where each one's value
/// comes from: the index into the probe's AUs, or `None` for an OpenFace
/// AU the probe does not predict (written empty: not predicted, not absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuLayout {
    /// The probe's AUs, in the order of [`FrameRecord::probs`].
    pub predicted: Vec<u16>,
    /// `AUxx_r` columns.
    pub r: Vec<(u16, Option<usize>)>,
    /// `AUxx_c` columns.
    pub c: Vec<(u16, Option<usize>)>,
}

impl AuLayout {
    /// The probe's AUs only, or (`openface`) also every AU OpenFace 2
    /// writes, so OpenFace readers that select its full list find it.
    pub fn new(aus: &[u16], openface: bool) -> Self {
        let side = |extra: &[u16]| {
            let mut all: Vec<u16> = aus.to_vec();
            if openface {
                all.extend(extra.iter().filter(|a| !aus.contains(a)));
                all.sort_unstable();
            }
            all.into_iter().map(|a| (a, aus.iter().position(|&p| p == a))).collect()
        };
        Self { predicted: aus.to_vec(), r: side(&OPENFACE_AUS_R), c: side(&OPENFACE_AUS_C) }
    }
}

/// One row of the per-frame table.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameRecord {
    /// One-based frame number (OpenFace's convention).
    pub frame: i64,
    /// Face id within the frame (0: the single most prominent face).
    pub face_id: i64,
    /// Presentation time, seconds.
    pub timestamp: f64,
    /// Landmark confidence (0 when no face).
    pub confidence: f32,
    /// 1 when a face was found and scored, 0 otherwise.
    pub success: u8,
    /// AU probabilities in AU order; empty when `success` is 0.
    pub probs: Vec<f32>,
    /// Face box in the frame (x0, y0, x1, y1), when a face was found.
    pub face_box: Option<[f32; 4]>,
    /// The 68 landmarks in frame pixels, when a face was found.
    pub points68: Option<crate::landmarks::Points68>,
}

/// The columns before the landmarks: `frame, face_id, timestamp,
/// confidence, success`, the face box `face_x0, face_y0, face_x1, face_y1`.
pub const LEADING: [&str; 9] =
    ["frame", "face_id", "timestamp", "confidence", "success", "face_x0", "face_y0", "face_x1", "face_y1"];

/// Column names, OpenFace 2's where it has one: [`LEADING`], the 68
/// landmarks `x_0..x_67, y_0..y_67` (frame pixels), then `AUxx_r`
/// (mcsfau's probability in [0, 1], in the column OpenFace uses for its
/// intensity estimate) and `AUxx_c` (presence at the threshold), per
/// [`AuLayout`].
pub fn column_names(aus: &AuLayout) -> Vec<String> {
    let mut names: Vec<String> = LEADING.iter().map(|s| s.to_string()).collect();
    names.extend((0..68).map(|i| format!("x_{i}")));
    names.extend((0..68).map(|i| format!("y_{i}")));
    names.extend(aus.r.iter().map(|(a, _)| format!("AU{a:02}_r")));
    names.extend(aus.c.iter().map(|(a, _)| format!("AU{a:02}_c")));
    names
}

fn check(aus: &AuLayout, rows: &[FrameRecord]) -> Result<()> {
    let n = aus.predicted.len();
    match rows.iter().find(|r| r.success == 1 && r.probs.len() != n) {
        Some(r) => {
            Err(PipelineError::Config(format!("frame {}: {} probabilities for {n} AUs", r.frame, r.probs.len())))
        }
        None => Ok(()),
    }
}

/// The table as CSV text. Probabilities have 4 decimals, box and
/// landmarks 2; they are empty for frames without a face, whose presence
/// is 0. Columns of AUs the probe does not predict are empty.
pub fn to_csv(aus: &AuLayout, rows: &[FrameRecord], threshold: f32) -> Result<String> {
    check(aus, rows)?;
    let mut s = column_names(aus).join(",");
    s.push('\n');
    for r in rows {
        s.push_str(&format!("{},{},{:.3},{:.3},{}", r.frame, r.face_id, r.timestamp, r.confidence, r.success));
        let ok = r.success == 1;
        match r.face_box {
            Some(b) if ok => b.iter().for_each(|v| s.push_str(&format!(",{v:.2}"))),
            _ => s.push_str(",,,,"),
        }
        for axis in 0..2 {
            match r.points68 {
                Some(p) if ok => p.iter().for_each(|q| s.push_str(&format!(",{:.2}", q[axis]))),
                _ => s.push_str(&",".repeat(68)),
            }
        }
        for (_, k) in &aus.r {
            match k {
                Some(k) if ok => s.push_str(&format!(",{:.4}", r.probs[*k])),
                _ => s.push(','),
            }
        }
        for (_, k) in &aus.c {
            s.push_str(match k {
                Some(k) if ok && r.probs[*k] >= threshold => ",1",
                Some(_) => ",0",
                None => ",",
            });
        }
        s.push('\n');
    }
    Ok(s)
}

/// What produced a table, stored in the Parquet file's key-value metadata
/// (`mcsfau.*` keys) so a table says which model made it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provenance {
    /// `(key, value)` pairs, e.g. `("checkpoint", path)`.
    pub entries: Vec<(String, String)>,
}

/// The table as an Arrow record batch (types: frame/face_id int64,
/// timestamp float64, confidence float32, success uint8, box, landmarks
/// and `_r` float32 (null for frames without a face), `_c` uint8; both null
/// in the columns of AUs the probe does not predict).
pub fn to_record_batch(aus: &AuLayout, rows: &[FrameRecord], threshold: f32) -> Result<RecordBatch> {
    check(aus, rows)?;
    let names = column_names(aus);
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.frame))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.face_id))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.timestamp))),
        Arc::new(Float32Array::from_iter_values(rows.iter().map(|r| r.confidence))),
        Arc::new(UInt8Array::from_iter_values(rows.iter().map(|r| r.success))),
    ];
    let mut fields = vec![
        Field::new(&names[0], DataType::Int64, false),
        Field::new(&names[1], DataType::Int64, false),
        Field::new(&names[2], DataType::Float64, false),
        Field::new(&names[3], DataType::Float32, false),
        Field::new(&names[4], DataType::UInt8, false),
    ];
    let mut float_col = |name: &str, get: &dyn Fn(&FrameRecord) -> Option<f32>| {
        cols.push(Arc::new(rows.iter().map(|r| if r.success == 1 { get(r) } else { None }).collect::<Float32Array>()));
        fields.push(Field::new(name, DataType::Float32, true));
    };
    for k in 0..4 {
        float_col(&names[5 + k], &|r| r.face_box.map(|b| b[k]));
    }
    for axis in 0..2 {
        for i in 0..68 {
            float_col(&names[9 + axis * 68 + i], &|r| r.points68.map(|p| p[i][axis]));
        }
    }
    let first_au = 9 + 136;
    for (j, (_, k)) in aus.r.iter().enumerate() {
        float_col(&names[first_au + j], &|r| k.and_then(|k| r.probs.get(k).copied()));
    }
    for (j, (_, k)) in aus.c.iter().enumerate() {
        let name = &names[first_au + aus.r.len() + j];
        match k {
            Some(k) => {
                let ok = |r: &FrameRecord| r.success == 1 && r.probs[*k] >= threshold;
                cols.push(Arc::new(UInt8Array::from_iter_values(rows.iter().map(|r| u8::from(ok(r))))));
                fields.push(Field::new(name, DataType::UInt8, false));
            }
            None => {
                cols.push(Arc::new(rows.iter().map(|_| None::<u8>).collect::<UInt8Array>()));
                fields.push(Field::new(name, DataType::UInt8, true));
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
        .map_err(|e| PipelineError::Config(format!("building the frame table: {e}")))
}

/// Whether `path` is a Parquet table an earlier `detect` wrote (it carries
/// `mcsfau.checkpoint_sha256` in its key-value metadata).
pub fn is_detect_parquet(path: &Path) -> bool {
    use parquet::file::reader::FileReader;
    std::fs::File::open(path).ok().and_then(|f| parquet::file::reader::SerializedFileReader::new(f).ok()).is_some_and(
        |r| {
            r.metadata()
                .file_metadata()
                .key_value_metadata()
                .is_some_and(|kv| kv.iter().any(|e| e.key == "mcsfau.checkpoint_sha256"))
        },
    )
}

/// Writes the CSV to `path`.
pub fn write_csv(path: &Path, aus: &AuLayout, rows: &[FrameRecord], threshold: f32) -> Result<()> {
    crate::error::write_file(path, to_csv(aus, rows, threshold)?.as_bytes())
}

/// Writes the table as a Parquet file (zstd) to `path`, with `provenance`
/// as `mcsfau.<key>` key-value metadata.
pub fn write_parquet(
    path: &Path,
    aus: &AuLayout,
    rows: &[FrameRecord],
    threshold: f32,
    provenance: &Provenance,
) -> Result<()> {
    let batch = to_record_batch(aus, rows, threshold)?;
    let kv: Vec<parquet::file::metadata::KeyValue> = provenance
        .entries
        .iter()
        .map(|(k, v)| parquet::file::metadata::KeyValue::new(format!("mcsfau.{k}"), v.clone()))
        .collect();
    crate::error::atomic(path, |tmp| {
        let file = std::fs::File::create(tmp).map_err(|e| PipelineError::io(tmp, e))?;
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .set_key_value_metadata(Some(kv.clone()))
            .build();
        let err = |e: parquet::errors::ParquetError| PipelineError::Input {
            path: path.to_path_buf(),
            message: format!("writing Parquet: {e}"),
        };
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(err)?;
        w.write(&batch).map_err(err)?;
        w.close().map_err(err)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openface_layout_adds_its_aus_empty_and_keeps_ours() {
        let l = AuLayout::new(&[1, 12, 24], true);
        assert_eq!(l.r.len(), 18, "OpenFace's 17 plus AU24");
        assert_eq!(l.c.len(), 19, "OpenFace's 18 plus AU24");
        assert_eq!(l.r.iter().find(|(a, _)| *a == 12).unwrap().1, Some(1));
        assert_eq!(l.r.iter().find(|(a, _)| *a == 45).unwrap().1, None);
        let rows3: Vec<FrameRecord> = rows()
            .into_iter()
            .map(|r| FrameRecord { probs: if r.success == 1 { vec![0.7, 0.2, 0.9] } else { vec![] }, ..r })
            .collect();
        let csv = to_csv(&l, &rows3, 0.5).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        let header: Vec<&str> = lines[0].split(',').collect();
        let one: Vec<&str> = lines[1].split(',').collect();
        let at = |name: &str| one[header.iter().position(|h| *h == name).unwrap()];
        assert_eq!((at("AU12_r"), at("AU12_c"), at("AU45_r"), at("AU28_c")), ("0.2000", "0", "", ""));
        let b = to_record_batch(&l, &rows3, 0.5).unwrap();
        assert_eq!(b.column_by_name("AU28_c").unwrap().null_count(), 2);
        assert_eq!(b.column_by_name("AU24_c").unwrap().null_count(), 0);
    }

    fn rows() -> Vec<FrameRecord> {
        vec![
            FrameRecord {
                frame: 1,
                face_id: 0,
                timestamp: 0.0,
                confidence: 0.9,
                success: 1,
                probs: vec![0.7, 0.2],
                face_box: Some([1.0, 2.0, 30.0, 40.0]),
                points68: Some([[5.0, 6.0]; 68]),
            },
            FrameRecord {
                frame: 2,
                face_id: 0,
                timestamp: 0.04,
                confidence: 0.0,
                success: 0,
                probs: vec![],
                face_box: None,
                points68: None,
            },
        ]
    }

    #[test]
    fn csv_has_openface_columns_and_empty_probabilities_without_a_face() {
        let csv = to_csv(&AuLayout::new(&[1, 12], false), &rows(), 0.5).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        let header: Vec<&str> = lines[0].split(',').collect();
        assert_eq!(header[..9], LEADING);
        assert_eq!((header[9], header[76], header[77], header[144]), ("x_0", "x_67", "y_0", "y_67"));
        assert_eq!(header[145..], ["AU01_r", "AU12_r", "AU01_c", "AU12_c"]);
        let one: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(one[..9], ["1", "0", "0.000", "0.900", "1", "1.00", "2.00", "30.00", "40.00"]);
        assert_eq!((one[9], one[77]), ("5.00", "6.00"));
        assert_eq!(one[145..], ["0.7000", "0.2000", "1", "0"]);
        let two: Vec<&str> = lines[2].split(',').collect();
        assert_eq!(two.len(), header.len());
        assert!(two[5..147].iter().all(|c| c.is_empty()) && two[147..] == ["0", "0"], "{two:?}");
    }

    #[test]
    fn record_batch_nulls_probabilities_of_failed_frames() {
        let b = to_record_batch(&AuLayout::new(&[1, 12], false), &rows(), 0.5).unwrap();
        assert_eq!(b.num_columns(), 9 + 136 + 4);
        assert_eq!(b.column_by_name("y_3").unwrap().null_count(), 1);
        let p = b.column_by_name("AU01_r").unwrap();
        assert_eq!((p.null_count(), b.num_rows()), (1, 2));
        let bad = FrameRecord { probs: vec![0.1], ..rows()[0].clone() };
        assert!(to_csv(&AuLayout::new(&[1, 12], false), &[bad], 0.5).is_err());
    }
}
