//! Many threads acquiring and releasing records of one pool at once: no record is lost, none is
//! handed out twice, and the statistics add up.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use locus::alloc::{NodeArena, PoolConfig, RecordPool, Reset};

/// A record that knows whether it is on loan: acquiring one already on loan is a double hand-out.
#[derive(Default)]
struct Probe {
    on_loan: AtomicBool,
    owner: u64,
    payload: [u64; 6],
}

impl Reset for Probe {
    fn reset(&mut self) {
        self.owner = 0;
        self.payload = [0; 6];
    }
}

/// The first memory node this process may use: node 0 can be outside its cpuset. (On a kernel
/// without NUMA support the question has no answer, and node 0 is the only node.)
fn first_allowed_node() -> u32 {
    locus::alloc::allowed_memory_nodes()
        .ok()
        .and_then(|nodes| nodes.first())
        .unwrap_or(0)
}

const THREADS: usize = 8;
const ROUNDS: usize = 20_000;

#[test]
fn concurrent_acquire_release_loses_nothing_and_never_hands_out_twice() {
    let arena = Arc::new(NodeArena::on_node(first_allowed_node(), 8 << 20).expect("arena"));
    // Small caches and slabs so records cross threads through the shared list often.
    let config = PoolConfig {
        max_records: 4096,
        slab_records: 16,
        local_cache: 8,
    };
    let pool = RecordPool::<Probe>::new(arena, config).expect("pool");
    let releases_by_other_thread = AtomicU64::new(0);
    let (tx, rx) = crossbeam::channel::bounded(64);
    let seen: Vec<HashSet<usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let pool = &pool;
                let tx = tx.clone();
                let rx = rx.clone();
                let others = &releases_by_other_thread;
                s.spawn(move || {
                    let me = t as u64 + 1;
                    let mut h = pool.handle();
                    let mut held = Vec::new();
                    let mut seen = HashSet::new();
                    for round in 0..ROUNDS {
                        // Hold a varying number of records (1..=24) to move the high-water mark.
                        let want = 1 + (round * 7 + t) % 24;
                        while held.len() < want {
                            let mut r = h.acquire().expect("acquire");
                            assert!(!r.on_loan.swap(true, Ordering::AcqRel), "record handed out twice");
                            assert_eq!((r.owner, r.payload), (0, [0; 6]), "record not reset");
                            r.owner = me;
                            r.payload = [me; 6];
                            seen.insert(r.as_ptr() as usize);
                            held.push(r);
                        }
                        while held.len() > want / 2 {
                            let r = held.pop().expect("held");
                            assert_eq!(
                                (r.owner, r.payload),
                                (me, [me; 6]),
                                "someone else wrote my record"
                            );
                            // Now and then send a record to another thread to release.
                            if round % 5 == 0 {
                                if let Err(e) = tx.try_send(r) {
                                    let r = e.into_inner();
                                    r.on_loan.store(false, Ordering::Release);
                                    h.release(r);
                                }
                            } else {
                                r.on_loan.store(false, Ordering::Release);
                                h.release(r);
                            }
                        }
                        while let Ok(r) = rx.try_recv() {
                            assert!(r.owner != 0);
                            r.on_loan.store(false, Ordering::Release);
                            others.fetch_add(1, Ordering::Relaxed);
                            h.release(r);
                        }
                    }
                    for r in held {
                        r.on_loan.store(false, Ordering::Release);
                        h.release(r);
                    }
                    seen
                })
            })
            .collect();
        drop(tx);
        let seen = handles.into_iter().map(|h| h.join().expect("worker")).collect();
        // Records still in flight in the channel: release them (dropping goes to the shared list).
        while let Ok(r) = rx.try_recv() {
            r.on_loan.store(false, Ordering::Release);
            drop(r);
        }
        seen
    });

    let s = pool.stats();
    println!("{s}");
    println!(
        "released by another thread: {}",
        releases_by_other_thread.load(Ordering::Relaxed)
    );
    assert_eq!(s.in_use, 0);
    assert_eq!(s.acquires(), s.releases, "every acquire was released once");
    assert_eq!(s.hits() + s.misses, s.acquires());
    assert_eq!(pool.shared_free() as u64, s.records_created, "no record lost");
    assert_eq!(
        s.records_created,
        s.misses * 16,
        "each miss carved one slab of 16"
    );
    assert!(s.high_water <= s.records_created && s.high_water >= 24);
    let distinct: HashSet<usize> = seen.into_iter().flatten().collect();
    assert!(distinct.len() as u64 <= s.records_created);
    assert!(s.hit_rate() > 0.9, "records were recycled: {s}");
}
