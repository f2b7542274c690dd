//! Criterion benches of the index: every distance kernel set this CPU runs against the scalar
//! reference (f32 dot, squared L2, i8 dot at 128 and 768 dimensions), and HNSW search on a small
//! clustered set with and without the int8 walk.
//!
//! `cargo bench --bench index -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use locus::index::{HnswConfig, HnswIndex, Kernels, Metric, Quantization};

/// SplitMix64 for seeded bench data.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn uniform(state: &mut u64) -> f32 {
    (next(state) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
}

fn kernels(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernels");
    let mut s = 1u64;
    for dim in [128usize, 768] {
        let a: Vec<f32> = (0..dim).map(|_| uniform(&mut s)).collect();
        let b: Vec<f32> = (0..dim).map(|_| uniform(&mut s)).collect();
        let qa: Vec<i8> = (0..dim).map(|_| (uniform(&mut s) * 127.0) as i8).collect();
        let qb: Vec<i8> = (0..dim).map(|_| (uniform(&mut s) * 127.0) as i8).collect();
        for k in Kernels::available() {
            g.bench_with_input(
                BenchmarkId::new(format!("dot/{}", k.name()), dim),
                &dim,
                |bch, _| bch.iter(|| k.dot(black_box(&a), black_box(&b))),
            );
            g.bench_with_input(
                BenchmarkId::new(format!("l2/{}", k.name()), dim),
                &dim,
                |bch, _| bch.iter(|| k.l2_squared(black_box(&a), black_box(&b))),
            );
            g.bench_with_input(
                BenchmarkId::new(format!("dot_i8/{}", k.name()), dim),
                &dim,
                |bch, _| bch.iter(|| k.dot_i8(black_box(&qa), black_box(&qb))),
            );
        }
    }
    g.finish();
}

fn search(c: &mut Criterion) {
    let (n, dim, clusters) = (10_000usize, 128usize, 100usize);
    let mut s = 7u64;
    let centres: Vec<f32> = (0..clusters * dim).map(|_| uniform(&mut s)).collect();
    let mut data = Vec::with_capacity((n + 100) * dim);
    for _ in 0..n + 100 {
        let c = (next(&mut s) % clusters as u64) as usize;
        let mut v: Vec<f32> = centres[c * dim..(c + 1) * dim]
            .iter()
            .map(|x| x + 0.3 * uniform(&mut s))
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        data.extend(v);
    }
    let (base, queries) = data.split_at(n * dim);
    let mut g = c.benchmark_group("hnsw_search_10k_x_128");
    g.sample_size(10);
    for q in [Quantization::Int8, Quantization::None] {
        let config = HnswConfig {
            quantization: q,
            ..HnswConfig::new(dim, n, Metric::InnerProduct)
        };
        let index = HnswIndex::new(config).expect("index");
        index.insert_batch(base, 2).expect("insert");
        for ef in [16usize, 64] {
            g.bench_with_input(BenchmarkId::new(format!("{q:?}"), ef), &ef, |bch, &ef| {
                bch.iter(|| {
                    for query in queries.chunks_exact(dim) {
                        black_box(index.search(query, 10, ef).expect("search"));
                    }
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, kernels, search);
criterion_main!(benches);
