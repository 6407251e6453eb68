//! `mcsfau pretrain`: MC-SFAU pretraining on shards (docs/pretrain.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use model::train::{pretrain, LossValues, PretrainConfig, RunOptions, TrainError, TrainProgress};

/// Arguments of `mcsfau pretrain`.
#[derive(Debug, clap::Args)]
#[command(after_help = "EXAMPLES:
  mcsfau pretrain --shards OUT/shards --config tiny --steps 100 --out run
  mcsfau pretrain --shards OUT/shards --config paper --out run --device cuda --resume
  torchrun --nproc-per-node 8 --no-python mcsfau pretrain --shards OUT/shards --out run   (8 GPUs, docs/distributed.md)

Exit code: 0 trained (or already done), 2 could not run, 3 a loss became NaN (the last good checkpoint is kept).")]
pub struct Args {
    /// Folder of preprocessed shards (searched recursively).
    #[arg(long)]
    pub shards: PathBuf,
    /// Train only on these samples: a `mcsfau manifest build` manifest
    /// (.json or its .frames.csv) or a text file of sample_ids, one a line.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// With a frame manifest: keep only this split (e.g. `train`).
    #[arg(long, requires = "manifest")]
    pub split: Option<String>,
    /// `paper`, `small` (CPU experiments: 128 px, 8x8 map), `tiny` (tests),
    /// or a TOML file (unset fields keep the paper's values).
    #[arg(long, default_value = "paper")]
    pub config: String,
    /// The run folder: config.json, log.jsonl, losses.png, checkpoints/, model.safetensors.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue from the newest checkpoint in --out (its stored config is used).
    #[arg(long)]
    pub resume: bool,
    /// `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Stop after N optimizer steps (overrides schedule.max_steps; the cosine decay spans N).
    #[arg(long, conflicts_with = "epochs", value_parser = super::num::count64(1, 1 << 40))]
    pub steps: Option<u64>,
    /// Train N epochs (overrides schedule.epochs).
    #[arg(long, value_parser = super::num::count64(1, 1_000_000))]
    pub epochs: Option<u64>,
    /// Do not draw the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// libtorch CPU threads (0: libtorch's default, one per core).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=1024))]
    pub threads: i32,
    /// Data-parallel collective library, when launched by torchrun or srun
    /// (docs/distributed.md): `auto` (NCCL on CUDA, Gloo on the CPU), `gloo`, `nccl`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "gloo", "nccl"])]
    pub dist_backend: String,
    /// Seconds the data-parallel rendezvous and each collective may wait for
    /// the other ranks before the run fails.
    #[arg(long, default_value_t = 600, value_parser = super::num::count64(1, 86_400))]
    pub dist_timeout: u64,
    /// Override dist.batch_norm: `sync` (over every rank's batch, the
    /// default), `local` (each rank's own) or `frozen` (running statistics).
    #[arg(long)]
    pub batch_norm: Option<model::dist::norm::BatchNormMode>,
    /// Data-parallel: all-reduce the gradients after backward instead of
    /// overlapping it with backward (dist.overlap = false).
    #[arg(long)]
    pub no_overlap: bool,
}

/// Parses `auto`, `cpu`, `cuda`, `cuda:N` (refusing a CUDA device libtorch does not see).
pub fn parse_device(s: &str) -> anyhow::Result<tch::Device> {
    model::runtime::parse_device(s, true).map_err(anyhow::Error::msg)
}

/// An indicatif bar with ETA and the current total loss (and whether it
/// may draw: not with `--quiet`).
pub struct Bar(pub ProgressBar, bool);

impl Bar {
    /// A hidden bar until [`TrainProgress::start`] (without a terminal:
    /// plain progress lines).
    pub fn new() -> Self {
        let bar = ProgressBar::hidden();
        super::bar::lines_without_terminal(&bar, "pretrain");
        Self(bar, true)
    }

    /// A bar that never draws (`--quiet`).
    pub fn hidden() -> Self {
        Self(ProgressBar::hidden(), false)
    }
}

impl TrainProgress for Bar {
    fn start(&self, total: u64, done: u64) {
        if self.1 {
            self.0.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
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

/// Resolves the config from the arguments.
pub fn resolve(config: &str, steps: Option<u64>, epochs: Option<u64>) -> anyhow::Result<PretrainConfig> {
    let mut cfg = PretrainConfig::resolve(config)?;
    if let Some(n) = steps {
        cfg.schedule.max_steps = Some(n);
    }
    if let Some(n) = epochs {
        cfg.schedule = model::train::config::ScheduleConfig { epochs: n, max_steps: None };
    }
    Ok(cfg)
}

/// Runs pretraining; a non-finite loss exits 3, other failures 2.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut cfg = resolve(&args.config, args.steps, args.epochs)?;
    if let Some(m) = args.batch_norm {
        cfg.dist.batch_norm = m;
    }
    cfg.dist.overlap &= !args.no_overlap;
    if args.threads > 0 {
        tch::set_num_threads(args.threads);
    }
    let opts = RunOptions {
        shards: args.shards,
        manifest: args.manifest,
        split: args.split,
        out: args.out,
        resume: args.resume,
        device: parse_device(&args.device)?,
        dist: model::train::parallel::options_from_env(&args.dist_backend, args.dist_timeout)
            .map_err(anyhow::Error::msg)?,
    };
    let bar = if args.quiet { Bar::hidden() } else { Bar::new() };
    match pretrain(cfg, &opts, &bar) {
        Ok(s) => {
            let losses = s.last.map_or("-".into(), |l| format!("{:.5}", l.total));
            let (from, to, total) = (s.resumed_from, s.steps, s.total_steps);
            if s.rank == 0 {
                let ranks = if s.world_size > 1 { format!(" on {} ranks", s.world_size) } else { String::new() };
                println!(
                    "trained steps {from}..{to} of {total}{ranks}; last L_total {losses}; {:.1} images/s{}, data wait \
                     {:.1}%; checkpoint {}; model {}",
                    s.images_per_s,
                    if s.world_size > 1 { " on this rank" } else { "" },
                    100.0 * s.data_wait,
                    s.checkpoint.display(),
                    s.model.display()
                );
            } else {
                println!(
                    "rank {} of {}: trained steps {from}..{to} of {total}; last L_total {losses}; {:.1} images/s on \
                     this rank; rank 0 wrote the run folder {}",
                    s.rank,
                    s.world_size,
                    s.images_per_s,
                    opts.out.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ TrainError::NonFinite { .. }) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(3))
        }
        Err(e) => Err(e).with_context(|| format!("pretraining into {}", opts.out.display())),
    }
}
