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
//! - [`exec`]: per-node pinned worker pools, priority queues, batch drain, work stealing.
//! - [`metrics`]: HDR latency histograms, counters, Prometheus text exposition.
//! - [`index`]: vector storage, SIMD distance kernels, the HNSW index.
//! - [`loadtest`]: TOML scenarios, the open-loop driver, results, plots and reports.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod alloc;
pub mod counters;
pub mod exec;
pub mod index;
pub mod loadtest;
pub mod metrics;
mod rng;
pub mod topology;
