//! The run: discover, partition, skip finished clips, process units in
//! parallel (rayon), commit each unit (see [`super::resume`]), report.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use schemas::{FaceRow, LabelSpec, ShardMeta, ShardWriter, WriterOptions};

use super::clip::{process_clip, stage, Timers};
use super::labels::{BP4D_AUS, DISFA_AUS};
use super::partition::fnv1a64;
use super::report::{errors_csv, faces_csv, write_atomic, Failure, RunSummary, StageFigures, Stages};
use super::resume::{finished_clips, load_finished, write_record, UnitRecord};
use super::sources::{discover, Clip, Dataset};
use super::track::FaceCounts;
use super::{BackendPool, Context, LandmarkSpec, PreprocessConfig};
use crate::error::{PipelineError, Result};
use crate::progress::Progress;

/// Where a run's outputs are.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The summary (also written as JSON).
    pub summary: RunSummary,
    /// The errors table of this part.
    pub errors_path: PathBuf,
    /// The summary file.
    pub summary_path: PathBuf,
}

/// The label lists of a dataset's shards.
pub fn label_spec(dataset: Dataset) -> Option<LabelSpec> {
    match dataset {
        Dataset::Voxceleb2 => None,
        Dataset::Bp4d => Some(LabelSpec { au_numbers: BP4D_AUS.to_vec(), intensity: false }),
        Dataset::Disfa => Some(LabelSpec { au_numbers: DISFA_AUS.to_vec(), intensity: true }),
    }
}

/// Checks `--root` and `--out` before any work: the root must be a folder,
/// the output folder must be creatable and writable.
pub fn check_paths(config: &PreprocessConfig) -> Result<()> {
    if !config.root.is_dir() {
        return Err(PipelineError::Input {
            path: config.root.clone(),
            message: "--root does not exist or is not a folder".into(),
        });
    }
    let out = &config.out;
    let unwritable = |e: std::io::Error| PipelineError::Input {
        path: out.clone(),
        message: format!("--out is not a writable folder ({e})"),
    };
    std::fs::create_dir_all(out).map_err(unwritable)?;
    let probe = out.join(format!(".write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(unwritable)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Preprocesses this part of the dataset. `Ok` even when clips or frames
/// failed (see [`RunSummary::failures`] and the errors table); `Err` when
/// the run could not go on (bad `--root`/`--out`, a shard write failed).
pub fn run(
    config: PreprocessConfig,
    spec: LandmarkSpec,
    pool: BackendPool,
    progress: &dyn Progress,
) -> Result<RunOutcome> {
    let started = Instant::now();
    check_paths(&config)?;
    let out = config.out.clone();
    let (shards_dir, progress_dir) = (out.join("shards"), out.join("progress"));
    for d in [&shards_dir, &progress_dir] {
        std::fs::create_dir_all(d).map_err(|e| PipelineError::io(d, e))?;
    }
    let part = config.partition;
    let tag = part.tag();
    // One configuration per folder, one run per part at a time.
    super::guard::check_run_config(&out, &config)?;
    let _lock = super::guard::lock_part(&out, &tag)?;
    let clips: Vec<Clip> =
        discover(config.dataset, &config.root)?.into_iter().filter(|c| part.contains(&c.rel_path)).collect();
    let records = load_finished(&progress_dir, &shards_dir, &tag)?;
    let done = finished_clips(&records);
    let pending: Vec<&Clip> = clips.iter().filter(|c| !done.contains(&c.rel_path)).collect();
    tracing::info!(clips = clips.len(), pending = pending.len(), part = %tag, "preprocess");

    let meta = ShardMeta {
        dataset: config.dataset.name().into(),
        labels: label_spec(config.dataset),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        preprocess_config: serde_json::to_string(&config).unwrap_or_default(),
    };
    let jobs = config.jobs.max(1);
    let ctx = Context { config, spec, pool, timers: Timers::default() };
    let units: Vec<Vec<&Clip>> = pending.chunks(ctx.config.clips_per_unit.max(1)).map(<[_]>::to_vec).collect();
    let rows_now = AtomicU64::new(0);
    let failures_now = AtomicU64::new(0);
    progress.start("clips", pending.len() as u64);
    let thread_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| PipelineError::Config(format!("cannot start {jobs} worker threads: {e}")))?;
    let new_records: Vec<UnitRecord> = thread_pool.install(|| {
        units
            .par_iter()
            .map(|unit| {
                let rec = process_unit(&ctx, unit, &tag, &meta, &shards_dir, &progress_dir, progress)?;
                let rows = rows_now.fetch_add(rec.rows, Ordering::Relaxed) + rec.rows;
                let fails =
                    failures_now.fetch_add(rec.failures.len() as u64, Ordering::Relaxed) + rec.failures.len() as u64;
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                progress.message(&format!("{rows} frames, {:.1} frames/s, {fails} failures", rows as f64 / secs));
                Ok(rec)
            })
            .collect::<Result<Vec<_>>>()
    })?;
    progress.finish();

    // The report covers the whole part: earlier runs' units and this run's.
    let mine: std::collections::BTreeSet<&str> = clips.iter().map(|c| c.rel_path.as_str()).collect();
    let all: Vec<&UnitRecord> =
        records.iter().chain(&new_records).filter(|r| r.clips.iter().any(|c| mine.contains(c.as_str()))).collect();
    let mut failures: Vec<Failure> = all.iter().flat_map(|r| r.failures.iter().cloned()).collect();
    failures.sort();
    let errors_path = out.join(format!("errors-{tag}.csv"));
    write_atomic(&errors_path, errors_csv(&failures).as_bytes())?;
    let clip_faces: Vec<(String, FaceCounts)> =
        all.iter().flat_map(|r| r.faces.iter().filter(|(c, _)| mine.contains(c.as_str())).cloned()).collect();
    write_atomic(&out.join(format!("faces-{tag}.csv")), faces_csv(&clip_faces).as_bytes())?;
    let mut faces = FaceCounts::default();
    clip_faces.iter().for_each(|(_, c)| faces.merge(c));

    let seconds = started.elapsed().as_secs_f64();
    let frames = rows_now.load(Ordering::Relaxed);
    let t = &ctx.timers;
    let fig = |s: usize| StageFigures::new(t.frames[s].load(Ordering::Relaxed), t.nanos[s].load(Ordering::Relaxed));
    let summary = RunSummary {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        dataset: ctx.config.dataset.name().into(),
        part: format!("{}/{}", part.index, part.count),
        clips: clips.len() as u64,
        clips_resumed: (clips.len() - pending.len()) as u64,
        clips_processed: pending.len() as u64,
        frames,
        frames_total: all.iter().map(|r| r.rows).sum(),
        failures: failures.len() as u64,
        seconds,
        frames_per_s: if seconds > 0.0 { frames as f64 / seconds } else { 0.0 },
        stages: Stages {
            decode: fig(stage::DECODE),
            landmarks: fig(stage::LANDMARKS),
            align: fig(stage::ALIGN),
            encode: fig(stage::ENCODE),
            write: fig(stage::WRITE),
        },
        faces,
        no_face_rate: faces.no_face_rate(),
        clips_without_face: clip_faces.iter().filter(|(_, c)| c.frames > 0 && c.no_face == c.frames).count() as u64,
        landmark_batches: ctx.pool.batch_stats(),
    };
    let summary_path = out.join(format!("summary-{tag}.json"));
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| PipelineError::Config(format!("summary: {e}")))?;
    write_atomic(&summary_path, &json)?;
    Ok(RunOutcome { summary, errors_path, summary_path })
}

fn process_unit(
    ctx: &Context,
    clips: &[&Clip],
    tag: &str,
    meta: &ShardMeta,
    shards_dir: &Path,
    progress_dir: &Path,
    progress: &dyn Progress,
) -> Result<UnitRecord> {
    let joined: String = clips.iter().map(|c| c.rel_path.as_str()).collect::<Vec<_>>().join("\n");
    let unit = format!("{tag}-{:016x}", fnv1a64(joined.as_bytes()));
    // One file per unit: the record names it before it exists (resume.rs).
    let options = WriterOptions { rows_per_file: usize::MAX / 4, ..WriterOptions::default() };
    let mut writer = ShardWriter::new(shards_dir, &unit, meta.clone(), options)?;
    let mut failures = Vec::new();
    let mut faces = Vec::with_capacity(clips.len());
    let mut rows = 0u64;
    for clip in clips {
        let mut sink = |batch: Vec<FaceRow>| -> Result<()> {
            for row in batch {
                writer.push(row)?;
            }
            Ok(())
        };
        let mut counts = FaceCounts::default();
        rows += process_clip(ctx, clip, &mut failures, &mut counts, &mut sink)?;
        faces.push((clip.rel_path.clone(), counts));
        progress.advance(1);
    }
    let record = UnitRecord {
        unit: unit.clone(),
        clips: clips.iter().map(|c| c.rel_path.clone()).collect(),
        rows,
        files: if rows > 0 { vec![format!("{unit}-00000.parquet")] } else { Vec::new() },
        failures,
        faces,
    };
    write_record(progress_dir, &record)?;
    let t = Instant::now();
    let written = writer.finish();
    let ok = matches!(&written, Ok(files) if files.len() == record.files.len());
    if !ok {
        let _ = std::fs::remove_file(progress_dir.join(format!("{unit}.json")));
        written?;
        return Err(PipelineError::Config(format!("unit {unit}: the shard writer did not produce one file")));
    }
    ctx.timers.add(stage::WRITE, 0, t);
    Ok(record)
}
