//! Resumption: completion records of work units.
//!
//! A *unit* is a few clips whose rows go into one shard file
//! `shards/<unit>-00000.parquet`. The commit protocol, in order:
//! 1. rows are written under the writer's hidden temporary name;
//! 2. the unit's [`UnitRecord`] (its clips, rows, failures and the shard
//!    file it will have) is written atomically to `progress/<unit>.json`;
//! 3. the writer completes the file (footer, fsync) and renames it into place.
//!
//! A record whose shard file is missing was interrupted between 2 and 3: it
//! is deleted at the next start and its clips are redone. A visible shard
//! file therefore always has a record, and a record with its file is finished
//! work. kill -9 at any point leaves either a hidden temporary (ignored by
//! readers, deleted at the next start) or a finished unit.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::report::{write_atomic, Failure};
use crate::error::{PipelineError, Result};

/// The completion record of one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitRecord {
    /// Unit name (stem of its shard file, `<part tag>-<hash>`).
    pub unit: String,
    /// Relative paths of its clips (each finished: rows written or failed).
    pub clips: Vec<String>,
    /// Rows written.
    pub rows: u64,
    /// Shard files (names inside `shards/`).
    pub files: Vec<String>,
    /// Failures of its clips and frames.
    pub failures: Vec<Failure>,
    /// How faces were found, per clip (records of older runs have none).
    #[serde(default)]
    pub faces: Vec<(String, super::track::FaceCounts)>,
}

/// Writes `record` to `dir/<unit>.json` atomically.
pub fn write_record(dir: &Path, record: &UnitRecord) -> Result<()> {
    let path = dir.join(format!("{}.json", record.unit));
    let json = serde_json::to_vec_pretty(record)
        .map_err(|e| PipelineError::Config(format!("cannot serialize the record of {}: {e}", record.unit)))?;
    write_atomic(&path, &json)
}

/// Loads the finished units under `progress_dir`. Records of this part
/// (`part_tag` prefix) whose shard file is missing are deleted (interrupted
/// commits); such records of other parts, which may still be running, are
/// only ignored. Hidden temporaries of this part are deleted in both folders.
pub fn load_finished(progress_dir: &Path, shards_dir: &Path, part_tag: &str) -> Result<Vec<UnitRecord>> {
    remove_temporaries(shards_dir, part_tag)?;
    remove_temporaries(progress_dir, part_tag)?;
    let mut out = Vec::new();
    let entries = std::fs::read_dir(progress_dir).map_err(|e| PipelineError::io(progress_dir, e))?;
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let mine = name.starts_with(part_tag);
        let text = std::fs::read(&path).map_err(|e| PipelineError::io(&path, e))?;
        let record: Option<UnitRecord> = serde_json::from_slice(&text).ok();
        let complete = record.as_ref().is_some_and(|r| r.files.iter().all(|f| shards_dir.join(f).is_file()));
        match (record, complete) {
            (Some(r), true) => out.push(r),
            _ if mine => {
                tracing::info!(record = %path.display(), "unfinished unit: its clips will be redone");
                std::fs::remove_file(&path).map_err(|e| PipelineError::io(&path, e))?;
            }
            _ => {}
        }
    }
    Ok(out)
}

fn remove_temporaries(dir: &Path, part_tag: &str) -> Result<()> {
    let prefix = format!(".{part_tag}");
    for entry in std::fs::read_dir(dir).map_err(|e| PipelineError::io(dir, e))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // shard temporaries (`.<part>-....parquet.tmp`) and the atomic
        // writes' (`.<name>.<pid>-<n>.tmp.<ext>`) of this part
        if name.starts_with(&prefix) && (name.ends_with(".tmp") || name.contains(".tmp.")) {
            std::fs::remove_file(entry.path()).map_err(|e| PipelineError::io(entry.path(), e))?;
        }
    }
    Ok(())
}

/// The clips the records finished.
pub fn finished_clips(records: &[UnitRecord]) -> BTreeSet<String> {
    records.iter().flat_map(|r| r.clips.iter().cloned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_without_their_shard_are_dropped_and_temporaries_cleaned() {
        let d = tempfile::tempdir().unwrap();
        let (progress, shards) = (d.path().join("progress"), d.path().join("shards"));
        std::fs::create_dir_all(&progress).unwrap();
        std::fs::create_dir_all(&shards).unwrap();
        let rec = |unit: &str, file: bool| UnitRecord {
            unit: unit.into(),
            clips: vec![format!("{unit}.mp4")],
            rows: u64::from(file),
            files: if file { vec![format!("{unit}-00000.parquet")] } else { vec![] },
            failures: vec![],
            faces: vec![],
        };
        for (u, f) in [("p0000of0001-a", true), ("p0000of0001-b", true), ("p0000of0001-c", false)] {
            write_record(&progress, &rec(u, f)).unwrap();
        }
        write_record(&progress, &rec("p0001of0002-z", true)).unwrap();
        std::fs::write(shards.join("p0000of0001-a-00000.parquet"), b"done").unwrap();
        std::fs::write(shards.join(".p0000of0001-d-00000.parquet.tmp"), b"half").unwrap();
        let got = load_finished(&progress, &shards, "p0000of0001").unwrap();
        let units: Vec<&str> = got.iter().map(|r| r.unit.as_str()).collect();
        // a: file present; c: no rows, no file needed; b: file missing -> redone.
        assert_eq!(units, vec!["p0000of0001-a", "p0000of0001-c"]);
        assert!(!progress.join("p0000of0001-b.json").exists());
        assert!(progress.join("p0001of0002-z.json").exists(), "another part's record is left alone");
        assert!(!shards.join(".p0000of0001-d-00000.parquet.tmp").exists());
        assert_eq!(finished_clips(&got).len(), 2);
    }
}
