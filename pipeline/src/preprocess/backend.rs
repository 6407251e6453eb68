//! `--landmarks fan:WEIGHTS|dlib|dataset|synthetic`: choosing a backend, and a
//! pool of backends shared by the worker threads.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::error::{PipelineError, Result};
use crate::landmarks::dlib::{DetectorConfig, DlibBackend, DlibConfig};
use crate::landmarks::fan::service::{BatchStats, FanService, DEFAULT_MAX_WAIT, DEFAULT_SERVICE_BATCH};
use crate::landmarks::fan::{FanBackend, Precision};
use crate::landmarks::given::{GivenBackend, GivenKind};
use crate::landmarks::LandmarkBackend;

/// A landmark backend choice, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LandmarkSpec {
    /// 2D-FAN with weights from a safetensors file (`fan:WEIGHTS`).
    Fan {
        /// The safetensors file (`scripts/convert_fan.py` writes it).
        weights: PathBuf,
    },
    /// dlib's HOG detector + 68-point shape predictor.
    Dlib,
    /// Points the dataset ships (the sidecar files next to the clips).
    Dataset,
    /// The exact points of `mcsfau synth` (its sidecar files).
    Synthetic,
}

impl LandmarkSpec {
    /// Whether preprocess must read the clip's sidecar and pass its points.
    pub fn needs_given(&self) -> bool {
        matches!(self, Self::Dataset | Self::Synthetic)
    }

    /// Whether one network serves every worker (the FAN inference service)
    /// rather than one backend per worker thread.
    pub fn shared(&self) -> bool {
        matches!(self, Self::Fan { .. })
    }
}

impl FromStr for LandmarkSpec {
    type Err = PipelineError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "dlib" => Ok(Self::Dlib),
            "dataset" => Ok(Self::Dataset),
            "synthetic" => Ok(Self::Synthetic),
            _ => match s.strip_prefix("fan:") {
                Some(w) if !w.is_empty() => Ok(Self::Fan { weights: PathBuf::from(w) }),
                _ => Err(PipelineError::Config(format!(
                    "unknown landmark backend `{s}`, expected fan:WEIGHTS.safetensors, dlib, dataset or synthetic"
                ))),
            },
        }
    }
}

/// The device of `--device` (`cpu` or `cuda`), refusing `cuda` where
/// libtorch sees none.
pub fn torch_device(device: &str) -> Result<tch::Device> {
    match device {
        "cpu" => Ok(tch::Device::Cpu),
        "auto" => Ok(tch::Device::cuda_if_available()),
        "cuda" if tch::Cuda::is_available() => Ok(tch::Device::Cuda(0)),
        "cuda" => {
            Err(PipelineError::Config("--device cuda: libtorch sees no CUDA device (see `mcsfau doctor`)".into()))
        }
        other => Err(PipelineError::Config(format!("unknown device `{other}`, expected auto, cpu or cuda"))),
    }
}

/// Builds one backend for `spec` on `device` (`cpu` or `cuda`).
pub fn create(spec: &LandmarkSpec, device: &str) -> Result<Box<dyn LandmarkBackend>> {
    match spec {
        LandmarkSpec::Synthetic => Ok(Box::new(GivenBackend::new(GivenKind::Synthetic))),
        LandmarkSpec::Dataset => Ok(Box::new(GivenBackend::new(GivenKind::Dataset))),
        LandmarkSpec::Dlib => Ok(Box::new(DlibBackend::new(&DlibConfig::default())?)),
        LandmarkSpec::Fan { weights } => {
            Ok(Box::new(FanBackend::load(weights, torch_device(device)?, DetectorConfig::default())?))
        }
    }
}

/// How a pool makes one more backend when every one is busy.
type Make = Box<dyn Fn() -> Box<dyn LandmarkBackend> + Send + Sync>;

/// Backends used by worker threads: a thread takes a free one for a batch
/// and gives it back. No lock is held while a backend runs, and a pool
/// with a maker never waits: when every backend is busy (a rayon worker
/// that picked up a second unit while waiting inside the first) it makes
/// one more, so no thread ever waits for a backend its own stack holds.
pub struct BackendPool {
    slots: Mutex<Vec<Box<dyn LandmarkBackend>>>,
    freed: Condvar,
    make: Option<Make>,
    name: &'static str,
    service: Option<Arc<FanService>>,
}

/// Options of the pool's FAN service.
#[derive(Debug, Clone, Copy)]
pub struct ServiceOptions {
    /// Crops per forward pass.
    pub batch: usize,
    /// Weights and activations.
    pub precision: Precision,
    /// Longest wait for more crops while a batch is not full.
    pub max_wait: Duration,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self { batch: DEFAULT_SERVICE_BATCH, precision: Precision::F32, max_wait: DEFAULT_MAX_WAIT }
    }
}

impl BackendPool {
    /// A pool of `n` backends for `spec`. `fan` starts one inference
    /// service (one network on `device`) and gives each worker a client.
    pub fn create(spec: &LandmarkSpec, device: &str, n: usize) -> Result<Self> {
        Self::create_with(spec, device, n, ServiceOptions::default())
    }

    /// [`BackendPool::create`] with the FAN service's batch and precision.
    pub fn create_with(spec: &LandmarkSpec, device: &str, n: usize, service: ServiceOptions) -> Result<Self> {
        let n = n.max(1);
        if device == "cuda" && !matches!(spec, LandmarkSpec::Fan { .. }) {
            tracing::warn!(device, "only the fan backend uses --device; {spec:?} runs on the CPU");
        }
        let make: Make = match spec {
            LandmarkSpec::Dlib => {
                // One shape predictor (~100 MB, ~1 s to load) shared by every
                // worker; each worker gets its own HOG detectors.
                let predictor = DlibBackend::new(&DlibConfig::default())?.predictor().clone();
                let detector = DlibConfig::default().detector;
                Box::new(move || Box::new(DlibBackend::with_predictor(predictor.clone(), detector)))
            }
            LandmarkSpec::Fan { weights } => {
                let dev = torch_device(device)?;
                if dev == tch::Device::Cpu && service.precision != Precision::F32 {
                    tracing::warn!(precision = ?service.precision, "reduced precision on the CPU is slow; it is meant for CUDA");
                }
                let s = Arc::new(FanService::start(
                    weights,
                    dev,
                    service.precision,
                    (service.batch, service.max_wait),
                    DetectorConfig::default(),
                )?);
                let pool = Self::with_maker(n, {
                    let s = s.clone();
                    Box::new(move || Box::new(s.client()))
                });
                return Ok(Self { service: Some(s), ..pool });
            }
            LandmarkSpec::Synthetic => Box::new(|| Box::new(GivenBackend::new(GivenKind::Synthetic))),
            LandmarkSpec::Dataset => Box::new(|| Box::new(GivenBackend::new(GivenKind::Dataset))),
        };
        Ok(Self::with_maker(n, make))
    }

    fn with_maker(n: usize, make: Make) -> Self {
        let backends: Vec<_> = (0..n).map(|_| make()).collect();
        Self { make: Some(make), ..Self::new(backends) }
    }

    /// A pool of the given backends (at least one); a thread waits when
    /// every one is busy.
    pub fn new(backends: Vec<Box<dyn LandmarkBackend>>) -> Self {
        let name = backends.first().map_or("none", |b| b.name());
        Self { slots: Mutex::new(backends), freed: Condvar::new(), make: None, name, service: None }
    }

    /// The backends' name (the `landmark_source` column).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How the FAN service filled its batches (`None` for other backends).
    pub fn batch_stats(&self) -> Option<BatchStats> {
        self.service.as_ref().map(|s| s.stats())
    }

    /// Runs `f` with a free backend (made, or waited for, if all are busy).
    pub fn with<R>(&self, f: impl FnOnce(&mut dyn LandmarkBackend) -> R) -> R {
        let mut backend = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(b) = slots.pop() {
                    break b;
                }
                if let Some(make) = &self.make {
                    break make();
                }
                slots = self.freed.wait(slots).unwrap_or_else(|p| p.into_inner());
            }
        };
        let out = f(backend.as_mut());
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).push(backend);
        self.freed.notify_one();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_list_the_choices() {
        assert_eq!("dlib".parse::<LandmarkSpec>().unwrap(), LandmarkSpec::Dlib);
        assert_eq!(
            "fan:w/2dfan4.safetensors".parse::<LandmarkSpec>().unwrap(),
            LandmarkSpec::Fan { weights: "w/2dfan4.safetensors".into() }
        );
        let e = "fan".parse::<LandmarkSpec>().unwrap_err().to_string();
        assert!(e.contains("fan:WEIGHTS") && e.contains("synthetic"), "{e}");
        assert!(LandmarkSpec::Synthetic.needs_given() && !LandmarkSpec::Dlib.needs_given());
    }

    fn hammer(pool: &BackendPool) {
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        assert_eq!(pool.with(|b| b.detect(&[]).unwrap().len()), 0);
                    }
                });
            }
        });
    }

    #[test]
    fn a_fixed_pool_hands_out_every_backend_across_threads() {
        let pool = BackendPool::new(vec![
            Box::new(GivenBackend::new(GivenKind::Synthetic)),
            Box::new(GivenBackend::new(GivenKind::Synthetic)),
        ]);
        assert_eq!(pool.name(), "synthetic");
        hammer(&pool);
        assert_eq!(pool.slots.lock().unwrap().len(), 2, "threads waited, none was made");
    }

    #[test]
    fn a_pool_with_a_maker_never_waits_and_a_nested_call_gets_its_own_backend() {
        let pool = BackendPool::create(&LandmarkSpec::Synthetic, "cpu", 1).unwrap();
        hammer(&pool);
        let n = pool.slots.lock().unwrap().len();
        assert!((1..=4).contains(&n), "at most one per concurrent user: {n}");
        // A call inside a call (a rayon worker that picked up a second unit
        // while inside the first) would wait forever on a fixed pool of one.
        let depth = pool.with(|_| pool.with(|_| pool.with(|b| b.detect(&[]).map(|v| v.len()))));
        assert_eq!(depth.unwrap(), 0);
    }
}
