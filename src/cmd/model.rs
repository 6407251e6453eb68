//! `mcsfau model`: inspect the MC-SFAU model (parameter report).

use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

/// Arguments of `mcsfau model`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// The `model` actions.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Parameter counts per component (trainable, EMA, total) next to the
    /// paper's 144.37M (table 7). Builds the model on the CPU.
    Summary {
        /// Model preset: `paper` (ResNet-50 at 256x256), `small` or `tiny` (CPU tests).
        #[arg(long = "config", visible_alias = "preset", default_value = "paper")]
        preset: String,
        /// Print JSON (report and resolved config) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct SummaryJson {
    preset: String,
    report: model::summary::ParamReport,
    config: model::config::ModelConfig,
}

/// Runs the action.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Summary { preset, json } => {
            let cfg = model::config::ModelConfig::preset(&preset)?;
            let net = model::mcsfau::McSfau::new(&cfg, tch::Device::Cpu)
                .with_context(|| format!("building the {preset} model"))?;
            let report = model::summary::param_report(&net);
            if json {
                println!("{}", serde_json::to_string_pretty(&SummaryJson { preset, report, config: cfg })?);
            } else {
                println!("MC-SFAU parameters, preset {preset} (M = 10^6; BatchNorm buffers not counted)");
                print!("{}", report.table());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
