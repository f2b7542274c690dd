//! [`RecordPool`]: fixed-size records from a [`NodeArena`], recycled through per-thread caches in
//! front of a shared lock-free free list.
//!
//! ## Model
//! ```text
//!   thread A: PoolHandle ──┐  (Vec of free records, no atomics)       acquire: 1. own cache
//!   thread B: PoolHandle ──┼─> shared free list (crossbeam ArrayQueue)          2. shared list (a batch)
//!   thread C: PoolHandle ──┘          │                                         3. carve a slab (miss)
//!                                     └─< slabs carved from the NodeArena (bump allocation)
//! ```
//! A record is created once, when its slab is carved (`T::default()`), and then lives until the
//! pool is dropped; releasing it calls [`Reset::reset`] and puts it back in a cache, so the hot
//! path never calls an allocator. Only a *miss* — every cache and the shared list empty — carves
//! a new slab of `slab_records` records from the arena: that is the pool's real allocator call,
//! counted in [`PoolStats::misses`].
//!
//! Each thread that acquires often takes a [`PoolHandle`] (not `Send`: it is that thread's
//! cache). A handle keeps at most `2 × local_cache` free records; past that it moves
//! `local_cache` of them to the shared list, and it refills from the shared list in batches of
//! up to `local_cache / 2`, so records flow between threads without a lock. A [`Record`] may be
//! sent to another thread and released there; one dropped without [`PoolHandle::release`] goes
//! straight to the shared list.
//!
//! The shared list is a bounded `ArrayQueue` sized to `max_records`: every record the pool may
//! create fits, so a push never fails and the queue never allocates after construction.

use std::alloc::Layout;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crossbeam::queue::ArrayQueue;
use crossbeam::utils::CachePadded;
use serde::Serialize;

use super::arena::NodeArena;
use super::error::AllocError;
use super::stats::{HandleCounters, PoolCounters, PoolStats, Served};
use crate::sync::AtomicUsize;

/// A record a [`RecordPool`] can hold: created with `Default`, made like new again with
/// [`Reset::reset`] when released.
pub trait Reset: Default + Send {
    /// Clears the record for its next user (a release calls it).
    fn reset(&mut self);
}

/// Sizes of a [`RecordPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PoolConfig {
    /// The most records the pool may create; also the shared list's capacity.
    pub max_records: usize,
    /// Records carved per arena allocation (one miss).
    pub slab_records: usize,
    /// A handle's target cache size (it holds up to twice this many).
    pub local_cache: usize,
}

impl PoolConfig {
    /// `max_records` records, with slabs and caches of 64. (64: a guess, to be tuned by the
    /// `pool` bench; it keeps a miss rare while a cache holds only a few KiB of small records.)
    pub fn with_max_records(max_records: usize) -> Self {
        Self {
            max_records,
            slab_records: 64,
            local_cache: 64,
        }
    }
}

/// A record's address, movable between threads (the pool hands each record to one owner at a
/// time).
struct Slot<T>(NonNull<T>);

// SAFETY: a `Slot` stands for exclusive ownership of one `T` (a free record, or the record a
// `Record` guard owns); moving it to another thread moves that `T`, which is fine for `T: Send`.
unsafe impl<T: Send> Send for Slot<T> {}

/// A pool of fixed-size records of type `T`, with memory from a [`NodeArena`]. See the module
/// docs.
pub struct RecordPool<T: Reset> {
    arena: Arc<NodeArena>,
    config: PoolConfig,
    shared: ArrayQueue<Slot<T>>,
    /// Every slab carved: its first record and length. Locked only on a miss and on drop.
    slabs: Mutex<Vec<(Slot<T>, usize)>>,
    created: AtomicUsize,
    counters: PoolCounters,
}

impl<T: Reset> RecordPool<T> {
    /// A pool drawing its slabs from `arena`.
    ///
    /// # Errors
    /// [`AllocError::InvalidInput`] if `T` is zero-sized or a size in `config` is zero.
    pub fn new(arena: Arc<NodeArena>, config: PoolConfig) -> Result<Self, AllocError> {
        if size_of::<T>() == 0 {
            return Err(AllocError::InvalidInput {
                what: "record pools need a non-zero-sized record type".into(),
            });
        }
        if config.max_records == 0 || config.slab_records == 0 || config.local_cache == 0 {
            return Err(AllocError::InvalidInput {
                what: format!("pool sizes must be > 0: {config:?}"),
            });
        }
        Ok(Self {
            arena,
            config,
            shared: ArrayQueue::new(config.max_records),
            slabs: Mutex::new(Vec::new()),
            created: AtomicUsize::new(0),
            counters: PoolCounters::default(),
        })
    }

    /// A cache for the calling thread. Take one per thread that acquires often, and keep it.
    pub fn handle(&self) -> PoolHandle<'_, T> {
        PoolHandle {
            pool: self,
            free: Vec::with_capacity(2 * self.config.local_cache),
            counters: self.counters.register(),
            out: 0,
        }
    }

    /// Acquires a record without a thread cache (shared list, else a new slab, whose spare
    /// records go to the shared list).
    ///
    /// # Errors
    /// As [`PoolHandle::acquire`].
    pub fn acquire(&self) -> Result<Record<'_, T>, AllocError> {
        if let Some(slot) = self.shared.pop() {
            self.counters.acquired_shared(Served::Shared);
            return Ok(Record {
                pool: self,
                ptr: slot.0,
            });
        }
        let (first, count) = self.carve()?;
        for i in 1..count {
            // SAFETY: `i < count`, inside the slab just carved.
            self.push_shared(Slot(unsafe { first.add(i) }));
        }
        self.counters.acquired_shared(Served::NewSlab);
        self.counters.observe_peak();
        Ok(Record {
            pool: self,
            ptr: first,
        })
    }

    /// The pool's counters now.
    pub fn stats(&self) -> PoolStats {
        self.counters.snapshot(
            self.created.load(Ordering::Relaxed) as u64,
            self.config.max_records as u64,
        )
    }

    /// Records waiting in the shared free list.
    pub fn shared_free(&self) -> usize {
        self.shared.len()
    }

    /// The pool's sizes.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The arena the records live in.
    pub fn arena(&self) -> &Arc<NodeArena> {
        &self.arena
    }

    fn push_shared(&self, slot: Slot<T>) {
        if self.shared.push(slot).is_err() {
            // At most `max_records` records exist and the queue holds `max_records`.
            unreachable!("record pool shared list overflow: more records than max_records");
        }
    }

    /// Resets a record and returns it to the shared list.
    fn release_shared(&self, ptr: NonNull<T>) {
        // SAFETY: `ptr` came from a `Record`, the only owner of this initialized `T`.
        unsafe { (*ptr.as_ptr()).reset() };
        self.counters.released_shared();
        self.push_shared(Slot(ptr));
    }

    /// Carves a new slab from the arena: the pool's one allocator call. Returns its first
    /// record and its length.
    fn carve(&self) -> Result<(NonNull<T>, usize), AllocError> {
        let max = self.config.max_records;
        let slab = self.config.slab_records;
        let before = self
            .created
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                (c < max).then(|| c + slab.min(max - c))
            })
            .map_err(|_| AllocError::PoolExhausted { max_records: max })?;
        let count = slab.min(max - before);
        let layout = Layout::array::<T>(count).map_err(|_| AllocError::InvalidInput {
            what: format!("slab of {count} records of {} bytes overflows", size_of::<T>()),
        });
        let ptr = match layout.and_then(|l| self.arena.alloc(l)) {
            Ok(p) => p.cast::<T>(),
            Err(e) => {
                self.created.fetch_sub(count, Ordering::Relaxed);
                return Err(e);
            }
        };
        for i in 0..count {
            // SAFETY: the chunk is aligned for `T` and holds `count` of them, and is ours alone
            // (the arena hands each chunk out once).
            unsafe { ptr.as_ptr().add(i).write(T::default()) };
        }
        self.slabs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((Slot(ptr), count));
        Ok((ptr, count))
    }
}

impl<T: Reset> Drop for RecordPool<T> {
    fn drop(&mut self) {
        let slabs = std::mem::take(
            self.slabs
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for (Slot(ptr), count) in slabs {
            // SAFETY: every record of every registered slab was initialized when carved and is
            // always a valid `T` (reset in place, never moved out); no `Record` or `PoolHandle`
            // outlives the pool (they borrow it), so nothing uses these records any more.
            unsafe { std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(ptr.as_ptr(), count)) };
        }
    }
}

impl<T: Reset> std::fmt::Debug for RecordPool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordPool")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// One thread's cache in front of a [`RecordPool`]. Not `Send`: it belongs to the thread that
/// took it. Dropping it returns its free records to the shared list.
pub struct PoolHandle<'p, T: Reset> {
    pool: &'p RecordPool<T>,
    /// Free records (LIFO: the most recently released is the warmest in cache).
    free: Vec<NonNull<T>>,
    /// This handle's statistics (written by this thread only, merged by `RecordPool::stats`).
    counters: Arc<CachePadded<HandleCounters>>,
    /// Records acquired through this handle minus records released through it.
    out: i64,
}

impl<'p, T: Reset> PoolHandle<'p, T> {
    /// Acquires a record: from this thread's cache, else a batch from the shared list, else a new
    /// slab from the arena (a miss).
    ///
    /// # Errors
    /// [`AllocError::PoolExhausted`] if `max_records` are created and none is free here or in
    /// the shared list (in use, in other threads' caches, or in a slab another thread is
    /// carving right now: near the limit that race can refuse an acquire a moment early);
    /// [`AllocError::ArenaFull`] if the arena has no room for another slab.
    pub fn acquire(&mut self) -> Result<Record<'p, T>, AllocError> {
        let record = self.acquire_record()?;
        self.out += 1;
        if let Ok(out) = u64::try_from(self.out) {
            self.counters.out_now(out);
        }
        Ok(record)
    }

    fn acquire_record(&mut self) -> Result<Record<'p, T>, AllocError> {
        let pool = self.pool;
        if let Some(ptr) = self.free.pop() {
            self.counters.acquired(Served::Local);
            return Ok(Record { pool, ptr });
        }
        if let Some(Slot(ptr)) = pool.shared.pop() {
            let batch = (pool.config.local_cache / 2).max(1);
            for _ in 1..batch {
                match pool.shared.pop() {
                    Some(Slot(p)) => self.free.push(p),
                    None => break,
                }
            }
            self.counters.acquired(Served::Shared);
            return Ok(Record { pool, ptr });
        }
        let (first, count) = pool.carve()?;
        let room = 2 * pool.config.local_cache;
        for i in 1..count {
            // SAFETY: `i < count`, inside the slab just carved.
            let p = unsafe { first.add(i) };
            if self.free.len() < room {
                self.free.push(p);
            } else {
                pool.push_shared(Slot(p));
            }
        }
        self.counters.acquired(Served::NewSlab);
        pool.counters.observe_peak();
        Ok(Record { pool, ptr: first })
    }

    /// Resets `record` and keeps it in this thread's cache (moving half the cache to the shared
    /// list when it is full). A record of another pool goes back to its own pool.
    pub fn release(&mut self, record: Record<'_, T>) {
        let record = std::mem::ManuallyDrop::new(record);
        if !std::ptr::eq(record.pool, self.pool) {
            record.pool.release_shared(record.ptr);
            return;
        }
        // SAFETY: the guard owned this initialized record, and is consumed.
        unsafe { (*record.ptr.as_ptr()).reset() };
        self.counters.released();
        self.out -= 1;
        if self.free.len() >= 2 * self.pool.config.local_cache {
            let keep = self.free.len() - self.pool.config.local_cache;
            for p in self.free.drain(keep..) {
                self.pool.push_shared(Slot(p));
            }
        }
        self.free.push(record.ptr);
    }

    /// Free records in this thread's cache.
    pub fn cached(&self) -> usize {
        self.free.len()
    }
}

impl<T: Reset> Drop for PoolHandle<'_, T> {
    fn drop(&mut self) {
        let created = self.pool.created.load(Ordering::Relaxed) as u64;
        self.pool.counters.retire(&self.counters, created);
        for p in self.free.drain(..) {
            self.pool.push_shared(Slot(p));
        }
    }
}

/// A record on loan from a [`RecordPool`]: dereferences to `T`. Give it back with
/// [`PoolHandle::release`]; dropped, it goes to the pool's shared list (also reset).
pub struct Record<'p, T: Reset> {
    pool: &'p RecordPool<T>,
    ptr: NonNull<T>,
}

// SAFETY: a `Record` is the only owner of its `T` while it exists; sending it sends the `T`, and
// the pool reference it carries is to a `Sync` pool (its shared state is atomics, the lock-free
// queue and a mutex).
unsafe impl<T: Reset> Send for Record<'_, T> {}
// SAFETY: `&Record` gives only `&T`.
unsafe impl<T: Reset + Sync> Sync for Record<'_, T> {}

impl<T: Reset> Record<'_, T> {
    /// The record's address (stable for the pool's life; for placement checks).
    pub fn as_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }
}

impl<T: Reset> Deref for Record<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the record is initialized and this guard owns it exclusively.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Reset> DerefMut for Record<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T: Reset> Drop for Record<'_, T> {
    fn drop(&mut self) {
        self.pool.release_shared(self.ptr);
    }
}

impl<T: Reset + std::fmt::Debug> std::fmt::Debug for Record<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Record").field(&**self).finish()
    }
}

#[cfg(test)]
/// Pure-memory tests (under Miri the arena is plain anonymous memory, see `alloc/mod.rs`), named
/// `miri_*` so that `cargo +nightly miri test --lib miri_` selects them.
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[derive(Default, Debug)]
    struct Activation {
        node: u64,
        energy: f32,
        resets: u32,
    }

    impl Reset for Activation {
        fn reset(&mut self) {
            self.node = 0;
            self.energy = 0.0;
            self.resets += 1;
        }
    }

    fn pool(max: usize, slab: usize, cache: usize) -> RecordPool<Activation> {
        let arena =
            Arc::new(NodeArena::on_node(crate::alloc::first_allowed_node().unwrap(), 1 << 20).unwrap());
        let config = PoolConfig {
            max_records: max,
            slab_records: slab,
            local_cache: cache,
        };
        RecordPool::new(arena, config).unwrap()
    }

    #[test]
    fn miri_release_resets_and_the_next_acquire_reuses_without_allocating() {
        let p = pool(100, 8, 4);
        let mut h = p.handle();
        let mut r = h.acquire().unwrap();
        r.node = 42;
        r.energy = 1.5;
        let addr = r.as_ptr();
        h.release(r);
        let r = h.acquire().unwrap();
        assert_eq!(r.as_ptr(), addr, "LIFO cache hands back the warmest record");
        assert_eq!((r.node, r.energy, r.resets), (0, 0.0, 1));
        h.release(r);
        let s = p.stats();
        assert_eq!((s.misses, s.local_hits, s.shared_hits), (1, 1, 0));
        assert_eq!((s.acquires(), s.releases, s.in_use, s.high_water), (2, 2, 0, 1));
        assert_eq!(s.records_created, 8);
        assert!(arena_has_slab(&p, addr));
    }

    fn arena_has_slab(p: &RecordPool<Activation>, addr: *const Activation) -> bool {
        let slabs = p.slabs.lock().unwrap();
        slabs.iter().any(|(Slot(first), n)| {
            let start = first.as_ptr() as usize;
            (start..start + n * size_of::<Activation>()).contains(&(addr as usize))
        })
    }

    /// The high-water mark of one handle is exact although a batch is served from the cache
    /// with no miss (it is tracked by the handle, not by a shared counter).
    #[test]
    fn miri_high_water_of_one_handle_is_exact_without_misses() {
        let p = pool(64, 16, 16);
        let mut h = p.handle();
        let warm: Vec<_> = (0..16).map(|_| h.acquire().unwrap()).collect();
        warm.into_iter().for_each(|r| h.release(r));
        let misses = p.stats().misses;
        for _ in 0..3 {
            let batch: Vec<_> = (0..12).map(|_| h.acquire().unwrap()).collect();
            batch.into_iter().for_each(|r| h.release(r));
        }
        let s = p.stats();
        assert_eq!(s.misses, misses, "the batches came from the cache");
        assert_eq!((s.in_use, s.high_water), (0, 16));
        drop(h);
        assert_eq!(p.stats().high_water, 16, "kept after the handle is dropped");
    }

    #[test]
    fn miri_stats_add_up_and_the_pool_runs_out_at_its_limit() {
        let p = pool(20, 8, 4);
        let mut h = p.handle();
        let held: Vec<_> = (0..20).map(|_| h.acquire().unwrap()).collect();
        assert!(matches!(
            h.acquire(),
            Err(AllocError::PoolExhausted { max_records: 20 })
        ));
        let s = p.stats();
        // Slabs of 8, 8 and the last 4 that fit under 20.
        assert_eq!(
            (s.misses, s.records_created, s.in_use, s.high_water),
            (3, 20, 20, 20)
        );
        assert_eq!(s.acquires(), 20);
        assert!((s.utilization() - 1.0).abs() < 1e-9);
        for r in held {
            h.release(r);
        }
        drop(h);
        let s = p.stats();
        assert_eq!((s.releases, s.in_use), (20, 0));
        assert_eq!(p.shared_free(), 20, "every record is back");
        assert_eq!(s.utilization(), 0.0);
    }

    #[test]
    fn miri_a_full_cache_spills_to_the_shared_list_and_other_threads_take_from_it() {
        let p = pool(64, 32, 4);
        let mut h = p.handle();
        let held: Vec<_> = (0..12).map(|_| h.acquire().unwrap()).collect();
        // One slab of 32: 31 spare, 8 fit in the cache (2 x 4), 23 went to the shared list, then
        // 11 acquires drained the cache and refilled it from the shared list in batches of 2.
        assert_eq!(p.stats().misses, 1);
        for r in held {
            h.release(r);
        }
        assert!(h.cached() <= 8);
        drop(h);
        assert_eq!(p.shared_free(), 32, "dropping the handle returned its cache");
        let resets: u32 = std::thread::scope(|s| {
            s.spawn(|| {
                let mut other = p.handle();
                let all: Vec<_> = (0..32).map(|_| other.acquire().unwrap()).collect();
                all.iter().map(|r| r.resets).sum()
            })
            .join()
            .unwrap()
        });
        assert_eq!(resets, 12, "the 12 released records reached the other thread");
        assert_eq!(p.stats().misses, 1, "no new slab: records moved between threads");
        assert!(p.stats().shared_hits >= 1);
    }

    #[test]
    fn miri_dropped_records_go_back_and_records_of_another_pool_go_home() {
        let p = pool(16, 4, 2);
        let q = pool(16, 4, 2);
        let r = p.acquire().unwrap();
        drop(r);
        assert_eq!(p.stats().in_use, 0);
        assert_eq!(p.shared_free(), 4);
        let mut hq = q.handle();
        let r = p.acquire().unwrap();
        hq.release(r);
        assert_eq!((p.stats().in_use, p.shared_free(), hq.cached()), (0, 4, 0));
    }

    #[test]
    fn miri_bad_configs_and_zero_sized_records_are_refused() {
        #[derive(Default)]
        struct Empty;
        impl Reset for Empty {
            fn reset(&mut self) {}
        }
        let arena =
            Arc::new(NodeArena::on_node(crate::alloc::first_allowed_node().unwrap(), 1 << 16).unwrap());
        assert!(matches!(
            RecordPool::<Empty>::new(arena.clone(), PoolConfig::with_max_records(4)),
            Err(AllocError::InvalidInput { .. })
        ));
        let zero = PoolConfig {
            slab_records: 0,
            ..PoolConfig::with_max_records(4)
        };
        assert!(matches!(
            RecordPool::<Activation>::new(arena, zero),
            Err(AllocError::InvalidInput { .. })
        ));
    }

    #[test]
    fn miri_a_full_arena_is_reported_and_loses_no_capacity() {
        let arena = Arc::new(NodeArena::on_node(crate::alloc::first_allowed_node().unwrap(), 4096).unwrap());
        #[derive(Default)]
        struct Big(#[allow(dead_code)] [[u64; 32]; 2]);
        impl Reset for Big {
            fn reset(&mut self) {}
        }
        let p: RecordPool<Big> = RecordPool::new(arena, PoolConfig::with_max_records(1000)).unwrap();
        // 512-byte records, 64 per slab: a slab needs 32 KiB, the arena has 4 KiB.
        assert!(matches!(p.acquire(), Err(AllocError::ArenaFull { .. })));
        assert_eq!(p.stats().records_created, 0);
    }

    #[test]
    fn miri_dropping_the_pool_drops_every_record() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        #[derive(Default)]
        struct Counted(#[allow(dead_code)] Vec<u8>);
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::Relaxed);
            }
        }
        impl Reset for Counted {
            fn reset(&mut self) {
                self.0.clear();
            }
        }
        let arena =
            Arc::new(NodeArena::on_node(crate::alloc::first_allowed_node().unwrap(), 1 << 16).unwrap());
        let p = RecordPool::<Counted>::new(arena, PoolConfig::with_max_records(10)).unwrap();
        let mut h = p.handle();
        let mut r = h.acquire().unwrap();
        r.0.extend_from_slice(b"heap data the record owns");
        h.release(r);
        drop(h);
        drop(p);
        assert_eq!(DROPS.load(Ordering::Relaxed), 10);
    }
}
