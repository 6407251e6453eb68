//! Progress reporting as a trait: libraries report, the binary draws
//! (indicatif lives in the `mcsfau` binary, never here).

/// Receives progress from long-running pipeline work. All methods default to
/// doing nothing, so `&NoProgress` can be passed where nobody watches.
pub trait Progress: Sync {
    /// A phase starts with `total` units of work (clips, files, rows).
    fn start(&self, _phase: &str, _total: u64) {}
    /// `n` more units are done.
    fn advance(&self, _n: u64) {}
    /// A free-form status line (frames/s, failures so far).
    fn message(&self, _msg: &str) {}
    /// The phase is over.
    fn finish(&self) {}
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {}
