//! Criterion bench of what cross-shard messages cost (short settings), on engines of one and
//! four shards on this machine's first node (64 dims, absorption off so nothing but the
//! measured call runs):
//! - `observe_link`: an observation linked two ways to an episode of its own shard (the reverse
//!   edge written by the same worker) against one of another shard (the reverse edge sent as an
//!   `edges` message, and the reply sent after it);
//! - `complete`: pattern completion on 5 000 episodes, scoring and rows asked of each shard by
//!   message, one shard against four.

mod engine_support;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use locus::engine::{AdmissionLimits, AssociationParams, Engine, Episode, EpisodeId, ShardCount};

const DIM: usize = 64;

fn engine(shards: usize) -> Engine {
    let e = Engine::builder()
        .dimension(DIM)
        .shards(ShardCount::Exactly(shards))
        .associations(AssociationParams {
            similar: 0,
            stream_weight: 0.0,
            max_episodes_per_shard: 1 << 18,
            ..AssociationParams::default()
        })
        .admission(AdmissionLimits {
            max_unindexed: 1 << 18,
            ..AdmissionLimits::default()
        })
        .open()
        .expect("engine");
    e.set_absorption(false);
    e
}

/// A seeded embedding of `DIM` floats (`engine_support::vector`).
fn vector(seed: u64) -> Vec<f32> {
    engine_support::vector(seed, DIM)
}

/// The next id after `*id` that lives on `shard`.
fn next_on(e: &Engine, shard: usize, id: &mut u64) -> u64 {
    loop {
        *id += 1;
        if e.shard_of(EpisodeId(*id)) == shard {
            return *id;
        }
    }
}

fn observe_link(c: &mut Criterion) {
    let mut group = c.benchmark_group("observe_link");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for (name, target_shard) in [("same_shard", 0), ("other_shard", 1)] {
        let e = engine(4);
        let mut id = 0;
        let target = next_on(&e, target_shard, &mut id);
        e.observe(Episode::new(vector(target)).with_id(target))
            .expect("observe");
        group.bench_function(name, |b| {
            b.iter(|| {
                let new = next_on(&e, 0, &mut id);
                e.observe(Episode::new(vector(new)).with_id(new).with_link(target, 0.5))
                    .expect("observe")
            })
        });
        e.shutdown();
    }
    group.finish();
}

fn complete(c: &mut Criterion) {
    let mut group = c.benchmark_group("complete_5000");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let mask: Vec<bool> = (0..DIM).map(|d| d % 2 == 0).collect();
    for shards in [1, 4] {
        let e = engine(shards);
        for i in 0..5000u64 {
            let mut ep = Episode::new(vector(i)).with_id(i);
            if i >= 10 {
                ep = ep.with_link(i - 10, 0.5);
            }
            e.observe(ep).expect("observe");
        }
        let q = vector(77);
        group.bench_function(format!("{shards}_shards"), |b| {
            b.iter(|| e.complete(&q, &mask, 5).expect("complete"))
        });
        e.shutdown();
    }
    group.finish();
}

criterion_group!(benches, observe_link, complete);
criterion_main!(benches);
