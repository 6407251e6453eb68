//! Probe features: the frozen online backbone q_theta on the un-augmented
//! crops, global-average-pooled (paper 4.1), with each frame's AU
//! occurrence labels; cached on disk so that a second probe of the same
//! checkpoint, shards and split costs one file read.
//!
//! Two reference representations go through the same probe
//! ([`FeatureSource`]): the 49 landmarks of the shard (a geometry
//! reference) and the raw crop, grey, downsampled (a pixel reference: a
//! learned representation that does not beat it has learned nothing useful).
//!
//! Cache entry `<dir>/<key>.safetensors` (`features` f32 `[N, C]`, `labels`
//! i8 `[N, A]`), `<key>.ids.txt` (sample ids, one per line, in row order)
//! and `<key>.json` ([`CacheMeta`]). The key is the sha256 of the checkpoint
//! digest, the shard-set fingerprint ([`shard_fingerprint`]: path, size and
//! modification time of every shard), the split's manifest hash, the split
//! name and the input size. Entries are written under temporary names and
//! renamed when complete.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use schemas::reader::Columns;
use schemas::schema::col;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

use super::Progress;
use crate::backbone::Backbone;
use crate::data::augment::ops::{grayscale, normalize};
use crate::data::{Loader, LoaderConfig, ShardSet};
use crate::error::{ModelError, Result};

/// What the probe reads as features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureSource {
    /// The frozen backbone's pooled map.
    Backbone,
    /// The shard's 49 landmarks, divided by the crop side: 98 numbers in [0, 1].
    Landmarks,
    /// The crop in grey (torchvision's luma weights, as the augmentation's
    /// saturation uses), area-downsampled to `side x side`,
    /// in [0, 1]: `side^2` numbers.
    Pixels {
        /// Side of the downsampled image, pixels.
        side: i64,
    },
}

impl FeatureSource {
    /// `backbone`, `landmarks` or `pixels<side>` (also the cache tag).
    pub fn name(&self) -> String {
        match self {
            Self::Backbone => "backbone".into(),
            Self::Landmarks => "landmarks".into(),
            Self::Pixels { side } => format!("pixels{side}"),
        }
    }

    /// Parses [`FeatureSource::name`]'s forms (`pixels` alone is 32x32).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "backbone" => Ok(Self::Backbone),
            "landmarks" => Ok(Self::Landmarks),
            "pixels" => Ok(Self::Pixels { side: 32 }),
            _ => match s.strip_prefix("pixels").and_then(|n| n.parse::<i64>().ok()) {
                Some(side) if (1..=256).contains(&side) => Ok(Self::Pixels { side }),
                _ => Err(ModelError::Probe(format!(
                    "unknown feature source {s:?}: expected backbone, landmarks, pixels or pixels<side> (1-256)"
                ))),
            },
        }
    }

    /// The features of one loader batch, `[B, F]` on the CPU.
    pub fn of_batch(&self, backbone: Option<(&Backbone, i64)>, batch: &crate::data::Batch) -> Result<Tensor> {
        let side = batch.images.size()[2];
        Ok(match self {
            Self::Backbone => {
                let (net, size) = backbone.ok_or_else(|| ModelError::Probe("backbone features need a model".into()))?;
                pooled_features(net, &batch.images, size).to_device(Device::Cpu)
            }
            Self::Landmarks => {
                (batch.landmarks.to_device(Device::Cpu).to_kind(Kind::Float) / side as f64).flatten(1, -1)
            }
            Self::Pixels { side: out } => tch::no_grad(|| {
                let x = batch.images.to_device(Device::Cpu).to_kind(Kind::Float) / 255.0; // [B, 3, H, W]
                grayscale(&x).adaptive_avg_pool2d([*out, *out]).flatten(1, -1) // [B, out^2]
            }),
        })
    }
}

/// Format tag of the cache's JSON.
pub const CACHE_FORMAT: &str = "mcsfau-probe-features-v1";

/// Features and labels of one split, on the CPU, rows in the same order.
#[derive(Debug)]
pub struct SplitFeatures {
    /// Sample ids.
    pub ids: Vec<String>,
    /// Pooled backbone features, f32 `[N, C]`.
    pub features: Tensor,
    /// AU occurrence, row-major `[N, A]`: 1, 0, or -1 unknown.
    pub labels: Vec<i8>,
    /// A, the AUs per row.
    pub aus: usize,
}

impl SplitFeatures {
    /// Rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// What the cache's JSON records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheMeta {
    /// [`CACHE_FORMAT`].
    pub format: String,
    /// Split name.
    pub split: String,
    /// Rows.
    pub rows: usize,
    /// Feature width C.
    pub channels: i64,
    /// AU numbers of the label columns.
    pub au_numbers: Vec<u16>,
}

/// sha256 (hex) of a file's bytes.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
    let mut h = Sha256::new();
    std::io::copy(&mut file, &mut h).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
    Ok(hex::encode(h.finalize()))
}

/// Fingerprint of a shard set without reading its data: sha256 over each
/// shard's canonical path, byte size and modification time. A rewritten
/// shard changes it; a copied tree is a new set (its cache entries are
/// recomputed, never wrong).
pub fn shard_fingerprint(paths: &[PathBuf]) -> Result<String> {
    let mut h = Sha256::new();
    for p in paths {
        let io = |source| ModelError::Io { path: p.clone(), source };
        let meta = std::fs::metadata(p).map_err(io)?;
        let mtime = meta.modified().map_err(io)?.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let canon = std::fs::canonicalize(p).map_err(io)?;
        h.update(format!("{}\t{}\t{}\n", canon.display(), meta.len(), mtime.as_nanos()).as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// The shards of `dataset` under `dir` (recursively, sorted): shards of
/// other datasets in the same tree are left out, so a folder holding BP4D
/// and DISFA shards serves both probes.
pub fn dataset_shards(dir: &Path, dataset: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in schemas::list_shards(dir)? {
        if schemas::ShardReader::open(&path)?.meta().dataset == dataset {
            out.push(path);
        }
    }
    if out.is_empty() {
        return Err(ModelError::Probe(format!("no {dataset} shard under {}", dir.display())));
    }
    Ok(out)
}

/// The cache key of one split (see the module doc).
pub fn cache_key(checkpoint_sha256: &str, shards: &str, split_hash: &str, split: &str, image_size: i64) -> String {
    let mut h = Sha256::new();
    for part in [CACHE_FORMAT, checkpoint_sha256, shards, split_hash, split, &image_size.to_string()] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// Occurrence labels of the rows whose id is in `ids`, with the shards' AU
/// numbers (which must equal `expected_aus`).
pub fn read_labels(set: &ShardSet, ids: &HashSet<String>, expected_aus: &[u16]) -> Result<HashMap<String, Vec<i8>>> {
    let mut out = HashMap::with_capacity(ids.len());
    for reader in set.readers() {
        let path = reader.path();
        let aus = reader.meta().labels.as_ref().map(|l| l.au_numbers.clone()).unwrap_or_default();
        if aus != expected_aus {
            return Err(ModelError::Probe(format!(
                "{}: AU labels {aus:?}, expected {expected_aus:?} (is this a {} shard?)",
                path.display(),
                if expected_aus.len() == 12 { "BP4D" } else { "DISFA" }
            )));
        }
        for batch in reader.read_all(&[col::SAMPLE_ID, col::AU_OCCURRENCE])? {
            let c = Columns::new(path, &batch);
            let sids = c.strings(col::SAMPLE_ID)?;
            let (occ, width) = c.fixed_i8(col::AU_OCCURRENCE)?;
            for (row, id) in sids.iter().enumerate() {
                let Some(id) = id.filter(|id| ids.contains(*id)) else { continue };
                let y = &occ[row * width..(row + 1) * width];
                if let Some(bad) = y.iter().find(|v| !(-1..=1).contains(*v)) {
                    return Err(ModelError::Probe(format!(
                        "{}: row {row} ({id}): au_occurrence value {bad}, expected 1, 0 or -1",
                        path.display()
                    )));
                }
                out.insert(id.to_string(), y.to_vec());
            }
        }
    }
    Ok(out)
}

/// Pooled features of a batch of uint8 crops `[B, 3, H, W]` (any H = W):
/// resized to `image_size` when needed (bilinear, antialiased), scaled to
/// [0, 1], ImageNet-normalized as in pretraining, backbone in eval mode
/// (BatchNorm running statistics, nothing updated), mean over the map.
///
/// # Shapes
/// returns `[B, C]` on the images' device.
pub fn pooled_features(backbone: &Backbone, images: &Tensor, image_size: i64) -> Tensor {
    tch::no_grad(|| {
        let mut x = images.to_kind(Kind::Float) / 255.0; // [B, 3, H, W]
        if x.size()[2] != image_size || x.size()[3] != image_size {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                tracing::warn!(
                    "crops are {}x{} px, the checkpoint takes {image_size}x{image_size}: resizing them (bilinear, antialiased)",
                    x.size()[2],
                    x.size()[3]
                )
            });
            x = x.internal_upsample_bilinear2d_aa([image_size, image_size], false, None, None);
        }
        let f = backbone.forward_t(&normalize(&x.contiguous()), false); // [B, C, h, w]
        f.mean_dim([2i64, 3].as_slice(), false, Kind::Float) // [B, C]
    })
}

/// Where and how features are extracted.
#[derive(Debug, Clone)]
pub struct ExtractSpec<'a> {
    /// The shards.
    pub shard_paths: &'a [PathBuf],
    /// The split's name (for messages and the cache).
    pub split: &'a str,
    /// The split's sample ids.
    pub ids: &'a HashSet<String>,
    /// The dataset's AU numbers, in label order.
    pub au_numbers: &'a [u16],
    /// Images per forward pass.
    pub batch_size: usize,
    /// JPEG-decode threads (0: all cores).
    pub workers: usize,
}

/// A loader over the split's rows of `set`, in shard order (no shuffling,
/// no row dropped).
pub fn split_loader(set: ShardSet, spec: &ExtractSpec, device: Device) -> Result<Loader> {
    let cfg = LoaderConfig {
        batch_size: spec.batch_size.max(1),
        workers: spec.workers,
        prefetch: 2,
        shuffle: false,
        shuffle_buffer: 0,
        drop_last: false,
        seed: 0,
    };
    Ok(Loader::new(set, cfg, device)?.with_filter(spec.ids.clone()))
}

/// Runs the backbone over every row of the split (shard order).
pub fn extract(
    backbone: &Backbone,
    image_size: i64,
    device: Device,
    spec: &ExtractSpec,
    progress: &dyn Progress,
) -> Result<SplitFeatures> {
    extract_source(FeatureSource::Backbone, Some((backbone, image_size)), device, spec, progress)
}

/// The features of `source` for every row of the split (shard order).
pub fn extract_source(
    source: FeatureSource,
    backbone: Option<(&Backbone, i64)>,
    device: Device,
    spec: &ExtractSpec,
    progress: &dyn Progress,
) -> Result<SplitFeatures> {
    let set = ShardSet::open(spec.shard_paths)?;
    let labels = read_labels(&set, spec.ids, spec.au_numbers)?;
    let loader = split_loader(set, spec, device)?;
    progress.start(&format!("features {}", spec.split), labels.len() as u64);
    let (mut ids, mut feats, mut ys) = (Vec::new(), Vec::new(), Vec::new());
    for batch in loader.epoch(0) {
        let batch = batch?;
        feats.push(source.of_batch(backbone, &batch)?);
        for id in &batch.ids {
            let y = labels.get(id).ok_or_else(|| ModelError::Probe(format!("{id}: no labels read for this row")))?;
            ys.extend_from_slice(y);
        }
        progress.advance(batch.len() as u64);
        ids.extend(batch.ids);
    }
    progress.finish();
    if ids.is_empty() {
        return Err(ModelError::Probe(format!(
            "split {}: none of its {} manifest ids is in the shards",
            spec.split,
            spec.ids.len()
        )));
    }
    if ids.len() < spec.ids.len() {
        tracing::warn!(
            split = spec.split,
            found = ids.len(),
            listed = spec.ids.len(),
            "some manifest frames are missing from the shards or failed to decode"
        );
    }
    Ok(SplitFeatures { ids, features: Tensor::cat(&feats, 0), labels: ys, aus: spec.au_numbers.len() })
}

fn paths(dir: &Path, key: &str) -> [PathBuf; 3] {
    ["safetensors", "ids.txt", "json"].map(|ext| dir.join(format!("{key}.{ext}")))
}

fn write_atomic(path: &Path, f: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    schemas::atomic::write_with(path, f).map_err(|e| match e {
        schemas::atomic::AtomicError::Write(e) => e,
        schemas::atomic::AtomicError::Io(p, source) => ModelError::Io { path: p, source },
    })
}

/// Stores `feats` under `key` in `dir` (created if needed).
pub fn save_cache(dir: &Path, key: &str, split: &str, au_numbers: &[u16], feats: &SplitFeatures) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io { path: dir.to_path_buf(), source })?;
    let [st, ids, json] = paths(dir, key);
    let n = feats.len() as i64;
    let labels = Tensor::from_slice(&feats.labels).view([n, feats.aus as i64]);
    write_atomic(&st, |tmp| {
        Tensor::write_safetensors(&[("features", &feats.features), ("labels", &labels)], tmp)?;
        Ok(())
    })?;
    write_atomic(&ids, |tmp| {
        let text: String = feats.ids.iter().map(|i| format!("{i}\n")).collect();
        std::fs::write(tmp, text).map_err(|source| ModelError::Io { path: tmp.to_path_buf(), source })
    })?;
    let meta = CacheMeta {
        format: CACHE_FORMAT.into(),
        split: split.into(),
        rows: feats.len(),
        channels: feats.features.size()[1],
        au_numbers: au_numbers.to_vec(),
    };
    // The JSON goes last: its presence marks a complete entry.
    write_atomic(&json, |tmp| {
        let text = serde_json::to_string_pretty(&meta).map_err(|e| ModelError::Probe(e.to_string()))?;
        std::fs::write(tmp, text).map_err(|source| ModelError::Io { path: tmp.to_path_buf(), source })
    })
}

/// The cached features under `key`, `None` when there is no complete entry.
pub fn load_cache(dir: &Path, key: &str) -> Result<Option<SplitFeatures>> {
    let [st, ids_path, json] = paths(dir, key);
    if !json.exists() {
        return Ok(None);
    }
    let bad = |what: String| ModelError::Probe(format!("feature cache {}: {what}", json.display()));
    let text = std::fs::read_to_string(&json).map_err(|source| ModelError::Io { path: json.clone(), source })?;
    let meta: CacheMeta = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mut tensors: HashMap<String, Tensor> = Tensor::read_safetensors(&st)?.into_iter().collect();
    let (Some(features), Some(labels)) = (tensors.remove("features"), tensors.remove("labels")) else {
        return Err(bad("features or labels tensor missing".into()));
    };
    let ids_text =
        std::fs::read_to_string(&ids_path).map_err(|source| ModelError::Io { path: ids_path.clone(), source })?;
    let ids: Vec<String> = ids_text.lines().map(str::to_string).collect();
    let aus = meta.au_numbers.len();
    if features.size() != [meta.rows as i64, meta.channels] || labels.size() != [meta.rows as i64, aus as i64] {
        return Err(bad(format!("shapes {:?} / {:?} disagree with the JSON", features.size(), labels.size())));
    }
    if ids.len() != meta.rows {
        return Err(bad(format!("{} ids for {} rows", ids.len(), meta.rows)));
    }
    let labels: Vec<i8> = Vec::<i8>::try_from(labels.flatten(0, -1))?;
    tracing::info!(split = meta.split, rows = meta.rows, key, "probe features from the cache");
    Ok(Some(SplitFeatures { ids, features, labels, aus }))
}
