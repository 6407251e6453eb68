//! `mcsfau audit`: Polars checks over shards before GPU days are spent.
//!
//! Every check is a lazy query over the shards that selects only the
//! columns it needs (see each module's header); only [`decode`] touches
//! image bytes, for a seeded sample of rows. [`run`] gathers the figures
//! into an [`AuditReport`]; [`report::write`] writes `report.md`,
//! `report.json`, CSV tables and PNG plots. `docs/audit.md` lists the checks.
//!
//! * [`scan`]: shard groups and lazy scans.
//! * [`counts`]: per dataset/split/subject/video, frames per clip.
//! * [`labels`]: AU base rates, label ranges, labels past a clip's end.
//! * [`integrity`]: duplicates, leakage, rows outside the manifest.
//! * [`landmarks`]: NaN/inf, outside the crop, inter-ocular, scores.
//! * [`decode`]: JPEG decode spot check.

pub mod counts;
pub mod decode;
pub mod faces;
pub mod integrity;
pub mod labels;
pub mod landmarks;
pub mod plots;
pub mod report;
pub mod scan;

use std::collections::BTreeMap;
use std::path::Path;

use schemas::schema::col as c;
use serde::Serialize;

use crate::error::{PipelineError, Result};
use crate::manifest::LoadedManifest;
use crate::progress::Progress;

/// Settings of an audit run.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditOptions {
    /// Rows whose JPEG is decoded (seeded sample). Default 64; 0 skips.
    pub decode_sample: usize,
    /// Seed of the decode sample. Default 0.
    pub seed: u64,
    /// Inter-ocular distance below this fraction of the crop side is
    /// degenerate. Default 0.05 (aligned 256 crops have ~0.3-0.4).
    pub min_interocular_fraction: f64,
    /// Known clip lengths in frames per dataset, for the past-the-end label
    /// check. Default: DISFA 4,845 frames per video (docs/audit.md).
    pub clip_frames: BTreeMap<String, i64>,
    /// Example rows listed per failed check. Default 10.
    pub max_examples: usize,
    /// The `faces/no_face_rate` check fails above this share of frames
    /// without a face (preprocess's `faces-*.csv`). Default 0.2.
    pub max_no_face_rate: f64,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            decode_sample: 64,
            seed: 0,
            min_interocular_fraction: 0.05,
            clip_frames: BTreeMap::from([("disfa".to_string(), 4845)]),
            max_examples: 10,
            max_no_face_rate: 0.2,
        }
    }
}

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing wrong.
    Pass,
    /// Problems found.
    Fail,
    /// Not applicable (no manifest, missing column, ...).
    Skipped,
}

/// One named check, e.g. `landmarks/non_finite/bp4d`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// `<area>/<rule>[/<dataset>]`.
    pub name: String,
    /// Pass, fail or skipped.
    pub status: Status,
    /// Offending items (rows, subjects); 0 when passed or skipped.
    pub count: u64,
    /// One line: what was counted, or why it was skipped.
    pub summary: String,
    /// Up to `max_examples` offending items.
    pub examples: Vec<String>,
}

impl Check {
    /// Fails when `count > 0`.
    pub fn from_count(name: &str, count: u64, what: &str, examples: Vec<String>) -> Self {
        Self {
            name: name.into(),
            status: if count > 0 { Status::Fail } else { Status::Pass },
            count,
            summary: format!("{count} {what}"),
            examples,
        }
    }

    /// A check that did not apply.
    pub fn skipped(name: &str, why: &str) -> Self {
        Self { name: name.into(), status: Status::Skipped, count: 0, summary: why.into(), examples: Vec::new() }
    }
}

/// Everything an audit found.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct AuditReport {
    /// The shard folder.
    pub shards: String,
    /// The manifests used.
    pub manifests: Vec<String>,
    /// Shard files.
    pub files: u64,
    /// Rows over all shards.
    pub rows: u64,
    /// Every check, in run order.
    pub checks: Vec<Check>,
    /// Counts.
    pub counts: counts::Counts,
    /// AU base rates per (dataset, split).
    pub base_rates: Vec<labels::BaseRates>,
    /// Landmark figures per dataset.
    pub landmarks: Vec<landmarks::LandmarkStats>,
    /// JPEG spot check.
    pub decode: decode::DecodeStats,
    /// How often preprocess found a face (its `faces-*.csv` tables), if found.
    pub faces: Option<faces::FaceStats>,
    /// Wall time per phase in seconds, in run order.
    pub timings: Vec<(String, f64)>,
}

impl AuditReport {
    /// The failed checks.
    pub fn failed(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail).collect()
    }
}

/// Audits the shards under `shards` (with `manifests` for split-aware
/// figures and the manifest checks).
pub fn run(
    shards: &Path,
    manifests: &[LoadedManifest],
    opts: &AuditOptions,
    progress: &dyn Progress,
) -> Result<AuditReport> {
    let groups = scan::groups(shards)?;
    run_groups(shards, &groups, manifests, opts, progress).map_err(|e| match e {
        PipelineError::Polars { .. } => diagnose(&groups).unwrap_or(e),
        e => e,
    })
}

/// After a failed Polars query (whose errors name no file): reads every
/// shard through the validator and returns the first file's error, if any.
fn diagnose(groups: &[scan::Group]) -> Option<PipelineError> {
    let names: Vec<String> = schemas::columns().iter().map(|c| c.name.to_string()).collect();
    for file in groups.iter().flat_map(|g| g.files.iter()) {
        let read = schemas::ShardReader::open(file).and_then(|r| {
            let present: Vec<&str> =
                names.iter().map(String::as_str).filter(|n| r.require_columns(&[n]).is_ok()).collect();
            r.read_all(&present).map(|_| ())
        });
        if let Err(e) = read {
            return Some(e.into());
        }
    }
    None
}

fn run_groups(
    shards: &Path,
    groups: &[scan::Group],
    manifests: &[LoadedManifest],
    opts: &AuditOptions,
    progress: &dyn Progress,
) -> Result<AuditReport> {
    let mut report = AuditReport {
        shards: shards.display().to_string(),
        manifests: manifests.iter().map(|m| m.path.display().to_string()).collect(),
        files: groups.iter().map(|g| g.files.len() as u64).sum(),
        rows: groups.iter().map(|g| g.rows).sum(),
        ..Default::default()
    };
    if groups.is_empty() {
        report.checks.push(Check::from_count("shards/present", 1, "shard folders hold no shards", vec![]));
        return Ok(report);
    }
    for m in manifests {
        if !groups.iter().any(|g| g.dataset == m.manifest.dataset) {
            report.checks.push(Check::from_count(
                &format!("integrity/manifest_dataset/{}", m.manifest.dataset),
                1,
                "manifest(s) for a dataset without shards",
                vec![m.path.display().to_string()],
            ));
        }
    }
    let mut clock = std::time::Instant::now();
    let mut lap = |report: &mut AuditReport, phase: String| {
        report.timings.push((phase, clock.elapsed().as_secs_f64()));
        clock = std::time::Instant::now();
    };
    report.checks.push(integrity::duplicates(groups, opts)?);
    report.checks.push(integrity::sample_id_syntax(groups, opts)?);
    report.checks.extend(integrity::mixed_configurations(groups)?);
    lap(&mut report, "duplicates".into());
    progress.start("audit: queries", groups.len() as u64);
    for g in groups {
        tracing::info!(dataset = %g.dataset, files = g.files.len(), rows = g.rows, "auditing");
        let ds = &g.dataset;
        let manifest = scan::manifest_frame(manifests, &g.dataset)?;
        counts::count_group(g, manifest.as_ref(), &mut report.counts)?;
        lap(&mut report, format!("counts/{ds}"));
        match &manifest {
            Some(m) => report.checks.extend(integrity::manifest_checks(g, m, opts)?),
            None => report.checks.push(Check::skipped(
                &format!("integrity/subject_leakage/{}", g.dataset),
                "no manifest for this dataset: no splits to compare",
            )),
        }
        lap(&mut report, format!("manifest checks/{ds}"));
        if g.has(&[c::AU_OCCURRENCE]) && !g.au_numbers.is_empty() {
            report.base_rates.extend(labels::base_rates(g, manifest.as_ref())?);
            report.checks.extend(labels::label_checks(g, opts)?);
            lap(&mut report, format!("labels/{ds}"));
        }
        if g.has(&[c::LANDMARKS, c::CROP_SIZE, c::LANDMARK_SCORE]) {
            let (stats, checks) = landmarks::landmark_checks(g, opts)?;
            report.landmarks.push(stats);
            report.checks.extend(checks);
            lap(&mut report, format!("landmarks/{ds}"));
        } else {
            report.checks.push(Check::skipped(&format!("landmarks/{}", g.dataset), "no landmark columns"));
        }
        progress.advance(1);
    }
    progress.finish();
    let (decode, check) = decode::spot_check(groups, opts, progress)?;
    report.decode = decode;
    report.checks.push(check);
    lap(&mut report, "jpeg spot check".into());
    let (faces, check) = faces::check(shards, opts.max_no_face_rate)?;
    report.faces = faces;
    report.checks.push(check);
    Ok(report)
}
