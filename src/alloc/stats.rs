//! Statistics of a [`RecordPool`](super::RecordPool): each [`PoolHandle`](super::PoolHandle)
//! counts its own acquires and releases on its own cache line with plain loads and stores (no
//! read-modify-write on a line other threads write: the hot path shares nothing), and a read
//! merges every handle's counts into a [`PoolStats`] snapshot.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam::utils::CachePadded;
use serde::Serialize;

use crate::sync::{AtomicU64, Mutex};

/// A snapshot of a pool's counters. Taken while threads run, the fields are each exact but not
/// from one instant; at rest, `acquires() == hits() + misses` and
/// `in_use == acquires() - releases`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PoolStats {
    /// Acquires served from the calling thread's cache.
    pub local_hits: u64,
    /// Acquires served from the shared free list.
    pub shared_hits: u64,
    /// Acquires that had to carve a new slab of records from the arena: the pool's real
    /// allocator calls (one arena allocation each).
    pub misses: u64,
    /// Records released.
    pub releases: u64,
    /// Records created so far (carved from the arena): the pool's capacity now.
    pub records_created: u64,
    /// Records handed out and not yet released.
    pub in_use: u64,
    /// The peak of `in_use`, as far as the pool can tell without a shared write per acquire: the
    /// largest of the in-use count after every miss and at every
    /// [`stats`](super::RecordPool::stats) read, and the most records any one handle had out at
    /// once (acquired through it and not yet released through it, tracked on the handle's own
    /// line), capped at `records_created`. Exact with one handle. With several it can be below
    /// the true peak (handles' peaks at different instants do not add up) or, when records are
    /// released through another thread's handle than the one that acquired them, above it.
    pub high_water: u64,
    /// The most records the pool may create.
    pub max_records: u64,
}

impl PoolStats {
    /// All acquires.
    pub fn acquires(&self) -> u64 {
        self.hits() + self.misses
    }

    /// Acquires served without an allocator call.
    pub fn hits(&self) -> u64 {
        self.local_hits + self.shared_hits
    }

    /// `hits / acquires` (0 before the first acquire).
    pub fn hit_rate(&self) -> f64 {
        ratio(self.hits(), self.acquires())
    }

    /// `in_use / records_created`: how much of what the pool created is in use now.
    pub fn utilization(&self) -> f64 {
        ratio(self.in_use, self.records_created)
    }

    /// `high_water / records_created`: how much of what the pool created was ever needed at once.
    pub fn peak_utilization(&self) -> f64 {
        ratio(self.high_water, self.records_created)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl fmt::Display for PoolStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "acquires {} (local hits {}, shared hits {}, misses/allocator calls {}; hit rate {:.4} %), \
             releases {}, in use {} of {} created (max {}), high water {} ({:.1} % of created)",
            self.acquires(),
            self.local_hits,
            self.shared_hits,
            self.misses,
            100.0 * self.hit_rate(),
            self.releases,
            self.in_use,
            self.records_created,
            self.max_records,
            self.high_water,
            100.0 * self.peak_utilization(),
        )
    }
}

/// The counters of one [`PoolHandle`](super::PoolHandle): written only by the thread that owns
/// the handle (a load and a store, no read-modify-write, on a line no other thread writes), read
/// by [`PoolCounters::snapshot`].
#[derive(Debug, Default)]
pub(crate) struct HandleCounters {
    local_hits: AtomicU64,
    shared_hits: AtomicU64,
    misses: AtomicU64,
    releases: AtomicU64,
    /// The most records this handle had out at once (its acquires minus its releases).
    peak: AtomicU64,
}

/// Where an acquire was served from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Served {
    Local,
    Shared,
    NewSlab,
}

/// Adds one to a counter that only the calling thread writes.
#[inline(always)]
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl HandleCounters {
    pub(crate) fn acquired(&self, served: Served) {
        bump(match served {
            Served::Local => &self.local_hits,
            Served::Shared => &self.shared_hits,
            Served::NewSlab => &self.misses,
        });
    }

    pub(crate) fn released(&self) {
        bump(&self.releases);
    }

    /// Records that this handle has `out` records out now (a new peak only if it is one).
    #[inline(always)]
    pub(crate) fn out_now(&self, out: u64) {
        if out > self.peak.load(Ordering::Relaxed) {
            self.peak.store(out, Ordering::Relaxed);
        }
    }
}

/// Counts as plain numbers.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    local_hits: u64,
    shared_hits: u64,
    misses: u64,
    releases: u64,
}

impl Counts {
    fn add(&mut self, c: &HandleCounters) {
        self.local_hits += c.local_hits.load(Ordering::Relaxed);
        self.shared_hits += c.shared_hits.load(Ordering::Relaxed);
        self.misses += c.misses.load(Ordering::Relaxed);
        self.releases += c.releases.load(Ordering::Relaxed);
    }

    fn in_use(&self) -> u64 {
        (self.local_hits + self.shared_hits + self.misses).saturating_sub(self.releases)
    }
}

/// The pool's counters: one [`HandleCounters`] per live handle (merged on read), shared counters
/// for acquires and releases made without a handle and for handles that were dropped, and the
/// high-water mark.
#[derive(Debug, Default)]
pub(crate) struct PoolCounters {
    /// Live handles' counters. Locked when a handle is taken or dropped, on a miss, and on read.
    handles: Mutex<Vec<Arc<CachePadded<HandleCounters>>>>,
    /// Acquires/releases without a handle, plus the totals of dropped handles.
    shared: CachePadded<HandleCounters>,
    high_water: CachePadded<AtomicU64>,
}

impl PoolCounters {
    /// Counters for a new handle, registered so that reads include them.
    pub(crate) fn register(&self) -> Arc<CachePadded<HandleCounters>> {
        let c = Arc::new(CachePadded::new(HandleCounters::default()));
        self.lock().push(c.clone());
        c
    }

    /// Folds a dropped handle's counts into the shared counters and forgets it (one lock and
    /// four read-modify-writes per handle, at its end).
    pub(crate) fn retire(&self, c: &Arc<CachePadded<HandleCounters>>, records_created: u64) {
        let mut handles = self.lock();
        let fold = |from: &AtomicU64, to: &AtomicU64| {
            to.fetch_add(from.load(Ordering::Relaxed), Ordering::Relaxed);
        };
        fold(&c.local_hits, &self.shared.local_hits);
        fold(&c.shared_hits, &self.shared.shared_hits);
        fold(&c.misses, &self.shared.misses);
        fold(&c.releases, &self.shared.releases);
        self.high_water.fetch_max(
            c.peak.load(Ordering::Relaxed).min(records_created),
            Ordering::Relaxed,
        );
        handles.retain(|h| !Arc::ptr_eq(h, c));
    }

    /// An acquire without a handle (read-modify-write on the shared counters).
    pub(crate) fn acquired_shared(&self, served: Served) {
        let c = match served {
            Served::Local => &self.shared.local_hits,
            Served::Shared => &self.shared.shared_hits,
            Served::NewSlab => &self.shared.misses,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A release without a handle.
    pub(crate) fn released_shared(&self) {
        self.shared.releases.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the in-use count now as a high-water candidate (called after a miss: a slab is
    /// carved when demand outgrows what is free, the moments that set new peaks).
    pub(crate) fn observe_peak(&self) {
        let in_use = self.counts().in_use();
        self.high_water.fetch_max(in_use, Ordering::Relaxed);
    }

    fn lock(&self) -> impl std::ops::DerefMut<Target = Vec<Arc<CachePadded<HandleCounters>>>> + '_ {
        self.handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The merged counts, and the largest peak of a live handle.
    fn counts_and_peak(&self) -> (Counts, u64) {
        let handles = self.lock();
        let mut counts = Counts::default();
        counts.add(&self.shared);
        let mut peak = 0;
        for h in handles.iter() {
            counts.add(h);
            peak = peak.max(h.peak.load(Ordering::Relaxed));
        }
        (counts, peak)
    }

    fn counts(&self) -> Counts {
        self.counts_and_peak().0
    }

    pub(crate) fn snapshot(&self, records_created: u64, max_records: u64) -> PoolStats {
        let (c, handle_peak) = self.counts_and_peak();
        let in_use = c.in_use();
        let seen = in_use.max(handle_peak).min(records_created);
        let high_water = self.high_water.fetch_max(seen, Ordering::Relaxed).max(seen);
        PoolStats {
            local_hits: c.local_hits,
            shared_hits: c.shared_hits,
            misses: c.misses,
            releases: c.releases,
            records_created,
            in_use,
            high_water,
            max_records,
        }
    }
}
