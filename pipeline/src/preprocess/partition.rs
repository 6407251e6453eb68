//! Fan-out: which clips one of N parallel runs takes.
//!
//! Clip `c` belongs to part `fnv1a64(c.rel_path) % count`. FNV-1a is fixed
//! (unlike Rust's randomized `HashMap` hasher), so every machine, every run
//! and every resumed run agrees on the split, and the N parts are disjoint
//! and together cover every clip.

use serde::{Deserialize, Serialize};

use crate::error::{PipelineError, Result};

/// This run's part of the clip list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// Zero-based part index, `< count`.
    pub index: usize,
    /// Number of parts.
    pub count: usize,
}

impl Default for Partition {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

/// 64-bit FNV-1a of `bytes` (the stable hash of the fan-out).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Partition {
    /// Whether the clip at `rel_path` is in this part.
    pub fn contains(&self, rel_path: &str) -> bool {
        fnv1a64(rel_path.as_bytes()) % self.count as u64 == self.index as u64
    }

    /// A short tag for file names: `p0003of0008`.
    pub fn tag(&self) -> String {
        format!("p{:04}of{:04}", self.index, self.count)
    }

    /// Resolves the part from the flags, else from the scheduler's
    /// environment (`env` looks a variable up):
    /// 1. `--shard-index` / `--shard-count`;
    /// 2. Slurm job arrays: `SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN`
    ///    (arrays may start at 1), count `SLURM_ARRAY_TASK_COUNT`;
    /// 3. Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX`, count from
    ///    `--shard-count` or `MCSFAU_SHARD_COUNT` (Kubernetes does not export
    ///    the completion count);
    /// 4. otherwise the whole dataset (0 of 1).
    pub fn resolve(index: Option<usize>, count: Option<usize>, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let num = |name: &str| -> Result<Option<usize>> {
            match env(name) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .map(Some)
                    .map_err(|_| PipelineError::Config(format!("{name}={v:?} is not a non-negative integer"))),
            }
        };
        let count_env = num("MCSFAU_SHARD_COUNT")?;
        let (index, count, source) = if let Some(i) = index {
            (i, count.or(count_env), "--shard-index")
        } else if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let i = id.checked_sub(min).ok_or_else(|| {
                PipelineError::Config(format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"))
            })?;
            (i, count.or(num("SLURM_ARRAY_TASK_COUNT")?).or(count_env), "SLURM_ARRAY_TASK_ID")
        } else if let Some(i) = num("JOB_COMPLETION_INDEX")? {
            (i, count.or(count_env), "JOB_COMPLETION_INDEX")
        } else {
            (0, Some(count.unwrap_or(1)), "default")
        };
        let count = count.ok_or_else(|| {
            PipelineError::Config(format!(
                "part index {index} (from {source}) needs a part count: pass --shard-count or set MCSFAU_SHARD_COUNT"
            ))
        })?;
        if count == 0 || index >= count {
            return Err(PipelineError::Config(format!(
                "part index {index} (from {source}) must be below the part count {count}"
            )));
        }
        Ok(Self { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        // From the FNV reference test suite (Fowler/Noll/Vo).
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn parts_are_disjoint_and_cover_everything() {
        let paths: Vec<String> = (0..500).map(|i| format!("dev/mp4/id{i:05}/x/00001.mp4")).collect();
        let parts: Vec<Partition> = (0..7).map(|index| Partition { index, count: 7 }).collect();
        for p in &paths {
            assert_eq!(parts.iter().filter(|q| q.contains(p)).count(), 1);
        }
        assert!(parts.iter().all(|q| paths.iter().filter(|p| q.contains(p)).count() > 40));
    }

    #[test]
    fn resolve_reads_flags_slurm_and_kubernetes() {
        let none = env(&[]);
        assert_eq!(Partition::resolve(None, None, &none).unwrap(), Partition { index: 0, count: 1 });
        assert_eq!(Partition::resolve(Some(2), Some(4), &none).unwrap(), Partition { index: 2, count: 4 });
        let slurm =
            env(&[("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "8")]);
        assert_eq!(Partition::resolve(None, None, &slurm).unwrap(), Partition { index: 4, count: 8 });
        let k8s = env(&[("JOB_COMPLETION_INDEX", "3"), ("MCSFAU_SHARD_COUNT", "16")]);
        assert_eq!(Partition::resolve(None, None, &k8s).unwrap(), Partition { index: 3, count: 16 });
        let e = Partition::resolve(None, None, env(&[("JOB_COMPLETION_INDEX", "3")])).unwrap_err().to_string();
        assert!(e.contains("--shard-count"), "{e}");
        assert!(Partition::resolve(Some(4), Some(4), &none).is_err());
        assert!(Partition::resolve(None, None, env(&[("SLURM_ARRAY_TASK_ID", "x")])).is_err());
    }
}
