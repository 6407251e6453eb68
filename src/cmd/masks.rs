//! `mcsfau masks`: the paper's figure 5 for a checkpoint: aligned crops with
//! the input landmarks, the points the detector found and the masked regions (PNG).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use model::data::{Loader, LoaderConfig, ShardSet};
use tch::Kind;

/// Arguments of `mcsfau masks`.
#[derive(Debug, clap::Args)]
#[command(after_help = "EXAMPLE:
  mcsfau masks --checkpoint RUN/model.safetensors --shards shards --out figure5.png

Exit code: 0 written, 2 could not run.")]
pub struct Args {
    /// Checkpoint (`.safetensors` with its `.json` sidecar).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Folder of shards; the crops are the first rows of its first dataset.
    #[arg(long)]
    pub shards: PathBuf,
    /// The PNG to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Crops in the figure.
    #[arg(long, default_value_t = 6, value_parser = super::num::count(1, 1000))]
    pub count: usize,
    /// Seed of the `denoise` detector's jitter (the default detector draws nothing).
    #[arg(long, default_value_t = 0)]
    pub seed: i64,
}

/// Writes the figure.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (net, _) = model::checkpoint::load(&args.checkpoint, tch::Device::Cpu)
        .with_context(|| format!("loading checkpoint {}", args.checkpoint.display()))?;
    let paths = schemas::list_shards(&args.shards)?;
    let first = paths.first().with_context(|| format!("no shard under {}", args.shards.display()))?;
    let dataset = schemas::ShardReader::open(first)?.meta().dataset.clone();
    let paths = model::probe::features::dataset_shards(&args.shards, &dataset)?;
    let cfg = LoaderConfig {
        batch_size: args.count.max(1),
        shuffle: false,
        shuffle_buffer: 0,
        drop_last: false,
        workers: 1,
        ..Default::default()
    };
    let loader = Loader::new(ShardSet::open(&paths)?, cfg, tch::Device::Cpu)?;
    let batch = loader.epoch(0).next().context("the shards hold no decodable crop")??;
    // (Rows with non-finite landmarks never reach here: the loader skips
    // them with a warning naming the file and the sample.)
    let s = net.config().image_size;
    let crop = batch.images.size()[2];
    let (mut images, mut landmarks) = (batch.images.contiguous(), batch.landmarks.copy());
    if crop != s {
        images = images
            .to_kind(Kind::Float)
            .internal_upsample_bilinear2d_aa([s, s], false, None, None)
            .round()
            .clamp(0.0, 255.0)
            .to_kind(Kind::Uint8);
        landmarks *= s as f64 / crop as f64;
    }
    tch::manual_seed(args.seed);
    let fig = model::visualize::with_legend(&model::visualize::mask_figure(&net, &images, &landmarks)?);
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    schemas::atomic::write_with(&args.out, |tmp| fig.save(tmp))
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", args.out.display()))?;
    println!(
        "figure 5 ({} {dataset} crops: blue = input landmarks, green = found by the detector (p_k), dark = masked squares, red = zeroed feature cells): {}",
        batch.ids.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
