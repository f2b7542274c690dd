//! Per-worker statistics, written by the worker, read by metric snapshots.
//!
//! Every field has exactly one writer (the worker that owns the struct), so updates are plain
//! `Relaxed` load + store, with no read-modify-write on the hot path; readers see values that
//! are at most a batch old. The struct sits in a 128-byte [`CachePadded`] slot of its worker
//! (see [`crate::alloc::layout`]), so one worker's counters never share a prefetch pair of lines
//! with another's. Histograms sit behind a mutex that the owner only *tries* per batch (a reader
//! holding it sends the batch's samples to a worker-local spill instead; see `worker::record`),
//! so a metrics scrape never stalls a worker.
//!
//! [`CachePadded`]: crate::alloc::layout::CachePadded

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::metrics::LatencyHistogram;

/// Single-writer counter: `Relaxed` load + store.
#[derive(Debug, Default)]
pub(crate) struct Cell64(AtomicU64);

impl Cell64 {
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0
            .store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }
    #[inline]
    pub(crate) fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Depth samples of one class's queue, taken at each of the worker's scheduling decisions.
#[derive(Debug)]
pub(crate) struct DepthCells {
    pub(crate) min: Cell64,
    pub(crate) max: Cell64,
    pub(crate) sum: Cell64,
    pub(crate) samples: Cell64,
}

impl Default for DepthCells {
    fn default() -> Self {
        let min = Cell64::default();
        min.set(u64::MAX);
        Self {
            min,
            max: Cell64::default(),
            sum: Cell64::default(),
            samples: Cell64::default(),
        }
    }
}

impl DepthCells {
    #[inline]
    pub(crate) fn sample(&self, depth: usize) {
        let d = depth as u64;
        if d < self.min.get() {
            self.min.set(d);
        }
        if d > self.max.get() {
            self.max.set(d);
        }
        self.sum.add(d);
        self.samples.add(1);
    }
}

/// A worker's counters.
#[derive(Debug, Default)]
pub(crate) struct WorkerStats {
    pub(crate) items: [Cell64; 3],
    pub(crate) batches: [Cell64; 3],
    pub(crate) busy_ns: Cell64,
    pub(crate) steals_local: Cell64,
    pub(crate) steals_remote: Cell64,
    pub(crate) stolen_items_local: Cell64,
    pub(crate) stolen_items_remote: Cell64,
    pub(crate) parks: Cell64,
    pub(crate) handler_panics: Cell64,
    pub(crate) depth: [DepthCells; 3],
    pub(crate) batch_size: [AtomicUsize; 3],
}

/// A worker's latency histograms.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorkerHistograms {
    /// Accepted → batch start, per item (ns).
    pub(crate) queue_wait: LatencyHistogram,
    /// Batch start → batch end, per batch (ns).
    pub(crate) service: LatencyHistogram,
    /// Accepted → batch end ("queue-to-done"), per item (ns).
    pub(crate) sojourn: LatencyHistogram,
    /// Items per batch.
    pub(crate) batch_items: LatencyHistogram,
}

impl WorkerHistograms {
    /// Adds `other`'s samples (same bounds on both sides: merging cannot fail).
    pub(crate) fn merge(&mut self, other: &WorkerHistograms) {
        let _ = self.queue_wait.merge(&other.queue_wait);
        let _ = self.service.merge(&other.service);
        let _ = self.sojourn.merge(&other.sojourn);
        let _ = self.batch_items.merge(&other.batch_items);
    }
}
