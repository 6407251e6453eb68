//! The pretraining run: validate the data, build or restore the trainer,
//! then epochs of [`train_step`] with logs, checkpoints and the loss plot.
//!
//! Run folder (`--out RUN`):
//! * `config.json`: the resolved [`PretrainConfig`];
//! * `log.jsonl`: [`LogRecord`]s; `losses.png`: the curves;
//! * `checkpoints/step-NNNNNNNN.safetensors`: training state ([`state`]);
//! * `model.safetensors` + `model.json`: the final model in the format of
//!   [`crate::checkpoint`] (what the linear probe loads).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use tch::Device;

use super::config::PretrainConfig;
use super::error::{Result, TrainError};
use super::log::{read_log, LogRecord, LogWriter, NoProgress, TrainProgress};
use super::parallel::{self, DistOptions};
use super::sgd::{learning_rate, Sgd};
use super::state::{self, RngState, TrainState, STATE_FORMAT};
use super::step::{step_seed, train_step, LossValues, Trainer};
use super::{manifest, plot};
use crate::data::{Augmenter, Loader, ShardSet};
use crate::dist::norm;
use crate::mcsfau::McSfau;

/// Where the data comes from and where the run goes (the CLI's choices).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Folder of shards (searched recursively).
    pub shards: PathBuf,
    /// Optional sample-id selection (see [`manifest`]).
    pub manifest: Option<PathBuf>,
    /// Keep only this split of a frame manifest.
    pub split: Option<String>,
    /// The run folder.
    pub out: PathBuf,
    /// Continue from the newest checkpoint in `out`.
    pub resume: bool,
    /// Where the model and the batches live (on CUDA, a data-parallel rank
    /// uses `cuda:LOCAL_RANK`).
    pub device: Device,
    /// A data-parallel run's rank and rendezvous (None: one process).
    pub dist: Option<DistOptions>,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Steps trained in total (including before a resume).
    pub steps: u64,
    /// Steps of the whole schedule.
    pub total_steps: u64,
    /// The step this process started from (0 unless resumed).
    pub resumed_from: u64,
    /// The losses of the last step this process trained.
    pub last: Option<LossValues>,
    /// Images per second over this process's steps (this rank's images).
    pub images_per_s: f64,
    /// Fraction of this process's training time spent waiting for data.
    pub data_wait: f64,
    /// Processes that trained together (1: one process).
    pub world_size: usize,
    /// This process's rank.
    pub rank: usize,
    /// SHA-256 of every online and target variable at the end (names and
    /// float32 values, in name order): equal on every rank of a
    /// data-parallel run.
    pub weights_sha256: String,
    /// The last checkpoint.
    pub checkpoint: PathBuf,
    /// The exported model.
    pub model: PathBuf,
}

/// The data side of a run, validated before any model is built.
struct Data {
    loader: Loader,
    steps_per_epoch: u64,
}

fn open_data(cfg: &PretrainConfig, opts: &RunOptions, device: Device, part: (usize, usize)) -> Result<Data> {
    let shards_err = |reason: String| TrainError::Shards { dir: opts.shards.clone(), reason };
    let set = ShardSet::from_dir(&opts.shards)?;
    if i64::from(set.crop_size()) != cfg.model.image_size {
        return Err(shards_err(format!(
            "crops are {0}x{0} px but the model takes {1}x{1} (model.image_size): pretraining does not resize \
             (the landmarks and masks are in crop pixels); preprocess with --crop-size {1}, or pick a preset \
             or TOML config with model.image_size = {0} (`paper` takes 256, `small` 128, `tiny` 64)",
            set.crop_size(),
            cfg.model.image_size
        )));
    }
    let (rank, world) = part;
    let mut loader = Loader::new(set, cfg.data.loader.clone(), device)?.with_part(rank, world);
    if let Some(m) = &opts.manifest {
        loader = loader.with_filter(manifest::read_ids(m, opts.split.as_deref())?);
    }
    let rows = loader.rows_per_epoch()? as u64;
    // One step takes a batch from every rank.
    let b = (cfg.data.loader.batch_size * world) as u64;
    let steps_per_epoch = if cfg.data.loader.drop_last { rows / b } else { rows.div_ceil(b) };
    if steps_per_epoch == 0 {
        return Err(shards_err(format!("{rows} rows selected, fewer than one batch of {b}")));
    }
    Ok(Data { loader, steps_per_epoch })
}

/// Runs (or resumes) pretraining with `cfg` (ignored on resume: the
/// checkpoint's resolved config is used, a difference is logged). In a
/// data-parallel run every rank calls this; rank 0 alone writes the run
/// folder, every rank reads it on resume (a folder all ranks see).
pub fn pretrain(cfg: PretrainConfig, opts: &RunOptions, progress: &dyn TrainProgress) -> Result<RunSummary> {
    let out = &opts.out;
    let (rank, world) = opts.dist.as_ref().map_or((0, 1), |d| (d.launch.rank, d.launch.world));
    let main = rank == 0;
    let progress: &dyn TrainProgress = if main { progress } else { &NoProgress };
    if main {
        std::fs::create_dir_all(out).map_err(TrainError::io(out))?;
    }
    let resume_from = if out.exists() { state::latest(out)? } else { None };
    if resume_from.is_some() && !opts.resume {
        return Err(TrainError::Config(format!(
            "{} already has checkpoints: pass --resume or another --out",
            out.display()
        )));
    }
    let valid = if opts.resume && resume_from.is_some() { state::latest_valid(out)? } else { None };
    let (cfg, resumed) = match valid {
        Some((path, st, tensors, skipped)) => {
            for (bad, why) in &skipped {
                let msg =
                    format!("{} does not verify ({why}); resuming from {} instead", bad.display(), path.display());
                // a warning (printed at the default log level, also without a terminal)
                tracing::warn!("{msg}");
            }
            if st.config != cfg {
                tracing::warn!(checkpoint = %path.display(), "the given config differs from the checkpoint's; using the checkpoint's");
            }
            (st.config.clone(), Some((path, st, tensors)))
        }
        None => (cfg, None),
    };
    cfg.validate()?;
    if world > 1 && !cfg.data.loader.drop_last {
        return Err(TrainError::Config(
            "data.loader.drop_last = false cannot run data-parallel (the last batch would differ in size across \
             ranks); leave it on"
                .into(),
        ));
    }
    let device = match &opts.dist {
        Some(d) => parallel::rank_device(opts.device, d)?,
        None => opts.device,
    };
    let data = open_data(&cfg, opts, device, (rank, world))?;
    let total = cfg.schedule.max_steps.unwrap_or(cfg.schedule.epochs * data.steps_per_epoch);
    let group = opts.dist.as_ref().map(|d| parallel::join(d, device)).transpose()?;
    let dist = group.as_ref().map(|g| parallel::rank_part(g, cfg.data.loader.batch_size, &cfg.dist));
    // Every Norm on this thread trains in the configured mode from here on.
    let _bn = norm::enter(cfg.dist.batch_norm, group.clone());

    // The initial weights come from (seed, step 0) too.
    tch::manual_seed(step_seed(cfg.seed, 0));
    let model = McSfau::new(&cfg.model, device)?;
    let opt = Sgd::new(model.online(), cfg.optim.momentum, cfg.optim.weight_decay);
    let augmenter = Augmenter::new(cfg.data.augment.clone(), cfg.seed)?;
    let mut t = Trainer {
        model,
        opt,
        augmenter,
        seed: cfg.seed,
        nan_at_step: cfg.debug.nan_at_step,
        diagnostics_every: cfg.output.diagnostics_every,
        dist,
    };
    let (mut step, mut epoch, mut skip) = (0, 0, 0);
    if let Some((path, st, tensors)) = resumed {
        state::restore(&mut t, &path, tensors)?;
        (step, epoch, skip) = (st.step, st.epoch, st.batch_in_epoch);
        if st.world_size != world as u64 {
            // Batch k of another world size holds other samples: continue
            // with the next epoch, weights, momentum and step count kept.
            let msg = format!(
                "{} was written by {} process(es), this run has {world}: weights, momentum and step {step} are \
                 kept, the sample order restarts at epoch {} (the global batch is now {} samples)",
                path.display(),
                st.world_size,
                epoch + 1,
                world * cfg.data.loader.batch_size
            );
            tracing::warn!("{msg}");
            progress.message(&msg);
            (epoch, skip) = (epoch + 1, 0);
        }
        progress.message(&format!("resumed from {} (step {step})", path.display()));
        tracing::info!(checkpoint = %path.display(), step, epoch, "resumed");
    }
    if let Some(p) = &t.dist {
        parallel::check_same_start(p, [step, epoch, skip], device)?;
        parallel::broadcast_state(&t, p)?;
    }
    parallel::attach_reducer(&mut t, cfg.dist.overlap)?;
    let log_path = out.join("log.jsonl");
    let mut log = None;
    let mut records = Vec::new();
    if main {
        let config_path = out.join("config.json");
        let json = serde_json::to_string_pretty(&cfg).map_err(|e| TrainError::Config(e.to_string()))?;
        schemas::atomic::write(&config_path, json.as_bytes()).map_err(TrainError::io(&config_path))?;
        log = Some(LogWriter::open(&log_path, step)?);
        records = read_log(&log_path)?;
    }
    let resumed_from = step;
    let abort_at = parallel::abort_hook();

    progress.start(total, step);
    let started = Instant::now();
    let first_stats = data.loader.stats();
    let mut prev_stats = first_stats;
    let mut last = None;
    let mut checkpoint = if out.exists() { state::latest(out)?.unwrap_or_default() } else { PathBuf::new() };
    let save = |t: &Trainer, step: u64, epoch: u64, batch_in_epoch: u64| -> Result<PathBuf> {
        let st = TrainState {
            format: STATE_FORMAT.into(),
            step,
            epoch,
            batch_in_epoch,
            rng: RngState {
                seed: cfg.seed,
                loader_seed: cfg.data.loader.seed,
                next_torch_seed: step_seed(cfg.seed, step + 1),
            },
            world_size: world as u64,
            config: cfg.clone(),
        };
        let path = state::checkpoint_path(out, step);
        state::save(t, &st, &path)?;
        state::prune(out, cfg.output.keep_checkpoints)?;
        Ok(path)
    };
    let last_checkpoint = || -> String {
        state::latest(out).ok().flatten().map_or_else(|| "none".to_string(), |p| p.display().to_string())
    };
    while step < total {
        if skip >= data.steps_per_epoch {
            // Saved at the end of an epoch: start the next one instead of
            // decoding a whole epoch only to skip it.
            (epoch, skip) = (epoch + 1, 0);
        }
        let mut batch_in_epoch = skip;
        let mut yielded = false;
        let mut batches = data.loader.epoch_from(epoch, skip as usize);
        loop {
            let next = batches.next();
            if let Some(p) = &t.dist {
                let have = matches!(next, Some(Ok(_)));
                match parallel::all_have_batch(p, have, device) {
                    Ok(true) => {}
                    // Another rank's slice ended (or its loader failed):
                    // the epoch ends for all; a loader error is still ours.
                    Ok(false) => match next {
                        Some(Err(e)) => return Err(e.into()),
                        _ => break,
                    },
                    Err(TrainError::Dist { source, .. }) => {
                        progress.finish();
                        return Err(TrainError::Dist { source, last_checkpoint: last_checkpoint() });
                    }
                    Err(e) => return Err(e),
                }
            }
            let Some(batch) = next else { break };
            let batch = batch?;
            yielded = true;
            if abort_at == Some(step + 1) {
                tracing::error!(step = step + 1, "MCSFAU_TEST_ABORT_AT_STEP: aborting");
                std::process::abort();
            }
            let lr = learning_rate(cfg.optim.lr, cfg.optim.min_lr, cfg.optim.cosine, step, total);
            step += 1;
            batch_in_epoch += 1;
            let output = match train_step(&mut t, &batch, step, lr) {
                Err(TrainError::NonFinite { term, step, value, .. }) => {
                    progress.finish();
                    return Err(TrainError::NonFinite { term, step, value, last_checkpoint: last_checkpoint() });
                }
                Err(TrainError::Dist { source, .. }) => {
                    progress.finish();
                    return Err(TrainError::Dist { source, last_checkpoint: last_checkpoint() });
                }
                r => r?,
            };
            let losses = output.losses;
            last = Some(losses);
            progress.step(step, &losses);
            let checkpoint_due = step % cfg.output.checkpoint_every == 0 || step == total;
            if checkpoint_due {
                parallel::sync_buffers(&t)?;
            }
            let Some(log) = log.as_mut() else {
                if step >= total {
                    break;
                }
                continue;
            };
            if step % cfg.output.log_every == 0 || step == total || output.diagnostics.is_some() {
                let now = data.loader.stats();
                let d = now.since(&prev_stats);
                prev_stats = now;
                let r = LogRecord {
                    step,
                    epoch,
                    losses,
                    lr,
                    // the global batch's rate: every rank trains as fast as the slowest
                    images_per_s: d.images_per_s() * world as f64,
                    data_wait: d.wait_fraction(),
                    elapsed_s: started.elapsed().as_secs_f64(),
                    diagnostics: output.diagnostics,
                };
                log.write(&r)?;
                records.push(r);
            }
            if checkpoint_due {
                checkpoint = save(&t, step, epoch, batch_in_epoch)?;
                progress.message(&format!("checkpoint {}", checkpoint.display()));
                if cfg.output.plot {
                    plot::draw_losses(&records, &out.join("losses.png"))?;
                }
            }
            if step >= total {
                break;
            }
        }
        drop(batches);
        if !yielded && skip == 0 {
            return Err(TrainError::Shards {
                dir: opts.shards.clone(),
                reason: format!("epoch {epoch} yielded no batch (every row failed to decode?)"),
            });
        }
        if step < total {
            (epoch, skip) = (epoch + 1, 0);
        }
    }
    let model_path = out.join("model.safetensors");
    if main {
        if checkpoint.as_os_str().is_empty() {
            checkpoint = save(&t, step, epoch, skip)?;
        }
        plot::draw_losses(&records, &out.join("losses.png"))?;
        crate::checkpoint::save(&t.model, &model_path, step as i64)?;
    }
    progress.finish();
    let d = data.loader.stats().since(&first_stats);
    let secs = started.elapsed().as_secs_f64();
    Ok(RunSummary {
        steps: step,
        total_steps: total,
        resumed_from,
        last,
        images_per_s: if secs > 0.0 { d.images as f64 / secs } else { 0.0 },
        data_wait: if secs > 0.0 { (d.wait_s / secs).clamp(0.0, 1.0) } else { 0.0 },
        world_size: world,
        rank,
        weights_sha256: weights_digest(&t.model)?,
        checkpoint,
        model: model_path,
    })
}

/// See [`RunSummary::weights_sha256`].
fn weights_digest(model: &McSfau) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (prefix, vs) in [("online.", model.online()), ("target.", model.target())] {
        let mut vars: Vec<_> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, v) in vars {
            let values = Vec::<f32>::try_from(v.to_kind(tch::Kind::Float).to_device(Device::Cpu).reshape([-1]))?;
            h.update(prefix.as_bytes());
            h.update(name.as_bytes());
            for x in values {
                h.update(x.to_le_bytes());
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// The run folder's log, for callers that compare runs.
pub fn log_of(run: &Path) -> Result<Vec<LogRecord>> {
    read_log(&run.join("log.jsonl"))
}
