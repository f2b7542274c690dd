//! The link lists of the HNSW graph and the per-node state.
//!
//! **Layout.** Level 0, where almost all of a search's time goes, is one flat array with a fixed
//! number of slots per node (`2·M`, rounded up to a whole cache line): the neighbours of node `i`
//! start at `i × stride`, so finding them costs one address computation and one or two cache
//! lines, with no pointer to chase. A slot holds `id + 1`, and 0 when unused (a hole anywhere in
//! the list, see below), so no count is needed, a list of `2·M = 32` ids is exactly two cache lines, and the zeroed memory of a fresh
//! region is already a graph without links (pages of unused capacity are never touched). Upper levels (a node reaches level `l`
//! with probability `M^-l`) are small per-node arrays of `M` slots per level, set once when the
//! node is inserted.
//!
//! **Concurrency.** Every slot is an `AtomicU32`. A writer holds the node's lock (one small mutex
//! per node) while it rewrites that node's lists, storing ids with `Release`; readers take no
//! lock and load ids with `Acquire`. A reader may see a list mid-rewrite, slot by slot either the
//! old or the new occupant. So that this never hides a link that is in the list both before and
//! after the rewrite, a rewrite never moves an id: an id that stays keeps its slot and that slot
//! is not stored to at all; new ids go into vacant slots or the slots of dropped ids, and dropped
//! ids that are not replaced become VACANT. A VACANT slot is therefore a hole that readers skip,
//! not the end of the list. (Rewriting in place from slot 0 — what this module did before — let a
//! reader miss an id that a pruning re-sort moved from a slot not yet read to one already read:
//! about one concurrent search in a thousand lost a node indexed long before it began.) Every id
//! ever stored names a node whose vector and own lists were written before the store, so the
//! reader only ever follows complete data, and results are filtered by the node's `READY` flag,
//! set when its insertion finished.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::index::IndexError;
use crate::index::storage::{Region, RegionArray, RegionSource, checked_region};

/// The value of an unused link slot in a snapshot file (in memory an unused slot holds 0).
pub(crate) const EMPTY: u32 = u32::MAX;

/// The in-memory value of an unused slot; a used slot holds `id + 1` (ids are below
/// `u32::MAX - 1`, see the capacity check in `HnswConfig`).
const VACANT: u32 = 0;

/// Flag: the node's insertion has finished; it may be returned by a search.
pub(crate) const READY: u8 = 1;
/// Flag: the node was deleted (a tombstone): searched through, never returned.
pub(crate) const DELETED: u8 = 2;
/// Flag: the node's id was handed to an insertion (set by [`HnswIndex::insert_reserved`] so a
/// reserved id is linked at most once; never saved in a snapshot).
///
/// [`HnswIndex::insert_reserved`]: super::HnswIndex::insert_reserved
pub(crate) const TAKEN: u8 = 4;
/// Flag: the node's vector is written ([`HnswIndex::stage`]), whether or not it is linked yet
/// (never saved in a snapshot).
///
/// [`HnswIndex::stage`]: super::HnswIndex::stage
pub(crate) const STAGED: u8 = 8;

/// Link lists, levels, flags and locks of up to `capacity` nodes, every part in a region from
/// the index's [`RegionSource`] (so a node-bound index has all of them on its node).
pub(crate) struct Graph {
    m: usize,
    m0: usize,
    /// Slots per node at level 0 (`m0` rounded up to 16).
    stride0: usize,
    capacity: usize,
    /// `capacity × stride0` slots, in a huge-page region (random access: TLB misses matter).
    level0: Box<dyn Region>,
    /// Upper-level lists: `upper_levels` blocks of `m` slots, handed out by `upper_next`.
    upper: Box<dyn Region>,
    upper_levels: usize,
    /// Blocks of `upper` handed out so far.
    upper_next: AtomicUsize,
    /// Per node: 1 + the index of its first block in `upper` (0: no upper levels).
    upper_first: RegionArray<AtomicU32>,
    levels: RegionArray<AtomicU8>,
    flags: RegionArray<AtomicU8>,
    locks: RegionArray<Mutex<()>>,
}

/// The upper-level blocks to reserve for `nodes` nodes with `m` links per level: the expected
/// count (a node reaches level `l ≥ 1` with probability `m^-l`, so `nodes / (m − 1)` levels in
/// all) plus eight standard deviations and a constant. Unused blocks are never touched, so the
/// margin costs address space, not memory; should it ever run out, later nodes are linked on
/// level 0 only (the graph stays correct).
pub(crate) fn upper_levels_for(nodes: usize, m: usize) -> usize {
    let expected = nodes / (m.max(2) - 1);
    let sd = ((2 * nodes) as f64).sqrt() as usize;
    expected.saturating_add(8 * sd).saturating_add(64)
}

/// Bytes of a graph for `capacity` nodes with `m` links and `upper_levels` reserved blocks.
pub(crate) fn graph_bytes(capacity: usize, m: usize, upper_levels: usize) -> Option<usize> {
    let stride0 = (2 * m).div_ceil(16) * 16;
    let per_node = stride0 * size_of::<AtomicU32>()
        + size_of::<AtomicU32>()
        + 2 * size_of::<AtomicU8>()
        + size_of::<Mutex<()>>();
    capacity
        .checked_mul(per_node)?
        .checked_add(upper_levels.checked_mul(m * size_of::<AtomicU32>())?)
}

impl Graph {
    /// An empty graph for `capacity` nodes with `m` links per upper level and `2·m` at level 0,
    /// with `upper_levels` blocks of `m` upper-level slots.
    pub(crate) fn new(
        capacity: usize,
        m: usize,
        upper_levels: usize,
        source: &dyn RegionSource,
    ) -> Result<Self, IndexError> {
        let m0 = 2 * m;
        let stride0 = m0.div_ceil(16) * 16;
        let too_big = IndexError::OutOfMemory { bytes: usize::MAX };
        let bytes = capacity
            .checked_mul(stride0 * size_of::<AtomicU32>())
            .ok_or(IndexError::OutOfMemory { bytes: usize::MAX })?;
        if u32::try_from(upper_levels).is_err() {
            return Err(too_big);
        }
        let upper_bytes = upper_levels
            .checked_mul(m * size_of::<AtomicU32>())
            .ok_or(IndexError::OutOfMemory { bytes: usize::MAX })?;
        // Zeroed by contract: every slot VACANT.
        let level0 = checked_region(source, bytes)?;
        let upper = checked_region(source, upper_bytes)?;
        Ok(Graph {
            m,
            m0,
            stride0,
            capacity,
            level0,
            upper,
            upper_levels,
            upper_next: AtomicUsize::new(0),
            upper_first: RegionArray::new(source, capacity, |_| AtomicU32::new(0))?,
            levels: RegionArray::new(source, capacity, |_| AtomicU8::new(0))?,
            flags: RegionArray::new(source, capacity, |_| AtomicU8::new(0))?,
            locks: RegionArray::new(source, capacity, |_| Mutex::new(()))?,
        })
    }

    /// Every region of the graph, named.
    pub(crate) fn regions(&self) -> Vec<(&'static str, &dyn Region)> {
        vec![
            ("links level 0", &*self.level0),
            ("links upper levels", &*self.upper),
            ("upper-level index", self.upper_first.region()),
            ("levels", self.levels.region()),
            ("flags", self.flags.region()),
            ("locks", self.locks.region()),
        ]
    }

    /// Link slots per node at `level` (`2·M` at level 0, `M` above).
    #[inline(always)]
    pub(crate) fn max_links(&self, level: usize) -> usize {
        if level == 0 { self.m0 } else { self.m }
    }

    /// Bytes held by the graph (lists, upper levels, levels, flags, locks).
    pub(crate) fn bytes(&self) -> usize {
        self.regions().iter().map(|(_, r)| r.len()).sum()
    }

    /// The slots of `id` at `level` (empty if the node has no such level).
    #[inline(always)]
    fn slots(&self, id: u32, level: usize) -> &[AtomicU32] {
        let id = id as usize;
        if id >= self.capacity {
            return &[];
        }
        let (offset, len) = if level == 0 {
            (id * self.stride0, self.m0)
        } else {
            let first = self.upper_first[id].load(Ordering::Acquire) as usize;
            if first == 0 || level > self.levels[id].load(Ordering::Acquire) as usize {
                return &[];
            }
            ((first - 1 + level - 1) * self.m, self.m)
        };
        let region = if level == 0 { &self.level0 } else { &self.upper };
        debug_assert!((offset + len) * size_of::<AtomicU32>() <= region.len());
        // SAFETY: level 0: `id < capacity`, so the `m0` slots at `id × stride0` lie inside the
        // region (`capacity × stride0` slots). Upper: `init_node` gave `id` the blocks
        // `first − 1 .. first − 1 + level(id)` of `upper` after checking they fit in
        // `upper_levels` blocks, and `level ≤ level(id)`. Both regions are 64-byte aligned
        // (≥ align of AtomicU32), zero-initialised (VACANT), live as long as `self`, and are only
        // accessed through atomics.
        unsafe { std::slice::from_raw_parts(region.as_ptr().cast::<AtomicU32>().add(offset), len) }
    }

    /// Starts loading the level-0 links of `id` into the cache.
    #[inline(always)]
    pub(crate) fn prefetch_links0(&self, id: u32) {
        let offset = id as usize * self.stride0 * size_of::<AtomicU32>();
        crate::index::distance::prefetch_lines(self.level0.as_ptr().wrapping_add(offset), self.stride0 / 16);
    }

    /// Copies the current links of `id` at `level` into `out` (cleared first). VACANT slots are
    /// holes, skipped wherever they are (see the module's notes on concurrency).
    #[inline(always)]
    pub(crate) fn read_links(&self, id: u32, level: usize, out: &mut Vec<u32>) {
        out.clear();
        for slot in self.slots(id, level) {
            let n = slot.load(Ordering::Acquire);
            if n != VACANT {
                out.push(n - 1);
            }
        }
    }

    /// Replaces the links of `id` at `level` with `links` (at most `max_links(level)` used;
    /// duplicates count once) without ever moving an id that stays, so that a concurrent reader
    /// sees every such id whatever mix of old and new slots it reads (see [`rewrite_plan`]).
    /// The caller holds `id`'s lock (or owns the graph exclusively).
    pub(crate) fn write_links(&self, id: u32, level: usize, links: &[u32]) {
        let slots = self.slots(id, level);
        // Relaxed: the caller's lock orders this thread after every earlier writer of these
        // slots, and only lock holders store to them.
        let old: Vec<u32> = slots.iter().map(|s| s.load(Ordering::Relaxed)).collect();
        let new: Vec<u32> = links.iter().map(|&id| id + 1).collect();
        for (i, value) in rewrite_plan(&old, &new) {
            // Release: the node named by `value` (written and published before it was linked)
            // is visible to the reader that loads this slot with Acquire.
            slots[i].store(value, Ordering::Release);
        }
    }

    /// Gives node `id` its level and its (empty) upper-level lists, and returns the level it
    /// got: `level`, or 0 if the reserved upper-level blocks have run out (see
    /// [`upper_levels_for`]). Called once per node by the thread that claimed it, before the
    /// node is published.
    pub(crate) fn init_node(&self, id: u32, level: usize) -> usize {
        let i = id as usize;
        let mut level = level;
        if level > 0 {
            // A request that does not fit consumes nothing (a smaller later one still may).
            let claimed = self
                .upper_next
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |first| {
                    first.checked_add(level).filter(|&end| end <= self.upper_levels)
                });
            match claimed {
                // `upper_levels` fits in u32 (checked in `new`), so `first + 1` does too.
                Ok(first) => self.upper_first[i].store(first as u32 + 1, Ordering::Release),
                Err(_) => level = 0,
            }
        }
        self.levels[i].store(level as u8, Ordering::Release);
        level
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

/// The slot stores that turn the slot values `old` into a list holding the distinct values of
/// `new` (each `id + 1`, none VACANT; only the first `old.len()` distinct ones fit), as
/// `(slot, value)` in the order to perform them:
///
/// - a value in both keeps the first slot holding it, and that slot is never stored to, so a
///   reader loading the slots one by one during the stores sees it whatever mix it reads;
/// - values only in `new` go first into VACANT slots (pure additions), then into the slots of
///   dropped values (each a single old → new transition);
/// - the slots of dropped values left over (and later duplicates of kept ones) become VACANT,
///   last.
pub(crate) fn rewrite_plan(old: &[u32], new: &[u32]) -> Vec<(usize, u32)> {
    let mut kept = vec![false; old.len()];
    let mut placing: Vec<u32> = Vec::with_capacity(new.len());
    let mut room = old.len();
    for &v in new {
        debug_assert_ne!(v, VACANT);
        if placing.contains(&v) {
            continue;
        }
        match old.iter().position(|&o| o == v) {
            Some(i) if !kept[i] => {
                if room == 0 {
                    continue;
                }
                kept[i] = true;
                room -= 1;
            }
            Some(_) => {}
            None if room > 0 => {
                placing.push(v);
                room -= 1;
            }
            None => {}
        }
    }
    let vacant = (0..old.len()).filter(|&i| old[i] == VACANT);
    let dropped = (0..old.len()).filter(|&i| old[i] != VACANT && !kept[i]);
    let mut plan: Vec<(usize, u32)> = vacant
        .chain(dropped.clone())
        .zip(placing.iter().copied())
        .collect();
    let filled = plan.len();
    let vacant_count = old.iter().filter(|&&o| o == VACANT).count();
    let dropped_used = filled.saturating_sub(vacant_count);
    plan.extend(dropped.skip(dropped_used).map(|i| (i, VACANT)));
    plan
}
