//! [`FrontierBatcher`]: how many frontier nodes one work item carries, adapted to measured
//! latency.
//!
//! `exec::BatchController` sizes drains by *backlog*; a hop's work items are sized by *latency*
//! instead: an item should take about `target` (long enough to amortise dispatch, short enough
//! that a high-priority task never waits long behind it and that the hop's items spread over the
//! workers). The batcher fits `ns ≈ a + b·nodes` to the items it is told about (least squares
//! over exponentially weighted sums, so it follows drift) and sets
//! `size = (target − a) / b`, clamped to `[min, max]`. Two dampers keep it from oscillating: a
//! change needs the new size to differ by more than the hysteresis band (25 %), and at least
//! `settle` observations since the last change. On a steady workload the first change uses the
//! rough per-node cost of the first items, the second the fitted intercept and slope, and the
//! size then stays put.

/// Tuning of a [`FrontierBatcher`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatcherConfig {
    /// Smallest item (nodes).
    pub min: usize,
    /// Largest item (nodes).
    pub max: usize,
    /// Target item latency, nanoseconds. Default 50 µs.
    pub target_ns: f64,
    /// Relative change ignored. Default 0.25.
    pub hysteresis: f64,
    /// Observations between changes. Default 4.
    pub settle: u32,
    /// Weight kept by old observations per new one. Default 0.9.
    pub forget: f64,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        Self {
            min: 16,
            max: 65_536,
            target_ns: 50_000.0,
            hysteresis: 0.25,
            settle: 4,
            forget: 0.9,
        }
    }
}

/// Chooses the frontier nodes per work item from measured item latencies. See the module docs.
#[derive(Debug, Clone)]
pub struct FrontierBatcher {
    config: BatcherConfig,
    size: usize,
    since_change: u32,
    changes: u64,
    // Exponentially weighted sums for the least-squares fit of ns on nodes.
    sw: f64,
    sx: f64,
    sy: f64,
    sxx: f64,
    sxy: f64,
}

impl FrontierBatcher {
    /// A batcher starting at `config.min` nodes per item.
    pub fn new(config: BatcherConfig) -> Self {
        let min = config.min.max(1);
        Self {
            config: BatcherConfig {
                min,
                max: config.max.max(min),
                ..config
            },
            size: min,
            since_change: 0,
            changes: 0,
            sw: 0.0,
            sx: 0.0,
            sy: 0.0,
            sxx: 0.0,
            sxy: 0.0,
        }
    }

    /// Nodes per work item now.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many times the size changed.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Feeds one work item: `nodes` frontier nodes took `ns` nanoseconds. Returns the size to use
    /// next.
    pub fn observe(&mut self, nodes: usize, ns: f64) -> usize {
        if nodes == 0 || !ns.is_finite() || ns < 0.0 {
            return self.size;
        }
        let (x, f) = (nodes as f64, self.config.forget.clamp(0.0, 1.0));
        self.sw = f * self.sw + 1.0;
        self.sx = f * self.sx + x;
        self.sy = f * self.sy + ns;
        self.sxx = f * self.sxx + x * x;
        self.sxy = f * self.sxy + x * ns;
        self.since_change += 1;
        if self.since_change < self.config.settle {
            return self.size;
        }
        let var = self.sw * self.sxx - self.sx * self.sx;
        // With items of one size only, the intercept is unknown: use the mean cost per node.
        let (a, b) = if var > 1e-9 * self.sw * self.sxx {
            let b = (self.sw * self.sxy - self.sx * self.sy) / var;
            (((self.sy - b * self.sx) / self.sw).max(0.0), b)
        } else {
            (0.0, self.sy / self.sx)
        };
        if b <= 0.0 || !b.is_finite() {
            return self.size;
        }
        let ideal = ((self.config.target_ns - a) / b).max(1.0);
        let target = (ideal.round() as usize).clamp(self.config.min, self.config.max);
        let band = (self.config.hysteresis * self.size as f64).max(1.0);
        if (target.abs_diff(self.size) as f64) > band {
            self.size = target;
            self.changes += 1;
            self.since_change = 0;
        }
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic item: fixed dispatch overhead plus a per-node cost, with ±5 % deterministic
    /// jitter.
    fn latency(nodes: usize, i: u64, overhead: f64, per_node: f64) -> f64 {
        let jitter = 1.0 + 0.05 * (((i * 7919) % 21) as f64 / 10.0 - 1.0);
        (overhead + per_node * nodes as f64) * jitter
    }

    fn run(overhead: f64, per_node: f64) -> (FrontierBatcher, Vec<usize>) {
        let mut b = FrontierBatcher::new(BatcherConfig::default());
        let mut sizes = Vec::new();
        for i in 0..400 {
            let n = b.size();
            b.observe(n, latency(n, i, overhead, per_node));
            sizes.push(b.size());
        }
        (b, sizes)
    }

    #[test]
    fn converges_within_three_adjustments_and_stays() {
        for (overhead, per_node) in [(5_000.0, 40.0), (20_000.0, 200.0), (1_000.0, 5.0)] {
            let (b, sizes) = run(overhead, per_node);
            let ideal = (50_000.0 - overhead) / per_node;
            assert!(
                b.changes() <= 3,
                "{} changes for {overhead}/{per_node}",
                b.changes()
            );
            let last = *sizes.last().unwrap_or(&0) as f64;
            let want = ideal.clamp(16.0, 65_536.0);
            assert!(
                (last - want).abs() / want < 0.25,
                "settled at {last}, ideal {want}"
            );
            // No oscillation: the second half of the run never changes size.
            let tail = &sizes[200..];
            assert!(tail.windows(2).all(|w| w[0] == w[1]), "size changed late");
        }
    }

    #[test]
    fn bad_samples_are_ignored() {
        let mut b = FrontierBatcher::new(BatcherConfig::default());
        for _ in 0..10 {
            b.observe(0, 1000.0);
            b.observe(10, f64::NAN);
        }
        assert_eq!(b.size(), 16);
        assert_eq!(b.changes(), 0);
    }
}
