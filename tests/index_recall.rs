//! Recall of the HNSW index against brute force, on seeded clustered data made here.

mod index_support;

use index_support::{clustered, exact_ip_topk, exact_l2_topk, recall};
use locus::index::{HnswConfig, HnswIndex, Metric, Quantization};

fn mean_recall(index: &HnswIndex, base: &[f32], queries: &[f32], dim: usize, ef: usize, l2: bool) -> f64 {
    let k = 10;
    let mut total = 0.0;
    let nq = queries.len() / dim;
    for q in queries.chunks_exact(dim) {
        let found: Vec<u32> = index.search(q, k, ef).unwrap().iter().map(|n| n.id).collect();
        let truth = if l2 {
            exact_l2_topk(base, dim, q, k)
        } else {
            exact_ip_topk(base, dim, q, k)
        };
        total += recall(&found, &truth);
    }
    total / nq as f64
}

/// The acceptance test: recall@10 ≥ 0.95 at ef_search = 64 on 20K × 128 clustered
/// unit vectors (inner product, int8 walk with f32 re-ranking, built on 2 threads).
#[test]
fn recall_at_10_is_at_least_095_at_ef_64_on_20k_x_128() {
    let (n, dim) = (20_000, 128);
    let all = clustered(1, n + 200, dim, 1000, 1.0);
    let (base, queries) = all.split_at(n * dim);
    let index = HnswIndex::new(HnswConfig::new(dim, n, Metric::InnerProduct)).unwrap();
    let ids = index.insert_batch(base, 2).unwrap();
    assert_eq!(ids, 0..n as u32);
    assert_eq!(index.len(), n);
    let r = mean_recall(&index, base, queries, dim, 64, false);
    println!("recall@10 at ef=64: {r:.4} (kernels {})", index.kernel_name());
    assert!(r >= 0.95, "recall@10 {r}");
}

/// The f32 path (no quantisation) with the L2 metric on a smaller set.
#[test]
fn recall_without_quantization_with_l2() {
    let (n, dim) = (5_000, 48);
    let all = clustered(3, n + 100, dim, 250, 1.0);
    let (base, queries) = all.split_at(n * dim);
    let config = HnswConfig {
        quantization: Quantization::None,
        ..HnswConfig::new(dim, n, Metric::L2)
    };
    let index = HnswIndex::new(config).unwrap();
    index.insert_batch(base, 2).unwrap();
    let r = mean_recall(&index, base, queries, dim, 64, true);
    println!("L2 f32 recall@10 at ef=64: {r:.4}");
    assert!(r >= 0.95, "recall@10 {r}");
}

/// Cosine: vectors of any length are normalised, so scaled copies are equally close.
#[test]
fn cosine_ignores_vector_length() {
    let (n, dim) = (2_000, 32);
    let mut base = clustered(5, n, dim, 20, 1.0);
    for (i, v) in base.chunks_exact_mut(dim).enumerate() {
        let s = 1.0 + (i % 7) as f32;
        v.iter_mut().for_each(|x| *x *= s);
    }
    let index = HnswIndex::new(HnswConfig::new(dim, n, Metric::Cosine)).unwrap();
    index.insert_batch(&base, 2).unwrap();
    let q: Vec<f32> = base[..dim].iter().map(|x| x * 10.0).collect();
    let hits = index.search(&q, 1, 32).unwrap();
    assert_eq!(hits[0].id, 0);
    assert!(
        hits[0].distance.abs() < 1e-4,
        "cosine distance to itself {}",
        hits[0].distance
    );
}

/// The same seed gives the same graph, so a single-threaded build is reproducible.
#[test]
fn single_threaded_builds_are_deterministic() {
    let (n, dim) = (1_000, 16);
    let base = clustered(6, n, dim, 10, 1.0);
    let build = || {
        let index = HnswIndex::new(HnswConfig::new(dim, n, Metric::InnerProduct)).unwrap();
        index.insert_batch(&base, 1).unwrap();
        index
    };
    let (a, b) = (build(), build());
    for q in base.chunks_exact(dim).take(50) {
        assert_eq!(a.search(q, 5, 16).unwrap(), b.search(q, 5, 16).unwrap());
    }
}

/// Issue 13 item 7: a concurrent build must not lose recall against a sequential one (an insert
/// used to overwrite back-links that concurrent inserters had just added to its list). Built on
/// 8 threads (more than this machine's cores, so inserts interleave at any instruction) and on
/// one; both figures are printed. Low ef_search makes recall sensitive to missing edges.
#[test]
fn concurrent_build_recalls_as_well_as_a_sequential_one() {
    let (n, dim) = (8_000, 64);
    let all = clustered(8, n + 200, dim, 400, 1.0);
    let (base, queries) = all.split_at(n * dim);
    let build = |threads| {
        let config = HnswConfig {
            ef_construction: 64,
            ..HnswConfig::new(dim, n, Metric::InnerProduct)
        };
        let index = HnswIndex::new(config).unwrap();
        index.insert_batch(base, threads).unwrap();
        index
    };
    let (seq, conc) = (build(1), build(8));
    let r_seq = mean_recall(&seq, base, queries, dim, 16, false);
    let r_conc = mean_recall(&conc, base, queries, dim, 16, false);
    println!("recall@10 at ef=16: sequential build {r_seq:.4}, 8-thread build {r_conc:.4}");
    assert!(
        r_conc >= r_seq - 0.02,
        "concurrent {r_conc} vs sequential {r_seq}"
    );
}
