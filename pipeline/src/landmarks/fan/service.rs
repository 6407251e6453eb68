//! One FAN inference service per process: a single thread owns the network
//! and its device; decode/detect workers send it crops through a bounded
//! channel and wait for their heatmaps.
//!
//! The service takes every request already queued (waiting up to
//! `max_wait`, 10 ms by default, for more while the batch is not full) and runs
//! them as one forward pass of up to `batch` crops, so a batch holds crops
//! of several clips and the GPU sees full batches even at 1 fps, where a
//! VoxCeleb2 clip gives ~8 frames. Workers do everything else on their own
//! cores (HOG detection, crop cutting, heatmap decoding) and hold no lock
//! while they do: a worker blocked on its reply is not a rayon worker
//! waiting for a lock another job of its own thread holds (rayon #592).

use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tch::{nn, Device};

use super::{check_inputs, cut_crops, decode_all, read_config, run_net, Fan, Precision};
use crate::error::{PipelineError, Result};
use crate::landmarks::dlib::{DetectedFace, DetectorConfig, FaceDetector};
use crate::landmarks::{Face68, FrameRef, LandmarkBackend};

/// Crops per forward pass by default: sized for a GPU (2DFAN4 needs ~40 MB
/// of activations per crop; 64 crops fit any current card).
pub const DEFAULT_SERVICE_BATCH: usize = 64;

/// How the batches of a run were filled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchStats {
    /// Forward passes.
    pub batches: u64,
    /// Crops through the network.
    pub crops: u64,
    /// Largest batch, crops.
    pub max_crops: u64,
    /// Most clips in one batch.
    pub max_clips: u64,
    /// Batches holding crops of more than one clip.
    pub multi_clip_batches: u64,
    /// Seconds the network ran (forward passes, transfers included).
    pub seconds: f64,
}

struct Job {
    clip: u64,
    input: Vec<f32>,
    n: usize,
    reply: SyncSender<Result<Vec<f32>>>,
}

/// The service: owns the thread; [`FanService::client`] makes backends.
pub struct FanService {
    tx: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Mutex<BatchStats>>,
    detector: DetectorConfig,
}

/// Default longest wait for more requests while a batch is not full.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_millis(10);

impl FanService {
    /// Loads `weights` on `device` in the service thread and starts it;
    /// fails (naming the file) if the weights do not load. A forward pass
    /// takes up to `batch` crops, waiting up to `max_wait` to fill them.
    pub fn start(
        weights: &Path,
        device: Device,
        precision: Precision,
        (batch, max_wait): (usize, Duration),
        detector: DetectorConfig,
    ) -> Result<Self> {
        let cfg = read_config(weights)?;
        let batch = batch.max(1);
        // Room for one full batch of requests waiting while one runs.
        let (tx, rx) = mpsc::sync_channel::<Job>(batch);
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<()>>(1);
        let stats = Arc::new(Mutex::new(BatchStats::default()));
        let path = weights.to_path_buf();
        let shared = stats.clone();
        let thread = std::thread::Builder::new()
            .name("fan-service".into())
            .spawn(move || {
                let mut vs = nn::VarStore::new(device);
                let net = Fan::new(&vs.root(), &cfg);
                let loaded = vs.load(&path).map_err(|e| PipelineError::LandmarkModel {
                    path: path.clone(),
                    message: format!("cannot load FAN weights ({cfg:?}): {e}"),
                });
                if let Err(e) = loaded {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
                vs.freeze();
                match precision {
                    Precision::F32 => {}
                    Precision::F16 => vs.half(),
                    Precision::Bf16 => vs.bfloat16(),
                }
                tracing::info!(?cfg, ?device, ?precision, batch, path = %path.display(), "FAN service started");
                let _ = ready_tx.send(Ok(()));
                serve(&net, device, precision, (batch, max_wait), &rx, &shared);
            })
            .map_err(|e| PipelineError::Config(format!("cannot start the FAN service thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self { tx: Some(tx), thread: Some(thread), stats, detector }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(PipelineError::Config("the FAN service thread stopped while loading its weights".into()))
            }
        }
    }

    /// A backend for one worker: its own HOG detectors, the shared network.
    pub fn client(&self) -> FanClient {
        FanClient { tx: self.tx.clone(), detector: FaceDetector::new(self.detector), clip: 0 }
    }

    /// How the batches were filled so far.
    pub fn stats(&self) -> BatchStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for FanService {
    fn drop(&mut self) {
        self.tx = None; // the thread ends when the last sender is gone
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    net: &Fan,
    device: Device,
    precision: Precision,
    (batch, max_wait): (usize, Duration),
    rx: &Receiver<Job>,
    stats: &Mutex<BatchStats>,
) {
    let plane = 3 * super::CROP * super::CROP;
    let per_face = super::FAN_POINTS as usize * super::HEATMAP * super::HEATMAP;
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut crops = jobs[0].n;
        let deadline = Instant::now() + max_wait;
        while crops < batch {
            let job = match rx.try_recv() {
                Ok(j) => j,
                Err(_) => match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(j) => j,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                },
            };
            crops += job.n;
            jobs.push(job);
        }
        let started = Instant::now();
        let input: Vec<f32> = jobs.iter().flat_map(|j| j.input.iter().copied()).collect();
        // A run of requests larger than `batch` goes through in chunks.
        let mut heatmaps = Vec::with_capacity(crops * per_face);
        let mut passes = 0u64;
        for chunk in input.chunks(batch * plane) {
            let n = chunk.len() / plane;
            let out =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_net(net, device, precision, chunk, n)));
            match out {
                Ok(h) => heatmaps.extend(h),
                Err(_) => break, // answered below: the shortfall is an error for each job
            }
            passes += 1;
        }
        {
            let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
            let mut clips: Vec<u64> = jobs.iter().map(|j| j.clip).collect();
            clips.sort_unstable();
            clips.dedup();
            s.batches += passes;
            s.crops += crops as u64;
            s.max_crops = s.max_crops.max(crops.min(batch) as u64);
            s.max_clips = s.max_clips.max(clips.len() as u64);
            s.multi_clip_batches += u64::from(clips.len() > 1);
            s.seconds += started.elapsed().as_secs_f64();
        }
        let mut at = 0;
        for job in jobs {
            let len = job.n * per_face;
            let answer = if heatmaps.len() >= at + len {
                Ok(heatmaps[at..at + len].to_vec())
            } else {
                Err(PipelineError::Landmarks {
                    backend: "fan",
                    frame: 0,
                    message: "the FAN forward pass failed (libtorch error; see the log)".into(),
                })
            };
            at += len;
            let _ = job.reply.send(answer);
        }
    }
}

/// A worker's FAN backend: detection, crop cutting and decoding on the
/// worker's cores, the network in the [`FanService`].
pub struct FanClient {
    tx: Option<SyncSender<Job>>,
    detector: FaceDetector,
    clip: u64,
}

impl FanClient {
    /// Landmarks in caller-given boxes: crops cut here, the network in the service.
    fn points(&self, frames: &[FrameRef<'_>], boxes: &[[f32; 4]]) -> Result<Vec<Face68>> {
        check_inputs(frames, boxes)?;
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        let (input, transforms) = cut_crops(frames, boxes);
        let heatmaps = self.heatmaps(input, frames.len())?;
        Ok(decode_all(&heatmaps, &transforms, boxes))
    }

    fn heatmaps(&self, input: Vec<f32>, n: usize) -> Result<Vec<f32>> {
        let gone = || PipelineError::Config("the FAN service has stopped".into());
        let tx = self.tx.as_ref().ok_or_else(gone)?;
        let (reply, answer) = mpsc::sync_channel(1);
        tx.send(Job { clip: self.clip, input, n, reply }).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

impl LandmarkBackend for FanClient {
    fn name(&self) -> &'static str {
        "fan"
    }

    fn detect(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Option<Face68>>> {
        super::largest_then_points(&self.detector, frames, |f, b| self.points(f, b))
    }

    fn set_clip(&mut self, clip: u64) {
        self.clip = clip;
    }

    fn has_detector(&self) -> bool {
        true
    }

    fn find_faces(&mut self, frames: &[FrameRef<'_>]) -> Result<Vec<Vec<DetectedFace>>> {
        self.detector.detect_all(frames)
    }

    fn find_faces_upsampled(&mut self, frames: &[FrameRef<'_>], upsample: u32) -> Result<Vec<Vec<DetectedFace>>> {
        self.detector.detect_all_upsampled(frames, upsample)
    }

    fn points_in_boxes(&mut self, frames: &[FrameRef<'_>], boxes: &[[f32; 4]]) -> Result<Vec<Face68>> {
        self.points(frames, boxes)
    }
}
