//! Model checks (loom) of the alloc module's own atomics: the arena's bump pointer and the pool's
//! record reservation. Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --lib
//! --release loom`. Each model creates a fresh arena (one small mmap) per explored interleaving.

use std::alloc::Layout;

use loom::sync::Arc;
use loom::thread;

use super::{AllocError, NodeArena, PoolConfig, RecordPool, Reset};

#[test]
fn concurrent_bump_allocations_never_overlap_and_account_for_every_byte() {
    loom::model(|| {
        let arena =
            Arc::new(NodeArena::on_node(super::first_allowed_node().expect("node"), 4096).expect("arena"));
        let layout = Layout::from_size_align(24, 8).expect("layout");
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let arena = arena.clone();
                thread::spawn(move || {
                    (0..2)
                        .map(|_| arena.alloc(layout).expect("fits").as_ptr() as usize)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut starts = vec![arena.alloc(layout).expect("fits").as_ptr() as usize];
        for w in workers {
            starts.extend(w.join().expect("worker"));
        }
        starts.sort_unstable();
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] >= 24, "overlap: {starts:?}");
        }
        assert_eq!(arena.used(), 5 * 24);
    });
}

#[test]
fn of_two_racers_for_the_last_space_exactly_one_wins() {
    loom::model(|| {
        let arena =
            Arc::new(NodeArena::on_node(super::first_allowed_node().expect("node"), 4096).expect("arena"));
        let big = Layout::from_size_align(3000, 8).expect("layout");
        let other = {
            let arena = arena.clone();
            thread::spawn(move || arena.alloc(big).is_ok())
        };
        let mine = arena.alloc(big);
        let theirs = other.join().expect("racer");
        assert!(mine.is_ok() != theirs, "exactly one fits");
        if let Err(e) = mine {
            assert!(matches!(e, AllocError::ArenaFull { .. }), "{e}");
        }
        assert_eq!(arena.used(), 3000);
    });
}

#[derive(Default)]
struct Cell(u64);

impl Reset for Cell {
    fn reset(&mut self) {
        self.0 = 0;
    }
}

#[test]
fn racing_acquires_never_create_more_than_max_records_or_share_one() {
    loom::model(|| {
        let arena = std::sync::Arc::new(
            NodeArena::on_node(super::first_allowed_node().expect("node"), 4096).expect("arena"),
        );
        let config = PoolConfig {
            max_records: 4,
            slab_records: 2,
            local_cache: 1,
        };
        let pool = Arc::new(RecordPool::<Cell>::new(arena, config).expect("pool"));
        let other = {
            let pool = pool.clone();
            thread::spawn(move || {
                let r = pool.acquire();
                let addr = r.as_ref().ok().map(|r| r.as_ptr() as usize);
                // Hold it until the join, so both threads' records are out at once.
                std::mem::forget(r);
                addr
            })
        };
        let mine = pool.acquire().ok().map(|r| {
            let addr = r.as_ptr() as usize;
            std::mem::forget(r);
            addr
        });
        let theirs = other.join().expect("other");
        let s = pool.stats();
        assert!(s.records_created <= 4);
        if let (Some(a), Some(b)) = (mine, theirs) {
            assert_ne!(a, b, "one record handed to both threads");
        }
        let handed_out = mine.is_some() as u64 + theirs.is_some() as u64;
        assert_eq!(s.acquires(), handed_out);
        assert_eq!(s.in_use, handed_out);
        assert_eq!(s.hits() + s.misses, s.acquires());
    });
}

#[test]
fn handle_counters_merge_exactly_while_another_thread_reads() {
    loom::model(|| {
        let arena = std::sync::Arc::new(
            NodeArena::on_node(super::first_allowed_node().expect("node"), 4096).expect("arena"),
        );
        let config = PoolConfig {
            max_records: 4,
            slab_records: 2,
            local_cache: 1,
        };
        let pool = Arc::new(RecordPool::<Cell>::new(arena, config).expect("pool"));
        let worker = {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut h = pool.handle();
                let r = h.acquire().expect("acquire");
                h.release(r);
                let r = h.acquire().expect("acquire");
                h.release(r);
            })
        };
        // A read racing with the handle's counting and its retirement (into the shared
        // counters, under the registry lock) never counts anything twice.
        let s = pool.stats();
        assert!(s.acquires() <= 2 && s.releases <= 2 && s.misses <= 1, "{s}");
        worker.join().expect("worker");
        let s = pool.stats();
        assert_eq!((s.acquires(), s.releases, s.in_use, s.misses), (2, 2, 0, 1));
    });
}
