//! One module per subcommand; [`Cli`] is the raw clap layer.

pub mod audit;
pub mod bar;
pub mod compare;
pub mod detect;
pub mod doctor;
pub mod export;
pub mod manifest;
pub mod masks;
pub mod model;
pub mod num;
pub mod preprocess;
pub mod pretrain;
pub mod probe;
pub mod supervise;
pub mod synth;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Self-supervised facial action unit detection (MC-SFAU) at VoxCeleb scale.
///
/// Typical flow (the subcommands are listed in this order): `synth` or real
/// data -> `preprocess` -> `manifest` -> `audit` -> `pretrain` -> `probe` ->
/// `compare` -> `detect` / `export`. Run `mcsfau doctor` first on a new
/// machine; docs/real-data.md walks the real datasets.
#[derive(Debug, Parser)]
#[command(name = "mcsfau", version, about, long_about)]
pub struct Cli {
    /// More log output (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the installation: libtorch, CUDA, FFmpeg, threads.
    Doctor(doctor::Args),
    /// Write a miniature VoxCeleb2, BP4D or DISFA tree with drawn faces.
    Synth(synth::Args),
    /// Raw VoxCeleb2/BP4D/DISFA -> aligned face crops in Parquet shards (resumable, fans out).
    Preprocess(Box<preprocess::Args>),
    /// Subject splits and frame manifests (BP4D, DISFA): splits, build, verify.
    Manifest(manifest::Args),
    /// Check shards: counts, AU base rates, leakage, landmarks, JPEGs, labels.
    Audit(audit::Args),
    /// Pretrain MC-SFAU on shards: `mcsfau pretrain --shards DIR --config tiny --out RUN`.
    Pretrain(pretrain::Args),
    /// Linear probe of a checkpoint on BP4D/DISFA: per-AU F1 next to the paper.
    Probe(probe::Args),
    /// Train a preset's backbone with AU labels (a benchmark's ceiling), for `probe`.
    Supervise(supervise::Args),
    /// Paired t-test over per-AU F1 of two probe reports.
    Compare(compare::Args),
    /// Per-frame AU probabilities and presence for any video (CSV + Parquet).
    Detect(detect::Args),
    /// A checkpoint's backbone as a torchvision state dict (safetensors, optionally .pth).
    Export(export::Args),
    /// Figure 5: crops with input/refined landmarks and the masked regions (PNG).
    Masks(masks::Args),
    /// Inspect the MC-SFAU model: `mcsfau model summary --preset paper`.
    Model(model::Args),
}

/// Runs the chosen subcommand; `Ok` carries the exit code (a check that
/// found problems exits 1), `Err` is a failure to run at all (exit 2).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Doctor(args) => doctor::run(args),
        Command::Model(args) => model::run(args),
        Command::Manifest(args) => manifest::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Probe(args) => probe::run(args),
        Command::Supervise(args) => supervise::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Detect(args) => detect::run(args),
        Command::Export(args) => export::run(args),
        Command::Masks(args) => masks::run(args),
        Command::Pretrain(args) => pretrain::run(args),
        Command::Preprocess(args) => preprocess::run(*args),
        Command::Synth(args) => synth::run(args),
    }
}

/// Logs go to stderr through `tracing`; RUST_LOG wins over `-v`.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    // No colour codes in a redirected log (a batch job's file, a pipe).
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}
