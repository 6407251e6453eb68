//! `--landmarks fan:WEIGHTS|dlib|dataset|synthetic`: choosing a backend, and a
//! pool of backends shared by the worker threads.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Condvar, Mutex};

use crate::error::{PipelineError, Result};
use crate::landmarks::dlib::{DetectorConfig, DlibBackend, DlibConfig};
use crate::landmarks::fan::FanBackend;
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

    /// Whether one backend instance serves every worker rather than one per
    /// worker thread: the FAN network (batched; on CPU libtorch already uses
    /// every core inside one forward pass).
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

/// Builds one backend for `spec` on `device` (`cpu` or `cuda`).
pub fn create(spec: &LandmarkSpec, device: &str) -> Result<Box<dyn LandmarkBackend>> {
    match spec {
        LandmarkSpec::Synthetic => Ok(Box::new(GivenBackend::new(GivenKind::Synthetic))),
        LandmarkSpec::Dataset => Ok(Box::new(GivenBackend::new(GivenKind::Dataset))),
        LandmarkSpec::Dlib => Ok(Box::new(DlibBackend::new(&DlibConfig::default())?)),
        LandmarkSpec::Fan { weights } => {
            let device = match device {
                "cpu" => tch::Device::Cpu,
                "cuda" if tch::Cuda::is_available() => tch::Device::Cuda(0),
                "cuda" => {
                    return Err(PipelineError::Config(
                        "--device cuda: libtorch sees no CUDA device (see `mcsfau doctor`)".into(),
                    ))
                }
                other => return Err(PipelineError::Config(format!("unknown device `{other}`, expected cpu or cuda"))),
            };
            Ok(Box::new(FanBackend::load(weights, device, DetectorConfig::default())?))
        }
    }
}

/// Backends shared by worker threads: a thread takes a free one for a batch
/// and gives it back.
pub struct BackendPool {
    slots: Mutex<Vec<Box<dyn LandmarkBackend>>>,
    freed: Condvar,
    name: &'static str,
}

impl BackendPool {
    /// A pool of `n` backends for `spec` (one when the spec is shared).
    pub fn create(spec: &LandmarkSpec, device: &str, n: usize) -> Result<Self> {
        let n = if spec.shared() { 1 } else { n.max(1) };
        if device != "cpu" && !matches!(spec, LandmarkSpec::Fan { .. }) {
            tracing::warn!(device, "only the fan backend uses --device; {spec:?} runs on the CPU");
        }
        if *spec == LandmarkSpec::Dlib {
            // One shape predictor (~100 MB, ~1 s to load) shared by every
            // worker; each worker gets its own HOG detectors.
            let first = DlibBackend::new(&DlibConfig::default())?;
            let predictor = first.predictor().clone();
            let detector = DlibConfig::default().detector;
            let mut backends: Vec<Box<dyn LandmarkBackend>> = vec![Box::new(first)];
            for _ in 1..n {
                backends.push(Box::new(DlibBackend::with_predictor(predictor.clone(), detector)));
            }
            return Ok(Self::new(backends));
        }
        let backends = (0..n).map(|_| create(spec, device)).collect::<Result<Vec<_>>>()?;
        Ok(Self::new(backends))
    }

    /// A pool of the given backends (at least one).
    pub fn new(backends: Vec<Box<dyn LandmarkBackend>>) -> Self {
        let name = backends.first().map_or("none", |b| b.name());
        Self { slots: Mutex::new(backends), freed: Condvar::new(), name }
    }

    /// The backends' name (the `landmark_source` column).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs `f` with a free backend, waiting for one if all are busy.
    pub fn with<R>(&self, f: impl FnOnce(&mut dyn LandmarkBackend) -> R) -> R {
        let mut backend = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(b) = slots.pop() {
                    break b;
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

    #[test]
    fn the_pool_hands_out_every_backend_across_threads() {
        let pool = BackendPool::create(&LandmarkSpec::Synthetic, "cpu", 2).unwrap();
        assert_eq!(pool.name(), "synthetic");
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        assert_eq!(pool.with(|b| b.detect(&[]).unwrap().len()), 0);
                    }
                });
            }
        });
        assert_eq!(pool.slots.lock().unwrap().len(), 2);
    }
}
