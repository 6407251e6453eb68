//! Loader statistics: throughput, skipped rows, and the time the consumer
//! waited for data (the training loop turns it into a data-wait fraction).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Counters shared by the loader threads and the consumer.
#[derive(Debug)]
pub(crate) struct StatsCounters {
    start: Instant,
    images: AtomicU64,
    batches: AtomicU64,
    corrupt_rows: AtomicU64,
    filtered_rows: AtomicU64,
    wait_nanos: AtomicU64,
}

impl StatsCounters {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            images: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            corrupt_rows: AtomicU64::new(0),
            filtered_rows: AtomicU64::new(0),
            wait_nanos: AtomicU64::new(0),
        }
    }

    pub(crate) fn add_batch(&self, images: usize) {
        self.images.fetch_add(images as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_corrupt(&self) {
        self.corrupt_rows.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_filtered(&self, n: u64) {
        self.filtered_rows.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_wait(&self, d: Duration) {
        self.wait_nanos.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> LoaderStats {
        LoaderStats {
            elapsed_s: self.start.elapsed().as_secs_f64(),
            images: self.images.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            corrupt_rows: self.corrupt_rows.load(Ordering::Relaxed),
            filtered_rows: self.filtered_rows.load(Ordering::Relaxed),
            wait_s: self.wait_nanos.load(Ordering::Relaxed) as f64 * 1e-9,
        }
    }
}

/// A snapshot of the loader's counters since it was created (all epochs).
/// Subtract two snapshots ([`LoaderStats::since`]) for an interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoaderStats {
    /// Seconds since the loader was created (or length of the interval).
    pub elapsed_s: f64,
    /// Images handed to the consumer.
    pub images: u64,
    /// Batches handed to the consumer.
    pub batches: u64,
    /// Rows skipped because their JPEG did not decode to a `crop_size` RGB image.
    pub corrupt_rows: u64,
    /// Rows skipped by the sample-id filter (manifest).
    pub filtered_rows: u64,
    /// Seconds the consumer spent blocked waiting for a batch.
    pub wait_s: f64,
}

impl LoaderStats {
    /// Images delivered per second of wall time.
    pub fn images_per_s(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.images as f64 / self.elapsed_s
        } else {
            0.0
        }
    }

    /// Share of wall time the consumer spent waiting for data, 0 to 1.
    pub fn wait_fraction(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            (self.wait_s / self.elapsed_s).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The interval from `earlier` to `self`.
    pub fn since(&self, earlier: &LoaderStats) -> LoaderStats {
        LoaderStats {
            elapsed_s: self.elapsed_s - earlier.elapsed_s,
            images: self.images - earlier.images,
            batches: self.batches - earlier.batches,
            corrupt_rows: self.corrupt_rows - earlier.corrupt_rows,
            filtered_rows: self.filtered_rows - earlier.filtered_rows,
            wait_s: self.wait_s - earlier.wait_s,
        }
    }
}
