//! Record pool vs plain `Box` allocation: real allocator calls counted, time per acquire/release.
//!
//! The workload is spreading activation's: take a batch of 64 activation records, fill them,
//! give them all back; repeat. A counting `#[global_allocator]` counts every call into the
//! system allocator, and the pool's own arena refills (misses) and its one `mmap` are added, so
//! the pool's count is everything it asked of any allocator, from its creation on.
//!
//! Run: `cargo bench --bench pool -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use locus::alloc::{NodeArena, PoolConfig, RecordPool, Reset};

mod alloc_count;

#[global_allocator]
static GLOBAL: alloc_count::Counting = alloc_count::Counting;

/// A 64-byte activation record, as spreading activation keeps per visited node.
#[derive(Default, Clone)]
struct Activation {
    node: u64,
    energy: f32,
    hops: u32,
    path: [u64; 6],
}

impl Reset for Activation {
    fn reset(&mut self) {
        *self = Self::default();
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

const BATCH: usize = 64;
const COUNT_BATCHES: usize = 10_000;

fn fill(r: &mut Activation, i: usize) {
    r.node = i as u64;
    r.energy = i as f32 * 0.5;
    r.hops = 3;
    r.path[0] = i as u64;
}

fn new_pool() -> RecordPool<Activation> {
    let arena = Arc::new(NodeArena::on_node(first_allowed_node(), 16 << 20).expect("arena"));
    RecordPool::new(arena, PoolConfig::with_max_records(4096)).expect("pool")
}

/// Allocator calls for `COUNT_BATCHES` batches, each way, measured outside criterion.
fn count_allocator_calls() {
    let before = alloc_count::calls();
    let mut batch: Vec<Box<Activation>> = Vec::with_capacity(BATCH);
    for _ in 0..COUNT_BATCHES {
        for i in 0..BATCH {
            let mut r = Box::new(Activation::default());
            fill(&mut r, i);
            batch.push(r);
        }
        black_box(&batch);
        batch.clear();
    }
    let boxed = alloc_count::calls() - before; // the records and the batch vector.

    let before = alloc_count::calls();
    let pool = new_pool();
    let mut handle = pool.handle();
    let mut batch = Vec::with_capacity(BATCH);
    for _ in 0..COUNT_BATCHES {
        for i in 0..BATCH {
            let mut r = handle.acquire().expect("acquire");
            fill(&mut r, i);
            batch.push(r);
        }
        black_box(&batch);
        for r in batch.drain(..) {
            handle.release(r);
        }
    }
    let global = alloc_count::calls() - before;
    let stats = pool.stats();
    // Everything the pool asked of an allocator: system-allocator calls since its creation
    // (pool, handle and batch vectors, Arc), its arena refills, and the arena's one mmap.
    let pooled = global + stats.misses + 1;
    let records = (COUNT_BATCHES * BATCH) as u64;
    println!("allocator calls for {records} records in batches of {BATCH}:");
    println!("  Box:  {boxed}");
    println!(
        "  pool: {pooled} ({global} system-allocator calls + {} arena refills + 1 mmap)",
        stats.misses
    );
    println!(
        "  reduction: {:.4} % fewer allocator calls; pool hit rate {:.4} %",
        100.0 * (1.0 - pooled as f64 / boxed as f64),
        100.0 * stats.hit_rate()
    );
    println!("  pool stats: {stats}");
}

/// Allocator calls when records cross threads, as between a worker that creates activation
/// records and one that consumes them: thread A acquires, thread B releases. B's cache fills and
/// spills to the shared list, from which A refills.
fn count_cross_thread() {
    let records = COUNT_BATCHES * BATCH;
    let before = alloc_count::calls();
    let (tx, rx) = crossbeam::channel::bounded::<Box<Activation>>(1024);
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..records {
                let mut r = Box::new(Activation::default());
                fill(&mut r, i);
                tx.send(r).expect("send");
            }
        });
        s.spawn(move || {
            for r in rx {
                black_box(&r);
            }
        });
    });
    let boxed = alloc_count::calls() - before;

    let before = alloc_count::calls();
    let pool = new_pool();
    let (tx, rx) = crossbeam::channel::bounded(1024);
    std::thread::scope(|s| {
        let pool = &pool;
        s.spawn(move || {
            let mut h = pool.handle();
            for i in 0..records {
                let mut r = h.acquire().expect("acquire");
                fill(&mut r, i);
                tx.send(r).expect("send");
            }
        });
        s.spawn(move || {
            let mut h = pool.handle();
            for r in rx {
                black_box(&*r);
                h.release(r);
            }
        });
    });
    let global = alloc_count::calls() - before;
    let stats = pool.stats();
    let pooled = global + stats.misses + 1;
    println!("allocator calls for {records} records acquired on one thread, released on another:");
    println!("  Box:  {boxed} (including channel and thread start-up)");
    println!(
        "  pool: {pooled} ({global} system-allocator calls incl. channel and threads + {} arena refills + 1 mmap)",
        stats.misses
    );
    println!(
        "  reduction: {:.4} % fewer allocator calls; pool hit rate {:.4} %",
        100.0 * (1.0 - pooled as f64 / boxed as f64),
        100.0 * stats.hit_rate()
    );
    println!("  pool stats: {stats}");
}

fn bench(c: &mut Criterion) {
    count_allocator_calls();
    count_cross_thread();
    let mut group = c.benchmark_group("records_batch64");
    group.throughput(criterion::Throughput::Elements(BATCH as u64));
    group.bench_function("box", |b| {
        let mut batch: Vec<Box<Activation>> = Vec::with_capacity(BATCH);
        b.iter(|| {
            for i in 0..BATCH {
                let mut r = Box::new(Activation::default());
                fill(&mut r, i);
                batch.push(r);
            }
            black_box(&batch);
            batch.clear();
        });
    });
    let pool = new_pool();
    group.bench_function("pool", |b| {
        let mut handle = pool.handle();
        let mut batch = Vec::with_capacity(BATCH);
        b.iter(|| {
            for i in 0..BATCH {
                let mut r = handle.acquire().expect("acquire");
                fill(&mut r, i);
                batch.push(r);
            }
            black_box(&batch);
            for r in batch.drain(..) {
                handle.release(r);
            }
        });
    });
    group.finish();
    println!("pool after timing: {}", pool.stats());
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
