//! The insertion walk's neighbours (`insert_returning_neighbors`, `insert_reserved`) against a
//! search for the same vector, and reserved ids linked out of order from several threads.

mod index_support;

use std::collections::HashSet;

use index_support::clustered;
use locus::index::{HnswConfig, HnswIndex, IndexError, Metric};

#[test]
fn neighbours_of_an_insert_match_a_search_closely() {
    let (n, dim, k) = (2000, 32, 8);
    let base = clustered(5, n, dim, 20, 1.0);
    let mut cfg = HnswConfig::new(dim, n, Metric::InnerProduct);
    cfg.ef_construction = 64;
    let index = HnswIndex::new(cfg).unwrap();
    let (mut overlap, mut total) = (0usize, 0usize);
    for (i, v) in base.chunks_exact(dim).enumerate() {
        // What a search would say just before the insert (the old way: one extra search).
        let before = if i > 0 {
            index.search(v, k, 64).unwrap()
        } else {
            Vec::new()
        };
        let (id, got) = index.insert_returning_neighbors(v, k).unwrap();
        assert_eq!(id as usize, i);
        assert!(got.len() <= k);
        assert!(got.iter().all(|g| g.id != id), "a node is not its own neighbour");
        assert!(
            got.windows(2).all(|w| w[0].distance <= w[1].distance),
            "closest first"
        );
        if i >= k {
            assert_eq!(got.len(), k, "enough nodes exist for k neighbours");
        }
        // Exact distances, as a search reports them.
        for g in &got {
            let exact: f32 = 1.0
                - v.iter()
                    .zip(&base[g.id as usize * dim..])
                    .map(|(a, b)| a * b)
                    .sum::<f32>();
            assert!((g.distance - exact).abs() < 1e-4, "{} vs {exact}", g.distance);
        }
        let want: HashSet<u32> = before.iter().map(|b| b.id).collect();
        overlap += got.iter().filter(|g| want.contains(&g.id)).count();
        total += before.len();
    }
    let agreement = overlap as f64 / total as f64;
    assert!(
        agreement > 0.9,
        "insert-walk neighbours agree with a search on {agreement:.3}"
    );
}

#[test]
fn reserved_ids_are_linked_once_from_several_threads() {
    let (n, dim) = (1200, 16);
    let base = clustered(9, n, dim, 12, 1.0);
    let index = HnswIndex::new(HnswConfig::new(dim, n, Metric::InnerProduct)).unwrap();
    let ids = index.reserve(n).unwrap();
    assert_eq!(ids, 0..n as u32);
    assert!(matches!(
        index.reserve(1),
        Err(IndexError::CapacityExceeded { .. })
    ));
    assert!(matches!(index.vector(5), Err(IndexError::UnknownId { id: 5 })));
    assert!(
        index.search(&base[..dim], 3, 16).unwrap().is_empty(),
        "reserved holes are never returned"
    );
    std::thread::scope(|s| {
        for t in 0..3u32 {
            let (index, base) = (&index, &base);
            // Thread t links the ids ≡ t (mod 3), from the top down: out of order on purpose.
            s.spawn(move || {
                for id in (0..n as u32).rev().filter(|i| i % 3 == t) {
                    let v = &base[id as usize * dim..(id as usize + 1) * dim];
                    index.insert_reserved(id, v, 4).unwrap();
                }
            });
        }
    });
    assert_eq!(index.len(), n);
    assert!(matches!(
        index.insert_reserved(7, &base[7 * dim..8 * dim], 4),
        Err(IndexError::InvalidInput { .. })
    ));
    assert!(matches!(
        index.insert_reserved(n as u32, &base[..dim], 4),
        Err(IndexError::UnknownId { .. })
    ));
    // Every node is found by its own vector.
    let mut found = 0;
    for (i, v) in base.chunks_exact(dim).enumerate() {
        if index.search(v, 1, 32).unwrap().first().map(|h| h.id) == Some(i as u32) {
            found += 1;
        }
    }
    assert!(
        found as f64 >= 0.98 * n as f64,
        "{found} of {n} found by their own vector"
    );
}

#[test]
fn staged_rows_are_read_scanned_and_linked_in_place() {
    use index_support::exact_ip_topk;
    use locus::index::Quantization;
    let (n, dim, k) = (800, 24, 10);
    let base = clustered(3, n, dim, 8, 1.0);
    for quantization in [Quantization::Int8, Quantization::None] {
        let mut cfg = HnswConfig::new(dim, n, Metric::InnerProduct);
        cfg.quantization = quantization;
        let index = HnswIndex::new(cfg).unwrap();
        for (i, v) in base.chunks_exact(dim).enumerate() {
            assert_eq!(index.stage(v).unwrap() as usize, i);
        }
        assert_eq!(index.len(), 0, "staged, not linked");
        assert_eq!(index.row(17).unwrap(), &base[17 * dim..18 * dim]);
        assert!(matches!(index.row(n as u32), Err(IndexError::UnknownId { .. })));
        assert!(index.search(&base[..dim], k, 64).unwrap().is_empty());
        // The scan finds the exact top k (int8 shortlist of 64, re-ranked in f32).
        for qi in (0..n).step_by(37) {
            let q = &base[qi * dim..(qi + 1) * dim];
            let got: Vec<u32> = index
                .scan(q, 0..n as u32, k, 64, |_| true)
                .unwrap()
                .iter()
                .map(|h| h.id)
                .collect();
            assert_eq!(
                got,
                exact_ip_topk(&base, dim, q, k),
                "{quantization:?} query {qi}"
            );
            let odd: Vec<u32> = index
                .scan(q, 100..300, k, 64, |id| id % 2 == 1)
                .unwrap()
                .iter()
                .map(|h| h.id)
                .collect();
            assert!(odd.iter().all(|&id| (100..300).contains(&id) && id % 2 == 1));
        }
        // Linked in place, from the top down; each once.
        for id in (0..n as u32).rev() {
            index.link_staged(id, 3).unwrap();
        }
        assert!(matches!(
            index.link_staged(5, 3),
            Err(IndexError::InvalidInput { .. })
        ));
        assert_eq!(index.len(), n);
        assert_eq!(index.vector(17).unwrap(), &base[17 * dim..18 * dim]);
        let hit = index.search(&base[40 * dim..41 * dim], 1, 64).unwrap();
        assert_eq!(hit[0].id, 40);
    }
}
