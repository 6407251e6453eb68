//! `mcsfau`: self-supervised facial action unit detection (MC-SFAU) at
//! VoxCeleb scale. This binary is thin: argument parsing, progress bars and
//! exit codes; the work lives in the `pipeline` and `model` crates.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    cmd::init_logging(cli.verbose);
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", schemas::error::display_chain(err.as_ref()));
            ExitCode::from(2)
        }
    }
}
