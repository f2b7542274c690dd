//! Statistics of a [`RecordPool`](super::RecordPool): counted on the hot path with relaxed
//! atomics, each on its own 128-byte line so that threads counting different things do not
//! false-share; read as a [`PoolStats`] snapshot.

use std::fmt;
use std::sync::atomic::Ordering;

use crossbeam::utils::CachePadded;
use serde::Serialize;

use crate::sync::AtomicU64;

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
    /// The largest `in_use` seen.
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

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct PoolCounters {
    local_hits: CachePadded<AtomicU64>,
    shared_hits: CachePadded<AtomicU64>,
    misses: CachePadded<AtomicU64>,
    releases: CachePadded<AtomicU64>,
    in_use: CachePadded<AtomicU64>,
    high_water: CachePadded<AtomicU64>,
}

/// Where an acquire was served from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Served {
    Local,
    Shared,
    NewSlab,
}

impl PoolCounters {
    pub(crate) fn acquired(&self, served: Served) {
        let counter = match served {
            Served::Local => &self.local_hits,
            Served::Shared => &self.shared_hits,
            Served::NewSlab => &self.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let now = self.in_use.fetch_add(1, Ordering::Relaxed) + 1;
        // Read before the read-modify-write: the high-water mark rarely moves.
        if now > self.high_water.load(Ordering::Relaxed) {
            self.high_water.fetch_max(now, Ordering::Relaxed);
        }
    }

    pub(crate) fn released(&self) {
        self.releases.fetch_add(1, Ordering::Relaxed);
        self.in_use.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, records_created: u64, max_records: u64) -> PoolStats {
        PoolStats {
            local_hits: self.local_hits.load(Ordering::Relaxed),
            shared_hits: self.shared_hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            releases: self.releases.load(Ordering::Relaxed),
            records_created,
            in_use: self.in_use.load(Ordering::Relaxed),
            high_water: self.high_water.load(Ordering::Relaxed),
            max_records,
        }
    }
}
