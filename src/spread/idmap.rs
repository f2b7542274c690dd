//! The id map: stable `u64` node ids to shard-local indexes, readable without a lock.
//!
//! Open addressing with linear probing over two arrays in the arena (keys, values), at most half
//! full. Entries are never removed (a forgotten node keeps its id), so a reader that finds a key
//! finds a final value. The writer (under the graph's lock) stores the value, then the key with
//! `Release`; a reader loads the key with `Acquire`, so it sees the value and the node record
//! written before it.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use super::error::SpreadError;
use crate::alloc::NodeArena;
use crate::sync::{AtomicU32, AtomicU64};

/// Key of an empty slot (ids are stored as `id + 1`, so id `u64::MAX` is reserved).
const EMPTY: u64 = 0;

pub(crate) struct IdMap {
    keys: NonNull<AtomicU64>,
    values: NonNull<AtomicU32>,
    mask: usize,
}

// SAFETY: the arrays live in the graph's arena (kept alive by the graph) and are only accessed
// through atomics.
unsafe impl Send for IdMap {}
// SAFETY: as above.
unsafe impl Sync for IdMap {}

#[inline]
fn hash(id: u64) -> u64 {
    // Fibonacci hashing: spreads sequential ids over the table.
    id.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl IdMap {
    /// Slots for `max_nodes` nodes (a power of two, at least twice as many).
    pub(crate) fn slots_for(max_nodes: usize) -> Option<usize> {
        max_nodes.checked_mul(2)?.max(16).checked_next_power_of_two()
    }

    pub(crate) fn bytes_for(max_nodes: usize) -> usize {
        Self::slots_for(max_nodes).map_or(usize::MAX, |s| s.saturating_mul(12) + 128)
    }

    pub(crate) fn new(arena: &NodeArena, max_nodes: usize) -> Result<Self, SpreadError> {
        let slots = Self::slots_for(max_nodes).ok_or_else(|| SpreadError::InvalidInput {
            what: format!("max_nodes {max_nodes} is too large"),
        })?;
        let overflow = || SpreadError::InvalidInput {
            what: format!("id map of {slots} slots overflows"),
        };
        let keys = arena
            .alloc(Layout::array::<AtomicU64>(slots).map_err(|_| overflow())?)?
            .cast::<AtomicU64>();
        let values = arena
            .alloc(Layout::array::<AtomicU32>(slots).map_err(|_| overflow())?)?
            .cast::<AtomicU32>();
        for i in 0..slots {
            // SAFETY: both chunks hold `slots` elements, freshly allocated and unshared.
            unsafe {
                keys.as_ptr().add(i).write(AtomicU64::new(EMPTY));
                values.as_ptr().add(i).write(AtomicU32::new(0));
            }
        }
        Ok(Self {
            keys,
            values,
            mask: slots - 1,
        })
    }

    #[inline]
    fn key(&self, i: usize) -> &AtomicU64 {
        // SAFETY: `i <= mask < slots`, initialized in `new`, alive as long as the arena.
        unsafe { &*self.keys.as_ptr().add(i) }
    }

    #[inline]
    fn value(&self, i: usize) -> &AtomicU32 {
        // SAFETY: as `key`.
        unsafe { &*self.values.as_ptr().add(i) }
    }

    /// The local index of `id`, if present.
    #[inline]
    pub(crate) fn get(&self, id: u64) -> Option<u32> {
        let want = id.wrapping_add(1);
        let mut i = (hash(id) >> 16) as usize & self.mask;
        loop {
            let k = self.key(i).load(Ordering::Acquire);
            if k == want {
                return Some(self.value(i).load(Ordering::Relaxed));
            }
            if k == EMPTY {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Inserts `id → local`. The caller holds the writer lock, checked that `id` is absent and
    /// that the map is at most half full (capacity checked against `max_nodes`).
    pub(crate) fn insert(&self, id: u64, local: u32) {
        let mut i = (hash(id) >> 16) as usize & self.mask;
        while self.key(i).load(Ordering::Relaxed) != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.value(i).store(local, Ordering::Relaxed);
        self.key(i).store(id.wrapping_add(1), Ordering::Release);
    }
}
