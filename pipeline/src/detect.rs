//! The video side of `mcsfau detect`: every frame of any video FFmpeg reads,
//! the most prominent face's landmarks (any [`LandmarkBackend`]), the
//! 49-point similarity alignment of preprocess, and the per-frame table
//! (OpenFace-style CSV and Parquet). The model side (backbone + probe head)
//! lives in the model crate; the binary joins the two.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Float64Array, Int64Array, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::error::{PipelineError, Result};
use crate::landmarks::{to49, FrameRef, LandmarkBackend};
use crate::preprocess::align;
use crate::preprocess::decode::{decode_video, DecodeStats, Select};
use crate::progress::Progress;

/// One decoded frame and, when a face was found, its aligned crop.
#[derive(Debug, Clone)]
pub struct FrameFace {
    /// Zero-based decoded frame index.
    pub index: i64,
    /// Presentation time, milliseconds.
    pub timestamp_ms: i64,
    /// The aligned face, `None` when no face was found (or its points were
    /// degenerate).
    pub face: Option<AlignedFace>,
}

/// A face aligned to the preprocess template.
#[derive(Debug, Clone)]
pub struct AlignedFace {
    /// The crop, packed RGB24, `size * size * 3` bytes.
    pub rgb: Vec<u8>,
    /// The 49 points in crop pixels, flattened x0, y0, x1, y1, ...
    pub landmarks: Vec<f32>,
    /// The backend's confidence.
    pub score: f32,
    /// Face box in the frame, x0, y0, x1, y1.
    pub face_box: [f32; 4],
}

/// Decodes every frame of `video` (upright), finds a face with `backend`,
/// aligns it into a `size` crop and hands batches of up to `batch` frames
/// to `sink`, in frame order. Frames without a face are passed on with
/// `face: None`, never dropped.
pub fn faces_in_video(
    video: &Path,
    backend: &mut dyn LandmarkBackend,
    size: u32,
    batch: usize,
    progress: &dyn Progress,
    mut sink: impl FnMut(Vec<FrameFace>) -> Result<()>,
) -> Result<DecodeStats> {
    // The header's frame count (MP4, AVI) gives the bar its length and ETA.
    progress.start("frames", crate::video::announced(video).unwrap_or(0));
    let stats = decode_video(video, &Select::Fps(0.0), batch.max(1), |frames| {
        let refs: Vec<FrameRef<'_>> =
            frames.iter().map(|f| FrameRef { width: f.width, height: f.height, rgb: &f.data, given: None }).collect();
        let found = backend.detect(&refs)?;
        if found.len() != frames.len() {
            return Err(PipelineError::Config(format!(
                "landmark backend {} returned {} results for {} frames",
                backend.name(),
                found.len(),
                frames.len()
            )));
        }
        let out = frames
            .iter()
            .zip(found)
            .map(|(f, face)| FrameFace {
                index: f.index,
                timestamp_ms: f.timestamp_ms,
                face: face.and_then(|face| {
                    let a = align::align(&f.data, f.width, f.height, &to49(&face.points), size)?;
                    Some(AlignedFace { rgb: a.rgb, landmarks: a.landmarks, score: face.score, face_box: face.face_box })
                }),
            })
            .collect::<Vec<_>>();
        progress.advance(out.len() as u64);
        sink(out)
    })?;
    progress.finish();
    Ok(stats)
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
}

/// Column names: `frame, face_id, timestamp, confidence, success`, then
/// `AUxx_c` (presence at `threshold`) for each AU, then `AUxx_p`
/// (probability).
pub fn column_names(aus: &[u16]) -> Vec<String> {
    let mut names: Vec<String> =
        ["frame", "face_id", "timestamp", "confidence", "success"].iter().map(|s| s.to_string()).collect();
    names.extend(aus.iter().map(|a| format!("AU{a:02}_c")));
    names.extend(aus.iter().map(|a| format!("AU{a:02}_p")));
    names
}

fn check(aus: &[u16], rows: &[FrameRecord]) -> Result<()> {
    match rows.iter().find(|r| r.success == 1 && r.probs.len() != aus.len()) {
        Some(r) => Err(PipelineError::Config(format!(
            "frame {}: {} probabilities for {} AUs",
            r.frame,
            r.probs.len(),
            aus.len()
        ))),
        None => Ok(()),
    }
}

/// The table as CSV text. Presence is `1`/`0` (0 for frames without a face);
/// probabilities have 4 decimals and are empty for frames without a face.
pub fn to_csv(aus: &[u16], rows: &[FrameRecord], threshold: f32) -> Result<String> {
    check(aus, rows)?;
    let mut s = column_names(aus).join(",");
    s.push('\n');
    for r in rows {
        s.push_str(&format!("{},{},{:.3},{:.3},{}", r.frame, r.face_id, r.timestamp, r.confidence, r.success));
        let ok = r.success == 1;
        for a in 0..aus.len() {
            s.push_str(if ok && r.probs[a] >= threshold { ",1" } else { ",0" });
        }
        for a in 0..aus.len() {
            if ok {
                s.push_str(&format!(",{:.4}", r.probs[a]));
            } else {
                s.push(',');
            }
        }
        s.push('\n');
    }
    Ok(s)
}

/// The table as an Arrow record batch (types: frame/face_id int64,
/// timestamp float64, confidence float32, success uint8, `_c` uint8, `_p`
/// float32, null for frames without a face).
pub fn to_record_batch(aus: &[u16], rows: &[FrameRecord], threshold: f32) -> Result<RecordBatch> {
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
    for a in 0..aus.len() {
        let ok = |r: &FrameRecord| r.success == 1 && r.probs[a] >= threshold;
        cols.push(Arc::new(UInt8Array::from_iter_values(rows.iter().map(|r| u8::from(ok(r))))));
        fields.push(Field::new(&names[5 + a], DataType::UInt8, false));
    }
    for a in 0..aus.len() {
        cols.push(Arc::new(rows.iter().map(|r| (r.success == 1).then(|| r.probs[a])).collect::<Float32Array>()));
        fields.push(Field::new(&names[5 + aus.len() + a], DataType::Float32, true));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)
        .map_err(|e| PipelineError::Config(format!("building the frame table: {e}")))
}

/// Writes the CSV to `path`.
pub fn write_csv(path: &Path, aus: &[u16], rows: &[FrameRecord], threshold: f32) -> Result<()> {
    crate::error::write_file(path, to_csv(aus, rows, threshold)?.as_bytes())
}

/// Writes the table as a Parquet file (zstd) to `path`.
pub fn write_parquet(path: &Path, aus: &[u16], rows: &[FrameRecord], threshold: f32) -> Result<()> {
    let batch = to_record_batch(aus, rows, threshold)?;
    crate::error::atomic(path, |tmp| {
        let file = std::fs::File::create(tmp).map_err(|e| PipelineError::io(tmp, e))?;
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
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

    fn rows() -> Vec<FrameRecord> {
        vec![
            FrameRecord { frame: 1, face_id: 0, timestamp: 0.0, confidence: 0.9, success: 1, probs: vec![0.7, 0.2] },
            FrameRecord { frame: 2, face_id: 0, timestamp: 0.04, confidence: 0.0, success: 0, probs: vec![] },
        ]
    }

    #[test]
    fn csv_has_openface_columns_and_empty_probabilities_without_a_face() {
        let csv = to_csv(&[1, 12], &rows(), 0.5).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "frame,face_id,timestamp,confidence,success,AU01_c,AU12_c,AU01_p,AU12_p");
        assert_eq!(lines[1], "1,0,0.000,0.900,1,1,0,0.7000,0.2000");
        assert_eq!(lines[2], "2,0,0.040,0.000,0,0,0,,");
    }

    #[test]
    fn record_batch_nulls_probabilities_of_failed_frames() {
        let b = to_record_batch(&[1, 12], &rows(), 0.5).unwrap();
        assert_eq!(b.num_columns(), 9);
        let p = b.column_by_name("AU01_p").unwrap();
        assert_eq!((p.null_count(), b.num_rows()), (1, 2));
        let bad = FrameRecord { probs: vec![0.1], ..rows()[0].clone() };
        assert!(to_csv(&[1, 12], &[bad], 0.5).is_err());
    }
}
