//! `mcsfau detect VIDEO --checkpoint C --probe P`: per-frame AU
//! probabilities and presence for any video FFmpeg reads. Landmarks and
//! alignment come from the pipeline crate, backbone and probe head from the
//! model crate; this file joins them and writes the CSV and Parquet tables.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{bail, Context};
use model::probe::linear::{Head, THRESHOLD};
use model::probe::report::ProbeReport;
use pipeline::detect::{self, FrameRecord};
use pipeline::preprocess::backend::{self, LandmarkSpec};
use tch::Tensor;

/// Arguments of `mcsfau detect`.
#[derive(Debug, clap::Args)]
#[command(after_help = "EXAMPLES:
  mcsfau detect clip.mp4 --checkpoint RUN/model.safetensors --probe probe-bp4d --out clip.csv
  mcsfau detect clip.mp4 --checkpoint RUN/model.safetensors --probe probe-bp4d --landmarks fan:fan.safetensors --device cuda

Exit code: 0 every frame decoded and scored, 1 the video stopped decoding partway or had bad packets
(the tables hold the frames decoded), 2 could not run.")]
pub struct Args {
    /// The video (anything FFmpeg decodes).
    pub video: PathBuf,
    /// Pretrained checkpoint (`.safetensors` with its `.json` sidecar).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Probe report of that checkpoint (`probe.json` or its folder; the head
    /// `probe_head.safetensors` is read from beside it).
    #[arg(long)]
    pub probe: PathBuf,
    /// Output CSV [default: <video stem>.au.csv in the current folder]; the
    /// Parquet table goes next to it with extension `.parquet`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Landmark backend: dlib (offline, built in) or fan:WEIGHTS.
    #[arg(long, default_value = "dlib")]
    pub landmarks: String,
    /// Side of the aligned crop in pixels (as in preprocess); the backbone
    /// input size is the checkpoint's.
    #[arg(long, default_value_t = 256, value_parser = super::num::crop_size())]
    pub crop_size: u32,
    /// When a whole-frame search finds no face, search again with the frame doubled N times (0: never, at most 3). 1 finds faces from ~30 px wide (~55 px without); such a search costs ~4x a search and, on frames without a face, runs at most once a second.
    #[arg(long, default_value_t = pipeline::preprocess::track::DEFAULT_UPSAMPLE, value_parser = super::num::count32(0, pipeline::landmarks::dlib::MAX_UPSAMPLE as u64))]
    pub upsample: u32,
    /// Frames per landmark/backbone batch.
    #[arg(long = "batch-size", visible_alias = "batch", default_value_t = 16, value_parser = super::num::count(1, 4096))]
    pub batch: usize,
    /// Device for the backbone (and FAN): auto, cpu, cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Do not draw the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Also write every AU column OpenFace 2 writes (the ones the probe does
    /// not predict empty), for readers that select OpenFace's full list
    /// (py-feat's `read_openface(...).aus`).
    #[arg(long)]
    pub openface: bool,
    /// Apply a probe trained on another checkpoint than --checkpoint (its
    /// head then reads features it was not fitted on).
    #[arg(long)]
    pub allow_other_checkpoint: bool,
}

/// The CSV's provenance sidecar: `clip.au.csv` -> `clip.au.meta.json`.
fn meta_path(csv: &std::path::Path) -> PathBuf {
    csv.with_extension("meta.json")
}

/// Refuses output paths that would overwrite an input or each other.
fn check_outputs(
    args: &Args,
    csv: &std::path::Path,
    parquet: &std::path::Path,
    head: &std::path::Path,
) -> anyhow::Result<()> {
    if csv.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet")) {
        bail!("--out {}: give the CSV path (the Parquet table goes beside it as .parquet)", csv.display());
    }
    let same = |a: &std::path::Path, b: &std::path::Path| {
        a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    };
    let probe_json = if args.probe.is_dir() { args.probe.join("probe.json") } else { args.probe.clone() };
    for out in [csv, parquet] {
        for (what, input) in [
            ("the video", &args.video),
            ("--checkpoint", &args.checkpoint),
            ("the probe report", &probe_json),
            ("the probe head", &head.to_path_buf()),
        ] {
            if same(out, input) {
                bail!("--out: {} would overwrite {what}", out.display());
            }
        }
    }
    // An existing file is replaced only when it is an earlier detect table.
    if csv.exists() {
        let first = std::fs::read(csv).ok().and_then(|b| {
            let line = b.split(|&c| c == b'\n').next().map(|l| String::from_utf8_lossy(l).into_owned());
            line
        });
        if !first.is_some_and(|l| l.starts_with("frame,face_id,timestamp,confidence,success")) {
            bail!("--out {}: the file exists and is not a detect table; not overwriting it", csv.display());
        }
    }
    let meta = meta_path(csv);
    if meta.exists() {
        let ours = std::fs::read(&meta)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["mcsfau_detect"] == true);
        if !ours {
            bail!("{}: the file exists and is not a detect sidecar; not overwriting it", meta.display());
        }
    }
    if parquet.exists() {
        let ours = detect::is_detect_parquet(parquet);
        if !ours {
            bail!("{}: the file exists and is not a detect table; not overwriting it", parquet.display());
        }
    }
    Ok(())
}

/// Runs detection and writes the tables.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let device = super::probe::device(&args.device)?;
    let report = ProbeReport::load(&args.probe).with_context(|| format!("reading {}", args.probe.display()))?;
    let head_path = report.head_path(&args.probe);
    let csv = args.out.clone().unwrap_or_else(|| {
        let stem = args.video.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "video".into());
        PathBuf::from(format!("{stem}.au.csv"))
    });
    let parquet = csv.with_extension("parquet");
    check_outputs(&args, &csv, &parquet, &head_path)?;
    // The probe's head was fitted on one checkpoint's features.
    let sha = model::probe::features::file_sha256(&args.checkpoint)
        .with_context(|| format!("reading {}", args.checkpoint.display()))?;
    if !report.checkpoint.sha256.is_empty() && report.checkpoint.sha256 != sha && !args.allow_other_checkpoint {
        bail!(
            "the probe {} was trained on checkpoint {} (sha256 {}), not on {} (sha256 {}); \
             pass the checkpoint it was trained on, or --allow-other-checkpoint",
            args.probe.display(),
            report.checkpoint.path,
            &report.checkpoint.sha256[..report.checkpoint.sha256.len().min(12)],
            args.checkpoint.display(),
            &sha[..12]
        );
    }
    let head = Head::load(&head_path)?;
    let (net, _) = model::checkpoint::load(&args.checkpoint, device)
        .with_context(|| format!("loading checkpoint {}", args.checkpoint.display()))?;
    let spec = LandmarkSpec::from_str(&args.landmarks)?;
    if spec.needs_given() {
        bail!("--landmarks {}: detect needs a detector (dlib or fan:WEIGHTS)", args.landmarks);
    }
    let mut lm = backend::create(&spec, if device.is_cuda() { "cuda" } else { "cpu" })?;
    let aus = report.au_numbers.clone();
    let started = std::time::Instant::now();
    let bar = super::audit::Bar::for_command("detect");
    let quiet = pipeline::progress::NoProgress;
    let progress: &dyn pipeline::progress::Progress = if args.quiet { &quiet } else { &bar };
    let mut rows: Vec<FrameRecord> = Vec::new();
    let size = args.crop_size as i64;
    let mut video_report = detect::VideoReport::default();
    let opts = detect::DetectOptions { size: args.crop_size, batch: args.batch, upsample: args.upsample };
    let result = detect::faces_in_video(&args.video, lm.as_mut(), &opts, progress, &mut video_report, |frames| {
        let faces: Vec<&detect::AlignedFace> = frames.iter().filter_map(|f| f.face.as_ref()).collect();
        let mut probs = Vec::new();
        if !faces.is_empty() {
            let bytes: Vec<u8> = faces.iter().flat_map(|f| f.rgb.iter().copied()).collect();
            let images = Tensor::from_slice(&bytes)
                .view([faces.len() as i64, size, size, 3])
                .permute([0, 3, 1, 2])
                .to_device(device); // [B, 3, S, S] uint8
            let p = model::probe::au_probabilities(&net, &head, &images)
                .map_err(|e| pipeline::PipelineError::Config(e.to_string()))?;
            probs =
                Vec::<f32>::try_from(p.flatten(0, -1)).map_err(|e| pipeline::PipelineError::Config(e.to_string()))?;
        }
        let mut k = 0;
        for f in frames {
            let (confidence, success, p, face_box, points68) = match &f.face {
                Some(face) => {
                    let p = probs[k * aus.len()..(k + 1) * aus.len()].to_vec();
                    k += 1;
                    (face.score, 1, p, Some(face.face_box), Some(face.points68))
                }
                None => (0.0, 0, Vec::new(), None, None),
            };
            rows.push(FrameRecord {
                frame: f.index + 1,
                face_id: 0,
                timestamp: f.timestamp_ms as f64 / 1000.0,
                confidence,
                success,
                probs: p,
                face_box,
                points68,
            });
        }
        Ok(())
    });
    // A video that stops decoding partway (cut short, a corrupt packet):
    // the frames before are written, the run says so and exits 1 (never 0
    // with a silent partial table).
    let (stats, truncated) = match result {
        Ok(stats) => (stats, None),
        Err(e @ pipeline::PipelineError::Decode { .. }) if !rows.is_empty() => {
            let n = rows.len() as u64;
            (
                pipeline::preprocess::decode::DecodeStats { frames: n, decoded: n, kept: n, bad_packets: Vec::new() },
                Some(e),
            )
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("detecting in {}", args.video.display()))),
    };
    let secs = started.elapsed().as_secs_f64();
    let layout = detect::AuLayout::new(&aus, args.openface);
    detect::write_csv(&csv, &layout, &rows, THRESHOLD)?;
    let provenance = detect::Provenance {
        entries: vec![
            ("tool_version".into(), env!("CARGO_PKG_VERSION").into()),
            ("video".into(), args.video.display().to_string()),
            ("checkpoint".into(), args.checkpoint.display().to_string()),
            ("checkpoint_sha256".into(), sha.clone()),
            ("probe".into(), args.probe.display().to_string()),
            ("probe_head".into(), head_path.display().to_string()),
            ("threshold".into(), THRESHOLD.to_string()),
            ("landmarks".into(), args.landmarks.clone()),
            ("upsample".into(), args.upsample.to_string()),
            ("au_numbers".into(), serde_json::to_string(&aus)?),
        ],
    };
    detect::write_parquet(&parquet, &layout, &rows, THRESHOLD, &provenance)?;
    // The CSV's provenance beside it (CSV has no metadata of its own).
    let meta: serde_json::Map<String, serde_json::Value> = std::iter::once(("mcsfau_detect".into(), true.into()))
        .chain(provenance.entries.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))))
        .collect();
    schemas::atomic::write(&meta_path(&csv), serde_json::to_string_pretty(&meta)?.as_bytes())
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", meta_path(&csv).display()))?;
    let faces = rows.iter().filter(|r| r.success == 1).count();
    println!(
        "{}: {} frames, face in {} ({} without), {:.1} s, {:.1} frames/s ({} landmarks, {} AUs from {})",
        args.video.display(),
        stats.kept,
        faces,
        rows.len() - faces,
        secs,
        stats.kept as f64 / secs.max(1e-9),
        lm.name(),
        aus.len(),
        report.dataset.name()
    );
    let f = &video_report.faces;
    println!(
        "faces: {} detected, {} followed, {} follows refused, {} shot cuts",
        f.detected, f.followed, f.refused, f.cuts
    );
    let stages = &video_report.seconds;
    println!(
        "time: decode {:.1} s, landmarks {:.1} s, align {:.1} s, backbone + head + rows {:.1} s",
        stages.decode, stages.landmarks, stages.align, stages.consumer
    );
    println!("wrote {}, {} and {}", csv.display(), parquet.display(), meta_path(&csv).display());
    if let Some(first) = stats.bad_packets.first() {
        eprintln!(
            "error: {}: {} packets could not be decoded (the first at frame {}: {}); those frames are missing from the tables",
            args.video.display(),
            stats.bad_packets.len(),
            first.index + 1,
            first.message
        );
        return Ok(ExitCode::from(1));
    }
    if let Some(e) = truncated {
        eprintln!("error: {e}: the tables hold the {} frames before the cut", rows.len());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
