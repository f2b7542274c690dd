//! The engine's ingestion and recall (768 dimensions, one shard):
//!
//! - `engine_ingest/absorbers=N`: `observe_batch` of 1000 episodes into a fresh engine and wait
//!   until the index has linked them all (observe + absorb, with `similar = 4` associations
//!   from the insertion walk); throughput in episodes. N = 1 and 2 absorbers per space: the
//!   worker scaling of absorption.
//! - `engine_recall/buffer=B`: one recall (k = 10) against 2000 indexed episodes plus an
//!   append buffer of B episodes that recall scans exactly (absorption switched off).
//!
//! Short settings (10 samples, 2 s): `cargo bench --bench engine`.

mod engine_support;

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use locus::engine::{AdmissionLimits, Cue, Engine, Episode, IndexParams};

const DIM: usize = 768;

/// A seeded embedding of `DIM` floats (`engine_support::vector`).
fn vector(i: u64) -> Vec<f32> {
    engine_support::vector(i, DIM)
}

fn engine(absorbers: usize) -> Engine {
    Engine::builder()
        .dimension(DIM)
        .index(IndexParams {
            absorbers,
            ..IndexParams::default()
        })
        .admission(AdmissionLimits {
            max_unindexed: 50_000,
            ..AdmissionLimits::default()
        })
        .open()
        .expect("open an engine")
}

fn ingest(c: &mut Criterion) {
    const N: u64 = 1000;
    let vectors: Vec<Vec<f32>> = (0..N).map(vector).collect();
    let mut g = c.benchmark_group("engine_ingest");
    g.throughput(Throughput::Elements(N));
    for absorbers in [1usize, 2] {
        g.bench_with_input(BenchmarkId::new("absorbers", absorbers), &absorbers, |b, &a| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let e = engine(a);
                    let eps: Vec<Episode> = vectors.iter().map(|v| Episode::new(v.clone())).collect();
                    let t = Instant::now();
                    for chunk in eps.chunks(256) {
                        let out = e.observe_batch(chunk.to_vec());
                        assert!(out.iter().all(Result::is_ok), "the buffer limit is above N");
                    }
                    assert!(e.wait_indexed(Duration::from_secs(600)));
                    total += t.elapsed();
                    e.shutdown();
                }
                total
            })
        });
    }
    g.finish();
}

fn recall(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine_recall");
    for buffer in [0u64, 1000, 10_000] {
        let e = engine(0);
        let indexed: Vec<Episode> = (0..2000).map(|i| Episode::new(vector(i))).collect();
        for chunk in indexed.chunks(256) {
            e.observe_batch(chunk.to_vec());
        }
        assert!(e.wait_indexed(Duration::from_secs(600)));
        e.set_absorption(false);
        let buffered: Vec<Episode> = (2000..2000 + buffer).map(|i| Episode::new(vector(i))).collect();
        for chunk in buffered.chunks(256) {
            e.observe_batch(chunk.to_vec());
        }
        assert_eq!(e.stats().unindexed as u64, buffer);
        let mut q = 0u64;
        g.bench_with_input(BenchmarkId::new("buffer", buffer), &buffer, |b, _| {
            b.iter(|| {
                q = (q + 7919) % (2000 + buffer);
                let r = e.recall(&Cue::new(vector(q), 10)).expect("recall");
                assert_eq!(r.shards[0].scanned as u64, buffer);
                r
            })
        });
        e.shutdown();
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = ingest, recall
}
criterion_main!(benches);
