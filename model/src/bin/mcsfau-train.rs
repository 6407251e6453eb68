//! `mcsfau-train`: the pretraining path alone, for GPU machines that have
//! PyTorch's libraries but no Rust toolchain and no FFmpeg (docs/gpu.md).
//! Links only `schemas` and `model`, no FFmpeg and no polars; built with
//! `cargo build --profile gpu -p mcsfau-model --bin mcsfau-train`.
//!
//! * `mcsfau-train doctor`: libtorch, CUDA and thread facts (JSON).
//! * `mcsfau-train synth-shards --out DIR --n N --side S`: synthetic shards.
//! * `mcsfau-train pretrain ...`: as `mcsfau pretrain`.
//! * `mcsfau-train probe ...`, `supervise ...`: as `mcsfau probe` /
//!   `mcsfau supervise` (the yardstick at the paper preset,
//!   `scripts/gpu-bench-ablation.sh`), with the manifest read directly.

// The same range-checked flag parsers as the `mcsfau` binary.
#[path = "../../../src/cmd/num.rs"]
#[allow(dead_code)]
mod num;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use model::train::{pretrain, synth, LossValues, PretrainConfig, RunOptions, TrainError, TrainProgress};

/// MC-SFAU pretraining without the preprocessing stack (GPU machines).
#[derive(Debug, Parser)]
#[command(name = "mcsfau-train", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print libtorch/CUDA facts as JSON (a failed libtorch smoke test exits 1).
    Doctor,
    /// Write synthetic face shards (cartoon faces with 49 landmarks).
    SynthShards {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Number of faces.
        #[arg(long, default_value_t = 2048, value_parser = num::count(1, 100_000_000))]
        n: usize,
        /// Side of the square crops, pixels (paper model: 256).
        #[arg(long, default_value_t = 256, value_parser = num::crop_size())]
        side: u32,
        /// Rows per shard file.
        #[arg(long, default_value_t = 1024, value_parser = num::count(1, 100_000_000))]
        rows_per_file: usize,
        /// Seed of the faces.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Pretrain on shards (the options of `mcsfau pretrain`, without --manifest splits).
    Pretrain {
        /// Folder of shards.
        #[arg(long)]
        shards: PathBuf,
        /// Sample-id selection: manifest .json/.frames.csv or a plain id list.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// `paper`, `small`, `tiny`, or a TOML file.
        #[arg(long, default_value = "paper")]
        config: String,
        /// The run folder.
        #[arg(long)]
        out: PathBuf,
        /// Continue from the newest checkpoint in --out.
        #[arg(long)]
        resume: bool,
        /// `cpu`, `cuda` or `cuda:N`.
        #[arg(long, default_value = "cuda")]
        device: String,
        /// Stop after N steps (the cosine decay spans N).
        #[arg(long, conflicts_with = "epochs", value_parser = num::count64(1, 1 << 40))]
        steps: Option<u64>,
        /// Train N epochs.
        #[arg(long, value_parser = num::count64(1, 1_000_000))]
        epochs: Option<u64>,
        /// Override the batch size of the config.
        #[arg(long, value_parser = num::count(1, 1 << 16))]
        batch_size: Option<usize>,
        /// Override the decode workers of the config (0: all cores).
        #[arg(long, value_parser = num::count(0, 1024))]
        workers: Option<usize>,
        /// Run the forward passes under bf16 autocast on CUDA.
        #[arg(long)]
        bf16: bool,
        /// libtorch CPU threads (0: default).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=1024))]
        threads: i32,
        /// Data-parallel collective library (under torchrun or srun): `auto`
        /// (NCCL on CUDA, Gloo on the CPU), `gloo` or `nccl`.
        #[arg(long, default_value = "auto", value_parser = ["auto", "gloo", "nccl"])]
        dist_backend: String,
        /// Seconds the data-parallel rendezvous and each collective may wait
        /// for the other ranks before the run fails.
        #[arg(long, default_value_t = 600, value_parser = num::count64(1, 86_400))]
        dist_timeout: u64,
        /// Override dist.batch_norm: `sync`, `local` or `frozen`.
        #[arg(long)]
        batch_norm: Option<model::dist::norm::BatchNormMode>,
        /// All-reduce the gradients after backward instead of during it.
        #[arg(long)]
        no_overlap: bool,
    },
    /// Linear probe of a checkpoint or a reference (`mcsfau probe`'s options).
    Probe {
        /// The checkpoint (with `--features backbone`).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// `backbone`, `landmarks`, `pixels` or `pixels<N>`.
        #[arg(long, default_value = "backbone")]
        features: String,
        /// Folder of labeled shards.
        #[arg(long)]
        shards: PathBuf,
        /// Frame manifest JSON (`mcsfau manifest build`).
        #[arg(long)]
        manifest: PathBuf,
        /// The manifest's train, val and test splits.
        #[arg(long, value_delimiter = ',', default_value = "train,val,test")]
        splits: Vec<String>,
        /// bp4d or disfa.
        #[arg(long)]
        dataset: String,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Head seeds, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0")]
        seed: Vec<u64>,
        /// `f1` or `ap`.
        #[arg(long, default_value = "f1")]
        select: model::probe::linear::SelectMetric,
        /// `none` or `balanced`.
        #[arg(long, default_value = "none")]
        pos_weight: model::probe::linear::PosWeight,
        /// Bootstrap replicates (0: none).
        #[arg(long, default_value_t = 1000, value_parser = num::count(0, 1_000_000))]
        bootstrap: usize,
        /// Feature cache folder (none: no cache).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// `cpu`, `cuda` or `cuda:N`.
        #[arg(long, default_value = "cuda")]
        device: String,
    },
    /// Train a preset's backbone with labels (`mcsfau supervise`'s options).
    Supervise {
        /// Folder of labeled shards.
        #[arg(long)]
        shards: PathBuf,
        /// Frame manifest JSON.
        #[arg(long)]
        manifest: PathBuf,
        /// The manifest's train and val splits.
        #[arg(long, value_delimiter = ',', default_value = "train,val")]
        splits: Vec<String>,
        /// bp4d or disfa.
        #[arg(long)]
        dataset: String,
        /// `paper`, `small` or `tiny`.
        #[arg(long, default_value = "paper")]
        preset: String,
        /// Run folder.
        #[arg(long)]
        out: PathBuf,
        /// Epochs.
        #[arg(long, default_value_t = 8, value_parser = num::count64(1, 100_000))]
        epochs: u64,
        /// Images per step.
        #[arg(long, default_value_t = 32, value_parser = num::count(1, 4096))]
        batch_size: usize,
        /// Peak learning rate.
        #[arg(long, default_value_t = 0.05, value_parser = num::positive)]
        lr: f64,
        /// JPEG-decode threads (0: all cores).
        #[arg(long, default_value_t = 0, value_parser = num::count(0, 1024))]
        workers: usize,
        /// `cpu`, `cuda` or `cuda:N`.
        #[arg(long, default_value = "cuda")]
        device: String,
    },
}

struct Bar(ProgressBar);

impl TrainProgress for Bar {
    fn start(&self, total: u64, done: u64) {
        self.0.set_draw_target(ProgressDrawTarget::stderr());
        self.0.set_length(total);
        self.0.set_position(done);
        self.0.reset_eta();
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} steps {per_sec} eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        self.0.set_style(style);
    }
    fn step(&self, _step: u64, l: &LossValues) {
        self.0.inc(1);
        self.0.set_message(format!("L_total {:.4}", l.total));
    }
    fn message(&self, msg: &str) {
        self.0.println(msg);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn parse_device(s: &str) -> anyhow::Result<tch::Device> {
    model::runtime::parse_device(s, false).map_err(anyhow::Error::msg)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    use model::probe::{self, features::FeatureSource, linear, Dataset, NoProgress, ProbeConfig, ProbeData};
    match cli.command {
        Cmd::Probe {
            checkpoint,
            features,
            shards,
            manifest,
            splits,
            dataset,
            out,
            seed,
            select,
            pos_weight,
            bootstrap,
            cache_dir,
            device,
        } => {
            let dataset: Dataset = dataset.parse()?;
            let names: Vec<&str> = splits.iter().map(String::as_str).collect();
            let [train, val, test]: [probe::Split; 3] = probe::manifest_splits(&manifest, &names)?
                .try_into()
                .map_err(|_| anyhow::anyhow!("--splits takes three names (train,val,test)"))?;
            let data = ProbeData {
                shard_paths: probe::features::dataset_shards(&shards, dataset.name())?,
                train,
                val,
                test,
                manifest: manifest.display().to_string(),
            };
            let cfg = ProbeConfig {
                linear: linear::LinearConfig {
                    seed: seed.first().copied().unwrap_or(0),
                    select,
                    pos_weight,
                    ..Default::default()
                },
                cache_dir,
                seeds: seed,
                bootstrap,
                ..Default::default()
            };
            let (report, head) = match (FeatureSource::parse(&features)?, checkpoint) {
                (FeatureSource::Backbone, Some(ckpt)) => {
                    let (net, meta) = model::checkpoint::load(&ckpt, parse_device(&device)?)?;
                    let info = probe::CheckpointInfo {
                        path: ckpt.display().to_string(),
                        sha256: probe::features::file_sha256(&ckpt)?,
                        step: meta.step,
                    };
                    probe::run(&net, &info, dataset, &data, &cfg, &NoProgress)?
                }
                (FeatureSource::Backbone, None) => anyhow::bail!("--features backbone needs --checkpoint"),
                (reference, _) => probe::run_reference(reference, dataset, &data, &cfg, &NoProgress)?,
            };
            report.write(&out, &head)?;
            println!("{}", report.summary_line());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Supervise { shards, manifest, splits, dataset, preset, out, epochs, batch_size, lr, workers, device } => {
            use model::supervised::{self, SupervisedConfig, SupervisedData};
            let dataset: Dataset = dataset.parse()?;
            let names: Vec<&str> = splits.iter().map(String::as_str).collect();
            let [train, val]: [probe::Split; 2] = probe::manifest_splits(&manifest, &names)?
                .try_into()
                .map_err(|_| anyhow::anyhow!("--splits takes two names (train,val)"))?;
            let data = SupervisedData {
                shard_paths: probe::features::dataset_shards(&shards, dataset.name())?,
                train: train.ids,
                val: val.ids,
                au_numbers: dataset.au_numbers().to_vec(),
            };
            let cfg = SupervisedConfig {
                model: model::config::ModelConfig::preset(&preset)?,
                epochs,
                batch_size,
                lr,
                workers,
                ..SupervisedConfig::default()
            };
            let s = supervised::train(&cfg, &data, &out, parse_device(&device)?, &NoProgress)?;
            println!("{}", serde_json::to_string(&s)?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Doctor => {
            let info = model::runtime::runtime_info();
            let smoke = model::runtime::smoke();
            let ok = smoke.is_ok();
            let v = serde_json::json!({ "libtorch": info, "libtorch_smoke": smoke,
                "cpu_threads": std::thread::available_parallelism().map_or(1, |n| n.get()) });
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Cmd::SynthShards { out, n, side, rows_per_file, seed } => {
            let files = synth::write_shards(&out, n, side, rows_per_file, seed)?;
            println!("wrote {n} synthetic {side}x{side} faces in {} shard(s) under {}", files.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Pretrain {
            shards,
            manifest,
            config,
            out,
            resume,
            device,
            steps,
            epochs,
            batch_size,
            workers,
            bf16,
            threads,
            dist_backend,
            dist_timeout,
            batch_norm,
            no_overlap,
        } => {
            let mut cfg = PretrainConfig::resolve(&config)?;
            if let Some(n) = steps {
                cfg.schedule.max_steps = Some(n);
            }
            if let Some(n) = epochs {
                cfg.schedule.epochs = n;
                cfg.schedule.max_steps = None;
            }
            if let Some(b) = batch_size {
                cfg.data.loader.batch_size = b;
            }
            if let Some(w) = workers {
                cfg.data.loader.workers = w;
            }
            cfg.model.bf16_autocast |= bf16;
            if let Some(m) = batch_norm {
                cfg.dist.batch_norm = m;
            }
            cfg.dist.overlap &= !no_overlap;
            if threads > 0 {
                tch::set_num_threads(threads);
            }
            let dist =
                model::train::parallel::options_from_env(&dist_backend, dist_timeout).map_err(anyhow::Error::msg)?;
            let opts = RunOptions { shards, manifest, split: None, out, resume, device: parse_device(&device)?, dist };
            match pretrain(cfg, &opts, &Bar(ProgressBar::hidden())) {
                Ok(s) => {
                    println!("{}", serde_json::to_string(&s)?);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e @ TrainError::NonFinite { .. }) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(3))
                }
                Err(e) => Err(e).with_context(|| format!("pretraining into {}", opts.out.display())),
            }
        }
    }
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", schemas::error::display_chain(err.as_ref()));
            ExitCode::from(2)
        }
    }
}
