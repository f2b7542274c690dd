//! Metrics: HDR latency histograms, counters, and Prometheus text exposition.
//!
//! The model is *record locally, merge on read*. A hot thread (a worker) owns its own
//! [`LatencyHistogram`]s and [`Counter`]s and records into them without sharing a cache line with
//! anyone; a reader takes a snapshot, merges the per-thread histograms (HDR histograms merge
//! exactly, so a merged P99 is the P99 of all samples, not an average of P99s), and renders the
//! result with [`PrometheusWriter`] in the Prometheus text exposition format (version 0.0.4).
//!
//! - [`counter`]: [`Counter`] (monotonic) and [`Gauge`] (up and down), each one padded atomic.
//! - [`histogram`]: [`LatencyHistogram`], nanosecond HDR histograms with three significant digits,
//!   and the [`Quantiles`] summary read from them.
//! - [`prometheus`]: [`PrometheusWriter`], which writes counters, gauges and histogram summaries
//!   with `# HELP` / `# TYPE` lines and escaped labels.

pub mod counter;
pub mod error;
pub mod histogram;
pub mod prometheus;

pub use counter::{Counter, Gauge};
pub use error::MetricsError;
pub use histogram::{LatencyHistogram, Quantiles};
pub use prometheus::{MetricKind, PrometheusWriter};
