//! The probe's report: `probe.json` (everything, machine-readable; what
//! `mcsfau compare` and `mcsfau detect` read), `probe.csv` (one row per AU,
//! ours next to the paper's), `probe.md` (the same as tables), and the head
//! `probe_head.safetensors`. F1 is stored as a fraction in the JSON and
//! printed in percent (as the paper does) in the CSV and Markdown.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use super::compare::{compare, Comparison};
use super::linear::{Head, Selection, THRESHOLD};
use super::metrics::{mean, AuScore};
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
    /// The confusion counts.
    pub counts: AuScore,
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
        }
    }
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
    /// Mean test F1 over the AUs, in [0, 1].
    pub test_mean_f1: f64,
    /// The paper's rows for the same AUs.
    pub paper: Vec<PaperRowOut>,
    /// The head's file name, next to the JSON.
    pub head_file: String,
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
            paper,
            head_file: HEAD_FILE.into(),
        }
    }

    /// Per-AU test F1, fractions, in AU order.
    pub fn f1s(&self) -> Vec<f64> {
        self.test.iter().map(|a| a.f1).collect()
    }

    /// The CSV: `au,f1_pct,precision_pct,recall_pct,positives,known,` then
    /// one `paper_<method>` column per paper row; a last `mean` row.
    pub fn to_csv(&self) -> String {
        let slug = |m: &str| m.split(' ').next().unwrap_or(m).to_ascii_lowercase().replace('-', "_");
        let mut s = String::from("au,f1_pct,precision_pct,recall_pct,positives,known");
        for p in &self.paper {
            let _ = write!(s, ",paper_{}_f1_pct", slug(&p.method));
        }
        s.push('\n');
        for (i, a) in self.test.iter().enumerate() {
            let _ = write!(
                s,
                "AU{:02},{:.1},{:.1},{:.1},{},{}",
                a.au,
                100.0 * a.f1,
                100.0 * a.precision,
                100.0 * a.recall,
                a.positives,
                a.known
            );
            for p in &self.paper {
                let _ = write!(s, ",{:.1}", p.f1_pct.get(i).copied().unwrap_or(f64::NAN));
            }
            s.push('\n');
        }
        let _ = write!(s, "mean,{:.1},,,,", 100.0 * self.test_mean_f1);
        for p in &self.paper {
            let _ = write!(s, ",{:.1}", p.mean_pct);
        }
        s.push('\n');
        s
    }

    /// The per-AU F1 table (ours and the paper's rows), Markdown.
    pub fn f1_table(&self) -> String {
        let mut s = String::from("| method |");
        for au in &self.au_numbers {
            let _ = write!(s, " AU{au} |");
        }
        s.push_str(" mean |\n|---|");
        s.push_str(&"---:|".repeat(self.au_numbers.len() + 1));
        s.push_str("\n| this run |");
        for a in &self.test {
            let _ = write!(s, " {:.1} |", 100.0 * a.f1);
        }
        let _ = writeln!(s, " **{:.1}** |", 100.0 * self.test_mean_f1);
        for p in &self.paper {
            let _ = write!(s, "| {} ({}) |", p.method, p.source);
            for v in &p.f1_pct {
                let _ = write!(s, " {v:.1} |");
            }
            let _ = writeln!(s, " {:.1} |", p.mean_pct);
        }
        s
    }

    /// The whole report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut s = format!("# Linear probe on {} (test split, F1 % at {})\n\n", self.dataset.name(), self.threshold);
        s.push_str(&self.f1_table());
        let _ =
            writeln!(s, "\nPaper rows: MC-SFAU, Chinese Journal of Computers 2026, tables 1 (BP4D) and 2 (DISFA).\n");
        let _ = writeln!(
            s,
            "- checkpoint: `{}` (step {}, sha256 `{}`)",
            self.checkpoint.path, self.checkpoint.step, &self.checkpoint.sha256
        );
        let _ = writeln!(s, "- manifest: `{}`; device: {}", self.manifest, self.device);
        for sp in &self.splits {
            let _ = writeln!(
                s,
                "- {}: {} frames of {} listed{}",
                sp.name,
                sp.frames,
                sp.listed,
                if sp.cached { " (features from cache)" } else { "" }
            );
        }
        let c = &self.selection.chosen;
        let _ = writeln!(
            s,
            "- selected on val: lr {}, weight decay {}, epoch {} (val mean F1 {:.1})\n",
            c.lr,
            c.weight_decay,
            c.best_epoch,
            100.0 * c.val_mean_f1
        );
        s.push_str("## Selection grid (validation split only)\n\n| lr | weight decay | best epoch | epochs run | val mean F1 % |\n|---:|---:|---:|---:|---:|\n");
        for g in &self.selection.grid {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1} |",
                g.lr,
                g.weight_decay,
                g.best_epoch,
                g.epochs_run,
                100.0 * g.val_mean_f1
            );
        }
        s.push_str("\n## Test counts\n\n| AU | F1 % | precision % | recall % | positives | known |\n|---|---:|---:|---:|---:|---:|\n");
        for a in &self.test {
            let _ = writeln!(
                s,
                "| AU{} | {:.1} | {:.1} | {:.1} | {} | {} |",
                a.au,
                100.0 * a.f1,
                100.0 * a.precision,
                100.0 * a.recall,
                a.positives,
                a.known
            );
        }
        s
    }

    /// Writes the JSON, CSV, Markdown and the head into `dir` (created);
    /// returns the JSON's path.
    pub fn write(&self, dir: &Path, head: &Head) -> Result<PathBuf> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ModelError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        head.save(&dir.join(HEAD_FILE))?;
        let json =
            serde_json::to_string_pretty(self).map_err(|e| ModelError::Probe(format!("encoding the report: {e}")))?;
        for (name, text) in [(CSV_FILE, self.to_csv()), (MD_FILE, self.to_markdown()), (JSON_FILE, json)] {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(io(&path))?;
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
