//! Bad input, deletion (tombstones, repair, compaction) and concurrent insert + search.

mod index_support;

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use index_support::{clustered, exact_ip_topk, recall};
use locus::index::storage::{MappedRegions, Region, RegionSource};
use locus::index::{HnswConfig, HnswIndex, IndexDegradation, IndexError, Kernels, Metric, Quantization};

fn small_index(n: usize, dim: usize) -> (HnswIndex, Vec<f32>) {
    let base = clustered(21, n, dim, 10, 1.0);
    let index = HnswIndex::new(HnswConfig::new(dim, n + 10, Metric::InnerProduct)).unwrap();
    index.insert_batch(&base, 2).unwrap();
    (index, base)
}

#[test]
fn bad_input_is_refused_and_loses_nothing() {
    let dim = 8;
    let (index, base) = small_index(200, dim);
    let before = index.len();
    let q = &base[..dim];
    let expected = index.search(q, 5, 32).unwrap();

    assert!(matches!(
        index.insert(&[1.0; 7]),
        Err(IndexError::DimensionMismatch { expected: 8, got: 7 })
    ));
    let mut nan = vec![0.5; dim];
    nan[3] = f32::NAN;
    assert!(matches!(
        index.insert(&nan),
        Err(IndexError::NonFinite { position: 3, .. })
    ));
    let mut inf = vec![0.5; dim];
    inf[0] = f32::INFINITY;
    assert!(matches!(
        index.insert(&inf),
        Err(IndexError::NonFinite { position: 0, .. })
    ));
    // A batch with one bad vector inserts none of it.
    let mut batch = base[..4 * dim].to_vec();
    batch[2 * dim + 1] = f32::NEG_INFINITY;
    assert!(matches!(
        index.insert_batch(&batch, 2),
        Err(IndexError::NonFinite { .. })
    ));
    assert!(matches!(
        index.insert_batch(&batch[..dim + 3], 2),
        Err(IndexError::DimensionMismatch { .. })
    ));
    // Too many for the capacity: none inserted.
    assert!(matches!(
        index.insert_batch(&base[..11 * dim], 2),
        Err(IndexError::CapacityExceeded { capacity: 210 })
    ));

    assert!(matches!(
        index.search(q, 0, 32),
        Err(IndexError::InvalidInput { .. })
    ));
    assert!(matches!(
        index.search(&q[..5], 3, 32),
        Err(IndexError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        index.search(&nan, 3, 32),
        Err(IndexError::NonFinite { .. })
    ));
    assert!(matches!(
        index.delete(10_000),
        Err(IndexError::UnknownId { id: 10_000 })
    ));
    assert!(matches!(index.vector(205), Err(IndexError::UnknownId { .. })));

    assert_eq!(index.len(), before);
    assert_eq!(index.ids_used(), before);
    assert_eq!(index.search(q, 5, 32).unwrap(), expected);
    // There is still room for exactly 10 more.
    assert_eq!(index.insert_batch(&base[..10 * dim], 2).unwrap(), 200..210);
    assert!(matches!(
        index.insert(q),
        Err(IndexError::CapacityExceeded { .. })
    ));
}

#[test]
fn bad_parameters_are_refused() {
    let bad = |c: HnswConfig| matches!(HnswIndex::new(c), Err(IndexError::InvalidInput { .. }));
    assert!(bad(HnswConfig::new(0, 10, Metric::L2)));
    assert!(bad(HnswConfig {
        m: 1,
        ..HnswConfig::new(4, 10, Metric::L2)
    }));
    assert!(bad(HnswConfig {
        ef_construction: 0,
        ..HnswConfig::new(4, 10, Metric::L2)
    }));
    let cos = HnswIndex::new(HnswConfig::new(4, 10, Metric::Cosine)).unwrap();
    assert!(matches!(
        cos.insert(&[0.0; 4]),
        Err(IndexError::InvalidInput { .. })
    ));
    assert!(matches!(
        cos.search(&[0.0; 4], 1, 8),
        Err(IndexError::InvalidInput { .. })
    ));
}

#[test]
fn empty_index_gives_empty_results() {
    for q in [Quantization::Int8, Quantization::None] {
        let index = HnswIndex::new(HnswConfig {
            quantization: q,
            ..HnswConfig::new(4, 10, Metric::L2)
        })
        .unwrap();
        assert!(index.is_empty());
        assert_eq!(index.search(&[1.0, 2.0, 3.0, 4.0], 3, 16).unwrap(), vec![]);
        // Fewer vectors than k: all of them come back.
        index.insert(&[1.0, 0.0, 0.0, 0.0]).unwrap();
        index.insert(&[0.0, 1.0, 0.0, 0.0]).unwrap();
        let hits = index.search(&[1.0, 0.1, 0.0, 0.0], 5, 16).unwrap();
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![0, 1]);
        assert!((hits[0].distance - 0.01).abs() < 1e-6);
    }
}

#[test]
fn deleted_vectors_are_never_returned_and_repair_keeps_recall() {
    let dim = 32;
    let n = 3_000;
    let all = clustered(22, n + 50, dim, 300, 1.0);
    let (base, queries) = all.split_at(n * dim);
    let mut index = HnswIndex::new(HnswConfig::new(dim, n, Metric::InnerProduct)).unwrap();
    index.insert_batch(base, 2).unwrap();
    // Delete every third vector, and the entry point's neighbourhood with it.
    let deleted: HashSet<u32> = (0..n as u32).filter(|i| i % 3 == 0).collect();
    for &id in &deleted {
        assert!(index.delete(id).unwrap());
    }
    assert!(!index.delete(0).unwrap(), "second delete reports false");
    assert!(index.is_deleted(0).unwrap());
    assert_eq!(index.len(), n - deleted.len());

    let live: Vec<f32> = base
        .chunks_exact(dim)
        .enumerate()
        .filter(|(i, _)| !deleted.contains(&(*i as u32)))
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    let live_ids: Vec<u32> = (0..n as u32).filter(|i| !deleted.contains(i)).collect();
    let check = |index: &HnswIndex| {
        let mut total = 0.0;
        for q in queries.chunks_exact(dim) {
            let found: Vec<u32> = index.search(q, 10, 64).unwrap().iter().map(|h| h.id).collect();
            assert!(
                found.iter().all(|id| !deleted.contains(id)),
                "a deleted id was returned"
            );
            let truth: Vec<u32> = exact_ip_topk(&live, dim, q, 10)
                .iter()
                .map(|&j| live_ids[j as usize])
                .collect();
            total += recall(&found, &truth);
        }
        total / (queries.len() / dim) as f64
    };
    let before = check(&index);
    let rewritten = index.repair();
    assert!(rewritten > 0);
    let after = check(&index);
    println!("recall with tombstones {before:.4}, after repair {after:.4} ({rewritten} lists rewritten)");
    assert!(before >= 0.95 && after >= 0.95, "recall {before} / {after}");

    let (compact, map) = index.compact(0, 2).unwrap();
    assert_eq!(compact.len(), n - deleted.len());
    assert_eq!(map, live_ids);
    let q = &queries[..dim];
    let hits = compact.search(q, 5, 64).unwrap();
    for h in hits {
        assert_eq!(
            compact.vector(h.id).unwrap(),
            index.vector(map[h.id as usize]).unwrap()
        );
    }
}

#[test]
fn deleting_everything_leaves_a_searchable_empty_index() {
    let dim = 8;
    let (mut index, base) = small_index(100, dim);
    for id in 0..100 {
        index.delete(id).unwrap();
    }
    assert!(index.search(&base[..dim], 3, 16).unwrap().is_empty());
    index.repair();
    assert!(index.search(&base[..dim], 3, 16).unwrap().is_empty());
    let id = index.insert(&base[..dim]).unwrap();
    assert_eq!(index.search(&base[..dim], 3, 16).unwrap()[0].id, id);
}

/// One thread inserts vectors one by one, one deletes, two search all the time. Every result
/// must be a completely inserted vector (its stored row equals the input row for that id, and
/// the reported distance matches it) and never one whose deletion finished before the search began.
#[test]
fn concurrent_insert_delete_search_never_return_half_inserted_or_deleted_nodes() {
    let dim = 24;
    let n = 4_000;
    let data = clustered(23, n, dim, 20, 1.0);
    let index = HnswIndex::new(HnswConfig::new(dim, n, Metric::InnerProduct)).unwrap();
    index.insert_batch(&data[..500 * dim], 2).unwrap();
    let deleted = Mutex::new(HashSet::<u32>::new());
    let done = AtomicBool::new(false);
    let searches = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            for (i, v) in data.chunks_exact(dim).enumerate().skip(500) {
                assert_eq!(index.insert(v).unwrap(), i as u32);
            }
            done.store(true, Ordering::Release);
        });
        s.spawn(|| {
            let mut id = 0u32;
            while !done.load(Ordering::Acquire) {
                if index.delete(id).is_ok() {
                    deleted.lock().unwrap().insert(id);
                }
                id = (id + 7) % 3_000;
                std::thread::yield_now();
            }
        });
        for t in 0..2 {
            let (index, data, deleted, done, searches) = (&index, &data, &deleted, &done, &searches);
            s.spawn(move || {
                let mut q = t * 13;
                while !done.load(Ordering::Acquire) {
                    let gone = deleted.lock().unwrap().clone();
                    let query = &data[(q % n) * dim..(q % n + 1) * dim];
                    for h in index.search(query, 10, 32).unwrap() {
                        assert!(!gone.contains(&h.id), "deleted id {} returned", h.id);
                        let stored = index.vector(h.id).expect("returned id is fully inserted");
                        let input = &data[h.id as usize * dim..(h.id as usize + 1) * dim];
                        assert_eq!(stored, input, "row of {} is not the inserted vector", h.id);
                        let exact = 1.0 - stored.iter().zip(query).map(|(a, b)| a * b).sum::<f32>();
                        assert!((exact - h.distance).abs() < 1e-4, "distance of {} is stale", h.id);
                    }
                    q += 31;
                    searches.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    println!(
        "{} searches ran during the inserts",
        searches.load(Ordering::Relaxed)
    );
    assert!(searches.load(Ordering::Relaxed) > 0);
    assert_eq!(index.len(), n - deleted.lock().unwrap().len());
}

/// A region source that records what it hands out (standing in for a node-bound arena).
struct CountingSource {
    bytes: std::sync::atomic::AtomicUsize,
    shrink_by: usize,
}

impl RegionSource for CountingSource {
    fn region(&self, bytes: usize) -> Result<Box<dyn Region>, IndexError> {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        MappedRegions.region(bytes.saturating_sub(self.shrink_by).max(1))
    }
}

#[test]
fn index_memory_comes_from_the_given_region_source() {
    let dim = 16;
    let base = clustered(24, 500, dim, 10, 1.0);
    let source = CountingSource {
        bytes: 0.into(),
        shrink_by: 0,
    };
    let config = HnswConfig::new(dim, 500, Metric::InnerProduct);
    let index = HnswIndex::with_regions(config.clone(), *Kernels::detect(), &source).unwrap();
    index.insert_batch(&base, 2).unwrap();
    assert_eq!(index.search(&base[..dim], 1, 16).unwrap()[0].id, 0);
    // Every part but the visited sets comes from the source: f32 rows (64 B each), int8 rows
    // (64 B each), level-0 links (128 B each), upper-level links, and per-node levels, flags,
    // locks and upper-level index.
    let parts = index.memory_parts();
    let names: HashSet<&str> = parts.iter().map(|p| p.part.as_str()).collect();
    for part in [
        "f32 rows",
        "int8 rows",
        "links level 0",
        "links upper levels",
        "upper-level index",
        "levels",
        "flags",
        "locks",
        "visited set",
    ] {
        assert!(names.contains(part), "no {part} in {parts:?}");
    }
    let from_source: usize = parts
        .iter()
        .filter(|p| p.part != "visited set")
        .map(|p| p.bytes)
        .sum();
    assert_eq!(source.bytes.load(Ordering::Relaxed), from_source);
    assert!(from_source > 500 * (64 + 64 + 128 + 1 + 1 + 4));
    // This source cannot be kept, so later visited sets come from anonymous maps: reported.
    assert_eq!(index.degradations(), [IndexDegradation::SourceNotKept]);

    // A source that returns too little memory is refused, not trusted.
    let faulty = CountingSource {
        bytes: 0.into(),
        shrink_by: 4096,
    };
    assert!(matches!(
        HnswIndex::with_regions(config, *Kernels::detect(), &faulty),
        Err(IndexError::InvalidInput { .. })
    ));
}

/// `NodeRegions::bind` with a node index no kernel has is refused with a typed error before any
/// node set is sized by it (issue 13 item 5; it used to grow a 512 MiB bitset first).
#[test]
fn node_regions_for_an_impossible_node_are_refused() {
    for node in [1024, u32::MAX] {
        let config = HnswConfig::new(8, 16, Metric::L2);
        match HnswIndex::with_regions(config, Kernels::scalar(), &locus::index::NodeRegions::bind(node)) {
            Err(IndexError::NodeMemory {
                source: locus::alloc::AllocError::InvalidInput { .. },
            }) => {}
            other => panic!("node {node}: expected NodeMemory(InvalidInput), got {other:?}"),
        }
    }
}
