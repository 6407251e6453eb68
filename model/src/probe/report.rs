//! The probe's report: `probe.json` (everything, machine-readable; what
//! `mcsfau compare` and `mcsfau detect` read), `probe.csv` (one row per AU,
//! ours next to the paper's), `probe.md` (the same as tables), and the head
//! `probe_head.safetensors`, and `test_predictions.csv` (per test frame and
//! head seed: the AU probabilities and labels, for other tools). F1 and AP
//! are stored as fractions in the JSON and printed in percent (as the paper
//! does) in the CSV and Markdown ([`super::render`]).
//!
//! Beside the paper's per-AU F1 the report carries what a result needs to
//! be read: the all-present floor, average precision, the mean over head
//! seeds and a bootstrap interval over test subjects.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use super::compare::{compare, Comparison};
use super::linear::{Head, Selection, THRESHOLD};
use super::metrics::{base_rate, floor_f1, mean, AuScore};
use super::stats::Bootstrap;
use super::{CheckpointInfo, Dataset};
use crate::error::{ModelError, Result};

/// Format tag of `probe.json`.
pub const REPORT_FORMAT: &str = "mcsfau-probe-v1";
/// File names written into the output folder.
pub const JSON_FILE: &str = "probe.json";
/// See [`JSON_FILE`].
pub const CSV_FILE: &str = "probe.csv";
/// See [`JSON_FILE`].
pub const MD_FILE: &str = "probe.md";
/// See [`JSON_FILE`].
pub const HEAD_FILE: &str = "probe_head.safetensors";
/// See [`JSON_FILE`].
pub const PREDICTIONS_FILE: &str = "test_predictions.csv";

/// Frames of one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitInfo {
    /// Split name.
    pub name: String,
    /// Frames the manifest lists.
    pub listed: usize,
    /// Frames with features (missing or undecodable rows are left out).
    pub frames: usize,
    /// Whether the features came from the cache.
    pub cached: bool,
}

/// Test scores of one AU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuResult {
    /// AU number.
    pub au: u16,
    /// F1 at 0.5, in [0, 1].
    pub f1: f64,
    /// Precision.
    pub precision: f64,
    /// Recall.
    pub recall: f64,
    /// Test frames labeled present.
    pub positives: u64,
    /// Test frames with a known label.
    pub known: u64,
    /// The confusion counts (of the first head seed).
    pub counts: AuScore,
    /// Average precision in [0, 1] (mean over the head seeds).
    #[serde(default)]
    pub ap: f64,
    /// F1 of predicting "present" for every test frame (the floor).
    #[serde(default)]
    pub floor_f1: f64,
    /// Fraction of known test frames labeled present (the AP floor).
    #[serde(default)]
    pub base_rate: f64,
}

impl AuResult {
    /// From the scores of AU `au`.
    pub fn new(au: u16, s: &AuScore) -> Self {
        Self {
            au,
            f1: s.f1,
            precision: s.precision(),
            recall: s.recall(),
            positives: s.positives(),
            known: s.known(),
            counts: *s,
            ap: 0.0,
            floor_f1: floor_f1(s),
            base_rate: base_rate(s),
        }
    }
}

/// One head seed's test scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedResult {
    /// The head seed.
    pub seed: u64,
    /// Model selection of this seed.
    pub selection: Selection,
    /// Per-AU test F1, fractions.
    pub f1: Vec<f64>,
    /// Per-AU test average precision.
    pub ap: Vec<f64>,
    /// Mean of `f1`.
    pub mean_f1: f64,
    /// Mean of `ap`.
    pub mean_ap: f64,
}

impl SeedResult {
    /// From one seed's selection and test scores.
    pub fn new(seed: u64, selection: Selection, scores: &[AuScore], ap: Vec<f64>) -> Self {
        let f1: Vec<f64> = scores.iter().map(|s| s.f1).collect();
        Self { seed, selection, mean_f1: mean(&f1), mean_ap: mean(&ap), f1, ap }
    }
}

/// What a trivial method scores on the same test frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Floor {
    /// Mean over the AUs of the all-present F1.
    pub mean_f1: f64,
    /// Mean over the AUs of the base rate (the AP of a constant score).
    pub mean_ap: f64,
}

/// Per-frame test outputs, written to [`PREDICTIONS_FILE`] (not to the JSON).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Predictions {
    /// Sample ids, row order.
    pub ids: Vec<String>,
    /// Labels, row-major `[n, A]`.
    pub labels: Vec<i8>,
    /// Probabilities per head seed, each row-major `[n, A]`.
    pub probs: Vec<Vec<f32>>,
}

/// A paper row, as stored in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperRowOut {
    /// Method.
    pub method: String,
    /// Table.
    pub source: String,
    /// Per-AU F1, percent.
    pub f1_pct: Vec<f64>,
    /// Printed mean, percent.
    pub mean_pct: f64,
}

/// Everything a probe run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// [`REPORT_FORMAT`].
    pub format: String,
    /// Dataset.
    pub dataset: Dataset,
    /// AU numbers, in row order of `test`.
    pub au_numbers: Vec<u16>,
    /// The probed checkpoint.
    pub checkpoint: CheckpointInfo,
    /// The manifest the splits came from.
    pub manifest: String,
    /// Device the backbone ran on.
    pub device: String,
    /// Decision threshold.
    pub threshold: f32,
    /// Frames per split.
    pub splits: Vec<SplitInfo>,
    /// Model selection on the validation split.
    pub selection: Selection,
    /// Test scores per AU.
    pub test: Vec<AuResult>,
    /// Mean test F1 over the AUs (and head seeds), in [0, 1].
    pub test_mean_f1: f64,
    /// Mean test average precision over the AUs (and head seeds).
    #[serde(default)]
    pub test_mean_ap: f64,
    /// What predicting "present" everywhere scores on the test frames.
    #[serde(default)]
    pub floor: Option<Floor>,
    /// What was probed: `backbone`, or a reference (`landmarks`, `pixels32`).
    #[serde(default = "backbone_name")]
    pub features: String,
    /// Per head seed (empty in reports of older versions).
    #[serde(default)]
    pub seeds: Vec<SeedResult>,
    /// The 95 % bootstrap interval over test subjects.
    #[serde(default)]
    pub bootstrap: Option<Bootstrap>,
    /// The checkpoint's landmark detector on the test frames (MFRR's
    /// `locate` detector; absent for references and other checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detector: Option<super::geometry::DetectorError>,
    /// The per-frame outputs (written as CSV, not in the JSON).
    #[serde(skip)]
    pub predictions: Option<Predictions>,
    /// The paper's rows for the same AUs.
    pub paper: Vec<PaperRowOut>,
    /// The head's file name, next to the JSON.
    pub head_file: String,
}

fn backbone_name() -> String {
    "backbone".into()
}

impl ProbeReport {
    /// Assembles a report; the mean is over all AUs of the protocol.
    pub fn new(
        dataset: Dataset,
        checkpoint: CheckpointInfo,
        manifest: String,
        device: String,
        splits: Vec<SplitInfo>,
        selection: Selection,
        test: Vec<AuResult>,
    ) -> Self {
        let test_mean_f1 = mean(&test.iter().map(|a| a.f1).collect::<Vec<_>>());
        let floor = Some(Floor {
            mean_f1: mean(&test.iter().map(|a| a.floor_f1).collect::<Vec<_>>()),
            mean_ap: mean(&test.iter().map(|a| a.base_rate).collect::<Vec<_>>()),
        });
        let paper = dataset
            .paper_rows()
            .iter()
            .map(|r| PaperRowOut {
                method: r.method.into(),
                source: r.source.into(),
                f1_pct: r.f1.to_vec(),
                mean_pct: r.mean,
            })
            .collect();
        Self {
            format: REPORT_FORMAT.into(),
            dataset,
            au_numbers: dataset.au_numbers().to_vec(),
            checkpoint,
            manifest,
            device,
            threshold: THRESHOLD,
            splits,
            selection,
            test,
            test_mean_f1,
            test_mean_ap: 0.0,
            floor,
            features: backbone_name(),
            seeds: Vec::new(),
            bootstrap: None,
            detector: None,
            predictions: None,
            paper,
            head_file: HEAD_FILE.into(),
        }
    }

    /// Sets the per-seed results: per-AU F1 and AP and their means become
    /// the means over the seeds.
    pub fn set_seeds(&mut self, seeds: Vec<SeedResult>, bootstrap: Option<Bootstrap>) {
        let n = seeds.len().max(1) as f64;
        for (i, a) in self.test.iter_mut().enumerate() {
            a.f1 = seeds.iter().map(|s| s.f1[i]).sum::<f64>() / n;
            a.ap = seeds.iter().map(|s| s.ap[i]).sum::<f64>() / n;
        }
        self.test_mean_f1 = mean(&self.f1s());
        self.test_mean_ap = mean(&self.test.iter().map(|a| a.ap).collect::<Vec<_>>());
        self.seeds = seeds;
        self.bootstrap = bootstrap;
    }

    /// Per-AU test F1, fractions, in AU order.
    pub fn f1s(&self) -> Vec<f64> {
        self.test.iter().map(|a| a.f1).collect()
    }

    /// Writes the JSON, CSV, Markdown and the head into `dir` (created);
    /// returns the JSON's path.
    pub fn write(&self, dir: &Path, head: &Head) -> Result<PathBuf> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ModelError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let head_path = dir.join(HEAD_FILE);
        schemas::atomic::write_with(&head_path, |tmp| head.save(tmp)).map_err(|e| match e {
            schemas::atomic::AtomicError::Write(e) => e,
            schemas::atomic::AtomicError::Io(p, source) => ModelError::Io { path: p, source },
        })?;
        let json =
            serde_json::to_string_pretty(self).map_err(|e| ModelError::Probe(format!("encoding the report: {e}")))?;
        let mut files = vec![(CSV_FILE, self.to_csv()), (MD_FILE, self.to_markdown())];
        if let Some(p) = &self.predictions {
            files.push((PREDICTIONS_FILE, self.predictions_csv(p)));
        }
        files.push((JSON_FILE, json));
        for (name, text) in files {
            let path = dir.join(name);
            schemas::atomic::write(&path, text.as_bytes()).map_err(io(&path))?;
        }
        Ok(dir.join(JSON_FILE))
    }

    /// Reads a `probe.json` (a file, or a folder holding one).
    pub fn load(path: &Path) -> Result<Self> {
        let path = if path.is_dir() { path.join(JSON_FILE) } else { path.to_path_buf() };
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
        let r: Self = serde_json::from_str(&text)
            .map_err(|e| ModelError::Probe(format!("{}: not a probe report: {e}", path.display())))?;
        if r.format != REPORT_FORMAT || r.test.len() != r.au_numbers.len() {
            return Err(ModelError::Probe(format!(
                "{}: format {:?} with {} AU results for {} AUs, expected {REPORT_FORMAT:?}",
                path.display(),
                r.format,
                r.test.len(),
                r.au_numbers.len()
            )));
        }
        Ok(r)
    }

    /// The head next to a report loaded from `json`.
    pub fn head_path(&self, json: &Path) -> PathBuf {
        let dir = if json.is_dir() { json } else { json.parent().unwrap_or(Path::new(".")) };
        dir.join(&self.head_file)
    }
}
