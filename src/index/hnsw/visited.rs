//! The visited set of a graph walk: one `u16` mark per node and an epoch counter, so clearing the
//! set between searches is a single increment (the marks are zeroed only when the epoch wraps,
//! once every 65 535 searches). Sets are pooled and reused, one per concurrently running walk.
//!
//! The marks live in a region from the index's [`RegionSource`], so a node-bound index walks
//! with visited sets on its node too. If the source refuses a region (out of memory), the walk
//! still runs, on a heap set, and the fallback is counted ([`VisitedPool::heap_fallbacks`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::index::storage::{Region, RegionSource, checked_region};

/// Where a set's marks are.
enum Marks {
    Region(Box<dyn Region>),
    Heap(Vec<u16>),
}

/// A visited set for up to `capacity` nodes.
pub(crate) struct Visited {
    marks: Marks,
    capacity: usize,
    epoch: u16,
}

impl Visited {
    /// A set whose marks come from `source`, or from the heap if it refuses.
    fn new(capacity: usize, source: &dyn RegionSource) -> (Self, bool) {
        let region = capacity
            .checked_mul(size_of::<u16>())
            .and_then(|bytes| checked_region(source, bytes).ok());
        let on_source = region.is_some();
        let marks = match region {
            Some(r) => Marks::Region(r),
            None => Marks::Heap(vec![0; capacity]),
        };
        (
            Visited {
                marks,
                capacity,
                epoch: 0,
            },
            on_source,
        )
    }

    fn marks(&mut self) -> &mut [u16] {
        match &mut self.marks {
            // SAFETY: the region holds at least `capacity × 2` bytes (checked by
            // `checked_region`), is 64-byte aligned and zero-initialised (valid u16s), and this
            // set owns it exclusively: `&mut self` gives unique access.
            Marks::Region(r) => unsafe {
                std::slice::from_raw_parts_mut(r.as_ptr().cast::<u16>(), self.capacity)
            },
            Marks::Heap(v) => v,
        }
    }

    /// Starts a new walk: every node becomes unvisited.
    pub(crate) fn reset(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks().iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
    }

    /// Marks `id` visited; returns whether it was already.
    #[inline(always)]
    pub(crate) fn check_and_mark(&mut self, id: u32) -> bool {
        let epoch = self.epoch;
        match self.marks().get_mut(id as usize) {
            Some(m) if *m == epoch => true,
            Some(m) => {
                *m = epoch;
                false
            }
            // An id beyond the capacity cannot exist; treat it as visited so it is skipped.
            None => true,
        }
    }
}

/// A pool of visited sets of one capacity, taken from one region source.
pub(crate) struct VisitedPool {
    capacity: usize,
    source: Arc<dyn RegionSource>,
    free: Mutex<Vec<Visited>>,
    heap_fallbacks: AtomicUsize,
}

impl VisitedPool {
    pub(crate) fn new(capacity: usize, source: Arc<dyn RegionSource>) -> Self {
        VisitedPool {
            capacity,
            source,
            free: Mutex::new(Vec::new()),
            heap_fallbacks: AtomicUsize::new(0),
        }
    }

    /// A visited set (taken from the pool, or new); `reset` it before a walk.
    pub(crate) fn take(&self) -> Visited {
        let pooled = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        pooled.unwrap_or_else(|| {
            let (v, on_source) = Visited::new(self.capacity, &*self.source);
            if !on_source {
                self.heap_fallbacks.fetch_add(1, Ordering::Relaxed);
            }
            v
        })
    }

    /// Returns a set to the pool.
    pub(crate) fn give_back(&self, v: Visited) {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).push(v);
    }

    /// Bytes held by pooled sets.
    pub(crate) fn bytes(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len() * self.capacity * size_of::<u16>()
    }

    /// Visited sets that had to be made on the heap because the source refused a region.
    pub(crate) fn heap_fallbacks(&self) -> usize {
        self.heap_fallbacks.load(Ordering::Relaxed)
    }

    /// `(address, bytes)` of every pooled set's marks (heap sets included, as `on_source` false).
    pub(crate) fn pooled_ranges(&self) -> Vec<(usize, usize, bool)> {
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|v| match &v.marks {
                Marks::Region(r) => (r.as_ptr() as usize, r.len(), true),
                Marks::Heap(h) => (h.as_ptr() as usize, h.len() * size_of::<u16>(), false),
            })
            .collect()
    }
}
