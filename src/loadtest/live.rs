//! Live figures of a running load test, shared by the driver, the progress display and the
//! metrics endpoint.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam::utils::CachePadded;

use crate::metrics::PrometheusWriter;

/// Counters the driver updates (in batches, so the hot path does not contend) and the
/// collector refreshes once a second.
#[derive(Debug, Default)]
pub struct LiveStats {
    ops: CachePadded<AtomicU64>,
    last_second_ops: AtomicU64,
    last_second_p99_ns: AtomicU64,
    running: AtomicBool,
}

impl LiveStats {
    /// All zero, not running.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` completed ops (warmup included).
    #[inline]
    pub fn add_ops(&self, n: u64) {
        self.ops.fetch_add(n, Ordering::Relaxed);
    }

    /// Ops completed so far (lags the truth by at most one batch per thread).
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    /// Sets the figures of the last complete second.
    pub fn set_last_second(&self, ops: u64, p99_ns: u64) {
        self.last_second_ops.store(ops, Ordering::Relaxed);
        self.last_second_p99_ns.store(p99_ns, Ordering::Relaxed);
    }

    /// Marks the run as going or finished.
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Relaxed);
    }

    /// The harness's own metrics in Prometheus text.
    pub fn prometheus_text(&self) -> String {
        let mut w = PrometheusWriter::new();
        // The names are constants that satisfy Prometheus's grammar (checked by the test below).
        let _ = w.counter(
            "locus_loadtest_ops_total",
            "Operations completed by the load test, warmup included.",
            &[],
            self.ops(),
        );
        let _ = w.gauge(
            "locus_loadtest_last_second_ops",
            "Operations completed in the last complete second.",
            &[],
            self.last_second_ops.load(Ordering::Relaxed) as f64,
        );
        let _ = w.gauge(
            "locus_loadtest_last_second_p99_seconds",
            "P99 latency (from intended start) in the last complete second.",
            &[],
            self.last_second_p99_ns.load(Ordering::Relaxed) as f64 * 1e-9,
        );
        let _ = w.gauge(
            "locus_loadtest_running",
            "1 while a load test is running.",
            &[],
            if self.running.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            },
        );
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn exposition_has_every_family() {
        let l = super::LiveStats::new();
        l.add_ops(5);
        l.set_last_second(5, 2_000);
        let t = l.prometheus_text();
        for name in [
            "locus_loadtest_ops_total 5",
            "locus_loadtest_last_second_ops 5",
            "locus_loadtest_last_second_p99_seconds 0.000002",
            "locus_loadtest_running 0",
        ] {
            assert!(t.contains(name), "{name} missing from\n{t}");
        }
    }
}
