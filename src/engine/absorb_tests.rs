//! Tests of parallel and yielding absorption through a one-shard engine (the shard's
//! `absorb_until` driven from test threads, as if by its workers).

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::engine::{AdmissionLimits, AssociationParams, Cue, Engine, Episode, IndexParams, ShardCount};

use crate::rng::test_vector as vector;

/// Two absorbers link one space's buffer at once (the engine's own absorption is off, so
/// these two threads are the only ones), across segment rollovers, while a third thread
/// observes and checks read-your-writes; afterwards every episode is indexed and found.
#[test]
fn two_absorbers_at_once_lose_nothing_and_recall_misses_nothing() {
    let dim = 16;
    let engine = Engine::builder()
        .dimension(dim)
        .shards(ShardCount::Exactly(1))
        .index(IndexParams {
            segment_capacity: 256,
            absorb_batch: 4,
            ef_search: 128,
            ..IndexParams::default()
        })
        .associations(AssociationParams {
            similar: 2,
            min_similarity: -1.0,
            max_episodes_per_shard: 1 << 12,
            ..AssociationParams::default()
        })
        .pin_workers(false)
        .open()
        .unwrap();
    engine.set_absorption(false);
    let (before, during) = (600u64, 400u64);
    for i in 0..before {
        engine.observe(Episode::new(vector(i, dim)).with_id(i)).unwrap();
    }
    let eng = &*engine.inner;
    let sh = &eng.shard(0);
    let start = Barrier::new(3);
    let observing = AtomicBool::new(true);
    let batches: Vec<usize> = std::thread::scope(|s| {
        let absorbers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let mut n = 0;
                    loop {
                        let more = sh.absorb(0).unwrap();
                        n += 1;
                        if !more && !observing.load(Ordering::Acquire) && !sh.spaces[0].has_unclaimed() {
                            return n;
                        }
                    }
                })
            })
            .collect();
        start.wait();
        for i in before..before + during {
            let v = vector(i, dim);
            let id = engine.observe(Episode::new(v.clone()).with_id(i)).unwrap();
            let hits = engine.recall(&Cue::new(v, 3)).unwrap().hits;
            assert!(
                hits.iter().any(|h| h.id == id),
                "{id} not recalled after observe returned"
            );
        }
        observing.store(false, Ordering::Release);
        absorbers.into_iter().map(|a| a.join().unwrap()).collect()
    });
    assert!(
        batches.iter().all(|&n| n > 1),
        "both absorbers linked batches: {batches:?}"
    );
    let sp = &sh.spaces[0];
    let total = (before + during) as usize;
    assert_eq!(sp.len.load(Ordering::Acquire), total);
    assert_eq!(sp.absorbed(), total, "absorbed is the whole prefix");
    let segs = sp.segments();
    assert_eq!(segs.len(), total.div_ceil(256));
    assert_eq!(
        segs.iter().map(|s| s.index.len()).sum::<usize>(),
        total,
        "each slot linked once"
    );
    for i in 0..before + during {
        let r = engine.recall(&Cue::new(vector(i, dim), 3)).unwrap();
        assert_eq!(r.shards[0].scanned, 0, "nothing left in the buffer");
        assert!(r.hits.iter().any(|h| h.id.0 == i), "{i} not found in the index");
    }
    assert!(
        engine.stats().edges > 0,
        "the insertion walk gave similar associations"
    );
}

/// One shard with `workers` workers, `n` episodes in its append buffer, absorption off.
fn buffered_engine(dim: usize, n: u64, absorb_batch: usize, workers: usize) -> Engine {
    let engine = Engine::builder()
        .dimension(dim)
        .shards(ShardCount::Exactly(1))
        .workers_per_node(workers)
        .index(IndexParams {
            absorb_batch,
            ef_search: 128,
            ..IndexParams::default()
        })
        .admission(AdmissionLimits {
            max_unindexed: n as usize + 1,
            ..AdmissionLimits::default()
        })
        .pin_workers(false)
        .open()
        .unwrap();
    engine.set_absorption(false);
    for i in 0..n {
        engine.observe(Episode::new(vector(i, dim)).with_id(i)).unwrap();
    }
    engine
}

/// `absorb_until` asks only after an insert, stops at the first yes (counted), leaves no
/// claimed slot unlinked, and the next absorber goes on from there.
#[test]
fn absorb_until_stops_after_the_insert_in_hand_and_loses_nothing() {
    let dim = 16;
    let engine = buffered_engine(dim, 50, 8, 2);
    let eng = &*engine.inner;
    let sh = &eng.shard(0);
    let sp = &sh.spaces[0];
    let asked = std::cell::Cell::new(0);
    let more = sh
        .absorb_as_worker(0, || {
            asked.set(asked.get() + 1);
            true
        })
        .unwrap();
    assert!(more);
    assert_eq!(asked.get(), 1, "asked once, after the first insert");
    assert_eq!(sp.absorbed(), 1, "one insert, then it stopped");
    assert_eq!(sh.metrics.absorb_yields.get(), 1);
    assert!(sh.absorb(0).unwrap());
    assert_eq!(sp.absorbed(), 9, "a whole batch when nothing waits");
    while sh.absorb(0).unwrap() {}
    assert_eq!(sp.absorbed(), 50);
    assert_eq!(sp.segments()[0].index.len(), 50, "each slot linked once");
    assert_eq!(sh.metrics.absorb_yields.get(), 1);
    for i in 0..50 {
        let r = engine.recall(&Cue::new(vector(i, dim), 3)).unwrap();
        assert_eq!(r.shards[0].scanned, 0);
        assert!(r.hits.iter().any(|h| h.id.0 == i), "{i} not found in the index");
    }
}

/// One worker, in an absorption task that would link the whole buffer: a recall submitted
/// meanwhile runs after the insert in hand (so it still scans most of the buffer), not after
/// the buffer is absorbed (it would scan nothing). Ordering, not timing: the recall is sent
/// once the task has linked its first node.
#[test]
fn a_recall_waits_for_one_insert_of_absorption_not_a_whole_task() {
    let (dim, n) = (64, 4000u64);
    let engine = buffered_engine(dim, n, 1 << 20, 1);
    let sh = &engine.inner.shard(0);
    engine.set_absorption(true);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sh.spaces[0].segments()[0].index.is_empty() {
        assert!(std::time::Instant::now() < until, "absorption never started");
        std::thread::yield_now();
    }
    // A budget long enough that even a recall waiting for the whole task gets its answer.
    let cue = Cue::new(vector(7, dim), 3).with_budget(std::time::Duration::from_secs(120));
    let r = engine.recall(&cue).unwrap();
    assert!(!r.partial && r.hits.iter().any(|h| h.id.0 == 7));
    assert!(
        r.shards[0].scanned > n as usize / 2,
        "the recall ran after {} of {n} episodes were absorbed",
        n as usize - r.shards[0].scanned
    );
    assert!(
        sh.metrics.absorb_yields.get() >= 1,
        "the absorber stopped for the recall"
    );
    assert!(engine.wait_indexed(std::time::Duration::from_secs(120)));
    assert_eq!(sh.spaces[0].absorbed(), n as usize);
    assert_eq!(
        sh.spaces[0].segments()[0].index.len(),
        n as usize,
        "each slot linked once"
    );
}
