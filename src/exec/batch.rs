//! The adaptive batch-size controller.
//!
//! A worker drains up to `size` items of a class at once. Large batches amortise per-batch costs
//! (a timestamp, a handler call, a cache warm-up) and raise throughput; small batches keep a
//! high-priority item from waiting behind a long batch. The controller picks `size` from the
//! backlog the worker sees at each drain:
//!
//! ```text
//! ewma    <- alpha * backlog + (1 - alpha) * ewma          (smooth the noisy backlog)
//! target  <- clamp(round(ewma), min_batch, max_batch)
//! if |target - size| > max(1, hysteresis * size)           (ignore small wobble)
//!    and now - last_change >= min_interval                 (at most one change per interval)
//! then size <- clamp(target, size / 2, size * 2)            (at most a doubling or halving)
//! ```
//!
//! Three dampers — the EWMA, the hysteresis band and the minimum interval — plus the step limit
//! keep the size from oscillating when the backlog alternates between empty and full. The
//! controller never waits for a batch to fill: a worker takes `min(size, available)` items, so
//! a lone item under light load runs at once; `min_batch` is only the floor of `size`.

use std::time::{Duration, Instant};

use serde::Serialize;

/// Tuning of the [`BatchController`]. The defaults are guesses to be refined with the
/// `exec_batch` bench.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BatchControllerConfig {
    /// EWMA weight of the newest backlog sample, in (0, 1]. Default 0.2: a step change in
    /// load reaches 90% of its effect in about 10 drains.
    pub alpha: f64,
    /// Minimum time between two size changes. Default 1 ms: many drains at high load, so the
    /// EWMA has settled before the next change.
    pub min_interval: Duration,
    /// Relative change of the target that is ignored, in [0, 1). Default 0.25.
    pub hysteresis: f64,
}

impl Default for BatchControllerConfig {
    fn default() -> Self {
        Self {
            alpha: 0.2,
            min_interval: Duration::from_millis(1),
            hysteresis: 0.25,
        }
    }
}

/// Chooses the batch size of one worker's class. See the module docs.
#[derive(Debug, Clone)]
pub struct BatchController {
    min: usize,
    max: usize,
    size: usize,
    ewma: f64,
    last_change: Option<Instant>,
    changes: u64,
    config: BatchControllerConfig,
}

impl BatchController {
    /// A controller between `min_batch` and `max_batch` (both at least 1, `min <= max`; the
    /// executor's config checks this), starting at `min_batch`.
    pub fn new(min_batch: usize, max_batch: usize, config: BatchControllerConfig) -> Self {
        let min = min_batch.max(1);
        let max = max_batch.max(min);
        Self {
            min,
            max,
            size: min,
            ewma: min as f64,
            last_change: None,
            changes: 0,
            config,
        }
    }

    /// The current batch size.
    #[inline]
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many times the size changed.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Feeds the backlog seen at a drain (items waiting, including those about to be taken) at
    /// time `now`; returns the batch size to use for this drain.
    pub fn observe(&mut self, backlog: usize, now: Instant) -> usize {
        let alpha = self.config.alpha.clamp(f64::MIN_POSITIVE, 1.0);
        self.ewma = alpha * backlog as f64 + (1.0 - alpha) * self.ewma;
        let target = (self.ewma.round() as usize).clamp(self.min, self.max);
        let band = (self.config.hysteresis.clamp(0.0, 0.99) * self.size as f64).max(1.0);
        let due = self
            .last_change
            .is_none_or(|t| now.saturating_duration_since(t) >= self.config.min_interval);
        if (target.abs_diff(self.size) as f64) > band && due {
            let next = target.clamp((self.size / 2).max(self.min), (self.size * 2).min(self.max));
            if next != self.size {
                self.size = next;
                self.last_change = Some(now);
                self.changes += 1;
            }
        }
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn ctl(min: usize, max: usize) -> BatchController {
        BatchController::new(min, max, BatchControllerConfig::default())
    }

    #[test]
    fn light_load_stays_at_min_batch() {
        let mut c = ctl(4, 512);
        let t0 = Instant::now();
        for i in 0..1000 {
            assert_eq!(c.observe(i % 2, t0 + MS * i as u32), 4);
        }
        assert_eq!(c.changes(), 0);
    }

    #[test]
    fn sustained_backlog_converges_within_bounds_by_bounded_steps() {
        let mut c = ctl(4, 512);
        let t0 = Instant::now();
        let mut prev = c.size();
        for i in 1..=200u32 {
            let s = c.observe(10_000, t0 + MS * i);
            assert!(s <= prev * 2 && s >= prev / 2, "step {prev} -> {s}");
            assert!((4..=512).contains(&s));
            prev = s;
        }
        assert_eq!(c.size(), 512);
        // Load drops: the size comes back down to the floor.
        for i in 201..=600u32 {
            c.observe(0, t0 + MS * i);
        }
        assert_eq!(c.size(), 4);
    }

    #[test]
    fn at_most_one_change_per_min_interval() {
        let mut c = ctl(1, 1024);
        let t0 = Instant::now();
        // 10 000 drains within 0.99 ms: one change at most.
        for i in 0..10_000u32 {
            c.observe(1000, t0 + Duration::from_nanos(99) * i);
        }
        assert_eq!(c.changes(), 1);
        assert_eq!(c.size(), 2);
    }

    #[test]
    fn alternating_backlog_does_not_oscillate() {
        let mut c = ctl(1, 1000);
        let t0 = Instant::now();
        // Backlog alternates empty / 1000 at every drain, one drain per interval.
        for i in 0..2000u32 {
            c.observe(if i % 2 == 0 { 1000 } else { 0 }, t0 + MS * i);
        }
        let settled = c.changes();
        let size = c.size();
        for i in 2000..4000u32 {
            c.observe(if i % 2 == 0 { 1000 } else { 0 }, t0 + MS * i);
        }
        assert_eq!(c.changes(), settled, "size kept changing under periodic load");
        assert!((400..=600).contains(&size), "settled at {size}");
        assert!(settled <= 12, "{settled} changes to settle");
    }

    #[test]
    fn degenerate_bounds_are_repaired() {
        let mut c = ctl(0, 0);
        assert_eq!(c.observe(100, Instant::now()), 1);
    }
}
