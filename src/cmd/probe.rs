//! `mcsfau probe`: the linear probe of a pretrained checkpoint (or of a
//! reference representation: the landmarks, raw pixels) on BP4D or DISFA
//! shards with a frame manifest's train/val/test splits; writes probe.json,
//! probe.csv, probe.md, test_predictions.csv and the head, prints the
//! per-AU F1 table with the floor, AP and the bootstrap interval.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use model::probe::features::FeatureSource;
use model::probe::linear::{LinearConfig, PosWeight, SelectMetric};
use model::probe::{self, features, CheckpointInfo, Dataset, ProbeConfig, ProbeData, Split};

/// Arguments of `mcsfau probe`.
#[derive(Debug, clap::Args)]
#[command(after_help = "EXAMPLES:
  mcsfau probe --checkpoint RUN/model.safetensors --shards shards --manifest manifests/bp4d/paper.frames.json \\
      --dataset bp4d --out probe-bp4d
  mcsfau probe --checkpoint RUN/checkpoints/step-00001000.safetensors ... --seed 0,1,2 --select ap
  mcsfau probe --features landmarks --shards shards --manifest ... --dataset bp4d --out probe-landmarks

Exit code: 0 the report was written, 2 the probe could not run.")]
pub struct Args {
    /// Checkpoint (`.safetensors` with its `.json` sidecar) whose online
    /// backbone is probed, frozen (required with `--features backbone`).
    #[arg(long, required_if_eq("features", "backbone"))]
    pub checkpoint: Option<PathBuf>,
    /// What to probe: `backbone` (the checkpoint), or a reference with the
    /// same probe: `landmarks` (the shard's 49 points; a geometry ceiling)
    /// or `pixels` / `pixels<N>` (the crop in grey at NxN, default 32).
    #[arg(long, default_value = "backbone")]
    pub features: String,
    /// Folder of shards (searched recursively; only the dataset's shards are used).
    #[arg(long)]
    pub shards: PathBuf,
    /// Frame manifest JSON of the dataset (`mcsfau manifest build`) with
    /// splits train, val and test (or those `--splits` names).
    #[arg(long)]
    pub manifest: PathBuf,
    /// The manifest's splits that train the head, select it and test it,
    /// comma-separated: `train,val,test` for the paper protocol; e.g.
    /// `fold1,fold2,fold3` for a folds3 manifest (14 test subjects on BP4D).
    #[arg(long, value_delimiter = ',', num_args = 1, default_value = "train,val,test")]
    pub splits: Vec<String>,
    /// Probe dataset: bp4d (12 AUs) or disfa (8 AUs).
    #[arg(long)]
    pub dataset: String,
    /// Output folder for probe.json, probe.csv, probe.md, probe_head.safetensors.
    #[arg(long)]
    pub out: PathBuf,
    /// Feature cache folder [default: $XDG_CACHE_HOME/mcsfau/probe-features,
    /// else ~/.cache/mcsfau/probe-features].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Do not read or write the feature cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Learning rates of the selection grid (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = LinearConfig::default().lrs, value_parser = super::num::positive)]
    pub lrs: Vec<f64>,
    /// Weight decays of the selection grid (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = LinearConfig::default().weight_decays, value_parser = super::num::non_negative)]
    pub weight_decays: Vec<f64>,
    /// Epochs at most per grid point (the best epoch on val is kept).
    #[arg(long, default_value_t = LinearConfig::default().max_epochs, value_parser = super::num::count(1, 100_000))]
    pub max_epochs: usize,
    /// Early stopping: epochs without a better val mean F1.
    #[arg(long, default_value_t = LinearConfig::default().patience, value_parser = super::num::count(1, 100_000))]
    pub patience: usize,
    /// Rows per optimizer step of the head.
    #[arg(long, default_value_t = LinearConfig::default().batch_size, value_parser = super::num::count(1, 1 << 20))]
    pub batch_size: usize,
    /// Seeds of the head's initialisation and row order, comma-separated:
    /// one head per seed, the report gives their mean (the first is saved).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub seed: Vec<u64>,
    /// Validation score that selects the grid point and epoch: `f1` (mean
    /// F1 at 0.5, the paper's protocol) or `ap` (mean average precision).
    #[arg(long, default_value = "f1")]
    pub select: SelectMetric,
    /// Positive-class weight in the loss: `none` (the paper) or `balanced`
    /// (each AU's train negatives / positives).
    #[arg(long, default_value = "none")]
    pub pos_weight: PosWeight,
    /// Bootstrap replicates of the 95 % interval over test subjects (0: none).
    #[arg(long, default_value_t = 1000, value_parser = super::num::count(0, 1_000_000))]
    pub bootstrap: usize,
    /// Images per backbone forward pass.
    #[arg(long, default_value_t = 64, value_parser = super::num::count(1, 4096))]
    pub feature_batch: usize,
    /// JPEG-decode threads (0: all cores).
    #[arg(long = "jobs", visible_alias = "workers", default_value_t = 0, value_parser = super::num::count(0, 1024))]
    pub workers: usize,
    /// Do not draw the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Device: auto (CUDA when available), cpu, cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// The device named by `--device`.
pub fn device(name: &str) -> anyhow::Result<tch::Device> {
    model::runtime::parse_device(name, true).map_err(anyhow::Error::msg)
}

fn default_cache() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("mcsfau").join("probe-features"))
}

/// Runs the probe and prints the table.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dataset: Dataset = args.dataset.parse()?;
    let device = device(&args.device)?;
    let loaded = pipeline::manifest::load(&args.manifest)
        .with_context(|| format!("loading manifest {}", args.manifest.display()))?;
    if loaded.manifest.dataset != dataset.name() {
        bail!("manifest {} is for {}, not {}", args.manifest.display(), loaded.manifest.dataset, dataset.name());
    }
    let [train, val, test] = args.splits.as_slice() else {
        bail!("--splits takes three names (train,val,test), got {:?}", args.splits);
    };
    let split = |name: &str| -> anyhow::Result<Split> {
        let summary = loaded.manifest.splits.iter().find(|s| s.name == name).with_context(|| {
            let have: Vec<&str> = loaded.manifest.splits.iter().map(|s| s.name.as_str()).collect();
            format!(
                "manifest {} has no {name} split (protocol {}, splits {have:?}; choose three with --splits)",
                args.manifest.display(),
                loaded.manifest.protocol
            )
        })?;
        let ids: HashSet<String> = loaded.sample_ids(name).into_iter().map(str::to_string).collect();
        if ids.is_empty() {
            bail!("manifest {}: the {name} split has no frames", args.manifest.display());
        }
        Ok(Split { name: name.into(), ids, hash: summary.rows_sha256.clone() })
    };
    let shard_paths = features::dataset_shards(&args.shards, dataset.name())?;
    let data = ProbeData {
        shard_paths,
        train: split(train)?,
        val: split(val)?,
        test: split(test)?,
        manifest: args.manifest.display().to_string(),
    };
    let source = FeatureSource::parse(&args.features)?;
    let cfg = ProbeConfig {
        linear: LinearConfig {
            lrs: args.lrs,
            weight_decays: args.weight_decays,
            max_epochs: args.max_epochs,
            patience: args.patience,
            batch_size: args.batch_size,
            seed: args.seed.first().copied().unwrap_or(0),
            select: args.select,
            pos_weight: args.pos_weight,
        },
        feature_batch: args.feature_batch,
        workers: args.workers,
        cache_dir: if args.no_cache { None } else { args.cache_dir.or_else(default_cache) },
        seeds: args.seed.clone(),
        bootstrap: args.bootstrap,
    };
    let started = std::time::Instant::now();
    let (report, head, what) = match (source, &args.checkpoint) {
        (FeatureSource::Backbone, Some(ckpt)) => {
            let (net, meta) = model::checkpoint::load(ckpt, device)
                .with_context(|| format!("loading checkpoint {}", ckpt.display()))?;
            let info = CheckpointInfo {
                path: ckpt.display().to_string(),
                sha256: features::file_sha256(ckpt)?,
                step: meta.step,
            };
            let bar = if args.quiet { Bar::hidden() } else { Bar::new() };
            let (report, head) = probe::run(&net, &info, dataset, &data, &cfg, &bar)?;
            (report, head, format!("{} (step {})", ckpt.display(), meta.step))
        }
        (FeatureSource::Backbone, None) => bail!("--features backbone needs --checkpoint"),
        (reference, _) => {
            let bar = if args.quiet { Bar::hidden() } else { Bar::new() };
            let (report, head) = probe::run_reference(reference, dataset, &data, &cfg, &bar)?;
            (report, head, format!("the {} reference", reference.name()))
        }
    };
    let json = report.write(&args.out, &head)?;
    println!(
        "probe of {what} on {}, {:.1} s; selected on val by {:?}: lr {}, wd {}, epoch {}",
        dataset.name(),
        started.elapsed().as_secs_f64(),
        args.select,
        report.selection.chosen.lr,
        report.selection.chosen.weight_decay,
        report.selection.chosen.best_epoch
    );
    for s in &report.splits {
        println!("  {:<5} {:>7} frames{}", s.name, s.frames, if s.cached { " (cached features)" } else { "" });
    }
    println!("\nTest F1 (%) at 0.5:\n\n{}", report.f1_table());
    println!("{}\n", report.summary_line());
    if let Some(d) = &report.detector {
        println!("{}\n", d.line());
    }
    println!("report: {} (+ probe.csv, probe.md, test_predictions.csv, {})", json.display(), report.head_file);
    Ok(ExitCode::SUCCESS)
}

/// An indicatif bar behind the model crate's progress trait (stderr, hidden
/// when stderr is not a terminal).
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar that never draws (`--quiet`).
    pub fn hidden() -> Self {
        Self(ProgressBar::hidden())
    }

    /// A bar that shows once a phase starts.
    pub fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len} {per_sec} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        super::bar::lines_without_terminal(&bar, "probe");
        Self(bar)
    }
}

impl probe::Progress for Bar {
    fn start(&self, phase: &str, total: u64) {
        self.0.reset();
        self.0.set_length(total);
        self.0.set_message(phase.to_string());
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn message(&self, msg: &str) {
        self.0.set_message(msg.to_string());
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
