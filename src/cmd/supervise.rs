//! `mcsfau supervise`: the architecture's ceiling for a benchmark: the
//! backbone of a preset trained with the AU labels of a manifest's train
//! split, the epoch kept by validation AP, saved as a checkpoint that
//! `mcsfau probe` scores like any pretrained one (docs/benchmarks.md).

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use model::config::ModelConfig;
use model::data::AugmentConfig;
use model::probe::{features, Dataset};
use model::supervised::{self, SupervisedConfig, SupervisedData};

use super::probe::Bar;

/// Arguments of `mcsfau supervise`.
#[derive(Debug, clap::Args)]
#[command(after_help = "EXAMPLE:
  mcsfau supervise --shards shards --manifest manifests/bp4d/paper.frames.json --dataset bp4d --config small --out sup

Exit code: 0 trained and written, 2 could not run, 3 the loss became NaN.")]
pub struct Args {
    /// Folder of labeled shards (searched recursively; only the dataset's are used).
    #[arg(long)]
    pub shards: PathBuf,
    /// Frame manifest JSON of the dataset (`mcsfau manifest build`) with
    /// splits train and val.
    #[arg(long)]
    pub manifest: PathBuf,
    /// The manifest's splits that train and select, comma-separated
    /// (`train,val`; e.g. `fold1,fold2` for a folds3 manifest).
    #[arg(long, value_delimiter = ',', num_args = 1, default_value = "train,val")]
    pub splits: Vec<String>,
    /// bp4d (12 AUs) or disfa (8 AUs).
    #[arg(long)]
    pub dataset: String,
    /// Model preset whose backbone is trained: `small`, `tiny` or `paper`.
    #[arg(long = "config", visible_alias = "preset", default_value = "small")]
    pub preset: String,
    /// Run folder: config.json, log.jsonl, model.safetensors (+ .json).
    #[arg(long)]
    pub out: PathBuf,
    /// Passes over the train split.
    #[arg(long, default_value_t = SupervisedConfig::default().epochs, value_parser = super::num::count64(1, 100_000))]
    pub epochs: u64,
    /// Images per step.
    #[arg(long, default_value_t = SupervisedConfig::default().batch_size, value_parser = super::num::count(1, 4096))]
    pub batch_size: usize,
    /// Peak learning rate (SGD, momentum 0.9, cosine decay).
    #[arg(long, default_value_t = SupervisedConfig::default().lr, value_parser = super::num::positive)]
    pub lr: f64,
    /// Seed of the initialisation, sample order and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// JPEG-decode threads (0: all cores).
    #[arg(long = "jobs", visible_alias = "workers", default_value_t = 1, value_parser = super::num::count(0, 1024))]
    pub workers: usize,
    /// Do not draw the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Input augmentation: `none` (the default: the ceiling of the
    /// representation, not of invariance) or `pretrain` (the pretraining mix).
    #[arg(long, default_value = "none", value_parser = ["none", "pretrain"])]
    pub augment: String,
    /// `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// Trains and prints the per-epoch validation scores.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dataset: Dataset = args.dataset.parse()?;
    let loaded = pipeline::manifest::load(&args.manifest)
        .with_context(|| format!("loading manifest {}", args.manifest.display()))?;
    if loaded.manifest.dataset != dataset.name() {
        bail!("manifest {} is for {}, not {}", args.manifest.display(), loaded.manifest.dataset, dataset.name());
    }
    let ids = |name: &str| -> anyhow::Result<HashSet<String>> {
        let ids: HashSet<String> = loaded.sample_ids(name).into_iter().map(str::to_string).collect();
        if ids.is_empty() {
            bail!("manifest {}: no frames in a {name} split", args.manifest.display());
        }
        Ok(ids)
    };
    let [train, val] = args.splits.as_slice() else {
        bail!("--splits takes two names (train,val), got {:?}", args.splits);
    };
    let data = SupervisedData {
        shard_paths: features::dataset_shards(&args.shards, dataset.name())?,
        train: ids(train)?,
        val: ids(val)?,
        au_numbers: dataset.au_numbers().to_vec(),
    };
    let cfg = SupervisedConfig {
        model: ModelConfig::preset(&args.preset)?,
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        seed: args.seed,
        workers: args.workers,
        augment: if args.augment == "none" { AugmentConfig::identity() } else { AugmentConfig::default() },
        ..SupervisedConfig::default()
    };
    let bar = if args.quiet { Bar::hidden() } else { Bar::new() };
    let s = supervised::train(&cfg, &data, &args.out, super::probe::device(&args.device)?, &bar)
        .with_context(|| format!("supervised training into {}", args.out.display()))?;
    println!("| epoch | train loss | val mean F1 % | val mean AP % |\n|---:|---:|---:|---:|");
    for r in &s.records {
        println!("| {} | {:.4} | {:.1} | {:.1} |", r.epoch, r.train_loss, 100.0 * r.val_mean_f1, 100.0 * r.val_mean_ap);
    }
    println!("kept epoch {} (best val AP): {}", s.best_epoch, s.model.display());
    Ok(ExitCode::SUCCESS)
}
