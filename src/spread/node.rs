//! The node records of the association graph: [`HotNode`], the one cache line a spread reads per
//! visit, and [`NodeMeta`], the cold rest, kept in a separate table so the spreading loop never
//! loads it.

use std::sync::atomic::Ordering;

use super::edges::BlockHeader;
use super::sync::{AtomicPtr, AtomicU32, AtomicU64};

/// Flag bit: the node was forgotten (tombstoned). It neither propagates nor is reported.
pub(crate) const FORGOTTEN: u32 = 1;

/// The part of a graph node that spreading activation reads on every visit: one cache line,
/// aligned to one (`#[repr(C, align(64))]`).
///
/// The edge block pointer, degree and flags are atomics: writers append edges and set flags
/// through `&self` while spreads read (see [`AssocGraph`](super::AssocGraph) for the protocol).
#[repr(C, align(64))]
pub struct HotNode {
    /// The node's stable id (written once, before the node is published).
    id: u64,
    /// The node's current edge block (null: no edges yet). Published with `Release`.
    pub(crate) block: AtomicPtr<BlockHeader>,
    /// Out-degree, published after the edge it counts (a hint for cost prediction; the block's
    /// own length is authoritative).
    pub(crate) degree: AtomicU32,
    /// [`FORGOTTEN`] and future flags.
    pub(crate) flags: AtomicU32,
}

impl HotNode {
    pub(crate) fn new(id: u64) -> Self {
        Self {
            id,
            block: AtomicPtr::new(std::ptr::null_mut()),
            degree: AtomicU32::new(0),
            flags: AtomicU32::new(0),
        }
    }

    /// The node's id.
    #[inline]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Out-degree (edges published so far).
    #[inline]
    pub fn degree(&self) -> u32 {
        self.degree.load(Ordering::Acquire)
    }

    /// Whether the node was forgotten.
    #[inline]
    pub fn is_forgotten(&self) -> bool {
        self.flags.load(Ordering::Acquire) & FORGOTTEN != 0
    }
}

/// The cold rest of a graph node: read when a result is reported or a node is inspected, never
/// in the spreading loop.
#[repr(C)]
pub struct NodeMeta {
    /// Creation time (nanoseconds since the Unix epoch).
    pub(crate) created_ns: u64,
    /// Last time an edge was added or strengthened (nanoseconds since the Unix epoch).
    pub(crate) updated_ns: AtomicU64,
    /// Number of `associate` calls on this node (adds and strengthenings).
    pub(crate) associations: AtomicU64,
}

impl NodeMeta {
    pub(crate) fn new(now_ns: u64) -> Self {
        Self {
            created_ns: now_ns,
            updated_ns: AtomicU64::new(now_ns),
            associations: AtomicU64::new(0),
        }
    }

    /// Creation time (nanoseconds since the Unix epoch).
    pub fn created_ns(&self) -> u64 {
        self.created_ns
    }

    /// Last time an edge was added or strengthened (nanoseconds since the Unix epoch).
    pub fn updated_ns(&self) -> u64 {
        self.updated_ns.load(Ordering::Relaxed)
    }

    /// Number of `associate` calls on this node.
    pub fn associations(&self) -> u64 {
        self.associations.load(Ordering::Relaxed)
    }
}

pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<HotNode>() == 64);
#[cfg(not(loom))]
const _: () = assert!(std::mem::align_of::<HotNode>() == 64);
