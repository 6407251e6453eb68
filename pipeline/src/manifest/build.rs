//! Building frame manifests from shards, and verifying them against shards.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use schemas::reader::Columns;
use schemas::schema::col;
use schemas::{list_shards, ShardReader};

use super::format::MANIFEST_FORMAT;
use super::format::{check_relative, hash_lines, FrameRow, LoadedManifest, SplitManifest, SplitSummary};
use super::splits::{Dataset, Protocol, SubjectSplit};
use crate::error::{PipelineError, Result};
use crate::progress::Progress;

/// Reads `sample_id`, `subject` and the occurrence labels of every `dataset`
/// row under `shards`, checks each against `split` (path escape, unknown
/// subject), and returns the frames sorted by sample_id with the AU numbers.
pub fn read_frames(
    shards: &Path,
    split: &SubjectSplit,
    split_file: &str,
    progress: &dyn Progress,
) -> Result<(Vec<FrameRow>, Vec<u16>)> {
    let name = split.dataset.name();
    let files = list_shards(shards)?;
    progress.start("manifest: reading shards", files.len() as u64);
    let mut frames = Vec::new();
    let mut au_numbers: Option<Vec<u16>> = None;
    let mut seen_files = 0usize;
    let mut id_check = schemas::validate::IdCheck::new();
    for file in &files {
        let reader = ShardReader::open(file)?;
        progress.advance(1);
        if reader.meta().dataset != name {
            tracing::debug!(file = %file.display(), dataset = %reader.meta().dataset, "not {name}, skipped");
            continue;
        }
        seen_files += 1;
        let aus = reader.meta().labels.as_ref().map(|l| l.au_numbers.clone()).unwrap_or_default();
        match &au_numbers {
            None => au_numbers = Some(aus.clone()),
            Some(a) if *a != aus => {
                return Err(PipelineError::Manifest(format!(
                    "{}: AU numbers {aus:?} differ from the other {name} shards' {a:?}",
                    file.display()
                )))
            }
            Some(_) => {}
        }
        let mut columns = vec![col::SAMPLE_ID, col::SUBJECT];
        if !aus.is_empty() {
            columns.push(col::AU_OCCURRENCE);
        }
        let mut row = 0usize;
        for batch in reader.read_all(&columns)? {
            let c = Columns::new(file, &batch);
            let ids = c.strings(col::SAMPLE_ID)?;
            let subjects = c.strings(col::SUBJECT)?;
            let occ = if aus.is_empty() { None } else { Some(c.fixed_i8(col::AU_OCCURRENCE)?) };
            for i in 0..batch.num_rows() {
                let sample_id = ids.value(i);
                let subject = subjects.value(i);
                check_sample_id(sample_id, name).map_err(|why| PipelineError::PathEscape {
                    path: file.clone(),
                    row: row + i,
                    value: sample_id.into(),
                    why,
                })?;
                id_check.add(file, row + i, sample_id)?;
                let Some(split_name) = split.assignment.get(subject) else {
                    return Err(PipelineError::UnknownSubject {
                        path: file.clone(),
                        row: row + i,
                        dataset: name.into(),
                        subject: subject.into(),
                        split_file: split_file.into(),
                    });
                };
                let labels = match occ {
                    None => String::new(),
                    Some((values, w)) => {
                        values[i * w..(i + 1) * w].iter().map(|&v| if v == -1 { '0' } else { '1' }).collect()
                    }
                };
                frames.push(FrameRow {
                    sample_id: sample_id.into(),
                    subject: subject.into(),
                    split: split_name.clone(),
                    labels,
                });
            }
            row += batch.num_rows();
        }
    }
    progress.finish();
    if seen_files == 0 {
        return Err(PipelineError::Manifest(format!("no {name} shards under {}", shards.display())));
    }
    frames.sort();
    Ok((frames, au_numbers.unwrap_or_default()))
}

/// A sample id must be a relative path under its dataset: `<dataset>/...`,
/// no `..`, not absolute.
fn check_sample_id(sample_id: &str, dataset: &str) -> std::result::Result<(), String> {
    schemas::validate::check_sample_id(sample_id)?;
    check_relative(sample_id)?;
    if !sample_id.starts_with(&format!("{dataset}/")) {
        return Err(format!("does not start with `{dataset}/`"));
    }
    Ok(())
}

/// Builds the manifest of `split` from the shards under `shards`.
/// `frames_file` is the CSV's bare file name (beside the JSON).
pub fn build(
    shards: &Path,
    split: &SubjectSplit,
    split_file: &str,
    frames_file: &str,
    progress: &dyn Progress,
) -> Result<(SplitManifest, Vec<FrameRow>)> {
    let (frames, au_numbers) = read_frames(shards, split, split_file, progress)?;
    let manifest = summarize(split, &frames, au_numbers, &shards.display().to_string(), frames_file);
    Ok((manifest, frames))
}

/// The JSON summary of sorted `frames`.
pub fn summarize(
    split: &SubjectSplit,
    frames: &[FrameRow],
    au_numbers: Vec<u16>,
    shards: &str,
    frames_file: &str,
) -> SplitManifest {
    let splits = split
        .protocol
        .split_names()
        .iter()
        .map(|name| {
            let rows: Vec<&FrameRow> = frames.iter().filter(|f| f.split == *name).collect();
            let mut per_subject = BTreeMap::new();
            for r in &rows {
                *per_subject.entry(r.subject.clone()).or_insert(0u64) += 1;
            }
            let lines: Vec<String> = rows.iter().map(|r| r.to_csv()).collect();
            SplitSummary {
                name: name.to_string(),
                subjects: split.subjects_of(name),
                frames: rows.len() as u64,
                labeled_frames: rows.iter().filter(|r| r.labels.contains('1')).count() as u64,
                frames_per_subject: per_subject,
                ids_sha256: hash_lines(rows.iter().map(|r| r.sample_id.as_str())),
                rows_sha256: hash_lines(lines.iter().map(|s| s.as_str())),
            }
        })
        .collect();
    SplitManifest {
        format: MANIFEST_FORMAT,
        dataset: split.dataset.name().into(),
        protocol: split.protocol.name().into(),
        au_numbers,
        shards: shards.into(),
        frames_file: frames_file.into(),
        total_frames: frames.len() as u64,
        splits,
    }
}

/// The subject split recorded in a manifest (its splits' subject lists).
pub fn recorded_split(m: &SplitManifest, path: &Path) -> Result<SubjectSplit> {
    let dataset = Dataset::parse(&m.dataset)?;
    let protocol = Protocol::parse(&m.protocol)?;
    let known: BTreeSet<String> = dataset.subjects().into_iter().collect();
    let mut assignment = BTreeMap::new();
    for s in &m.splits {
        for subject in &s.subjects {
            if !known.contains(subject) {
                return Err(PipelineError::ManifestFile {
                    path: path.to_path_buf(),
                    line: 0,
                    message: format!("split `{}`: unknown {} subject `{subject}`", s.name, m.dataset),
                });
            }
            assignment.insert(subject.clone(), s.name.clone());
        }
    }
    Ok(SubjectSplit { dataset, protocol, assignment })
}

/// What changed in one split between a manifest and the shards.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SplitDiff {
    /// The split.
    pub split: String,
    /// In the shards, not in the manifest.
    pub added: Vec<String>,
    /// In the manifest, not in the shards.
    pub removed: Vec<String>,
    /// In both, with another subject or label mask (`id: old -> new`).
    pub changed: Vec<String>,
}

/// The outcome of [`verify`]: empty when the manifest still holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManifestDiff {
    /// Problems of the manifest files themselves (hash of the CSV vs JSON).
    pub integrity: Vec<String>,
    /// Per-split differences (splits without any are left out).
    pub splits: Vec<SplitDiff>,
}

impl ManifestDiff {
    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        self.integrity.is_empty() && self.splits.is_empty()
    }
}

impl fmt::Display for ManifestDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOW: usize = 20;
        for p in &self.integrity {
            writeln!(f, "manifest files: {p}")?;
        }
        for d in &self.splits {
            for (what, ids) in [("added", &d.added), ("removed", &d.removed), ("changed", &d.changed)] {
                if ids.is_empty() {
                    continue;
                }
                writeln!(f, "split `{}`: {} sample(s) {what}:", d.split, ids.len())?;
                for id in ids.iter().take(SHOW) {
                    writeln!(f, "  {id}")?;
                }
                if ids.len() > SHOW {
                    writeln!(f, "  ... and {} more", ids.len() - SHOW)?;
                }
            }
        }
        Ok(())
    }
}

/// Re-derives the manifest at `loaded` from the shards and names every
/// difference: rows added/removed/changed per split, and a frames CSV that
/// no longer matches the hashes in its JSON.
pub fn verify(loaded: &LoadedManifest, shards: &Path, progress: &dyn Progress) -> Result<ManifestDiff> {
    let m = &loaded.manifest;
    let split = recorded_split(m, &loaded.path)?;
    let mut diff = ManifestDiff::default();
    let recomputed = summarize(&split, &loaded.frames, m.au_numbers.clone(), &m.shards, &m.frames_file);
    for (old, new) in m.splits.iter().zip(&recomputed.splits) {
        if old.ids_sha256 != new.ids_sha256 || old.rows_sha256 != new.rows_sha256 {
            diff.integrity.push(format!(
                "split `{}`: {} does not match the hashes recorded in {}",
                old.name,
                m.frames_file,
                loaded.path.display()
            ));
        }
    }
    let label = format!("the subject lists of {}", loaded.path.display());
    let (current, _) = read_frames(shards, &split, &label, progress)?;
    let old: BTreeMap<&str, &FrameRow> = loaded.frames.iter().map(|f| (f.sample_id.as_str(), f)).collect();
    let new: BTreeMap<&str, &FrameRow> = current.iter().map(|f| (f.sample_id.as_str(), f)).collect();
    for name in split.protocol.split_names() {
        let mut d = SplitDiff { split: name.to_string(), ..Default::default() };
        for (id, row) in new.iter().filter(|(_, r)| r.split == *name) {
            match old.get(id) {
                None => d.added.push(id.to_string()),
                Some(o) if o != row => d.changed.push(format!("{id}: {} -> {}", o.to_csv(), row.to_csv())),
                Some(_) => {}
            }
        }
        for (id, _) in old.iter().filter(|(_, r)| r.split == *name) {
            if !new.contains_key(id) {
                d.removed.push(id.to_string());
            }
        }
        if !(d.added.is_empty() && d.removed.is_empty() && d.changed.is_empty()) {
            diff.splits.push(d);
        }
    }
    Ok(diff)
}
