//! `mcsfau audit`: Polars checks over shards, written as report.md,
//! report.json, CSV tables and PNG plots; exit 1 when a check fails.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use pipeline::audit::{self, AuditOptions, Status};
use pipeline::progress::Progress;

/// Arguments of `mcsfau audit`.
#[derive(Debug, clap::Args)]
#[command(after_help = "EXAMPLES:
  mcsfau audit --shards OUT/shards --manifest manifests/bp4d/paper.frames.json --out audit-bp4d
  mcsfau audit --shards OUT/shards --out audit --decode-sample 0

Exit code: 0 every check passed, 1 a check failed (see report.md), 2 the audit could not run.")]
pub struct Args {
    /// Folder of shards (searched recursively; every dataset in it is audited).
    #[arg(long)]
    pub shards: PathBuf,
    /// Frame manifest JSON (`mcsfau manifest build`); repeat for several
    /// datasets. Without one, figures are per dataset and the split checks
    /// are skipped.
    #[arg(long = "manifest")]
    pub manifests: Vec<PathBuf>,
    /// Folder for report.md, report.json, CSV tables and PNG plots.
    #[arg(long, visible_alias = "out")]
    pub report: PathBuf,
    /// Do not draw the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Rows whose JPEG is decoded in the spot check (seeded sample; 0 skips).
    #[arg(long, default_value_t = 64, value_parser = super::num::count(0, 100_000_000))]
    pub decode_sample: usize,
    /// Seed of the spot-check sample.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Known clip length for the past-the-end label check, DATASET=FRAMES;
    /// repeatable [default: disfa=4845].
    #[arg(long = "clip-frames", value_name = "DATASET=FRAMES")]
    pub clip_frames: Vec<String>,
    /// Inter-ocular distance under this fraction of the crop is degenerate.
    #[arg(long, default_value_t = 0.05, value_parser = super::num::open_fraction)]
    pub min_interocular: f64,
    /// The faces/no_face_rate check fails when more than this share of the
    /// frames preprocess sampled had no face (its faces-*.csv tables, found
    /// in --shards or its parent).
    #[arg(long, default_value_t = 0.2, value_parser = super::num::fraction)]
    pub max_no_face_rate: f64,
}

/// Runs the audit and prints a summary; exit 1 when a check fails.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut opts = AuditOptions {
        decode_sample: args.decode_sample,
        seed: args.seed,
        min_interocular_fraction: args.min_interocular,
        max_no_face_rate: args.max_no_face_rate,
        ..Default::default()
    };
    if !args.clip_frames.is_empty() {
        opts.clip_frames = BTreeMap::new();
        for spec in &args.clip_frames {
            let Some((ds, n)) = spec.split_once('=') else { bail!("--clip-frames {spec}: expected DATASET=FRAMES") };
            let n: i64 = n.parse().with_context(|| format!("--clip-frames {spec}: FRAMES is not an integer"))?;
            opts.clip_frames.insert(ds.to_string(), n);
        }
    }
    let manifests = args
        .manifests
        .iter()
        .map(|p| pipeline::manifest::load(p).with_context(|| format!("loading manifest {}", p.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = std::time::Instant::now();
    let bar = if args.quiet { Bar::hidden() } else { Bar::new() };
    let report = audit::run(&args.shards, &manifests, &opts, &bar)?;
    let files = audit::report::write(&report, &args.report)?;
    let failed = report.failed();
    println!(
        "audited {} rows in {} files ({:.1} s): {} checks, {} failed, {} skipped",
        report.rows,
        report.files,
        started.elapsed().as_secs_f64(),
        report.checks.len(),
        failed.len(),
        report.checks.iter().filter(|c| c.status == Status::Skipped).count()
    );
    for c in &report.counts.per_split {
        println!("  {:<10} {:<20} {:>5} subjects {:>9} frames", c.dataset, c.split, c.subjects, c.frames);
    }
    for c in &failed {
        println!("FAIL {}: {}", c.name, c.summary);
        for e in c.examples.iter().take(3) {
            println!("     {e}");
        }
    }
    println!("report: {} ({} files)", args.report.join("report.md").display(), files.len());
    Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// An indicatif bar behind the pipeline's [`Progress`] trait (stderr, hidden
/// when stderr is not a terminal).
pub struct Bar(ProgressBar);

impl Bar {
    /// A hidden-until-started bar.
    pub fn new() -> Self {
        Self::for_command("audit")
    }

    /// A bar that never draws (`--quiet`).
    pub fn hidden() -> Self {
        Self(ProgressBar::hidden())
    }

    /// A bar for `mcsfau COMMAND` (without a terminal: plain progress lines).
    pub fn for_command(command: &'static str) -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{msg:30} [{bar:30}] {pos}/{len} {elapsed} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        super::bar::lines_without_terminal(&bar, command);
        Self(bar)
    }
}

impl Progress for Bar {
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
