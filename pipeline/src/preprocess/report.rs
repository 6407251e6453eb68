//! What a run reports: one [`Failure`] per clip or frame that failed (the
//! errors table, `errors-<part>.csv`) and the [`RunSummary`]
//! (`summary-<part>.json`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// One failed clip or frame.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Failure {
    /// The file concerned, relative to `--root` (clip, label or sidecar file).
    pub file: String,
    /// Frame index (zero-based decoded index; BP4D frame number); `None` for
    /// the whole clip.
    pub frame: Option<i64>,
    /// `discover`, `labels`, `landmarks`, `decode`, `align` or `encode`.
    pub stage: String,
    /// What went wrong and what was expected.
    pub message: String,
}

impl Failure {
    /// A failure of a whole file.
    pub fn file(file: &str, stage: &str, message: impl Into<String>) -> Self {
        Self { file: file.into(), frame: None, stage: stage.into(), message: one_line(message.into()) }
    }

    /// A failure of one frame.
    pub fn frame(file: &str, frame: i64, stage: &str, message: impl Into<String>) -> Self {
        Self { file: file.into(), frame: Some(frame), stage: stage.into(), message: one_line(message.into()) }
    }
}

/// Library messages may span lines (decoder errors); table rows may not.
fn one_line(s: String) -> String {
    if s.contains(['\n', '\r']) {
        s.split(['\n', '\r']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
    } else {
        s
    }
}

/// Time and frame count of one stage, summed over worker threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageFigures {
    /// Thread-seconds spent in the stage.
    pub seconds: f64,
    /// Frames through the stage.
    pub frames: u64,
    /// `frames / seconds`: frames per second per core.
    pub frames_per_s_per_core: f64,
}

impl StageFigures {
    /// Figures from a frame count and nanoseconds.
    pub fn new(frames: u64, nanos: u64) -> Self {
        let seconds = nanos as f64 / 1e9;
        Self { seconds, frames, frames_per_s_per_core: if seconds > 0.0 { frames as f64 / seconds } else { 0.0 } }
    }
}

/// Per-stage figures of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stages {
    /// Decoding (video frames decoded, kept or not; BP4D JPEGs read).
    pub decode: StageFigures,
    /// Landmark inference (frames sent to the backend).
    pub landmarks: StageFigures,
    /// Similarity fit + bilinear warp (frames aligned).
    pub align: StageFigures,
    /// JPEG encoding (crops encoded).
    pub encode: StageFigures,
    /// Shard writing (rows pushed, files finished).
    pub write: StageFigures,
}

/// The run summary, written as JSON next to the shards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// mcsfau version.
    pub tool_version: String,
    /// Dataset name.
    pub dataset: String,
    /// This run's part, `index/count`.
    pub part: String,
    /// Clips in this part.
    pub clips: u64,
    /// Clips skipped because an earlier run finished them.
    pub clips_resumed: u64,
    /// Clips processed by this run.
    pub clips_processed: u64,
    /// Rows (face crops) written by this run.
    pub frames: u64,
    /// Rows of this part on disk, this run and earlier ones.
    pub frames_total: u64,
    /// Failed clips or frames of this part (rows of the errors table).
    pub failures: u64,
    /// Wall-clock seconds of this run.
    pub seconds: f64,
    /// Rows written per wall-clock second.
    pub frames_per_s: f64,
    /// Per-stage figures of this run.
    pub stages: Stages,
    /// How faces were found in this part's frames (all runs): detected,
    /// followed from an earlier detection, none.
    #[serde(default)]
    pub faces: crate::preprocess::track::FaceCounts,
    /// Share of this part's frames without a face.
    #[serde(default)]
    pub no_face_rate: f64,
    /// Clips of this part in which no frame had a face.
    #[serde(default)]
    pub clips_without_face: u64,
    /// How the FAN inference service filled its batches (fan only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmark_batches: Option<crate::landmarks::fan::service::BatchStats>,
}

/// The per-clip face table as CSV: header
/// `file,frames,detected,followed,no_face,no_face_rate,refused,cuts`, one
/// row per clip (sorted by file), rates with 4 decimals. `refused` counts
/// follows refused and `cuts` shot cuts (`preprocess::track`); they come
/// last so readers of the first six columns keep working.
pub fn faces_csv(rows: &[(String, crate::preprocess::track::FaceCounts)]) -> String {
    let mut rows: Vec<&(String, crate::preprocess::track::FaceCounts)> = rows.iter().collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = format!("{}\n", crate::audit::faces::HEADER);
    for (file, c) in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{:.4},{},{}\n",
            csv_cell(file),
            c.frames,
            c.detected,
            c.followed,
            c.no_face,
            c.no_face_rate(),
            c.refused,
            c.cuts
        ));
    }
    out
}

/// Writes `bytes` to `path` atomically (temporary name, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::error::write_file(path, bytes)
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The errors table as CSV: header `file,frame,stage,message`, one row per
/// failure (frame empty for whole-file failures), RFC 4180 quoting.
pub fn errors_csv(failures: &[Failure]) -> String {
    let mut s = String::from("file,frame,stage,message\n");
    for f in failures {
        let frame = f.frame.map(|x| x.to_string()).unwrap_or_default();
        s += &format!("{},{},{},{}\n", csv_cell(&f.file), frame, csv_cell(&f.stage), csv_cell(&f.message));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_csv_quotes_commas_and_quotes() {
        let f = vec![
            Failure::file("a.mp4", "decode", "open: Invalid data found, \"moov\" missing"),
            Failure::frame("b.mp4", 7, "landmarks", "no face found\n  (dlib)\n"),
        ];
        assert_eq!(
            errors_csv(&f),
            "file,frame,stage,message\na.mp4,,decode,\"open: Invalid data found, \"\"moov\"\" missing\"\n\
             b.mp4,7,landmarks,no face found (dlib)\n"
        );
    }
}
