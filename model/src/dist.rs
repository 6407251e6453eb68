//! Data-parallel pretraining: one process per device, gradients averaged
//! across processes every step by libtorch's own collective engine (c10d,
//! what `torch.distributed` runs on): NCCL between GPUs, Gloo on the CPU.
//!
//! * [`Launch`]: who this process is, from the variables `torchrun` sets
//!   (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`) or,
//!   failing those, from Slurm's (`SLURM_PROCID`, `SLURM_NTASKS`,
//!   `SLURM_LOCALID`, with `MASTER_ADDR` / `MASTER_PORT` from the job
//!   script). No variables: a single process, no collective at all.
//! * [`Group`]: the process group (a `c10d::TCPStore` rendezvous at
//!   `MASTER_ADDR:MASTER_PORT`, rank 0 serving it, and a Gloo or NCCL
//!   backend), with sum all-reduce and broadcast;
//! * [`Reducer`]: the gradient all-reduce overlapped with backward (c10d's
//!   DDP reducer); [`grad::average_gradients`]: the same after backward;
//! * [`norm::Norm`]: BatchNorm that is per process, frozen, or synchronised
//!   across processes (`model.batch_norm`).
//!
//! The C++ side is `model/csrc/dist.cpp`; docs/distributed.md has the
//! launch recipes and the scaling arithmetic.

pub mod grad;
mod group;
pub mod norm;
mod reducer;

use std::time::Duration;

pub use group::{Backend, DistError, Group};
pub use reducer::Reducer;

/// Where the ranks meet when `MASTER_PORT` is not set (torchrun's default).
pub const DEFAULT_PORT: u16 = 29500;

/// This process's place in a data-parallel job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Global rank, 0..world.
    pub rank: usize,
    /// Number of processes.
    pub world: usize,
    /// Rank on this machine: the CUDA device index.
    pub local_rank: usize,
    /// Host of rank 0's rendezvous store.
    pub master_addr: String,
    /// Its port.
    pub master_port: u16,
    /// Which launcher's variables were read (`torchrun` or `slurm`).
    pub launcher: &'static str,
}

impl Launch {
    /// Reads the process environment; see [`Launch::from_vars`].
    pub fn from_env() -> Result<Option<Self>, String> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// The launch described by `var`: torchrun's variables when `RANK` or
    /// `WORLD_SIZE` is set (a data-parallel run even at world size 1, which
    /// is how the all-reduce overhead is measured); else Slurm's when
    /// `SLURM_NTASKS` > 1; else `None` (one process, today's path).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let num = |name: &str| -> Result<Option<usize>, String> {
            match var(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(v) => v.trim().parse().map(Some).map_err(|_| format!("{name}={v:?} is not a whole number")),
            }
        };
        let port = || -> Result<u16, String> {
            match var("MASTER_PORT").filter(|v| !v.trim().is_empty()) {
                None => Ok(DEFAULT_PORT),
                Some(v) => v.trim().parse().map_err(|_| format!("MASTER_PORT={v:?} is not a port number")),
            }
        };
        let (rank, world, local, launcher) = if var("RANK").is_some() || var("WORLD_SIZE").is_some() {
            let rank = num("RANK")?.ok_or("WORLD_SIZE is set but RANK is not (launch with torchrun, or set both)")?;
            let world = num("WORLD_SIZE")?.ok_or("RANK is set but WORLD_SIZE is not")?;
            (rank, world, num("LOCAL_RANK")?.unwrap_or(0), "torchrun")
        } else {
            match num("SLURM_NTASKS")? {
                Some(n) if n > 1 => {
                    let rank = num("SLURM_PROCID")?.ok_or("SLURM_NTASKS > 1 but SLURM_PROCID is not set")?;
                    (rank, n, num("SLURM_LOCALID")?.unwrap_or(0), "slurm")
                }
                _ => return Ok(None),
            }
        };
        if world == 0 || rank >= world {
            return Err(format!("rank {rank} is not below the world size {world}"));
        }
        let master_addr = match var("MASTER_ADDR").filter(|v| !v.trim().is_empty()) {
            Some(a) => a.trim().to_string(),
            None if world == 1 => "127.0.0.1".to_string(),
            None => {
                return Err(format!(
                    "{launcher} launch with {world} processes but MASTER_ADDR is not set: export the host of rank 0 \
                     (under Slurm: MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1))"
                ))
            }
        };
        Ok(Some(Self { rank, world, local_rank: local, master_addr, master_port: port()?, launcher }))
    }

    /// Whether this process writes logs, plots and checkpoints.
    pub fn is_main(&self) -> bool {
        self.rank == 0
    }
}

/// How long a rendezvous or a collective may wait for the other ranks
/// before the job fails (torch's default for Gloo is 30 min; a dead peer
/// is noticed at once, this bounds a hung one).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn launch(pairs: &[(&str, &str)]) -> Result<Option<Launch>, String> {
        let env: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Launch::from_vars(|k| env.get(k).cloned())
    }

    #[test]
    fn torchrun_variables_win_over_slurm_and_default_the_port() {
        let l = launch(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "8"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "node7"),
            ("SLURM_NTASKS", "2"),
            ("SLURM_PROCID", "0"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((l.rank, l.world, l.local_rank, l.master_port), (3, 8, 1, DEFAULT_PORT));
        assert_eq!((l.master_addr.as_str(), l.launcher), ("node7", "torchrun"));
        assert!(!l.is_main());
    }

    #[test]
    fn slurm_needs_more_than_one_task_and_a_master_address() {
        assert_eq!(launch(&[]).unwrap(), None);
        assert_eq!(launch(&[("SLURM_NTASKS", "1"), ("SLURM_PROCID", "0")]).unwrap(), None);
        let err = launch(&[("SLURM_NTASKS", "4"), ("SLURM_PROCID", "2")]).unwrap_err();
        assert!(err.contains("MASTER_ADDR") && err.contains("scontrol"), "{err}");
        let l = launch(&[
            ("SLURM_NTASKS", "4"),
            ("SLURM_PROCID", "2"),
            ("SLURM_LOCALID", "0"),
            ("MASTER_ADDR", "gpu01"),
            ("MASTER_PORT", "29411"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((l.rank, l.world, l.master_port, l.launcher), (2, 4, 29411, "slurm"));
    }

    #[test]
    fn bad_values_are_named() {
        assert!(launch(&[("RANK", "x"), ("WORLD_SIZE", "2")]).unwrap_err().contains("RANK=\"x\""));
        assert!(launch(&[("RANK", "2"), ("WORLD_SIZE", "2")]).unwrap_err().contains("rank 2 is not below"));
        assert!(launch(&[("WORLD_SIZE", "2")]).unwrap_err().contains("RANK is not"));
        let world1 = launch(&[("RANK", "0"), ("WORLD_SIZE", "1")]).unwrap().unwrap();
        assert_eq!(world1.master_addr, "127.0.0.1", "torchrun --nproc-per-node 1 needs no address");
    }
}
