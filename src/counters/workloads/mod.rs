//! Small, deterministic workloads whose cache behaviour is known in advance, so counters (or a
//! cache simulator) can be checked against them. They back `locus counters`, the
//! `false_sharing` and `hot_node_layout` benches, and `scripts/cachegrind-layout.sh` (through
//! `examples/layout_workloads.rs`).
//!
//! - [`memory_walk`]: the same number of cache lines read in order (prefetcher-friendly) or in a
//!   random cycle (every read a likely miss), over a buffer larger than the LLC.
//! - [`false_sharing`]: threads incrementing their own counters, packed into one cache line or
//!   each padded to its own.
//! - [`spreading`]: spreading activation over graph nodes in the one-line
//!   [`HotNode`](crate::alloc::layout::HotNode) layout or a naive everything-in-one-struct layout.

pub mod false_sharing;
pub mod memory_walk;
pub mod spreading;
