//! The per-shard hop-cost model behind the latency budget.
//!
//! Before each hop a spread predicts its cost from the frontier size `f` and the edges it will
//! scan `e` (the sum of the frontier's capped out-degrees, read from the hot nodes) with a linear
//! model `ns ≈ θ₀ + θ₁·f + θ₂·e`, fitted online per shard by recursive least squares with a
//! forgetting factor (0.99: the model follows a drifting machine within a few hundred hops).
//! After the hop it feeds the measured time back. The fit sits behind a lock taken with
//! `try_lock` (a spread never waits for it: a contended update is skipped); predictions read the
//! coefficients from atomics.

use std::sync::atomic::Ordering;

use super::sync::{AtomicU64, Mutex};

/// Forgetting factor of the fit.
const LAMBDA: f64 = 0.99;
/// Observations before predictions are trusted (and their errors recorded).
pub(crate) const WARMUP: u64 = 16;
/// Hops shorter than this are not scored for prediction error: at a few microseconds one cache
/// miss or the clock read itself is a large share of the hop, and no budget is decided there.
pub(crate) const MIN_SCORED_NS: f64 = 5_000.0;
/// Feature scales, so the three coefficients have similar magnitudes.
const F_SCALE: f64 = 1.0 / 64.0;
const E_SCALE: f64 = 1.0 / 512.0;

struct Rls {
    theta: [f64; 3],
    p: [[f64; 3]; 3],
}

impl Rls {
    fn new() -> Self {
        let mut p = [[0.0; 3]; 3];
        for (i, row) in p.iter_mut().enumerate() {
            row[i] = 1e12;
        }
        Self { theta: [0.0; 3], p }
    }

    fn update(&mut self, x: [f64; 3], y: f64) {
        let mut px = [0.0; 3];
        for (i, v) in px.iter_mut().enumerate() {
            *v = (0..3).map(|j| self.p[i][j] * x[j]).sum();
        }
        let denom = LAMBDA + (0..3).map(|i| x[i] * px[i]).sum::<f64>();
        if !denom.is_finite() || denom <= 0.0 {
            return;
        }
        let err = y - (0..3).map(|i| self.theta[i] * x[i]).sum::<f64>();
        for (t, p) in self.theta.iter_mut().zip(px) {
            *t += p / denom * err;
        }
        for (row, pi) in self.p.iter_mut().zip(px) {
            for (v, pj) in row.iter_mut().zip(px) {
                *v = (*v - pi * pj / denom) / LAMBDA;
            }
        }
    }
}

/// The online hop-cost model of one shard (see the module docs).
pub(crate) struct CostModel {
    theta: [AtomicU64; 3],
    fit: Mutex<Rls>,
    observations: AtomicU64,
}

fn features(frontier: usize, edges: u64) -> [f64; 3] {
    [1.0, frontier as f64 * F_SCALE, edges as f64 * E_SCALE]
}

impl CostModel {
    pub(crate) fn new() -> Self {
        Self {
            theta: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            fit: Mutex::new(Rls::new()),
            observations: AtomicU64::new(0),
        }
    }

    /// Whether the model has seen enough hops to be trusted.
    pub(crate) fn warmed(&self) -> bool {
        self.observations.load(Ordering::Relaxed) >= WARMUP
    }

    /// Predicted nanoseconds of a hop over `frontier` nodes scanning `edges` edges (0 until
    /// warmed: an untrained model never cuts a spread).
    pub(crate) fn predict(&self, frontier: usize, edges: u64) -> f64 {
        if !self.warmed() {
            return 0.0;
        }
        let x = features(frontier, edges);
        let y: f64 = (0..3)
            .map(|i| f64::from_bits(self.theta[i].load(Ordering::Relaxed)) * x[i])
            .sum();
        y.max(0.0)
    }

    /// Feeds one measured hop.
    pub(crate) fn observe(&self, frontier: usize, edges: u64, ns: f64) {
        if let Ok(mut fit) = self.fit.try_lock() {
            fit.update(features(frontier, edges), ns);
            for (a, t) in self.theta.iter().zip(fit.theta) {
                a.store(t.to_bits(), Ordering::Relaxed);
            }
            self.observations.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn learns_a_linear_cost() {
        let m = CostModel::new();
        assert_eq!(m.predict(10, 100), 0.0, "untrained models predict nothing");
        for i in 0..200u64 {
            let f = (i % 13 + 1) as usize;
            let e = (i * 37) % 900 + 5;
            m.observe(f, e, 500.0 + 30.0 * f as f64 + 4.0 * e as f64);
        }
        let p = m.predict(7, 400);
        let truth = 500.0 + 210.0 + 1600.0;
        assert!((p - truth).abs() / truth < 0.01, "predicted {p}, truth {truth}");
    }
}
