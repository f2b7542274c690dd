//! Per-thread recording: latency and service-time histograms per op, outcomes, the driver's
//! own lag, and one-second windows for the time series.
//!
//! Histograms are `hdrhistogram` with three significant digits and **auto-resize**, so no value
//! is ever clamped or refused; the largest value is also kept exactly beside each histogram
//! (HDR reports a bucket's upper edge).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::scenario::OpKind;
use super::target::Outcome;

/// Significant digits of every histogram (0.1 % resolution).
pub const SIGFIG: u8 = 3;

/// A histogram that never drops a sample and keeps its exact maximum.
#[derive(Debug, Clone)]
pub struct Hist {
    inner: Histogram<u64>,
    max: u64,
    /// Samples hdrhistogram refused (none can be with auto-resize; counted, never hidden).
    pub dropped: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Self::new()
    }
}

impl Hist {
    /// An empty auto-resizing histogram.
    pub fn new() -> Self {
        let inner = match Histogram::new(SIGFIG) {
            Ok(h) => h,
            // SIGFIG is a constant within hdrhistogram's 0..=5.
            Err(e) => unreachable!("constant sigfig refused: {e:?}"),
        };
        Hist {
            inner,
            max: 0,
            dropped: 0,
        }
    }

    /// Records one value (nanoseconds).
    #[inline]
    pub fn record(&mut self, v: u64) {
        if self.inner.record(v).is_err() {
            self.dropped += 1;
        }
        self.max = self.max.max(v);
    }

    /// Adds all of `other`.
    pub fn merge(&mut self, other: &Hist) {
        if self.inner.add(&other.inner).is_err() {
            self.dropped += other.inner.len();
        }
        self.max = self.max.max(other.max);
        self.dropped += other.dropped;
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Value at quantile `q` in 0..=1 (0 when empty); the exact maximum at 1.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.inner.is_empty() {
            0
        } else if q >= 1.0 {
            self.max
        } else {
            self.inner.value_at_quantile(q).min(self.max)
        }
    }

    /// Exact largest sample.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean.
    pub fn mean(&self) -> f64 {
        if self.inner.is_empty() {
            0.0
        } else {
            self.inner.mean()
        }
    }
}

/// Everything recorded for one kind of op.
#[derive(Debug, Clone, Default)]
pub struct OpRecord {
    /// Latency from the intended start to completion (ns).
    pub latency: Hist,
    /// Service time: from the actual start to completion (ns).
    pub service: Hist,
    /// Ops served.
    pub ok: u64,
    /// Ops refused by admission control.
    pub rejected: u64,
    /// Ops failed, by error kind.
    pub errors: BTreeMap<String, u64>,
}

impl OpRecord {
    /// Adds `other` into this record.
    pub fn merge(&mut self, other: &OpRecord) {
        self.latency.merge(&other.latency);
        self.service.merge(&other.service);
        self.ok += other.ok;
        self.rejected += other.rejected;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }

    /// Ops issued (served, rejected or failed).
    pub fn count(&self) -> u64 {
        self.ok + self.rejected + self.errors.values().sum::<u64>()
    }
}

/// Ops of one kind completed in a [`Window`].
#[derive(Debug, Clone, Default)]
pub struct OpWindow {
    /// Ops completed.
    pub ops: u64,
    /// Their latencies (from intended start).
    pub latency: Hist,
}

/// Ops of one second of the measured run (by completion time), for the time series. A client
/// sends its window when the second rolls and, while the second goes, every
/// [`PUBLISH_NS`](super::driver::PUBLISH_NS): the collector adds windows of the same second up.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Seconds since measurement started.
    pub second: u64,
    /// Ops completed in this second.
    pub ops: u64,
    /// Of which not served (errors + rejections).
    pub failed: u64,
    /// Their latencies.
    pub latency: Hist,
    /// Per op kind, indexed by [`OpKind::index`].
    pub by_op: [OpWindow; 5],
}

impl Window {
    /// An empty window of `second`.
    pub fn of_second(second: u64) -> Self {
        Window {
            second,
            ..Window::default()
        }
    }

    /// Records one op.
    #[inline]
    pub fn record(&mut self, kind: OpKind, ok: bool, latency_ns: u64) {
        self.ops += 1;
        if !ok {
            self.failed += 1;
        }
        self.latency.record(latency_ns);
        let w = &mut self.by_op[kind.index()];
        w.ops += 1;
        w.latency.record(latency_ns);
    }

    /// Adds `other` (of the same second) into this window.
    pub fn merge(&mut self, other: &Window) {
        self.ops += other.ops;
        self.failed += other.failed;
        self.latency.merge(&other.latency);
        for (a, b) in self.by_op.iter_mut().zip(&other.by_op) {
            a.ops += b.ops;
            a.latency.merge(&b.latency);
        }
    }
}

/// What one client thread recorded.
#[derive(Debug, Clone, Default)]
pub struct ThreadRecord {
    /// Per op kind, indexed by [`OpKind::index`].
    pub ops: [OpRecord; 5],
    /// The driver's own lateness: actual start − max(intended start, previous op's end) (ns).
    /// With a healthy driver this is near zero; large values mean the harness itself was late.
    pub own_lag: Hist,
    /// Sum of `own_lag` (ns).
    pub own_lag_sum_ns: u64,
    /// Actual start − intended start (ns), whoever caused it.
    pub start_lag: Hist,
    /// Scheduled ops never issued because the run's drain deadline passed.
    pub not_issued: u64,
}

impl ThreadRecord {
    /// Records one measured op.
    #[inline]
    pub fn record(&mut self, kind: OpKind, outcome: Outcome, latency_ns: u64, service_ns: u64) {
        let r = &mut self.ops[kind.index()];
        r.latency.record(latency_ns);
        r.service.record(service_ns);
        match outcome {
            Outcome::Ok => r.ok += 1,
            Outcome::Rejected => r.rejected += 1,
            Outcome::Err(kind) => *r.errors.entry(kind.to_string()).or_default() += 1,
        }
    }

    /// Adds `other` into this record.
    pub fn merge(&mut self, other: &ThreadRecord) {
        for (a, b) in self.ops.iter_mut().zip(&other.ops) {
            a.merge(b);
        }
        self.own_lag.merge(&other.own_lag);
        self.own_lag_sum_ns += other.own_lag_sum_ns;
        self.start_lag.merge(&other.start_lag);
        self.not_issued += other.not_issued;
    }

    /// All kinds merged.
    pub fn overall(&self) -> OpRecord {
        let mut all = OpRecord::default();
        for r in &self.ops {
            all.merge(r);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_drops_and_keeps_the_exact_max() {
        let mut h = Hist::new();
        for v in [1u64, 10, 1_000_000, 7 * 3_600 * 1_000_000_000 + 123, 42] {
            h.record(v);
        }
        assert_eq!(h.len(), 5);
        assert_eq!(h.dropped, 0);
        assert_eq!(h.max(), 7 * 3_600 * 1_000_000_000 + 123);
        assert_eq!(h.quantile(1.0), h.max());
        let mut other = Hist::new();
        other.record(0);
        h.merge(&other);
        assert_eq!(h.len(), 6);
        assert_eq!(h.quantile(0.0), 0);
    }

    #[test]
    fn outcomes_are_counted_apart() {
        let mut t = ThreadRecord::default();
        t.record(OpKind::Recall, Outcome::Ok, 10, 5);
        t.record(OpKind::Recall, Outcome::Rejected, 10, 5);
        t.record(OpKind::Recall, Outcome::Err("timeout"), 10, 5);
        t.record(OpKind::Observe, Outcome::Ok, 10, 5);
        let r = &t.ops[OpKind::Recall.index()];
        assert_eq!((r.ok, r.rejected, r.errors["timeout"], r.count()), (1, 1, 1, 3));
        assert_eq!(t.overall().count(), 4);
    }
}
