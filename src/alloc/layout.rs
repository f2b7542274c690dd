//! Cache-line layout helpers.
//!
//! Two layouts, for two access patterns:
//! - **Contended per-worker state** (counters, queue heads written by one thread and read by
//!   others) goes in [`CachePadded`] (crossbeam's): 128 bytes on x86_64 and aarch64, because the
//!   adjacent-line prefetcher pulls lines in pairs, so two 64-byte-aligned values can still share
//!   a prefetch unit and ping-pong between cores (false sharing).
//! - **Read-mostly hot records** that a traversal touches by the million (spreading activation's
//!   graph nodes) are `#[repr(C, align(64))]`: exactly one cache line holds every field the hot
//!   loop reads ([`HotNode`]), and everything else lives in a companion record ([`NodeMeta`]) that
//!   the hot loop never loads.

pub use crossbeam::utils::CachePadded;

/// The cache line size these layouts assume (x86_64, aarch64 servers). Discovery reports the
/// machine's real one ([`crate::topology::Topology::cache_line_size`]).
pub const CACHE_LINE: usize = 64;

/// The part of an association-graph node that spreading activation reads on every visit: one
/// cache line, aligned to one.
///
/// Fields are ordered largest first so `repr(C)` adds no padding before `_pad`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(64))]
pub struct HotNode {
    /// The node's id (index into the companion [`NodeMeta`] table).
    pub id: u64,
    /// Offset of the node's first outgoing edge in the edge array.
    pub edge_start: u32,
    /// Number of outgoing edges.
    pub edge_count: u32,
    /// Current activation.
    pub activation: f32,
    /// Confidence in the node (0..=1), which scales what it passes on.
    pub confidence: f32,
    /// Epoch of the spread that last touched this node (so activation resets lazily).
    pub epoch: u32,
    /// Storage tier (hot / warm / cold), as a small integer.
    pub tier: u8,
    /// Flags (tombstone, pinned…).
    pub flags: u8,
    _pad: [u8; 30],
}

impl HotNode {
    /// A node with the given id and edge range, zero activation and full confidence.
    pub fn new(id: u64, edge_start: u32, edge_count: u32) -> Self {
        Self {
            id,
            edge_start,
            edge_count,
            activation: 0.0,
            confidence: 1.0,
            epoch: 0,
            tier: 0,
            flags: 0,
            _pad: [0; 30],
        }
    }
}

/// The cold rest of a graph node: read when a result is reported, never in the spreading loop.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeMeta {
    /// Creation time (nanoseconds since the Unix epoch).
    pub created_ns: u64,
    /// Last access time (nanoseconds since the Unix epoch).
    pub last_access_ns: u64,
    /// Number of times the node was recalled.
    pub access_count: u64,
    /// Free-form label.
    pub label: String,
}

const _: () = assert!(std::mem::size_of::<HotNode>() == CACHE_LINE);
const _: () = assert!(std::mem::align_of::<HotNode>() == CACHE_LINE);
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const _: () = assert!(std::mem::align_of::<CachePadded<u64>>() == 128);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_nodes_in_a_vec_start_on_line_boundaries() {
        let v: Vec<HotNode> = (0..4).map(|i| HotNode::new(i, 0, 0)).collect();
        for n in &v {
            assert_eq!(n as *const HotNode as usize % CACHE_LINE, 0);
        }
    }
}
