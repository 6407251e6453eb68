//! [`Loader`]: streams a [`ShardSet`] as uint8 image batches on the target
//! device, ahead of use.
//!
//! Three stages per epoch, joined by bounded channels:
//! 1. a reader thread visits the row groups of all shards in a seeded order,
//!    reads only `sample_id`, `image`, `landmarks`, drops rows outside the
//!    id filter, and mixes rows in a seeded shuffle buffer;
//! 2. a decoder thread fills each batch by decoding its JPEGs in parallel on a
//!    rayon pool of `workers` threads straight into the batch tensor (pinned
//!    memory when the target is CUDA); corrupt rows are skipped, logged,
//!    counted, and replaced by the next rows so batches stay full;
//! 3. the consumer ([`EpochIter`]) starts the non-blocking copy of the next
//!    batch to the device before handing out the current one.
//!
//! The order of samples depends only on `(seed, epoch)` and the shard set,
//! never on thread timing: batches are assembled one after another.

use std::collections::{HashSet, VecDeque};
use std::sync::mpsc::{sync_channel, Receiver, RecvError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use schemas::reader::Columns;
use schemas::schema::col;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::decode::{HostBuffer, RawRow};
use super::error::{DataError, Result};
use super::read::{read_epoch, RawMsg};
use super::shards::ShardSet;
use super::stats::{LoaderStats, StatsCounters};

/// How the loader batches, shuffles and prefetches. `Default` = the paper's
/// batch size with settings sized for one GPU host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoaderConfig {
    /// Samples per batch (paper: 256).
    pub batch_size: usize,
    /// JPEG-decode threads; 0 = every core the process may use.
    pub workers: usize,
    /// Batches kept decoded ahead of the consumer (bounded channel depth, >= 1).
    pub prefetch: usize,
    /// Shuffle the sample order each epoch (off: file order, for evaluation).
    pub shuffle: bool,
    /// Rows held in the cross-shard shuffle buffer (0: row-group order only).
    /// 8,192 rows of 256x256 crops are ~170 MB of JPEG bytes.
    pub shuffle_buffer: usize,
    /// Drop the last batch of an epoch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// Seed of the epoch order (with the epoch number).
    pub seed: u64,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self { batch_size: 256, workers: 0, prefetch: 4, shuffle: true, shuffle_buffer: 8192, drop_last: true, seed: 0 }
    }
}

/// One batch on the loader's device.
#[derive(Debug)]
pub struct Batch {
    /// Images, uint8 RGB, shape `[B, 3, H, W]` in channels-last memory (the
    /// decoded layout, which convolutions take as is; `.contiguous()` gives
    /// NCHW memory).
    pub images: Tensor,
    /// 49 landmarks per image, float32 `[B, 49, 2]` (x, y) in crop pixels.
    pub landmarks: Tensor,
    /// Sample ids, in batch order.
    pub ids: Vec<String>,
}

impl Batch {
    /// Samples in the batch.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the batch is empty (never true for a batch the loader yields).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Streams a shard set, one [`EpochIter`] per epoch.
pub struct Loader {
    set: Arc<ShardSet>,
    cfg: LoaderConfig,
    device: Device,
    pool: Arc<rayon::ThreadPool>,
    filter: Option<Arc<HashSet<String>>>,
    part: Option<(usize, usize)>,
    stats: Arc<StatsCounters>,
}

impl Loader {
    /// A loader over a validated `set`, delivering batches on `device`.
    pub fn new(set: ShardSet, cfg: LoaderConfig, device: Device) -> Result<Self> {
        if cfg.batch_size == 0 {
            return Err(DataError::Config { field: "batch_size", message: "must be at least 1".into() });
        }
        if cfg.prefetch == 0 {
            return Err(DataError::Config { field: "prefetch", message: "must be at least 1".into() });
        }
        let workers = match cfg.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("mcsfau-decode-{i}"))
            .build()
            .map_err(|e| DataError::Config { field: "workers", message: e.to_string() })?;
        Ok(Self {
            set: Arc::new(set),
            cfg,
            device,
            pool: Arc::new(pool),
            filter: None,
            part: None,
            stats: Arc::new(StatsCounters::new()),
        })
    }

    /// Keeps only rows whose `sample_id` is in `ids` (e.g. a manifest split).
    pub fn with_filter(mut self, ids: HashSet<String>) -> Self {
        self.filter = Some(Arc::new(ids));
        self
    }

    /// Makes this the loader of data-parallel rank `rank` of `world`: of
    /// every `world * batch_size` consecutive rows of the epoch's order it
    /// yields rows `rank * batch_size ..` (`batch_size` of them), so the
    /// ranks' slices are disjoint and together are the single-process epoch
    /// at batch size `world * batch_size`. A corrupt row is replaced by the
    /// rank's next row, so with corrupt rows a rank's slice ends a little
    /// early (the training loop ends the epoch for all ranks together).
    pub fn with_part(mut self, rank: usize, world: usize) -> Self {
        self.part = (world > 1 && rank < world).then_some((rank, world));
        self
    }

    /// The shard set.
    pub fn shards(&self) -> &ShardSet {
        &self.set
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.cfg
    }

    /// Decode threads in use.
    pub fn workers(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Counters since the loader was created.
    pub fn stats(&self) -> LoaderStats {
        self.stats.snapshot()
    }

    /// Rows one epoch visits (after the id filter; corrupt rows still count).
    /// Without a filter this reads only footers; with one, the id column.
    pub fn rows_per_epoch(&self) -> Result<usize> {
        let Some(filter) = &self.filter else { return Ok(self.set.num_rows()) };
        let mut n = 0;
        for reader in self.set.readers() {
            for batch in reader.read_all(&[col::SAMPLE_ID])? {
                let ids = Columns::new(reader.path(), &batch).strings(col::SAMPLE_ID)?;
                n += ids.iter().flatten().filter(|id| filter.contains(*id)).count();
            }
        }
        Ok(n)
    }

    /// Batches of one epoch, in the order fixed by `(seed, epoch)`.
    pub fn epoch(&self, epoch: u64) -> EpochIter {
        self.epoch_from(epoch, 0)
    }

    /// Like [`Loader::epoch`], but the first `skip` batches are assembled and
    /// discarded (never copied to the device): resuming mid-epoch sees the
    /// same batches an uninterrupted run would.
    pub fn epoch_from(&self, epoch: u64, skip: usize) -> EpochIter {
        let (raw_tx, raw_rx) = sync_channel(2);
        let (out_tx, out_rx) = sync_channel(self.cfg.prefetch);
        let reader = {
            let (set, cfg, filter, stats, part) =
                (self.set.clone(), self.cfg.clone(), self.filter.clone(), self.stats.clone(), self.part);
            std::thread::Builder::new()
                .name("mcsfau-read".into())
                .spawn(move || read_epoch(&set, &cfg, filter.as_deref(), epoch, part, &stats, &raw_tx))
        };
        let decoder = {
            let ctx = DecodeCtx {
                set: self.set.clone(),
                batch_size: self.cfg.batch_size,
                drop_last: self.cfg.drop_last,
                pin: self.device.is_cuda().then_some(self.device),
                pool: self.pool.clone(),
                stats: self.stats.clone(),
                skip,
            };
            std::thread::Builder::new()
                .name("mcsfau-assemble".into())
                .spawn(move || decode_epoch(&ctx, raw_rx, &out_tx))
        };
        let mut threads = Vec::new();
        let mut staged = None;
        for (t, name) in [(reader, "reader"), (decoder, "decoder")] {
            match t {
                Ok(h) => threads.push(h),
                Err(_) => staged = Some(Err(DataError::LoaderStopped { thread: name })),
            }
        }
        // A thread that could not start ends the epoch after its error.
        let done = staged.is_some();
        EpochIter { rx: Some(out_rx), staged, device: self.device, stats: self.stats.clone(), threads, done }
    }
}

enum OutMsg {
    Batch { images: Tensor, landmarks: Tensor, ids: Vec<String> },
    Failed(DataError),
    End,
}

struct DecodeCtx {
    set: Arc<ShardSet>,
    batch_size: usize,
    drop_last: bool,
    pin: Option<Device>,
    pool: Arc<rayon::ThreadPool>,
    stats: Arc<StatsCounters>,
    skip: usize,
}

/// Decoder thread: fills batches of `batch_size` good rows, in stream order.
fn decode_epoch(ctx: &DecodeCtx, rx: Receiver<RawMsg>, tx: &SyncSender<OutMsg>) {
    let side = ctx.set.crop_size().max(0) as usize;
    let b = ctx.batch_size;
    let mut pending: VecDeque<RawRow> = VecDeque::new();
    let mut upstream_done = false;
    let mut index = 0;
    loop {
        let mut buf = match HostBuffer::new(b, side, ctx.pin) {
            Ok(buf) => buf,
            Err(e) => {
                let _ = tx.send(OutMsg::Failed(DataError::torch("allocating a host batch")(e)));
                return;
            }
        };
        while buf.len() < b {
            while pending.len() < b - buf.len() && !upstream_done {
                match rx.recv() {
                    Ok(RawMsg::Rows(rows)) => pending.extend(rows),
                    Ok(RawMsg::End) => upstream_done = true,
                    Ok(RawMsg::Failed(e)) => {
                        let _ = tx.send(OutMsg::Failed(e));
                        return;
                    }
                    Err(RecvError) => {
                        let _ = tx.send(OutMsg::Failed(DataError::LoaderStopped { thread: "reader" }));
                        return;
                    }
                }
            }
            if pending.is_empty() {
                break;
            }
            let take = (b - buf.len()).min(pending.len());
            for (row, why) in buf.fill(pending.drain(..take).collect(), &ctx.pool) {
                ctx.stats.add_corrupt();
                let file = ctx.set.readers()[row.shard].path().display();
                tracing::warn!(%file, sample_id = %row.id, "skipping a row whose image does not decode: {why}");
            }
        }
        let n = buf.len();
        if n == 0 || (n < b && ctx.drop_last) {
            let _ = tx.send(OutMsg::End);
            return;
        }
        index += 1;
        if index <= ctx.skip {
            continue;
        }
        let msg = match buf.finish() {
            Ok((images, landmarks, ids)) => OutMsg::Batch { images, landmarks, ids },
            Err(e) => OutMsg::Failed(DataError::torch("assembling a host batch")(e)),
        };
        let failed = matches!(msg, OutMsg::Failed(_));
        if tx.send(msg).is_err() || failed {
            return;
        }
    }
}

/// The batches of one epoch. Dropping it stops the loader threads.
pub struct EpochIter {
    rx: Option<Receiver<OutMsg>>,
    staged: Option<Result<Batch>>,
    device: Device,
    stats: Arc<StatsCounters>,
    threads: Vec<JoinHandle<()>>,
    done: bool,
}

impl EpochIter {
    /// Turns a message into a device batch, starting its (non-blocking) copy.
    fn accept(&mut self, msg: std::result::Result<OutMsg, RecvError>) -> Option<Result<Batch>> {
        match msg {
            Ok(OutMsg::Batch { images, landmarks, ids }) => Some(self.to_device(images, landmarks, ids)),
            Ok(OutMsg::Failed(e)) => {
                self.done = true;
                Some(Err(e))
            }
            Ok(OutMsg::End) => {
                self.done = true;
                None
            }
            Err(RecvError) => {
                self.done = true;
                Some(Err(DataError::LoaderStopped { thread: "decoder" }))
            }
        }
    }

    fn to_device(&self, images: Tensor, landmarks: Tensor, ids: Vec<String>) -> Result<Batch> {
        let non_blocking = self.device.is_cuda();
        let images = images
            .f_to_device_(self.device, Kind::Uint8, non_blocking, false)
            .and_then(|t| t.f_permute([0, 3, 1, 2]))
            .map_err(DataError::torch("moving an image batch to the device"))?; // [B, 3, H, W], channels-last
        let landmarks = landmarks
            .f_to_device_(self.device, Kind::Float, non_blocking, false)
            .map_err(DataError::torch("moving a landmark batch to the device"))?; // [B, 49, 2]
        Ok(Batch { images, landmarks, ids })
    }
}

impl Iterator for EpochIter {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        let current = match self.staged.take() {
            Some(b) => b,
            None if self.done => return None,
            None => {
                let t0 = Instant::now();
                let msg = self.rx.as_ref()?.recv();
                self.stats.add_wait(t0.elapsed());
                self.accept(msg)?
            }
        };
        // Start the next batch's copy now, so it overlaps the caller's step.
        if !self.done && current.is_ok() {
            match self.rx.as_ref().map(Receiver::try_recv) {
                Some(Ok(msg)) => self.staged = self.accept(Ok(msg)),
                Some(Err(TryRecvError::Disconnected)) => self.staged = self.accept(Err(RecvError)),
                Some(Err(TryRecvError::Empty)) | None => {}
            }
        }
        if let Ok(b) = &current {
            self.stats.add_batch(b.len());
        }
        Some(current)
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        drop(self.rx.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
