//! Per-shard spread metrics, exported through [`crate::metrics`].

use serde::Serialize;

use crate::metrics::{Counter, MetricsError, PrometheusWriter};

/// Counters of one shard's spreads (each a padded atomic; see [`crate::metrics::Counter`]).
#[derive(Debug, Default)]
pub struct SpreadMetrics {
    /// Spreads (single-shard `spread` calls and cross-shard hop requests with seeds).
    pub spreads: Counter,
    /// Hops run.
    pub hops: Counter,
    /// Nodes that received activation.
    pub nodes_touched: Counter,
    /// Edges followed.
    pub edges_scanned: Counter,
    /// Contributions addressed to nodes of other shards (sent in batches).
    pub remote_contributions: Counter,
    /// Spreads cut short by their latency budget.
    pub truncations: Counter,
    /// Scratch acquisitions served by a pooled scratch ([`ScratchPool`](super::ScratchPool)).
    pub scratch_hits: Counter,
    /// Scratch acquisitions that had to create one.
    pub scratch_misses: Counter,
    /// Hops of at least 5 µs whose cost was predicted by a warmed model (shorter hops are not
    /// scored: a cache miss or the clock read dominates them, and no budget is decided there).
    pub predictions: Counter,
    /// … whose |predicted − actual| / actual was ≤ 10 %.
    pub predicted_within_10pct: Counter,
    /// … ≤ 20 %.
    pub predicted_within_20pct: Counter,
    /// … ≤ 50 %.
    pub predicted_within_50pct: Counter,
}

/// A copy of [`SpreadMetrics`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpreadMetricsSnapshot {
    /// See [`SpreadMetrics::spreads`].
    pub spreads: u64,
    /// See [`SpreadMetrics::hops`].
    pub hops: u64,
    /// See [`SpreadMetrics::nodes_touched`].
    pub nodes_touched: u64,
    /// See [`SpreadMetrics::edges_scanned`].
    pub edges_scanned: u64,
    /// See [`SpreadMetrics::remote_contributions`].
    pub remote_contributions: u64,
    /// See [`SpreadMetrics::truncations`].
    pub truncations: u64,
    /// See [`SpreadMetrics::scratch_hits`].
    pub scratch_hits: u64,
    /// See [`SpreadMetrics::scratch_misses`].
    pub scratch_misses: u64,
    /// See [`SpreadMetrics::predictions`].
    pub predictions: u64,
    /// See [`SpreadMetrics::predicted_within_10pct`].
    pub predicted_within_10pct: u64,
    /// See [`SpreadMetrics::predicted_within_20pct`].
    pub predicted_within_20pct: u64,
    /// See [`SpreadMetrics::predicted_within_50pct`].
    pub predicted_within_50pct: u64,
}

impl SpreadMetricsSnapshot {
    /// Scratch pool hit rate (1 when nothing was acquired).
    pub fn pool_hit_rate(&self) -> f64 {
        let all = self.scratch_hits + self.scratch_misses;
        if all == 0 {
            1.0
        } else {
            self.scratch_hits as f64 / all as f64
        }
    }

    /// Share of predicted hops within 20 % of their measured cost (1 when none).
    pub fn prediction_within_20pct(&self) -> f64 {
        if self.predictions == 0 {
            1.0
        } else {
            self.predicted_within_20pct as f64 / self.predictions as f64
        }
    }
}

impl SpreadMetrics {
    /// Records one predicted hop.
    pub(crate) fn record_prediction(&self, predicted_ns: f64, actual_ns: f64) {
        if actual_ns <= 0.0 {
            return;
        }
        let err = (predicted_ns - actual_ns).abs() / actual_ns;
        self.predictions.inc();
        if err <= 0.1 {
            self.predicted_within_10pct.inc();
        }
        if err <= 0.2 {
            self.predicted_within_20pct.inc();
        }
        if err <= 0.5 {
            self.predicted_within_50pct.inc();
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> SpreadMetricsSnapshot {
        SpreadMetricsSnapshot {
            spreads: self.spreads.get(),
            hops: self.hops.get(),
            nodes_touched: self.nodes_touched.get(),
            edges_scanned: self.edges_scanned.get(),
            remote_contributions: self.remote_contributions.get(),
            truncations: self.truncations.get(),
            scratch_hits: self.scratch_hits.get(),
            scratch_misses: self.scratch_misses.get(),
            predictions: self.predictions.get(),
            predicted_within_10pct: self.predicted_within_10pct.get(),
            predicted_within_20pct: self.predicted_within_20pct.get(),
            predicted_within_50pct: self.predicted_within_50pct.get(),
        }
    }

    /// Writes the counters as Prometheus samples labelled `shard`. Families of several shards
    /// must be written together by the caller (write all shards' `spreads`, then `hops`, …):
    /// this writes one shard's samples, so call it per shard into separate writers or use
    /// [`write_prometheus_all`].
    ///
    /// # Errors
    /// [`MetricsError::InvalidName`] (never for these fixed names).
    pub fn write_prometheus(&self, w: &mut PrometheusWriter, shard: &str) -> Result<(), MetricsError> {
        write_prometheus_all(w, &[(shard, self)])
    }
}

/// Writes the spread counters of several shards, one family at a time.
///
/// # Errors
/// [`MetricsError::InvalidName`] (never for these fixed names).
pub fn write_prometheus_all(
    w: &mut PrometheusWriter,
    shards: &[(&str, &SpreadMetrics)],
) -> Result<(), MetricsError> {
    let snaps: Vec<(&str, SpreadMetricsSnapshot)> = shards.iter().map(|(s, m)| (*s, m.snapshot())).collect();
    type Get = fn(&SpreadMetricsSnapshot) -> u64;
    let families: [(&str, &str, Get); 9] = [
        ("locus_spread_total", "Spreads run", |s| s.spreads),
        ("locus_spread_hops_total", "Spread hops run", |s| s.hops),
        (
            "locus_spread_nodes_touched_total",
            "Nodes that received activation",
            |s| s.nodes_touched,
        ),
        ("locus_spread_edges_scanned_total", "Edges followed", |s| {
            s.edges_scanned
        }),
        (
            "locus_spread_remote_contributions_total",
            "Contributions sent to other shards",
            |s| s.remote_contributions,
        ),
        (
            "locus_spread_truncations_total",
            "Spreads cut by their budget",
            |s| s.truncations,
        ),
        (
            "locus_spread_scratch_hits_total",
            "Scratch acquisitions served from the pool",
            |s| s.scratch_hits,
        ),
        (
            "locus_spread_predictions_total",
            "Hops predicted by a warmed cost model",
            |s| s.predictions,
        ),
        (
            "locus_spread_predicted_within_20pct_total",
            "Predicted hops within 20% of actual",
            |s| s.predicted_within_20pct,
        ),
    ];
    for (name, help, get) in families {
        for (shard, snap) in &snaps {
            w.counter(name, help, &[("shard", shard)], get(snap))?;
        }
    }
    Ok(())
}
