//! The linear probe (paper 4.1, docs/probe.md, following CLP): freeze the
//! online backbone q_theta of a pretrained checkpoint, global-average-pool
//! its feature map, train one linear layer with BCE-with-logits per AU on
//! the train split, select hyperparameters on the validation split only,
//! and report per-AU F1 at 0.5 and their mean on the test split, next to the
//! paper's rows (tables 1-2).
//!
//! * [`features`]: pooled features + labels per split, cached on disk.
//! * [`linear`]: the head, the masked loss, model selection.
//! * [`metrics`]: F1 (scikit-learn's convention), average precision, the
//!   all-present floor, the paired t-test.
//! * [`stats`]: bootstrap intervals over test subjects.
//! * [`report`]: the report (JSON, CSV, Markdown; [`render`] draws the tables).
//! * [`compare`]: two reports, the paired t-test.
//! * [`paper`]: the paper's per-AU rows.
//!
//! The probe checks itself ([`run`]): the head's store holds only the
//! probe's variables, and the backbone is bit-for-bit the same afterwards.
//! User documentation: `docs/probe.md`.

pub mod compare;
pub mod features;
pub mod geometry;
pub mod linear;
pub mod metrics;
pub mod paper;
pub mod render;
pub mod report;
pub mod stats;

use std::collections::HashSet;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::error::{ModelError, Result};
use crate::mcsfau::McSfau;
use features::{ExtractSpec, FeatureSource, SplitFeatures};
use linear::{Head, LinearConfig};
use report::{AuResult, ProbeReport, SeedResult, SplitInfo};

/// Progress of long work: the library reports, the binary draws. Every
/// method defaults to nothing (same shape as `pipeline::progress::Progress`,
/// which the model crate cannot depend on).
pub trait Progress: Sync {
    /// A phase starts with `total` units.
    fn start(&self, _phase: &str, _total: u64) {}
    /// `n` more units are done.
    fn advance(&self, _n: u64) {}
    /// A status line.
    fn message(&self, _msg: &str) {}
    /// The phase is over.
    fn finish(&self) {}
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {}

/// A probe dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    /// BP4D, 12 AUs (table 1).
    Bp4d,
    /// DISFA, 8 AUs, occurrence = intensity >= 2 (table 2).
    Disfa,
}

impl Dataset {
    /// The name used in shards and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bp4d => "bp4d",
            Self::Disfa => "disfa",
        }
    }

    /// The protocol's AU numbers, in label order.
    pub fn au_numbers(self) -> &'static [u16] {
        match self {
            Self::Bp4d => &paper::BP4D_AUS,
            Self::Disfa => &paper::DISFA_AUS,
        }
    }

    /// The paper's rows for this dataset.
    pub fn paper_rows(self) -> &'static [paper::PaperRow] {
        match self {
            Self::Bp4d => &paper::BP4D_ROWS,
            Self::Disfa => &paper::DISFA_ROWS,
        }
    }
}

impl FromStr for Dataset {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "bp4d" => Ok(Self::Bp4d),
            "disfa" => Ok(Self::Disfa),
            _ => Err(ModelError::Probe(format!("unknown probe dataset {s:?}: expected bp4d or disfa"))),
        }
    }
}

/// One split's sample ids, from a manifest.
#[derive(Debug, Clone)]
pub struct Split {
    /// `train`, `val` or `test`.
    pub name: String,
    /// The split's sample ids.
    pub ids: HashSet<String>,
    /// A content hash of the split (the manifest's `rows_sha256`): part of
    /// the feature cache key.
    pub hash: String,
}

/// What the probe reads.
#[derive(Debug, Clone)]
pub struct ProbeData {
    /// The labeled shards.
    pub shard_paths: Vec<PathBuf>,
    /// Train split (fits the head).
    pub train: Split,
    /// Validation split (selects hyperparameters and epochs).
    pub val: Split,
    /// Test split (scored once, with the selected head).
    pub test: Split,
    /// Where the manifest came from (reported).
    pub manifest: String,
}

/// How the probe runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeConfig {
    /// Head training and the selection grid.
    pub linear: LinearConfig,
    /// Images per backbone forward pass.
    pub feature_batch: usize,
    /// JPEG-decode threads (0: all cores).
    pub workers: usize,
    /// Feature cache folder; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Seeds of the head (initialisation, row order): one head is selected
    /// and scored per seed, the report gives their mean; empty = just
    /// `linear.seed`. The first seed's head is the one saved.
    pub seeds: Vec<u64>,
    /// Bootstrap replicates of the test interval (over test subjects); 0
    /// skips it.
    pub bootstrap: usize,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            linear: LinearConfig::default(),
            feature_batch: 64,
            workers: 0,
            cache_dir: None,
            seeds: Vec::new(),
            bootstrap: 1000,
        }
    }
}

impl ProbeConfig {
    /// The head seeds to run (`seeds`, or `linear.seed` when empty).
    pub fn head_seeds(&self) -> Vec<u64> {
        if self.seeds.is_empty() {
            vec![self.linear.seed]
        } else {
            self.seeds.clone()
        }
    }
}

/// The checkpoint a probe ran on, for the report and the cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Path as given.
    pub path: String,
    /// sha256 of the safetensors file.
    pub sha256: String,
    /// Optimizer step recorded in the checkpoint.
    pub step: i64,
}

/// A copy of every backbone variable of the online store (name, tensor).
pub fn backbone_snapshot(model: &McSfau) -> Vec<(String, Tensor)> {
    let mut v: Vec<_> = model
        .online()
        .variables()
        .into_iter()
        .filter(|(n, _)| n.starts_with("backbone."))
        .map(|(n, t)| (n, t.detach().copy()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Names of the backbone variables that differ from `before` (bit for bit).
pub fn backbone_changes(model: &McSfau, before: &[(String, Tensor)]) -> Vec<String> {
    let now = model.online().variables();
    before.iter().filter(|(n, t)| now.get(n).is_none_or(|u| !u.equal(t))).map(|(n, _)| n.clone()).collect()
}

/// Where a probe's features come from, with what identifies them in the
/// cache key.
struct Source<'a> {
    kind: FeatureSource,
    backbone: Option<(&'a crate::backbone::Backbone, i64)>,
    device: Device,
    /// The checkpoint digest, or the reference's name.
    key: String,
}

fn split_features(
    source: &Source,
    dataset: Dataset,
    data: &ProbeData,
    split: &Split,
    cfg: &ProbeConfig,
    shards_fp: &str,
    progress: &dyn Progress,
) -> Result<(SplitFeatures, bool)> {
    let size = source.backbone.map_or(0, |b| b.1);
    let key = features::cache_key(&source.key, shards_fp, &split.hash, &split.name, size);
    if let Some(dir) = &cfg.cache_dir {
        if let Some(f) = features::load_cache(dir, &key)? {
            return Ok((f, true));
        }
    }
    let spec = ExtractSpec {
        shard_paths: &data.shard_paths,
        split: &split.name,
        ids: &split.ids,
        au_numbers: dataset.au_numbers(),
        batch_size: cfg.feature_batch,
        workers: cfg.workers,
    };
    let f = features::extract_source(source.kind, source.backbone, source.device, &spec, progress)?;
    if let Some(dir) = &cfg.cache_dir {
        features::save_cache(dir, &key, &split.name, dataset.au_numbers(), &f)?;
    }
    Ok((f, false))
}

/// Runs the probe of `model` (loaded from `ckpt`) on `data` and returns the
/// report and the selected head (the first seed's). Fails if anything but
/// the head trained.
pub fn run(
    model: &McSfau,
    ckpt: &CheckpointInfo,
    dataset: Dataset,
    data: &ProbeData,
    cfg: &ProbeConfig,
    progress: &dyn Progress,
) -> Result<(ProbeReport, Head)> {
    let before = backbone_snapshot(model);
    let source = Source {
        kind: FeatureSource::Backbone,
        backbone: Some((model.backbone(), model.config().image_size)),
        device: model.device(),
        key: ckpt.sha256.clone(),
    };
    let (mut report, head) = probe_with(&source, ckpt.clone(), dataset, data, cfg, progress)?;
    // The pretrained landmark detector on the test frames (where the
    // checkpoint has one): does the geometry it learned transfer?
    let spec = ExtractSpec {
        shard_paths: &data.shard_paths,
        split: &data.test.name,
        ids: &data.test.ids,
        au_numbers: dataset.au_numbers(),
        batch_size: cfg.feature_batch,
        workers: cfg.workers,
    };
    report.detector = geometry::detector_error(model, model.device(), &spec, progress)?;
    let out = (report, head);
    let changed = backbone_changes(model, &before);
    if !changed.is_empty() {
        return Err(ModelError::Probe(format!(
            "the frozen backbone changed during the probe ({} variables, e.g. {})",
            changed.len(),
            changed[0]
        )));
    }
    Ok(out)
}

/// The same probe on a reference representation (`Landmarks` or `Pixels`),
/// no checkpoint: the rows a learned representation must beat.
pub fn run_reference(
    kind: FeatureSource,
    dataset: Dataset,
    data: &ProbeData,
    cfg: &ProbeConfig,
    progress: &dyn Progress,
) -> Result<(ProbeReport, Head)> {
    if kind == FeatureSource::Backbone {
        return Err(ModelError::Probe("run_reference: the backbone needs a checkpoint (probe::run)".into()));
    }
    let name = kind.name();
    let source = Source { kind, backbone: None, device: Device::Cpu, key: format!("reference:{name}") };
    let ckpt = CheckpointInfo { path: format!("(reference: {name})"), sha256: String::new(), step: 0 };
    probe_with(&source, ckpt, dataset, data, cfg, progress)
}

fn probe_with(
    source: &Source,
    ckpt: CheckpointInfo,
    dataset: Dataset,
    data: &ProbeData,
    cfg: &ProbeConfig,
    progress: &dyn Progress,
) -> Result<(ProbeReport, Head)> {
    let shards_fp = features::shard_fingerprint(&data.shard_paths)?;
    let mut splits = Vec::new();
    let mut feats = Vec::new();
    for split in [&data.train, &data.val, &data.test] {
        let (f, cached) = split_features(source, dataset, data, split, cfg, &shards_fp, progress)?;
        splits.push(SplitInfo { name: split.name.clone(), listed: split.ids.len(), frames: f.len(), cached });
        feats.push(f);
    }
    let test = &feats[2];
    let (mut first, mut seeds, mut seed_probs) = (None, Vec::new(), Vec::new());
    for seed in cfg.head_seeds() {
        progress.message(&format!("training the linear head, seed {seed} (selection on val)"));
        let linear_cfg = LinearConfig { seed, ..cfg.linear.clone() };
        let (head, selection) = linear::select(&feats[0], &feats[1], &linear_cfg)?;
        let names: Vec<String> = head.store().variables().into_keys().collect();
        if head.store().trainable_variables().len() != 2 || names.iter().any(|n| !n.starts_with("probe.")) {
            return Err(ModelError::Probe(format!("the probe's store holds more than its layer: {names:?}")));
        }
        let probs = linear::split_probs(&head, test)?;
        let scores = metrics::per_au_scores(&probs, &test.labels, test.aus, linear::THRESHOLD);
        let aps = metrics::per_au_ap(&probs, &test.labels, test.aus);
        seeds.push(SeedResult::new(seed, selection, &scores, aps));
        seed_probs.push(probs);
        first.get_or_insert((head, scores));
    }
    // The first seed's head is saved; its confusion counts go in the report.
    let (head, first) = first.ok_or_else(|| ModelError::Probe("no head seed".into()))?;
    let bootstrap = (cfg.bootstrap > 0).then(|| {
        progress.message(&format!("bootstrap over test subjects ({} replicates)", cfg.bootstrap));
        stats::bootstrap(&seed_probs, &test.labels, test.aus, &test.ids, linear::THRESHOLD, cfg.bootstrap, 0)
    });
    let per_au = dataset.au_numbers().iter().zip(&first).map(|(&au, s)| AuResult::new(au, s)).collect();
    let mut report = ProbeReport::new(
        dataset,
        ckpt,
        data.manifest.clone(),
        device_name(source.device),
        splits,
        seeds[0].selection.clone(),
        per_au,
    );
    report.features = source.kind.name();
    report.set_seeds(seeds, bootstrap);
    report.predictions =
        Some(report::Predictions { ids: test.ids.clone(), labels: test.labels.clone(), probs: seed_probs });
    Ok((report, head))
}

/// AU probabilities of aligned face crops (what `mcsfau detect` runs per
/// batch): the frozen backbone's pooled features, then the probe head.
///
/// # Shapes
/// `images`: uint8 `[B, 3, H, W]` on the model's device, any square size
/// (resized to the model's input as in [`features::pooled_features`]);
/// returns f32 `[B, A]` on the CPU.
pub fn au_probabilities(model: &McSfau, head: &Head, images: &Tensor) -> Result<Tensor> {
    let (channels, _) = head.shape();
    if channels != model.config().feature_channels() {
        return Err(ModelError::Probe(format!(
            "the probe head expects {channels} features, the checkpoint's backbone gives {}",
            model.config().feature_channels()
        )));
    }
    let f = features::pooled_features(model.backbone(), images, model.config().image_size);
    Ok(head.probs(&f))
}

fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}"),
    }
}

/// The splits `names` of a frame manifest (`mcsfau manifest build`'s JSON
/// and the frames CSV beside it) as probe [`Split`]s, read without the
/// pipeline crate (for `mcsfau-train`, which does not link it): sample ids
/// from the frames CSV, each split's content hash from the JSON's `splits`.
pub fn manifest_splits(manifest: &std::path::Path, names: &[&str]) -> Result<Vec<Split>> {
    let bad = |m: String| ModelError::Probe(format!("manifest {}: {m}", manifest.display()));
    let text =
        std::fs::read_to_string(manifest).map_err(|source| ModelError::Io { path: manifest.to_path_buf(), source })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let splits = v["splits"].as_array().ok_or_else(|| bad("no `splits` array".into()))?;
    names
        .iter()
        .map(|&name| {
            let entry = splits.iter().find(|s| s["name"] == name).ok_or_else(|| {
                bad(format!("no split {name:?} (has {:?})", splits.iter().map(|s| &s["name"]).collect::<Vec<_>>()))
            })?;
            let hash = entry["rows_sha256"].as_str().ok_or_else(|| bad(format!("split {name}: no rows_sha256")))?;
            let ids = crate::train::manifest::read_ids(manifest, Some(name)).map_err(|e| bad(e.to_string()))?;
            if ids.is_empty() {
                return Err(bad(format!("split {name} has no frames")));
            }
            Ok(Split { name: name.into(), ids, hash: hash.into() })
        })
        .collect()
}
