//! `--manifest`: which sample ids a run trains on. Accepted:
//! * a frame manifest of `mcsfau manifest build` (`<name>.json` with
//!   `"format": 1` and `frames_file`, the CSV beside it), or that frames CSV
//!   itself (header `sample_id,subject,split,labels`); `split` keeps only
//!   the rows of one split;
//! * a plain text list, one sample_id per line (`#` comments, blank lines
//!   skipped).

use std::collections::HashSet;
use std::path::Path;

use super::error::{Result, TrainError};

const FRAMES_HEADER: &str = "sample_id,subject,split,labels";

/// The sample ids `path` selects (in `split` only, when given).
pub fn read_ids(path: &Path, split: Option<&str>) -> Result<HashSet<String>> {
    let bad = |reason: String| TrainError::Manifest { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    let ids = if path.extension().is_some_and(|e| e == "json") {
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        if v["format"] != 1 {
            return Err(bad(format!("manifest format {}, expected 1", v["format"])));
        }
        let frames = v["frames_file"].as_str().ok_or_else(|| bad("no `frames_file`".into()))?;
        if frames.contains('/') || frames.contains('\\') || frames == ".." {
            return Err(bad(format!("frames_file {frames:?} must be a bare file name")));
        }
        let csv = path.with_file_name(frames);
        let text = std::fs::read_to_string(&csv).map_err(TrainError::io(&csv))?;
        frames_csv(&csv, &text, split)?
    } else if text.lines().next().map(str::trim) == Some(FRAMES_HEADER) {
        frames_csv(path, &text, split)?
    } else {
        if split.is_some() {
            return Err(bad("a split was given but this is a plain id list".into()));
        }
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
    };
    if ids.is_empty() {
        return Err(bad(format!(
            "selects no sample ids{}",
            split.map(|s| format!(" in split {s}")).unwrap_or_default()
        )));
    }
    Ok(ids)
}

fn frames_csv(path: &Path, text: &str, split: Option<&str>) -> Result<HashSet<String>> {
    let mut ids = HashSet::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let mut cols = line.split(',');
        let (Some(id), Some(_subject), Some(s)) = (cols.next(), cols.next(), cols.next()) else {
            return Err(TrainError::Manifest {
                path: path.to_path_buf(),
                reason: format!("line {}: expected {FRAMES_HEADER}", i + 1),
            });
        };
        if split.is_none_or(|want| want == s) {
            ids.insert(id.to_string());
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_manifest_json_frames_csv_and_plain_lists() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("m.frames.csv");
        std::fs::write(&csv, "sample_id,subject,split,labels\na#1,F001,train,11\nb#2,F002,test,10\n").unwrap();
        let json = dir.path().join("m.json");
        std::fs::write(&json, r#"{"format": 1, "frames_file": "m.frames.csv"}"#).unwrap();
        assert_eq!(read_ids(&json, Some("train")).unwrap(), HashSet::from(["a#1".to_string()]));
        assert_eq!(read_ids(&csv, None).unwrap().len(), 2);
        let list = dir.path().join("ids.txt");
        std::fs::write(&list, "# ids\nx#1\n\ny#2\n").unwrap();
        assert_eq!(read_ids(&list, None).unwrap().len(), 2);
        let err = read_ids(&json, Some("val")).unwrap_err().to_string();
        assert!(err.contains("m.json") && err.contains("split val"), "{err}");
    }
}
