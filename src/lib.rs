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
//! ## Example: the engine
//!
//! ```
//! use locus::engine::{Cue, Engine, Episode};
//!
//! # fn main() -> Result<(), locus::engine::EngineError> {
//! let engine = Engine::builder().dimension(3).open()?;
//! let id = engine.observe(Episode::new(vec![0.0, 1.0, 0.0]).with_payload("hello"))?;
//! let hits = engine.recall(&Cue::new(vec![0.1, 0.9, 0.0], 1))?.hits;
//! assert_eq!(hits[0].id, id);
//! assert_eq!(engine.get(id).map(|e| e.payload), Some(b"hello".to_vec()));
//! # Ok(())
//! # }
//! ```
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
