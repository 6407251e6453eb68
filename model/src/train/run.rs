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
use super::log::{read_log, LogRecord, LogWriter, TrainProgress};
use super::sgd::{learning_rate, Sgd};
use super::state::{self, RngState, TrainState, STATE_FORMAT};
use super::step::{step_seed, train_step, LossValues, Trainer};
use super::{manifest, plot};
use crate::data::{Augmenter, Loader, ShardSet};
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
    /// Where the model and the batches live.
    pub device: Device,
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
    /// Images per second over this process's steps.
    pub images_per_s: f64,
    /// Fraction of this process's training time spent waiting for data.
    pub data_wait: f64,
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

fn open_data(cfg: &PretrainConfig, opts: &RunOptions) -> Result<Data> {
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
    let mut loader = Loader::new(set, cfg.data.loader.clone(), opts.device)?;
    if let Some(m) = &opts.manifest {
        loader = loader.with_filter(manifest::read_ids(m, opts.split.as_deref())?);
    }
    let rows = loader.rows_per_epoch()? as u64;
    let b = cfg.data.loader.batch_size as u64;
    let steps_per_epoch = if cfg.data.loader.drop_last { rows / b } else { rows.div_ceil(b) };
    if steps_per_epoch == 0 {
        return Err(shards_err(format!("{rows} rows selected, fewer than one batch of {b}")));
    }
    Ok(Data { loader, steps_per_epoch })
}

/// Runs (or resumes) pretraining with `cfg` (ignored on resume: the
/// checkpoint's resolved config is used, a difference is logged).
pub fn pretrain(cfg: PretrainConfig, opts: &RunOptions, progress: &dyn TrainProgress) -> Result<RunSummary> {
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(TrainError::io(out))?;
    let resume_from = state::latest(out)?;
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
    let data = open_data(&cfg, opts)?;
    let total = cfg.schedule.max_steps.unwrap_or(cfg.schedule.epochs * data.steps_per_epoch);

    // The initial weights come from (seed, step 0) too.
    tch::manual_seed(step_seed(cfg.seed, 0));
    let model = McSfau::new(&cfg.model, opts.device)?;
    let opt = Sgd::new(model.online(), cfg.optim.momentum, cfg.optim.weight_decay);
    let augmenter = Augmenter::new(cfg.data.augment.clone(), cfg.seed)?;
    let mut t = Trainer {
        model,
        opt,
        augmenter,
        seed: cfg.seed,
        nan_at_step: cfg.debug.nan_at_step,
        diagnostics_every: cfg.output.diagnostics_every,
    };
    let (mut step, mut epoch, mut skip) = (0, 0, 0);
    if let Some((path, st, tensors)) = resumed {
        state::restore(&mut t, &path, tensors)?;
        (step, epoch, skip) = (st.step, st.epoch, st.batch_in_epoch);
        progress.message(&format!("resumed from {} (step {step})", path.display()));
        tracing::info!(checkpoint = %path.display(), step, epoch, "resumed");
    }
    let config_path = out.join("config.json");
    let json = serde_json::to_string_pretty(&cfg).map_err(|e| TrainError::Config(e.to_string()))?;
    schemas::atomic::write(&config_path, json.as_bytes()).map_err(TrainError::io(&config_path))?;
    let log_path = out.join("log.jsonl");
    let mut log = LogWriter::open(&log_path, step)?;
    let mut records = read_log(&log_path)?;
    let resumed_from = step;

    progress.start(total, step);
    let started = Instant::now();
    let first_stats = data.loader.stats();
    let mut prev_stats = first_stats;
    let mut last = None;
    let mut checkpoint = state::latest(out)?.unwrap_or_default();
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
            config: cfg.clone(),
        };
        let path = state::checkpoint_path(out, step);
        state::save(t, &st, &path)?;
        state::prune(out, cfg.output.keep_checkpoints)?;
        Ok(path)
    };
    while step < total {
        if skip >= data.steps_per_epoch {
            // Saved at the end of an epoch: start the next one instead of
            // decoding a whole epoch only to skip it.
            (epoch, skip) = (epoch + 1, 0);
        }
        let mut batch_in_epoch = skip;
        let mut yielded = false;
        for batch in data.loader.epoch_from(epoch, skip as usize) {
            let batch = batch?;
            yielded = true;
            let lr = learning_rate(cfg.optim.lr, cfg.optim.min_lr, cfg.optim.cosine, step, total);
            step += 1;
            batch_in_epoch += 1;
            let output = match train_step(&mut t, &batch, step, lr) {
                Err(TrainError::NonFinite { term, step, value, .. }) => {
                    progress.finish();
                    let last_checkpoint =
                        state::latest(out)?.map_or_else(|| "none".to_string(), |p| p.display().to_string());
                    return Err(TrainError::NonFinite { term, step, value, last_checkpoint });
                }
                r => r?,
            };
            let losses = output.losses;
            last = Some(losses);
            progress.step(step, &losses);
            if step % cfg.output.log_every == 0 || step == total || output.diagnostics.is_some() {
                let now = data.loader.stats();
                let d = now.since(&prev_stats);
                prev_stats = now;
                let r = LogRecord {
                    step,
                    epoch,
                    losses,
                    lr,
                    images_per_s: d.images_per_s(),
                    data_wait: d.wait_fraction(),
                    elapsed_s: started.elapsed().as_secs_f64(),
                    diagnostics: output.diagnostics,
                };
                log.write(&r)?;
                records.push(r);
            }
            if step % cfg.output.checkpoint_every == 0 || step == total {
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
    if checkpoint.as_os_str().is_empty() {
        checkpoint = save(&t, step, epoch, skip)?;
    }
    plot::draw_losses(&records, &out.join("losses.png"))?;
    let model_path = out.join("model.safetensors");
    crate::checkpoint::save(&t.model, &model_path, step as i64)?;
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
        checkpoint,
        model: model_path,
    })
}

/// The run folder's log, for callers that compare runs.
pub fn log_of(run: &Path) -> Result<Vec<LogRecord>> {
    read_log(&run.join("log.jsonl"))
}
