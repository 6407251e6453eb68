//! [`Norm`]: the model's BatchNorm layers, whose training-mode statistics
//! are per process (`local`), synchronised across the ranks of a
//! data-parallel job (`sync`, as `torch.nn.SyncBatchNorm`), or not used at
//! all (`frozen`: the running statistics normalise, as in evaluation, and
//! are never updated; the affine weights still train).
//!
//! The mode and the group are set per thread by the training run
//! ([`enter`]); every other caller (probe, detect, tests) gets plain
//! BatchNorm. Variable names are those of `nn::BatchNorm`, so checkpoints do
//! not depend on the mode.

use std::cell::RefCell;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use super::{DistError, Group};

/// How BatchNorm computes its statistics while training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchNormMode {
    /// The process's own batch (one process: the whole batch).
    Local,
    /// The batches of every rank together (one process: same as local).
    #[default]
    Sync,
    /// Running statistics, never updated (frozen).
    Frozen,
}

impl std::str::FromStr for BatchNormMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(Self::Local),
            "sync" => Ok(Self::Sync),
            "frozen" => Ok(Self::Frozen),
            _ => Err(format!("BatchNorm mode {s:?}: expected sync, local or frozen")),
        }
    }
}

/// torch's BatchNorm defaults (tch keeps its copy private).
const MOMENTUM: f64 = 0.1;
const EPS: f64 = 1e-5;

struct Ctx {
    mode: BatchNormMode,
    group: Option<Arc<Group>>,
    error: Option<DistError>,
}

thread_local! {
    static CTX: RefCell<Option<Ctx>> = const { RefCell::new(None) };
}

/// While the returned guard lives, every [`Norm`] on this thread trains in
/// `mode`, synchronising over `group` (when it has more than one rank).
pub fn enter(mode: BatchNormMode, group: Option<Arc<Group>>) -> ModeGuard {
    CTX.with(|c| *c.borrow_mut() = Some(Ctx { mode, group, error: None }));
    ModeGuard(())
}

/// Restores plain BatchNorm on drop (see [`enter`]).
#[derive(Debug)]
pub struct ModeGuard(());

impl Drop for ModeGuard {
    fn drop(&mut self) {
        CTX.with(|c| c.borrow_mut().take());
    }
}

/// The first collective failure inside a synchronised forward since the
/// last call (the forward went on with local statistics; the step must
/// fail with this error).
pub fn take_error() -> Option<DistError> {
    CTX.with(|c| c.borrow_mut().as_mut().and_then(|c| c.error.take()))
}

/// `MCSFAU_TEST_SYNC_BN_ONE_RANK`: run the synchronised kernel at world size
/// 1 too (where it is otherwise replaced by libtorch's, which rounds
/// differently), so a test can compare data-parallel runs with one process
/// through the same arithmetic.
fn sync_at_world_one() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("MCSFAU_TEST_SYNC_BN_ONE_RANK").is_some())
}

/// A BatchNorm layer (see the module docs).
#[derive(Debug)]
pub struct Norm {
    bn: nn::BatchNorm,
}

impl Norm {
    /// BatchNorm2d with torch's initialisation (weight 1, bias 0).
    pub fn new2d(p: nn::Path, c: i64) -> Self {
        Self { bn: nn::batch_norm2d(p, c, config()) }
    }

    /// BatchNorm1d with torch's initialisation.
    pub fn new1d(p: nn::Path, c: i64) -> Self {
        Self { bn: nn::batch_norm1d(p, c, config()) }
    }
}

fn config() -> nn::BatchNormConfig {
    nn::BatchNormConfig { ws_init: nn::Init::Const(1.0), momentum: MOMENTUM, eps: EPS, ..Default::default() }
}

impl nn::ModuleT for Norm {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        if !train {
            return self.bn.forward_t(xs, false);
        }
        let (mode, group) = CTX.with(|c| match &*c.borrow() {
            Some(c) => (c.mode, c.group.clone()),
            None => (BatchNormMode::Local, None),
        });
        match (mode, group) {
            (BatchNormMode::Frozen, _) => self.bn.forward_t(xs, false),
            (BatchNormMode::Sync, Some(g)) if g.world() > 1 || sync_at_world_one() => {
                let b = &self.bn;
                match g.sync_batch_norm(
                    xs,
                    b.ws.as_ref(),
                    b.bs.as_ref(),
                    Some(&b.running_mean),
                    Some(&b.running_var),
                    MOMENTUM,
                    EPS,
                ) {
                    Ok(y) => y,
                    Err(e) => {
                        // Keep the first failure for the step to report; the
                        // rest of this forward is thrown away.
                        CTX.with(|c| {
                            if let Some(c) = c.borrow_mut().as_mut() {
                                c.error.get_or_insert(e);
                            }
                        });
                        self.bn.forward_t(xs, true)
                    }
                }
            }
            _ => self.bn.forward_t(xs, true),
        }
    }
}
