//! Subject splits of BP4D and DISFA: the paper's 3-way split (our own,
//! seeded rule) and the published 3-fold lists, as small diffable CSV files.
//!
//! The paper (following CLP, Li & Shan, TIP 2023) splits BP4D 28/7/6 and
//! DISFA 18/4/5 subjects into train/val/test, but CLP never published its
//! lists. Ours come from a documented rule: rank the subjects by
//! `sha256("<PAPER_SEED>/<dataset>/<subject>")` (lowercase hex, ascending),
//! take the first n_train as `train`, the next n_val as `val`, the rest as
//! `test`. The 3-fold lists are the JAA-Net / ME-GraphAU ones from
//! docs/manifests.md; DISFA's 27 subjects are their union.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{PipelineError, Result};

/// Seed of the paper-split ranking. Changing it changes every list.
pub const PAPER_SEED: &str = "mcsfau-paper-split-v1";

/// BP4D 3-fold subject lists (JAA-Net / ME-GraphAU), parts 1-3.
pub const BP4D_FOLDS: [&[&str]; 3] = [
    &["F001", "M007", "F018", "F008", "F002", "M004", "F010", "F009", "M012", "M001", "F016", "M014", "F023", "M008"],
    &["M011", "F003", "M010", "M002", "F005", "F022", "M018", "M017", "F013", "M016", "F020", "F011", "M013", "M005"],
    &["F007", "F015", "F006", "F019", "M006", "M009", "F012", "M003", "F004", "F021", "F017", "M015", "F014"],
];

/// DISFA 3-fold subject lists (JAA-Net / ME-GraphAU), parts 1-3.
pub const DISFA_FOLDS: [&[&str]; 3] = [
    &["SN002", "SN010", "SN001", "SN026", "SN027", "SN032", "SN030", "SN009", "SN016"],
    &["SN013", "SN018", "SN011", "SN028", "SN012", "SN006", "SN031", "SN021", "SN024"],
    &["SN003", "SN029", "SN023", "SN025", "SN008", "SN005", "SN007", "SN017", "SN004"],
];

/// A labeled dataset with a subject protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    /// BP4D-Spontaneous, 41 subjects, 12 AUs.
    Bp4d,
    /// DISFA, 27 subjects, 8 AUs.
    Disfa,
}

impl Dataset {
    /// Both datasets.
    pub const ALL: [Dataset; 2] = [Dataset::Bp4d, Dataset::Disfa];

    /// The name used in shards (`dataset` column) and folder names.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Bp4d => "bp4d",
            Dataset::Disfa => "disfa",
        }
    }

    /// Parses `bp4d` / `disfa`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "bp4d" => Ok(Dataset::Bp4d),
            "disfa" => Ok(Dataset::Disfa),
            other => Err(PipelineError::Manifest(format!("unknown dataset `{other}` (expected bp4d or disfa)"))),
        }
    }

    /// The published 3-fold lists.
    pub fn folds(self) -> [&'static [&'static str]; 3] {
        match self {
            Dataset::Bp4d => BP4D_FOLDS,
            Dataset::Disfa => DISFA_FOLDS,
        }
    }

    /// Every subject, sorted: BP4D F001-F023 + M001-M018; DISFA the 27
    /// subjects of the fold lists (SN001-SN032 minus the absent ones).
    pub fn subjects(self) -> Vec<String> {
        let mut s: Vec<String> = match self {
            Dataset::Bp4d => (1..=23).map(|i| format!("F{i:03}")).chain((1..=18).map(|i| format!("M{i:03}"))).collect(),
            Dataset::Disfa => self.folds().iter().flat_map(|f| f.iter().map(|s| s.to_string())).collect(),
        };
        s.sort();
        s
    }

    /// The paper's train/val/test subject counts (CLP protocol).
    pub fn paper_sizes(self) -> [usize; 3] {
        match self {
            Dataset::Bp4d => [28, 7, 6],
            Dataset::Disfa => [18, 4, 5],
        }
    }

    /// The paper's train/val/test image counts, the reference for real data.
    pub fn paper_images(self) -> [u64; 3] {
        match self {
            Dataset::Bp4d => [100_767, 24_869, 20_940],
            Dataset::Disfa => [82_971, 19_275, 23_898],
        }
    }
}

/// A subject protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// The paper's train/val/test split (our seeded lists).
    Paper,
    /// The published 3-fold subject-exclusive lists.
    Folds3,
}

impl Protocol {
    /// `paper` or `folds3`: the CSV file stem and the manifest's name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Paper => "paper",
            Protocol::Folds3 => "folds3",
        }
    }

    /// Parses `paper` / `folds3`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "paper" => Ok(Protocol::Paper),
            "folds3" => Ok(Protocol::Folds3),
            other => {
                Err(PipelineError::Manifest(format!("unknown split protocol `{other}` (expected paper or folds3)")))
            }
        }
    }

    /// The split names in order.
    pub fn split_names(self) -> &'static [&'static str] {
        match self {
            Protocol::Paper => &["train", "val", "test"],
            Protocol::Folds3 => &["fold1", "fold2", "fold3"],
        }
    }

    fn value_column(self) -> &'static str {
        match self {
            Protocol::Paper => "split",
            Protocol::Folds3 => "fold",
        }
    }
}

/// Which split each subject of a dataset belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectSplit {
    /// The dataset.
    pub dataset: Dataset,
    /// The protocol.
    pub protocol: Protocol,
    /// Subject -> split name (`train`/`val`/`test` or `fold1`..`fold3`).
    pub assignment: BTreeMap<String, String>,
}

/// The paper-split ranking key of a subject: `sha256("<seed>/<dataset>/<subject>")`.
pub fn rank_key(dataset: Dataset, subject: &str) -> String {
    hex::encode(Sha256::digest(format!("{PAPER_SEED}/{}/{subject}", dataset.name())))
}

impl SubjectSplit {
    /// The paper split by the seeded ranking rule (module docs).
    pub fn paper(dataset: Dataset) -> Self {
        let mut ranked = dataset.subjects();
        ranked.sort_by_key(|s| rank_key(dataset, s));
        let [n_train, n_val, _] = dataset.paper_sizes();
        let assignment = ranked
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let split = if i < n_train {
                    "train"
                } else if i < n_train + n_val {
                    "val"
                } else {
                    "test"
                };
                (s, split.to_string())
            })
            .collect();
        Self { dataset, protocol: Protocol::Paper, assignment }
    }

    /// The published 3-fold lists: part i is `fold<i>`.
    pub fn folds3(dataset: Dataset) -> Self {
        let assignment = dataset
            .folds()
            .iter()
            .enumerate()
            .flat_map(|(i, part)| part.iter().map(move |s| (s.to_string(), format!("fold{}", i + 1))))
            .collect();
        Self { dataset, protocol: Protocol::Folds3, assignment }
    }

    /// The rule's output for `protocol`.
    pub fn generate(dataset: Dataset, protocol: Protocol) -> Self {
        match protocol {
            Protocol::Paper => Self::paper(dataset),
            Protocol::Folds3 => Self::folds3(dataset),
        }
    }

    /// Subjects of one split, sorted.
    pub fn subjects_of(&self, split: &str) -> Vec<String> {
        self.assignment.iter().filter(|(_, s)| *s == split).map(|(k, _)| k.clone()).collect()
    }

    /// The CSV text: header `subject,split` (paper) or `subject,fold`
    /// (folds3, values 1-3), one row per subject, sorted by subject.
    pub fn to_csv(&self) -> String {
        let mut out = format!("subject,{}\n", self.protocol.value_column());
        for (subject, split) in &self.assignment {
            let v = match self.protocol {
                Protocol::Paper => split.as_str(),
                Protocol::Folds3 => split.trim_start_matches("fold"),
            };
            out.push_str(&format!("{subject},{v}\n"));
        }
        out
    }

    /// Parses and validates a split CSV: known subjects only, each once,
    /// every subject of the dataset present, split values of the protocol.
    pub fn from_csv(dataset: Dataset, protocol: Protocol, text: &str, path: &Path) -> Result<Self> {
        let bad =
            |line: usize, msg: String| PipelineError::ManifestFile { path: path.to_path_buf(), line, message: msg };
        let mut lines = text.lines().enumerate();
        let header = format!("subject,{}", protocol.value_column());
        match lines.next() {
            Some((_, h)) if h.trim() == header => {}
            other => return Err(bad(1, format!("expected header `{header}`, found {:?}", other.map(|(_, h)| h)))),
        }
        let known: BTreeSet<String> = dataset.subjects().into_iter().collect();
        let mut assignment = BTreeMap::new();
        for (i, line) in lines {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (subject, value) =
                line.split_once(',').ok_or_else(|| bad(i + 1, format!("expected `subject,value`, found `{line}`")))?;
            if !known.contains(subject) {
                return Err(bad(i + 1, format!("unknown {} subject `{subject}`", dataset.name())));
            }
            let split = match protocol {
                Protocol::Paper => value.to_string(),
                Protocol::Folds3 => format!("fold{value}"),
            };
            if !protocol.split_names().contains(&split.as_str()) {
                return Err(bad(i + 1, format!("`{value}` is not a {} split", protocol.name())));
            }
            if assignment.insert(subject.to_string(), split).is_some() {
                return Err(bad(i + 1, format!("subject `{subject}` listed twice")));
            }
        }
        if let Some(missing) = known.iter().find(|s| !assignment.contains_key(*s)) {
            return Err(bad(0, format!("subject `{missing}` is missing")));
        }
        Ok(Self { dataset, protocol, assignment })
    }

    /// The CSV path under a manifests folder: `<dir>/<dataset>/<protocol>.csv`.
    pub fn path_in(dir: &Path, dataset: Dataset, protocol: Protocol) -> PathBuf {
        dir.join(dataset.name()).join(format!("{}.csv", protocol.name()))
    }

    /// Loads `<dir>/<dataset>/<protocol>.csv`.
    pub fn load(dir: &Path, dataset: Dataset, protocol: Protocol) -> Result<Self> {
        let path = Self::path_in(dir, dataset, protocol);
        let text = std::fs::read_to_string(&path).map_err(|e| PipelineError::io(&path, e))?;
        Self::from_csv(dataset, protocol, &text, &path)
    }
}

/// Writes every split file (both datasets, both protocols) under `dir`;
/// returns the paths written.
pub fn write_split_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for dataset in Dataset::ALL {
        for protocol in [Protocol::Paper, Protocol::Folds3] {
            let path = SubjectSplit::path_in(dir, dataset, protocol);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| PipelineError::io(parent, e))?;
            }
            let text = SubjectSplit::generate(dataset, protocol).to_csv();
            crate::error::write_file(&path, text.as_bytes())?;
            written.push(path);
        }
    }
    Ok(written)
}

/// The split files under `dir` that differ from the rule's output (missing
/// files count as different).
pub fn stale_split_files(dir: &Path) -> Vec<PathBuf> {
    let mut stale = Vec::new();
    for dataset in Dataset::ALL {
        for protocol in [Protocol::Paper, Protocol::Folds3] {
            let path = SubjectSplit::path_in(dir, dataset, protocol);
            let expected = SubjectSplit::generate(dataset, protocol).to_csv();
            if std::fs::read_to_string(&path).ok().as_deref() != Some(expected.as_str()) {
                stale.push(path);
            }
        }
    }
    stale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_lists_match_data_md() {
        assert_eq!(Dataset::Bp4d.subjects().len(), 41);
        let disfa = Dataset::Disfa.subjects();
        assert_eq!(disfa.len(), 27);
        // SN001-SN032 minus the five absent ones (docs/manifests.md).
        for absent in ["SN014", "SN015", "SN019", "SN020", "SN022"] {
            assert!(!disfa.iter().any(|s| s == absent), "{absent}");
        }
        let bp4d_folds: usize = BP4D_FOLDS.iter().map(|f| f.len()).sum();
        assert_eq!(bp4d_folds, 41);
        let unique: BTreeSet<&str> = BP4D_FOLDS.iter().flat_map(|f| f.iter().copied()).collect();
        assert_eq!(unique.len(), 41);
    }

    #[test]
    fn paper_split_has_the_paper_sizes_and_is_disjoint() {
        for d in Dataset::ALL {
            let s = SubjectSplit::paper(d);
            let sizes: Vec<usize> = ["train", "val", "test"].iter().map(|n| s.subjects_of(n).len()).collect();
            assert_eq!(sizes, d.paper_sizes().to_vec(), "{d:?}");
            assert_eq!(s.assignment.len(), d.subjects().len());
        }
    }

    #[test]
    fn paper_split_follows_the_ranking_rule() {
        // Independent of `paper()`: the lowest sha256 key is the first train subject.
        let d = Dataset::Disfa;
        let first = d.subjects().into_iter().min_by_key(|s| rank_key(d, s)).unwrap();
        assert_eq!(SubjectSplit::paper(d).assignment[&first], "train");
        let key = rank_key(d, "SN001");
        let manual = hex::encode(Sha256::digest(b"mcsfau-paper-split-v1/disfa/SN001"));
        assert_eq!(key, manual);
    }

    #[test]
    fn csv_round_trips_and_rejects_unknown_subjects() {
        let s = SubjectSplit::folds3(Dataset::Bp4d);
        let text = s.to_csv();
        assert!(text.starts_with("subject,fold\nF001,1\n"), "{text}");
        let back = SubjectSplit::from_csv(Dataset::Bp4d, Protocol::Folds3, &text, Path::new("x.csv")).unwrap();
        assert_eq!(back, s);
        let bad = text.replace("F001,1", "F099,1");
        let err = SubjectSplit::from_csv(Dataset::Bp4d, Protocol::Folds3, &bad, Path::new("x.csv")).unwrap_err();
        assert!(err.to_string().contains("unknown bp4d subject `F099`"), "{err}");
    }
}
