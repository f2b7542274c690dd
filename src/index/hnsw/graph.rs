//! The link lists of the HNSW graph and the per-node state.
//!
//! **Layout.** Level 0, where almost all of a search's time goes, is one flat array with a fixed
//! number of slots per node (`2·M`, rounded up to a whole cache line): the neighbours of node `i`
//! start at `i × stride`, so finding them costs one address computation and one or two cache
//! lines, with no pointer to chase. A slot holds `id + 1`, and 0 when unused, so no count is
//! needed, a list of `2·M = 32` ids is exactly two cache lines, and the zeroed memory of a fresh
//! region is already a graph without links (pages of unused capacity are never touched). Upper levels (a node reaches level `l`
//! with probability `M^-l`) are small per-node arrays of `M` slots per level, set once when the
//! node is inserted.
//!
//! **Concurrency.** Every slot is an `AtomicU32`. A writer holds the node's lock (one small mutex
//! per node) while it rewrites that node's lists, storing ids with `Release`; readers take no
//! lock and load ids with `Acquire`. A reader may see a list mid-rewrite (a mix of old and new
//! ids, or a shorter list): every id ever stored names a node whose vector and own lists were
//! written before the store, so the reader only ever follows complete data, and results are
//! filtered by the node's `READY` flag, set when its insertion finished.

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::index::IndexError;
use crate::index::storage::{Region, RegionSource, checked_region};

/// The value of an unused link slot in a snapshot file (in memory an unused slot holds 0).
pub(crate) const EMPTY: u32 = u32::MAX;

/// The in-memory value of an unused slot; a used slot holds `id + 1` (ids are below
/// `u32::MAX - 1`, see the capacity check in `HnswConfig`).
const VACANT: u32 = 0;

/// Flag: the node's insertion has finished; it may be returned by a search.
pub(crate) const READY: u8 = 1;
/// Flag: the node was deleted (a tombstone): searched through, never returned.
pub(crate) const DELETED: u8 = 2;

/// Link lists, levels, flags and locks of up to `capacity` nodes.
pub(crate) struct Graph {
    m: usize,
    m0: usize,
    /// Slots per node at level 0 (`m0` rounded up to 16).
    stride0: usize,
    capacity: usize,
    /// `capacity × stride0` slots, in a huge-page region (random access: TLB misses matter).
    level0: Box<dyn Region>,
    upper: Box<[OnceLock<Box<[AtomicU32]>>]>,
    levels: Box<[AtomicU8]>,
    flags: Box<[AtomicU8]>,
    locks: Box<[Mutex<()>]>,
}

impl Graph {
    /// An empty graph for `capacity` nodes with `m` links per upper level and `2·m` at level 0.
    pub(crate) fn new(capacity: usize, m: usize, source: &dyn RegionSource) -> Result<Self, IndexError> {
        let m0 = 2 * m;
        let stride0 = m0.div_ceil(16) * 16;
        let bytes = capacity
            .checked_mul(stride0 * size_of::<AtomicU32>())
            .ok_or(IndexError::OutOfMemory { bytes: usize::MAX })?;
        // Zeroed by contract: every slot VACANT.
        let level0 = checked_region(source, bytes)?;
        Ok(Graph {
            m,
            m0,
            stride0,
            capacity,
            level0,
            upper: (0..capacity).map(|_| OnceLock::new()).collect(),
            levels: (0..capacity).map(|_| AtomicU8::new(0)).collect(),
            flags: (0..capacity).map(|_| AtomicU8::new(0)).collect(),
            locks: (0..capacity).map(|_| Mutex::new(())).collect(),
        })
    }

    /// Link slots per node at `level` (`2·M` at level 0, `M` above).
    #[inline(always)]
    pub(crate) fn max_links(&self, level: usize) -> usize {
        if level == 0 { self.m0 } else { self.m }
    }

    /// Bytes held by the graph (lists, upper levels, levels, flags, locks).
    pub(crate) fn bytes(&self) -> usize {
        let upper: usize = self
            .upper
            .iter()
            .filter_map(OnceLock::get)
            .map(|b| b.len() * size_of::<AtomicU32>())
            .sum();
        self.level0.len()
            + upper
            + self.upper.len() * size_of::<OnceLock<Box<[AtomicU32]>>>()
            + self.capacity * (2 + size_of::<Mutex<()>>())
    }

    /// The slots of `id` at `level` (empty if the node has no such level).
    #[inline(always)]
    fn slots(&self, id: u32, level: usize) -> &[AtomicU32] {
        let id = id as usize;
        if level == 0 {
            if id >= self.capacity {
                return &[];
            }
            // SAFETY: `id < capacity`, so the `m0` slots at `id × stride0` lie inside the region
            // (`capacity × stride0` slots); the region is 64-byte aligned (≥ align of AtomicU32),
            // initialised, lives as long as `self`, and is only accessed through atomics.
            unsafe {
                std::slice::from_raw_parts(
                    self.level0.as_ptr().cast::<AtomicU32>().add(id * self.stride0),
                    self.m0,
                )
            }
        } else {
            match self.upper.get(id).and_then(OnceLock::get) {
                Some(lists) => lists.get((level - 1) * self.m..level * self.m).unwrap_or(&[]),
                None => &[],
            }
        }
    }

    /// Starts loading the level-0 links of `id` into the cache.
    #[inline(always)]
    pub(crate) fn prefetch_links0(&self, id: u32) {
        let offset = id as usize * self.stride0 * size_of::<AtomicU32>();
        crate::index::distance::prefetch_lines(self.level0.as_ptr().wrapping_add(offset), self.stride0 / 16);
    }

    /// Copies the current links of `id` at `level` into `out` (cleared first).
    #[inline(always)]
    pub(crate) fn read_links(&self, id: u32, level: usize, out: &mut Vec<u32>) {
        out.clear();
        for slot in self.slots(id, level) {
            let n = slot.load(Ordering::Acquire);
            if n == VACANT {
                break;
            }
            out.push(n - 1);
        }
    }

    /// Replaces the links of `id` at `level` with `links` (at most `max_links(level)` used).
    /// The caller holds `id`'s lock (or owns the graph exclusively).
    pub(crate) fn write_links(&self, id: u32, level: usize, links: &[u32]) {
        let slots = self.slots(id, level);
        for (i, slot) in slots.iter().enumerate() {
            slot.store(links.get(i).map_or(VACANT, |&id| id + 1), Ordering::Release);
        }
    }

    /// Gives node `id` its level and its (empty) upper-level lists. Called once per node by
    /// the thread that claimed it, before the node is published.
    pub(crate) fn init_node(&self, id: u32, level: usize) {
        let i = id as usize;
        self.levels[i].store(level as u8, Ordering::Release);
        if level > 0 {
            let _ = self.upper[i].set((0..level * self.m).map(|_| AtomicU32::new(VACANT)).collect());
        }
    }

    /// The top level of `id`.
    #[inline(always)]
    pub(crate) fn level(&self, id: u32) -> usize {
        self.levels[id as usize].load(Ordering::Acquire) as usize
    }

    /// The flags of `id` (`READY`, `DELETED`).
    #[inline(always)]
    pub(crate) fn flags(&self, id: u32) -> u8 {
        self.flags[id as usize].load(Ordering::Acquire)
    }

    /// Sets flag bits of `id`; returns the previous flags.
    pub(crate) fn set_flags(&self, id: u32, bits: u8) -> u8 {
        self.flags[id as usize].fetch_or(bits, Ordering::AcqRel)
    }

    /// Locks `id`'s link lists for rewriting (poisoning is ignored: the lists hold only valid
    /// ids at every instant, so a panicking writer cannot leave them inconsistent).
    pub(crate) fn lock(&self, id: u32) -> MutexGuard<'_, ()> {
        self.locks[id as usize].lock().unwrap_or_else(|e| e.into_inner())
    }
}
