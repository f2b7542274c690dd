//! Index storage in node-bound memory: a [`RegionSource`] whose regions are [`NodeArena`]s.
//!
//! `HnswIndex::with_regions(config, kernels, &NodeRegions::bind(node))` puts every part of the
//! index (vector rows, the int8 copy, link lists, levels, flags, locks, and the visited sets of
//! its walks) in arenas bound to `node` with `mbind` before first touch, so they live on the
//! node of the shard that searches them, whichever thread inserts; `compact` keeps the copy on
//! the same node and `HnswIndex::load_with_regions` loads a snapshot onto it.

use std::alloc::Layout;

use super::IndexError;
use super::storage::{ROW_ALIGN, Region, RegionSource};
use std::sync::Arc;

use crate::alloc::{ArenaOptions, HugePages, MemPolicy, NodeArena};

/// Hands out each region as a fresh [`NodeArena`] under one memory policy.
#[derive(Debug, Clone)]
pub struct NodeRegions {
    policy: MemPolicy,
    options: ArenaOptions,
}

impl NodeRegions {
    /// Regions bound to `node` (`MPOL_BIND`) with transparent huge pages requested
    /// (`MADV_HUGEPAGE`, as the default heap path does: the graph walk touches rows at random,
    /// and with 4 KiB pages nearly every row access would also miss the TLB). Binding refused by
    /// the OS is reported by each arena as [`Binding::Unbound`](crate::alloc::Binding::Unbound),
    /// and refused huge pages as a fallback, not an error. A node index of
    /// [`MAX_NODES`](crate::alloc::MAX_NODES) or more is refused when the first region is made.
    pub fn bind(node: u32) -> Self {
        Self::new(
            MemPolicy::Bind(node),
            ArenaOptions {
                huge_pages: HugePages::Transparent,
                ..ArenaOptions::default()
            },
        )
    }

    /// The policy every region is made under.
    pub fn policy(&self) -> &MemPolicy {
        &self.policy
    }

    /// The arena options every region is made with.
    pub fn options(&self) -> &ArenaOptions {
        &self.options
    }

    /// Regions under `policy` with `options` (e.g. `require_binding` to refuse unbound memory).
    pub fn new(policy: MemPolicy, options: ArenaOptions) -> Self {
        Self { policy, options }
    }
}

/// One region: the whole of one arena.
struct ArenaRegion {
    /// Owns the memory `ptr` points into; never read after creation, only kept alive.
    _arena: NodeArena,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the region owns its arena; its bytes are accessed under the stores' row discipline
// (written once before publication, then read), exactly as for `AlignedRegion`.
unsafe impl Send for ArenaRegion {}
// SAFETY: as for Send; `&ArenaRegion` exposes only the pointer and the length.
unsafe impl Sync for ArenaRegion {}

// SAFETY: `ptr` is the start of a chunk of `len` bytes handed out once by `arena.alloc`,
// aligned to ROW_ALIGN (the layout asked for it), inside a fresh anonymous mapping (zero-filled
// by the kernel, never written before), and it lives and stays put as long as `arena`, which this
// value owns.
unsafe impl Region for ArenaRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
    fn len(&self) -> usize {
        self.len
    }
}

impl RegionSource for NodeRegions {
    fn region(&self, bytes: usize) -> Result<Box<dyn Region>, IndexError> {
        let len = bytes.max(ROW_ALIGN);
        let layout =
            Layout::from_size_align(len, ROW_ALIGN).map_err(|_| IndexError::OutOfMemory { bytes })?;
        let arena = NodeArena::new(self.policy.clone(), len, &self.options)
            .map_err(|source| IndexError::NodeMemory { source })?;
        let ptr = arena
            .alloc(layout)
            .map_err(|source| IndexError::NodeMemory { source })?
            .as_ptr();
        Ok(Box::new(ArenaRegion {
            _arena: arena,
            ptr,
            len,
        }))
    }

    fn shared(&self) -> Option<Arc<dyn RegionSource>> {
        Some(Arc::new(self.clone()))
    }
}
