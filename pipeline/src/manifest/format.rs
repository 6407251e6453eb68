//! The frame-manifest file format: a JSON summary plus a CSV of frames.
//!
//! `<name>.json` holds the dataset, protocol, AU numbers, per-split counts
//! (per subject too) and hashes; `frames_file` names the CSV beside it
//! (`<name>.frames.csv`, a bare file name: no folders, no `..`). The CSV has
//! the header `sample_id,subject,split,labels` and one row per frame sorted
//! by sample_id; `labels` is one character per AU of `au_numbers`: `1` the
//! occurrence label is known, `0` unknown (empty for unlabeled datasets).
//! `docs/manifests.md` documents the format for readers outside this crate.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{PipelineError, Result};

/// Version of the manifest format (`format` in the JSON).
pub const MANIFEST_FORMAT: u32 = 1;
/// Header of the frames CSV.
pub const FRAMES_HEADER: &str = "sample_id,subject,split,labels";

/// The JSON summary of a frame manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitManifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// `bp4d` or `disfa`.
    pub dataset: String,
    /// `paper` or `folds3`.
    pub protocol: String,
    /// AU numbers of the `labels` masks, in order.
    pub au_numbers: Vec<u16>,
    /// Shard folder the manifest was built from, as given (informational).
    pub shards: String,
    /// The frames CSV, a bare file name next to this JSON.
    pub frames_file: String,
    /// Total frames over all splits.
    pub total_frames: u64,
    /// One entry per split, in protocol order.
    pub splits: Vec<SplitSummary>,
}

/// Counts and hashes of one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSummary {
    /// `train`/`val`/`test` or `fold1`..`fold3`.
    pub name: String,
    /// Subjects assigned to this split by the subject split (sorted), whether
    /// or not the shards hold frames of them.
    pub subjects: Vec<String>,
    /// Frames in this split.
    pub frames: u64,
    /// Frames with at least one known AU label.
    pub labeled_frames: u64,
    /// Frames per subject (subjects with frames only).
    pub frames_per_subject: BTreeMap<String, u64>,
    /// sha256 of the sorted sample_ids, each followed by `\n` (lowercase hex).
    pub ids_sha256: String,
    /// sha256 of the sorted CSV rows `sample_id,subject,split,labels\n`.
    pub rows_sha256: String,
}

/// One row of the frames CSV.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FrameRow {
    /// The shard row's sample_id.
    pub sample_id: String,
    /// Its subject.
    pub subject: String,
    /// Its split.
    pub split: String,
    /// Label availability mask, one `1`/`0` per AU.
    pub labels: String,
}

impl FrameRow {
    /// The CSV line (no newline).
    pub fn to_csv(&self) -> String {
        format!("{},{},{},{}", self.sample_id, self.subject, self.split, self.labels)
    }
}

/// A manifest with its frames, as loaded from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedManifest {
    /// The JSON summary.
    pub manifest: SplitManifest,
    /// Every frame, sorted by sample_id.
    pub frames: Vec<FrameRow>,
    /// Where the JSON was read from.
    pub path: PathBuf,
}

impl LoadedManifest {
    /// Sample ids of one split, sorted.
    pub fn sample_ids(&self, split: &str) -> Vec<&str> {
        self.frames.iter().filter(|f| f.split == split).map(|f| f.sample_id.as_str()).collect()
    }
}

/// sha256 over `lines`, each followed by `\n`, in the given order.
pub fn hash_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for l in lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// Checks that `value` is a relative path inside its root: not absolute, no
/// `..` component. `Err` says why.
pub fn check_relative(value: &str) -> std::result::Result<(), String> {
    if value.starts_with('/') || value.starts_with('\\') || Path::new(value).is_absolute() {
        return Err("absolute path".into());
    }
    if value.split(['/', '\\']).any(|c| c == "..") {
        return Err("`..` component".into());
    }
    if Path::new(value).components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err("not a plain relative path".into());
    }
    Ok(())
}

/// The frames CSV name for a manifest JSON: its file stem plus `.csv`
/// (`paper.frames.json` -> `paper.frames.csv`).
pub fn frames_file_name(json: &Path) -> String {
    let stem = json.file_stem().and_then(|s| s.to_str()).unwrap_or("manifest");
    format!("{stem}.csv")
}

fn csv_field_ok(s: &str) -> bool {
    !s.contains([',', '\n', '\r', '"'])
}

/// Writes the JSON at `path` and the frames CSV named by its `frames_file`
/// beside it. Each is written to a temporary name and renamed.
pub fn save(path: &Path, manifest: &SplitManifest, frames: &[FrameRow]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
    let mut csv = String::with_capacity(frames.len() * 48 + 32);
    csv.push_str(FRAMES_HEADER);
    csv.push('\n');
    for f in frames {
        if ![&f.sample_id, &f.subject, &f.split, &f.labels].iter().all(|s| csv_field_ok(s)) {
            return Err(PipelineError::Manifest(format!(
                "sample `{}`: a field holds a comma, quote or newline, which the frames CSV cannot hold",
                f.sample_id
            )));
        }
        csv.push_str(&f.to_csv());
        csv.push('\n');
    }
    let json = serde_json::to_string_pretty(manifest).map_err(|e| PipelineError::Manifest(e.to_string()))?;
    write_atomic(&dir.join(&manifest.frames_file), csv.as_bytes())?;
    write_atomic(path, format!("{json}\n").as_bytes())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::error::write_file(path, bytes)
}

/// Loads a manifest JSON and its frames CSV, checking the format version,
/// that `frames_file` stays beside the JSON, and the CSV's shape.
pub fn load(path: &Path) -> Result<LoadedManifest> {
    let text = std::fs::read_to_string(path).map_err(|e| PipelineError::io(path, e))?;
    let manifest: SplitManifest = serde_json::from_str(&text).map_err(|e| PipelineError::ManifestFile {
        path: path.to_path_buf(),
        line: e.line(),
        message: format!("not a frame manifest: {e}"),
    })?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(PipelineError::ManifestFile {
            path: path.to_path_buf(),
            line: 0,
            message: format!("manifest format {} (this build reads {MANIFEST_FORMAT})", manifest.format),
        });
    }
    let escape = |why: String| PipelineError::PathEscape {
        path: path.to_path_buf(),
        row: 0,
        value: manifest.frames_file.clone(),
        why,
    };
    check_relative(&manifest.frames_file).map_err(escape)?;
    if manifest.frames_file.contains(['/', '\\']) {
        return Err(escape("frames_file must be a file name beside the manifest".into()));
    }
    let csv_path = path.parent().unwrap_or(Path::new(".")).join(&manifest.frames_file);
    let csv = std::fs::read_to_string(&csv_path).map_err(|e| PipelineError::io(&csv_path, e))?;
    let frames = parse_frames(&csv, &csv_path, manifest.au_numbers.len())?;
    Ok(LoadedManifest { manifest, frames, path: path.to_path_buf() })
}

fn parse_frames(text: &str, path: &Path, n_au: usize) -> Result<Vec<FrameRow>> {
    let bad = |line: usize, message: String| PipelineError::ManifestFile { path: path.to_path_buf(), line, message };
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h == FRAMES_HEADER => {}
        other => return Err(bad(1, format!("expected header `{FRAMES_HEADER}`, found {:?}", other.map(|(_, h)| h)))),
    }
    let mut frames = Vec::new();
    for (i, line) in lines {
        if line.is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split(',').collect();
        let [sample_id, subject, split, labels] = parts[..] else {
            return Err(bad(i + 1, format!("expected 4 fields, found {}", parts.len())));
        };
        if labels.len() != n_au || labels.chars().any(|c| c != '0' && c != '1') {
            return Err(bad(i + 1, format!("labels `{labels}`: expected {n_au} characters of 0/1")));
        }
        check_relative(sample_id).map_err(|why| PipelineError::PathEscape {
            path: path.to_path_buf(),
            row: i + 1,
            value: sample_id.into(),
            why,
        })?;
        frames.push(FrameRow {
            sample_id: sample_id.into(),
            subject: subject.into(),
            split: split.into(),
            labels: labels.into(),
        });
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_only() {
        assert!(check_relative("bp4d/F001/T1#000001").is_ok());
        assert!(check_relative("/etc/passwd").unwrap_err().contains("absolute"));
        assert!(check_relative("bp4d/../../x").unwrap_err().contains(".."));
        assert!(check_relative("..").is_err());
    }

    #[test]
    fn hash_is_sha256_of_newline_terminated_lines() {
        // sha256("a\nb\n"), computed with `printf 'a\nb\n' | sha256sum`.
        assert_eq!(hash_lines(["a", "b"]), "911169ddaaf146aff539f58c26c489af3b892dff0fe283c1c264c65ae5aa59a2");
    }
}
