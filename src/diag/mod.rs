//! Diagnostic workloads used by the CLI (`locus counters`, `locus memory`, `locus bench-spread`),
//! the benches and `examples/layout_workloads.rs`: small, deterministic workloads whose cache
//! behaviour is known in advance, so counters (or a cache simulator) can be checked against
//! them. Not part of the library's serving API.
//!
//! - [`access`]: what placement is worth — latency (pointer chase) and bandwidth (streaming read)
//!   from workers on each node to arenas on each node.
//! - [`memory_walk`]: the same number of cache lines read in order (prefetcher-friendly) or in a
//!   random cycle (every read a likely miss), over a buffer larger than the LLC.
//! - [`false_sharing`]: threads incrementing their own counters, packed into one cache line or
//!   each padded to its own.
//! - [`spreading`]: the real spread ([`crate::spread`]) beside the same spread over a naive
//!   everything-in-one-struct node layout.
//! - [`spread_graph`]: scale-free association graphs for spread benchmarks.

pub mod access;
pub mod false_sharing;
pub mod memory_walk;
pub mod spread_graph;
pub mod spreading;
