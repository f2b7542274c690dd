//! Spreading activation: time per spread on scale-free graphs (Barabási–Albert-like, mean
//! out-degree 8; 10K and 100K nodes), 1–3 seeds, 3 hops, fan-out cap 0 and 32; then allocator
//! calls per spread — the production spread on pooled scratches vs a naive version that builds
//! its per-query state (hash maps, vectors) afresh for every spread — with the reduction and the
//! scratch pool's hit rate.
//!
//! A counting `#[global_allocator]` counts every call into the system allocator (alloc,
//! alloc_zeroed, realloc). The production spread's count includes everything: taking a scratch from
//! the pool, the spread, giving it back.
//!
//! Run: `cargo bench --bench spread -- --warm-up-time 1 --measurement-time 2`
//! (`LOCUS_SPREAD_NODES=10000,100000` sets the sizes).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use locus::alloc::MemPolicy;
use locus::diag::spread_graph::scale_free_graph;
use locus::spread::{AssocGraph, Decay, ScratchPool, SpreadParams};

mod alloc_count;

#[global_allocator]
static GLOBAL: alloc_count::Counting = alloc_count::Counting;

fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn sizes() -> Vec<usize> {
    std::env::var("LOCUS_SPREAD_NODES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| {
            if benchmarking() {
                vec![10_000, 100_000]
            } else {
                vec![2_000]
            }
        })
}

fn seeds_for(i: u64, nodes: u64) -> Vec<(u64, f32)> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED;
    let mut next = || {
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 29;
        x
    };
    let count = 1 + next() % 3;
    (0..count).map(|_| (next() % nodes, 1.0)).collect()
}

/// The same spread written the naive way: per-query hash maps and vectors, edges copied out and
/// sorted per visit. Same answer (tested in the library against an equivalent reference).
fn naive_spread(g: &AssocGraph, seeds: &[(u64, f32)], p: &SpreadParams) -> Vec<(u64, f64)> {
    let Decay::Exponential { factor } = p.decay else {
        unreachable!("bench uses exponential decay")
    };
    let mut total: HashMap<u64, f64> = HashMap::new();
    let mut frontier: HashMap<u64, f64> = seeds.iter().map(|&(s, a)| (s, f64::from(a))).collect();
    for _ in 0..p.max_hops {
        let mut next: HashMap<u64, f64> = HashMap::new();
        for (&u, &a) in &frontier {
            let mut out = g.out_edges(u).unwrap_or_default();
            out.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            if p.fan_out > 0 {
                out.truncate(p.fan_out);
            }
            for (t, w) in out {
                *next.entry(t).or_insert(0.0) += a * factor * f64::from(w);
            }
        }
        for (&t, &a) in &next {
            *total.entry(t).or_insert(0.0) += a;
        }
        frontier = next;
    }
    let mut out: Vec<(u64, f64)> = total
        .into_iter()
        .filter(|(id, _)| !seeds.iter().any(|s| s.0 == *id))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(p.k);
    out
}

fn bench(c: &mut Criterion) {
    let spreads: u64 = if benchmarking() { 2_000 } else { 50 };
    for n in sizes() {
        let g = scale_free_graph(n, 8, 42, MemPolicy::Bind(0), 2).expect("graph");
        let pool = ScratchPool::new();
        let mut group = c.benchmark_group(format!("spread/{n}"));
        group.sample_size(20);
        for fan_out in [0usize, 32] {
            let p = SpreadParams {
                fan_out,
                ..SpreadParams::default()
            };
            let mut i = 0u64;
            group.bench_with_input(BenchmarkId::new("pooled", fan_out), &p, |b, p| {
                b.iter(|| {
                    i += 1;
                    let mut s = pool.take(&g).expect("scratch");
                    let r = g.spread(&seeds_for(i, n as u64), p, &mut s).expect("spread");
                    pool.give_back(s);
                    black_box(r)
                })
            });
            let mut i = 0u64;
            group.bench_with_input(BenchmarkId::new("naive", fan_out), &p, |b, p| {
                b.iter(|| {
                    i += 1;
                    black_box(naive_spread(&g, &seeds_for(i, n as u64), p))
                })
            });
        }
        group.finish();

        // Allocator calls per spread, both versions on the same seeds (F = 32).
        let p = SpreadParams {
            fan_out: 32,
            ..SpreadParams::default()
        };
        let before = alloc_count::calls();
        for i in 0..spreads {
            let seeds = seeds_for(1 << 20 | i, n as u64);
            let mut s = pool.take(&g).expect("scratch");
            black_box(g.spread(&seeds, &p, &mut s).expect("spread"));
            pool.give_back(s);
        }
        let pooled = alloc_count::calls() - before;
        let before = alloc_count::calls();
        for i in 0..spreads {
            let seeds = seeds_for(1 << 20 | i, n as u64);
            black_box(naive_spread(&g, &seeds, &p));
        }
        let naive = alloc_count::calls() - before;
        // Seeds vectors are built by the harness for both: count them out of neither.
        let m = g.metrics().snapshot();
        println!(
            "spread/{n} allocator calls per spread (F=32, {spreads} spreads, seed vectors included): \
             pooled {:.2}, naive {:.2}, reduction {:.1}%; scratch pool hit rate {:.4} ({} hits, {} misses)",
            pooled as f64 / spreads as f64,
            naive as f64 / spreads as f64,
            100.0 * (1.0 - pooled as f64 / naive.max(1) as f64),
            m.pool_hit_rate(),
            m.scratch_hits,
            m.scratch_misses
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
