//! Monotonic counters and gauges.
//!
//! Each is one `AtomicU64`/`AtomicI64` in its own 128-byte [`CachePadded`] slot, so a counter that
//! one thread bumps does not share a prefetch pair of lines with its neighbour (see
//! [`crate::alloc::layout`] for where 128 comes from). Updates are `Relaxed`: a counter orders
//! nothing, and a reader only needs an eventually-exact value.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::alloc::layout::CachePadded;

/// A monotonic counter (Prometheus `counter`).
#[derive(Debug, Default)]
pub struct Counter(CachePadded<AtomicU64>);

impl Counter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (Prometheus `gauge`).
#[derive(Debug, Default)]
pub struct Gauge(CachePadded<AtomicI64>);

impl Gauge {
    /// A gauge at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Adds `d` (negative to subtract).
    #[inline]
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_counts_across_threads() {
        let c = Counter::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        c.inc();
                    }
                });
            }
        });
        assert_eq!(c.get(), 4000);
    }

    #[test]
    fn gauge_goes_both_ways() {
        let g = Gauge::new();
        g.add(5);
        g.add(-7);
        assert_eq!(g.get(), -2);
        g.set(10);
        assert_eq!(g.get(), 10);
    }
}
