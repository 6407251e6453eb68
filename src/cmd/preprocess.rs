//! `mcsfau preprocess`: raw dataset -> aligned face crops in Parquet shards.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use pipeline::preprocess::backend::ServiceOptions;
use pipeline::preprocess::{self, BackendPool, Dataset, LandmarkSpec, Partition, PreprocessConfig};

/// Arguments of `mcsfau preprocess`.
///
/// Decodes every clip (VoxCeleb2 at --fps, BP4D/DISFA at their labeled
/// frames), finds 68 landmarks, keeps 49, aligns each face to a 256x256
/// template and writes JPEG crops with landmarks, transform and labels to
/// `OUT/shards/*.parquet`. Re-running the same command resumes: finished
/// clips are skipped. Failed clips and frames go to `OUT/errors-<part>.csv`,
/// figures to `OUT/summary-<part>.json`. Exit code: 0 all clean, 1 some clips
/// or frames failed (see the errors table), 2 the run could not go on.
#[derive(Debug, clap::Args)]
#[command(after_help = "EXAMPLES:
  mcsfau preprocess --dataset voxceleb2 --root /data/voxceleb2 --out vox --landmarks dlib --fps 1
  mcsfau preprocess --dataset bp4d --root /data/BP4D --out bp4d --landmarks fan:fan.safetensors --device cuda
  mcsfau preprocess ... --shard-index 3 --shard-count 64      # one part of 64 (or from SLURM_ARRAY_TASK_ID)

Output: OUT/shards/*.parquet (face crops), OUT/errors-<part>.csv (failed clips and frames), \
OUT/faces-<part>.csv (faces found per clip), OUT/summary-<part>.json (figures). Re-running the same \
command resumes. Exit code: 0 all clean, 1 some clips or frames failed (see the errors table), 2 the \
run could not go on. See docs/preprocess.md.")]
pub struct Args {
    /// Dataset layout of --root: voxceleb2, bp4d or disfa.
    #[arg(long, value_parser = ["voxceleb2", "bp4d", "disfa"])]
    pub dataset: String,
    /// Dataset root (holds dev/mp4, Sequences + AUCoding, or Videos_LeftCamera + ActionUnit_Labels).
    #[arg(long)]
    pub root: PathBuf,
    /// Output folder (created if missing; re-use it to resume).
    #[arg(long)]
    pub out: PathBuf,
    /// VoxCeleb2 frames sampled per second of video (0: every frame). BP4D and DISFA take their labeled frames.
    #[arg(long, default_value_t = 1.0, value_parser = super::num::fps)]
    pub fps: f64,
    /// Landmark backend: fan:WEIGHTS.safetensors, dlib, dataset (sidecar/dataset points) or synthetic (mcsfau synth sidecars).
    #[arg(long, default_value = "dlib")]
    pub landmarks: String,
    /// Device of the fan network: auto (CUDA when available), cpu or cuda.
    #[arg(long, default_value = "auto", value_parser = ["auto", "cpu", "cuda"])]
    pub device: String,
    /// Worker threads [default: all cores].
    #[arg(long, value_parser = super::num::count(1, 1024))]
    pub jobs: Option<usize>,
    /// Frames per landmark batch of a clip, and crops per forward pass of the
    /// fan network (one inference service batches crops across clips).
    #[arg(long, default_value_t = 64, value_parser = super::num::count(1, 4096))]
    pub batch_size: usize,
    /// Weights and activations of the fan network: f32, or f16/bf16 (meant for cuda).
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16", "bf16"])]
    pub landmark_precision: String,
    /// Milliseconds the fan service waits for more crops while a batch is not full.
    #[arg(long, default_value_t = 10, value_parser = super::num::count(0, 60_000))]
    pub batch_wait_ms: usize,
    /// Clips per work unit (one shard file each; the granularity of resuming) [default: 64 for voxceleb2, 1 otherwise].
    #[arg(long, value_parser = super::num::count(1, 1_000_000))]
    pub clips_per_unit: Option<usize>,
    /// Crop side in pixels.
    #[arg(long, default_value_t = 256, value_parser = super::num::crop_size())]
    pub crop_size: u32,
    /// dlib/fan: when a whole-frame search finds no face, search again with the frame doubled N times (0: never, at most 3). 1 finds faces from ~30 px wide (~55 px without); such a search costs ~4x a search and, on frames without a face, runs at most once a second.
    #[arg(long, default_value_t = pipeline::preprocess::track::DEFAULT_UPSAMPLE, value_parser = super::num::count32(0, pipeline::landmarks::dlib::MAX_UPSAMPLE as u64))]
    pub upsample: u32,
    /// JPEG quality of the crops (1-100).
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub jpeg_quality: u8,
    /// This run's part, 0-based [default: SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, else JOB_COMPLETION_INDEX, else 0].
    #[arg(long, value_parser = super::num::count(0, 1_000_000))]
    pub shard_index: Option<usize>,
    /// Number of parts [default: SLURM_ARRAY_TASK_COUNT, else MCSFAU_SHARD_COUNT, else 1].
    #[arg(long, value_parser = super::num::count(1, 1_000_000))]
    pub shard_count: Option<usize>,
    /// No progress bar (logs only).
    #[arg(long)]
    pub quiet: bool,
}

/// indicatif behind the library's progress trait.
struct Bar(ProgressBar);

impl pipeline::progress::Progress for Bar {
    fn start(&self, phase: &str, total: u64) {
        self.0.set_length(total);
        self.0.set_prefix(phase.to_string());
        self.0.enable_steady_tick(Duration::from_millis(250));
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn message(&self, msg: &str) {
        self.0.set_message(msg.to_string());
    }
    fn finish(&self) {
        self.0.finish();
    }
}

/// Runs the command; exit 1 when some clips or frames failed.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dataset: Dataset = args.dataset.parse()?;
    let spec: LandmarkSpec = args.landmarks.parse()?;
    let partition = Partition::resolve(args.shard_index, args.shard_count, |k| std::env::var(k).ok())?;
    let mut config = PreprocessConfig::new(dataset, args.root, args.out);
    config.fps = args.fps;
    config.landmarks = args.landmarks.clone();
    config.device = args.device.clone();
    config.crop_size = args.crop_size;
    config.jpeg_quality = args.jpeg_quality;
    config.upsample = args.upsample;
    config.batch_size = args.batch_size.max(1);
    config.landmark_precision = args.landmark_precision.parse()?;
    config.partition = partition;
    if let Some(j) = args.jobs {
        config.jobs = j.max(1);
    }
    if let Some(c) = args.clips_per_unit {
        config.clips_per_unit = c.max(1);
    }
    // Fail on a bad --root/--out before loading any model.
    preprocess::run::check_paths(&config)?;
    let service = ServiceOptions {
        batch: config.batch_size,
        precision: config.landmark_precision,
        max_wait: std::time::Duration::from_millis(args.batch_wait_ms as u64),
    };
    let pool = BackendPool::create_with(&spec, &config.device, config.jobs, service)
        .with_context(|| format!("cannot start the `{}` landmark backend", args.landmarks))?;
    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    if !args.quiet {
        super::bar::lines_without_terminal(&bar, "preprocess");
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} [{elapsed_precise} ETA {eta}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let outcome = preprocess::run(config, spec, pool, &Bar(bar))?;
    let s = &outcome.summary;
    eprintln!(
        "{} clips ({} resumed), {} frames in {:.1} s ({:.1} frames/s), {} failures -> {}",
        s.clips,
        s.clips_resumed,
        s.frames,
        s.seconds,
        s.frames_per_s,
        s.failures,
        outcome.summary_path.display()
    );
    if s.failures > 0 {
        eprintln!("some clips or frames failed: see {}", outcome.errors_path.display());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
