//! The architecture's ceiling for the yardstick (`mcsfau supervise`): the
//! same backbone as a pretraining run, trained from its initialisation with
//! the AU labels of the train split (a linear head on the pooled map,
//! masked BCE as the probe uses, the pretraining augmentation on the
//! input), the epoch kept by validation mean average precision. The result
//! is saved as an MC-SFAU checkpoint (only the online backbone differs from
//! its initialisation), so `mcsfau probe` scores it exactly as it scores a
//! pretrained backbone: a self-supervised representation has at most this
//! much to gain on the data at hand.
//!
//! Run folder: `config.json` ([`SupervisedConfig`]), `log.jsonl` (one
//! [`EpochRecord`] per epoch), `model.safetensors` + `model.json` (the best
//! epoch's checkpoint).

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::byol::pool;
use crate::config::ModelConfig;
use crate::data::{AugmentConfig, Augmenter, Loader, LoaderConfig, ShardSet};
use crate::error::{ModelError, Result};
use crate::mcsfau::McSfau;
use crate::probe::features::{self, ExtractSpec};
use crate::probe::linear::{masked_bce, THRESHOLD};
use crate::probe::metrics::{mean, per_au_ap, per_au_scores};
use crate::probe::Progress;
use crate::train::sgd::{learning_rate, Sgd};

/// Everything a supervised run depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisedConfig {
    /// The model whose backbone is trained (the other parts are not used).
    pub model: ModelConfig,
    /// Passes over the train split.
    pub epochs: u64,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate (SGD, cosine decay to 0 over the run).
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// JPEG-decode threads (0: all cores).
    pub workers: usize,
    /// Seed of the initialisation, the sample order and the augmentation.
    pub seed: u64,
    /// The input augmentation (default: none; measured on the synthetic
    /// benchmark, pretraining's mix held the ceiling's val AP at 40 % after
    /// 6 epochs where no augmentation reached 56 % after 4).
    pub augment: AugmentConfig,
}

impl Default for SupervisedConfig {
    fn default() -> Self {
        Self {
            model: ModelConfig::small(),
            epochs: 8,
            batch_size: 32,
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 5e-4,
            workers: 1,
            seed: 0,
            augment: AugmentConfig::identity(),
        }
    }
}

/// The labeled frames a run reads.
#[derive(Debug, Clone)]
pub struct SupervisedData {
    /// The labeled shards.
    pub shard_paths: Vec<PathBuf>,
    /// Train sample ids.
    pub train: HashSet<String>,
    /// Validation sample ids (selects the epoch).
    pub val: HashSet<String>,
    /// The protocol's AU numbers, in label order.
    pub au_numbers: Vec<u16>,
}

/// One line of `log.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch, 1-based.
    pub epoch: u64,
    /// Optimizer steps so far.
    pub steps: u64,
    /// Mean masked BCE over the epoch's steps.
    pub train_loss: f64,
    /// Validation mean F1 at 0.5 of the supervised head.
    pub val_mean_f1: f64,
    /// Validation mean average precision of the supervised head.
    pub val_mean_ap: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Seconds since the run started.
    pub elapsed_s: f64,
}

/// What a run reports.
#[derive(Debug, Clone, Serialize)]
pub struct SupervisedSummary {
    /// Every epoch.
    pub records: Vec<EpochRecord>,
    /// The epoch saved (best validation mean AP).
    pub best_epoch: u64,
    /// The checkpoint.
    pub model: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io { path: path.to_path_buf(), source }
}

/// Trains the backbone of `cfg.model` with labels and writes the run into `out`.
pub fn train(
    cfg: &SupervisedConfig,
    data: &SupervisedData,
    out: &Path,
    device: Device,
    progress: &dyn Progress,
) -> Result<SupervisedSummary> {
    if cfg.epochs == 0 || cfg.batch_size == 0 || !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return Err(ModelError::InvalidConfig(format!(
            "supervised: epochs {}, batch_size {} and lr {} must be > 0",
            cfg.epochs, cfg.batch_size, cfg.lr
        )));
    }
    // Every input is checked before anything is written into `out`.
    let set = ShardSet::open(&data.shard_paths)?;
    if i64::from(set.crop_size()) != cfg.model.image_size {
        return Err(ModelError::InvalidConfig(format!(
            "crops are {0}x{0} px but model.image_size is {1}",
            set.crop_size(),
            cfg.model.image_size
        )));
    }
    let labels = features::read_labels(&set, &data.train, &data.au_numbers)?;
    let loader_cfg = LoaderConfig {
        batch_size: cfg.batch_size,
        workers: cfg.workers,
        prefetch: 2,
        shuffle: true,
        shuffle_buffer: 2048,
        drop_last: true,
        seed: cfg.seed,
    };
    let loader = Loader::new(set, loader_cfg, device)?.with_filter(data.train.clone());
    let steps_per_epoch = (loader.rows_per_epoch()? / cfg.batch_size) as u64;
    if steps_per_epoch == 0 {
        return Err(ModelError::InvalidConfig(format!("fewer train frames than one batch of {}", cfg.batch_size)));
    }
    let total = steps_per_epoch * cfg.epochs;
    std::fs::create_dir_all(out).map_err(io(out))?;
    let config_path = out.join("config.json");
    let json = serde_json::to_string_pretty(cfg).map_err(|e| ModelError::InvalidConfig(e.to_string()))?;
    schemas::atomic::write(&config_path, json.as_bytes()).map_err(io(&config_path))?;

    tch::manual_seed(cfg.seed as i64);
    let model = McSfau::new(&cfg.model, device)?;
    let head_vs = nn::VarStore::new(device);
    let aus = data.au_numbers.len() as i64;
    let head = nn::linear(&head_vs.root() / "head", cfg.model.feature_channels(), aus, Default::default());
    let mut opt = Sgd::new(model.online(), cfg.momentum, cfg.weight_decay);
    let mut head_opt = Sgd::new(&head_vs, cfg.momentum, 0.0);
    let augmenter = Augmenter::new(cfg.augment.clone(), cfg.seed)?;
    let log_path = out.join("log.jsonl");
    let mut log = std::fs::File::create(&log_path).map_err(io(&log_path))?;
    let model_path = out.join("model.safetensors");

    let started = Instant::now();
    let (mut step, mut records, mut best) = (0u64, Vec::new(), None::<(f64, u64)>);
    for epoch in 1..=cfg.epochs {
        progress.start(&format!("supervised epoch {epoch}/{}", cfg.epochs), steps_per_epoch);
        let (mut loss_sum, mut n, mut lr) = (0.0, 0u64, cfg.lr);
        for batch in loader.epoch(epoch - 1) {
            let batch = batch?;
            let mut y = Vec::with_capacity(batch.len() * aus as usize);
            for id in &batch.ids {
                let row = labels.get(id).ok_or_else(|| ModelError::Probe(format!("{id}: no labels")))?;
                y.extend(row.iter().map(|&v| f32::from(v)));
            }
            let y = Tensor::from_slice(&y).view([batch.len() as i64, aus]).to_device(device);
            step += 1;
            lr = learning_rate(cfg.lr, 0.0, true, step - 1, total);
            let views = augmenter.views(&batch.images, &batch.landmarks, step)?;
            let logits = head.forward(&pool(&model.backbone().forward_t(&views.p1, true)));
            let loss = masked_bce(&logits, &y, None);
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                return Err(ModelError::InvalidConfig(format!("supervised loss is {value} at step {step} (lr {lr})")));
            }
            opt.zero_grad();
            head_opt.zero_grad();
            loss.backward();
            opt.step(lr);
            head_opt.step(lr);
            loss_sum += value;
            n += 1;
            progress.advance(1);
        }
        progress.finish();
        let (val_mean_f1, val_mean_ap) = validate(&model, &head, data, cfg, device, progress)?;
        let r = EpochRecord {
            epoch,
            steps: step,
            train_loss: loss_sum / n.max(1) as f64,
            val_mean_f1,
            val_mean_ap,
            lr,
            elapsed_s: started.elapsed().as_secs_f64(),
        };
        let line = serde_json::to_string(&r).map_err(|e| ModelError::InvalidConfig(e.to_string()))? + "\n";
        log.write_all(line.as_bytes()).map_err(io(&log_path))?;
        tracing::info!(epoch, val_mean_ap, val_mean_f1, "supervised epoch");
        if best.is_none_or(|(ap, _)| val_mean_ap > ap) {
            crate::checkpoint::save(&model, &model_path, step as i64)?;
            best = Some((val_mean_ap, epoch));
        }
        records.push(r);
    }
    let best_epoch = best.map_or(0, |b| b.1);
    Ok(SupervisedSummary { records, best_epoch, model: model_path })
}

/// Validation mean F1 and mean AP of the supervised head on the frozen
/// (eval-mode) backbone.
fn validate(
    model: &McSfau,
    head: &nn::Linear,
    data: &SupervisedData,
    cfg: &SupervisedConfig,
    device: Device,
    progress: &dyn Progress,
) -> Result<(f64, f64)> {
    let spec = ExtractSpec {
        shard_paths: &data.shard_paths,
        split: "val",
        ids: &data.val,
        au_numbers: &data.au_numbers,
        batch_size: 64,
        workers: cfg.workers,
    };
    let f = features::extract(model.backbone(), cfg.model.image_size, device, &spec, progress)?;
    let probs = tch::no_grad(|| head.forward(&f.features.to_device(device)).sigmoid().to_device(Device::Cpu));
    let probs: Vec<f32> = Vec::<f32>::try_from(probs.to_kind(Kind::Float).flatten(0, -1))?;
    let f1 = mean(&per_au_scores(&probs, &f.labels, f.aus, THRESHOLD).iter().map(|s| s.f1).collect::<Vec<_>>());
    Ok((f1, mean(&per_au_ap(&probs, &f.labels, f.aus))))
}
