//! # Locus
//!
//! A library for latency-critical services on multi-socket Linux. Locus discovers the machine
//! (packages, NUMA nodes, cores, PUs, caches), places its work on it deliberately — one pinned
//! worker pool and one memory arena per NUMA node — and proves its placement and cache claims
//! with data: where pages really live, and what the hardware counters say.
//!
//! The map of the crate is `docs/architecture.md`. Modules:
//! - [`topology`]: discovery, CPU sets, pinning, the placement plan.
//! - [`alloc`]: node-bound arenas, record pools, cache-line layout.
//! - [`counters`]: perf_event counter groups, multiplex scaling, typed unavailability.
//! - [`diag`]: diagnostic workloads used by the CLI and the benches.
//! - [`exec`]: per-node pinned worker pools, priority queues, batch drain, work stealing.
//! - [`metrics`]: HDR latency histograms, counters, Prometheus text exposition.
//! - [`index`]: vector storage, SIMD distance kernels, the HNSW index.
//! - [`durability`]: per-shard write-ahead log with group commit, snapshots, crash recovery.
//! - [`spread`]: the association graph and spreading activation, deterministic across shards.
//! - [`engine`]: the associative memory itself: shards per node, observe, recall, completion.
//! - [`loadtest`]: TOML scenarios, the open-loop driver, results, plots and reports.
//! - [`bounded_read`]: reading a small user- or system-named file, bounded before allocation.
//!
//! ## Use it from your service
//!
//! ```toml
//! [dependencies]
//! locus = { path = "../locus", default-features = false }  # without the CLI's dependencies
//! ```
//!
//! Open an engine, observe episodes, associate two, recall by similarity, recall with
//! spreading activation, and read the metrics (the README's example; it runs as a doctest):
//!
//! ```
//! use locus::engine::{Cue, Engine, Episode, SpreadParams};
//!
//! # fn main() -> Result<(), locus::engine::EngineError> {
//! let engine = Engine::builder().dimension(3).open()?; // one shard per NUMA node
//! let tea = engine.observe(Episode::new(vec![0.0, 1.0, 0.0]).with_payload("tea"))?;
//! let cup = engine.observe(Episode::new(vec![1.0, 0.0, 0.0]).with_payload("cup"))?;
//! engine.associate(tea, cup, 1.0)?; // an edge of the association graph
//! let hits = engine.recall(&Cue::new(vec![0.1, 0.9, 0.0], 1))?.hits;
//! assert_eq!(hits[0].id, tea);
//! let spread = engine.recall(&Cue::new(vec![0.1, 0.9, 0.0], 2).with_spread(SpreadParams::default()))?;
//! assert!(spread.hits.iter().any(|h| h.id == cup && h.activation > 0.0));
//! let metrics = engine.metrics_snapshot(); // also `metrics_text()`: Prometheus text
//! assert_eq!(metrics.shards.iter().map(|s| s.spaces[0].episodes).sum::<usize>(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! ## Features
//!
//! - `cli` (default): the `locus` binary and what only it needs: `report`, `progress`, `gate`
//!   and clap.
//! - `report`: [`loadtest::plot`], [`loadtest::report`] and `loadtest::output::write_all`
//!   (SVG figures and `report.html`, with plotters).
//! - `progress`: the load test's progress bar on a terminal (indicatif); without it, plain lines.
//! - `gate`: [`loadtest::compare`], the regression gate's significance test (statrs).
//! - `hwloc`: discovery through hwloc (needs `libhwloc-dev`, `libudev-dev`).
//!
//! With `default-features = false` the library depends on none of clap, plotters, indicatif or
//! statrs.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod alloc;
pub mod bounded_read;
pub mod counters;
pub mod diag;
pub mod durability;
pub mod engine;
pub mod exec;
pub mod index;
pub mod loadtest;
pub mod metrics;
mod rng;
pub mod spread;
pub(crate) mod sync;
pub mod sys;
pub mod topology;
