//! `mcsfau compare A.json B.json`: per-AU F1 of two probe reports side by
//! side and the paired t-test over AUs (the paper's significance test).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use model::probe::report::{self, ProbeReport};

/// Arguments of `mcsfau compare`.
#[derive(Debug, clap::Args)]
#[command(after_help = "EXAMPLE:
  mcsfau compare probe-a/probe.json probe-b     # a folder holding probe.json works too

Both reports must cover the same dataset, AUs and test set. Exit code: 0 compared
(significant or not), 2 the reports cannot be paired.")]
pub struct Args {
    /// Probe report A (`probe.json`, or the folder holding it).
    pub a: PathBuf,
    /// Probe report B, same dataset and AUs.
    pub b: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Prints the comparison; exit 0 whether or not the difference is significant.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let load = |p: &PathBuf| ProbeReport::load(p).with_context(|| format!("reading {}", p.display()));
    let (a, b) = (load(&args.a)?, load(&args.b)?);
    let c = report::compare(&a, &args.a.display().to_string(), &b, &args.b.display().to_string())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        println!("Per-AU F1 (%) on {} (A = {}, B = {}):\n", a.dataset.name(), c.a, c.b);
        print!("{}", c.to_markdown());
    }
    Ok(ExitCode::SUCCESS)
}
