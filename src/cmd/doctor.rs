//! `mcsfau doctor`: what this installation runs on.

use std::process::ExitCode;

use serde::Serialize;

/// Arguments of `mcsfau doctor`.
#[derive(Debug, clap::Args)]
#[command(after_help = "EXAMPLES:
  mcsfau doctor
  mcsfau doctor --json

Exit code: 0 libtorch loads and runs, 1 its smoke test fails.")]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report {
    mcsfau_version: &'static str,
    libtorch: model::runtime::RuntimeInfo,
    libtorch_smoke: Result<(), String>,
    ffmpeg: pipeline::video::FfmpegVersions,
    cpu_threads: usize,
    rayon_threads: usize,
}

/// Prints the report; exit 1 when libtorch fails its smoke test.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = Report {
        mcsfau_version: env!("CARGO_PKG_VERSION"),
        libtorch: model::runtime::runtime_info(),
        libtorch_smoke: model::runtime::smoke(),
        ffmpeg: pipeline::video::ffmpeg_versions(),
        cpu_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        rayon_threads: rayon::current_num_threads(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let t = &report.libtorch;
        println!("mcsfau          {}", report.mcsfau_version);
        println!("libtorch        {} ({})", t.libtorch_version, t.libtorch_path.as_deref().unwrap_or("path unknown"));
        println!(
            "libtorch smoke  {}",
            report.libtorch_smoke.as_ref().map_or_else(|e| format!("FAILED: {e}"), |_| "ok".to_string())
        );
        match (&t.cuda_available, &t.cuda_device_name) {
            (true, name) => println!(
                "CUDA            available: {} device(s), {} (cuDNN {})",
                t.cuda_devices,
                name.as_deref().unwrap_or("name unknown"),
                if t.cudnn_available { "yes" } else { "no" }
            ),
            (false, _) => println!("CUDA            not available (training runs on CPU)"),
        }
        let f = &report.ffmpeg;
        println!(
            "FFmpeg          avcodec {}, avformat {}, avutil {}, swscale {}",
            f.avcodec, f.avformat, f.avutil, f.swscale
        );
        println!(
            "threads         {} CPUs, rayon {}, libtorch intra-op {}, inter-op {}",
            report.cpu_threads, report.rayon_threads, t.torch_threads, t.torch_interop_threads
        );
    }
    if let Err(e) = &report.libtorch_smoke {
        eprintln!("error: libtorch cannot be used: {e}. Re-run scripts/setup.sh, or see docs/setup.md.");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
