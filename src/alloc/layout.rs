//! Cache-line layout helpers.
//!
//! Two layouts, for two access patterns:
//! - **Contended per-worker state** (counters, queue heads written by one thread and read by
//!   others) goes in [`CachePadded`] (crossbeam's): 128 bytes on x86_64 and aarch64, because the
//!   adjacent-line prefetcher pulls lines in pairs, so two 64-byte-aligned values can still share
//!   a prefetch unit and ping-pong between cores (false sharing).
//! - **Read-mostly hot records** that a traversal touches by the million (spreading activation's
//!   graph nodes) are `#[repr(C, align(64))]`: exactly one cache line holds every field the hot
//!   loop reads, and everything else lives in a companion record that the hot loop never loads
//!   ([`crate::spread::HotNode`] and [`crate::spread::NodeMeta`]).

pub use crossbeam::utils::CachePadded;

/// The cache line size these layouts assume (x86_64, aarch64 servers). Discovery reports the
/// machine's real one ([`crate::topology::Topology::cache_line_size`]).
pub const CACHE_LINE: usize = 64;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const _: () = assert!(std::mem::align_of::<CachePadded<u64>>() == 128);
