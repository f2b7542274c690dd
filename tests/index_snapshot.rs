//! Snapshots: a round trip answers identically; truncated, corrupted, foreign or forged files
//! are refused with a clear error.

mod index_support;

use std::path::Path;

use index_support::clustered;
use locus::index::{HnswConfig, HnswIndex, IndexError, Metric, Quantization};

fn build(q: Quantization, metric: Metric) -> (HnswIndex, Vec<f32>) {
    let (n, dim) = (1_500, 20);
    let data = clustered(31, n, dim, 15, 1.0);
    let index = HnswIndex::new(HnswConfig {
        quantization: q,
        ..HnswConfig::new(dim, n + 100, metric)
    })
    .unwrap();
    index.insert_batch(&data, 2).unwrap();
    for id in (0..n as u32).step_by(10) {
        index.delete(id).unwrap();
    }
    (index, data)
}

fn is_corrupt(r: Result<HnswIndex, IndexError>) -> bool {
    match r {
        Err(IndexError::CorruptSnapshot { reason, .. }) => {
            println!("refused: {reason}");
            true
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => false,
    }
}

#[test]
fn round_trip_answers_identically() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (q, metric)) in [
        (Quantization::Int8, Metric::InnerProduct),
        (Quantization::None, Metric::L2),
        (Quantization::Int8, Metric::Cosine),
    ]
    .into_iter()
    .enumerate()
    {
        let (index, data) = build(q, metric);
        let path = dir.path().join(format!("s{i}.hnsw"));
        index.save(&path).unwrap();
        let loaded = HnswIndex::load(&path).unwrap();
        assert_eq!(loaded.config(), index.config());
        assert_eq!(loaded.len(), index.len());
        assert_eq!(loaded.ids_used(), index.ids_used());
        for query in data.chunks_exact(20).step_by(7) {
            assert_eq!(
                loaded.search(query, 10, 48).unwrap(),
                index.search(query, 10, 48).unwrap()
            );
        }
        assert!(loaded.is_deleted(0).unwrap());
        // The loaded index keeps working: inserts land after the saved ids.
        assert_eq!(loaded.insert(&data[..20]).unwrap(), 1_500);
    }
}

#[test]
fn empty_index_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.hnsw");
    let index = HnswIndex::new(HnswConfig::new(3, 5, Metric::L2)).unwrap();
    index.save(&path).unwrap();
    let loaded = HnswIndex::load(&path).unwrap();
    assert!(loaded.is_empty());
    assert!(loaded.search(&[1.0, 2.0, 3.0], 1, 8).unwrap().is_empty());
}

#[test]
fn truncated_and_corrupted_snapshots_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = build(Quantization::Int8, Metric::InnerProduct);
    let path = dir.path().join("good.hnsw");
    index.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let bad = dir.path().join("bad.hnsw");
    let load = |bytes: &[u8]| {
        std::fs::write(&bad, bytes).unwrap();
        HnswIndex::load(&bad)
    };
    // Truncated anywhere: empty, inside the header, inside the data, the last byte.
    for len in [
        0,
        1,
        7,
        12,
        40,
        63,
        64,
        100,
        good.len() / 2,
        good.len() - 5,
        good.len() - 1,
    ] {
        assert!(
            is_corrupt(load(&good[..len])),
            "truncation to {len} bytes accepted"
        );
    }
    // One flipped bit anywhere: header, vectors, links, checksum.
    for pos in [
        0,
        9,
        20,
        70,
        good.len() / 3,
        good.len() / 2,
        good.len() - 20,
        good.len() - 1,
    ] {
        let mut b = good.clone();
        b[pos] ^= 0x10;
        assert!(is_corrupt(load(&b)), "bit flip at {pos} accepted");
    }
    // Trailing garbage.
    let mut b = good.clone();
    b.extend_from_slice(&[0; 8]);
    assert!(is_corrupt(load(&b)));
    // Another format version.
    let mut b = good.clone();
    b[8] = 2;
    assert!(is_corrupt(load(&b)));
    // Not a snapshot at all.
    assert!(is_corrupt(load(&[b'x'; 4096])));
    // A missing file is an I/O error, not a corrupt one.
    assert!(matches!(
        HnswIndex::load(Path::new("/nonexistent/x.hnsw")),
        Err(IndexError::Io { .. })
    ));
}

/// A file whose checksum is valid but whose content is impossible (a link to a node that does
/// not exist, a forged size) is refused too: the loader checks values, not only the checksum.
#[test]
fn forged_snapshots_with_valid_checksums_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (index, _) = build(Quantization::None, Metric::L2);
    let path = dir.path().join("good.hnsw");
    index.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let reseal = |mut b: Vec<u8>| {
        let n = b.len() - 4;
        let crc = crc32fast::hash(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &b).unwrap();
        HnswIndex::load(&path)
    };
    assert!(
        !is_corrupt(reseal(good.clone())),
        "resealing an intact file must still load"
    );
    // Header layout: magic 8, version 4, dim 4, capacity 8, codes 4, M 4, efc 4, seed 8, n 8, entry 8.
    let (n, dim, m) = (1_500usize, 20usize, 16usize);
    let links_at = 60 + 2 * n + n * dim * 4;
    // A level-0 link to id 1_000_000.
    let mut b = good.clone();
    b[links_at..links_at + 4].copy_from_slice(&1_000_000u32.to_le_bytes());
    assert!(is_corrupt(reseal(b)));
    // A node level of 200.
    let mut b = good.clone();
    b[60 + n] = 200;
    assert!(is_corrupt(reseal(b)));
    // More ids used than the file holds.
    let mut b = good.clone();
    b[44..52].copy_from_slice(&(u32::MAX as u64 - 5).to_le_bytes());
    assert!(is_corrupt(reseal(b)));
    // A forged capacity of ~4 billion vectors (over a terabyte with links and per-node state),
    // or 2^31: refused as too large for this machine before anything is mapped, not an abort
    // (nor an out-of-memory error after a partial allocation).
    for capacity in [u64::from(u32::MAX) - 2, 1 << 31] {
        let mut b = good.clone();
        b[16..24].copy_from_slice(&capacity.to_le_bytes());
        match reseal(b) {
            Err(IndexError::TooLarge { bytes, limit, .. }) => assert!(bytes > limit),
            other => panic!("capacity {capacity}: expected TooLarge, got {other:?}"),
        }
    }
    // A capacity this machine could map but the file does not justify: 4M slots reserved by a
    // file of a few ids (the `snapshot` fuzz target found a 155-byte file whose reserve made the
    // load touch over 2 GiB of per-node state). Refused as corrupt before anything is built.
    let mut b = good.clone();
    b[16..24].copy_from_slice(&4_000_000u64.to_le_bytes());
    match reseal(b) {
        Err(e @ IndexError::CorruptSnapshot { .. }) => assert!(e.to_string().contains("justifies"), "{e}"),
        Err(IndexError::TooLarge { .. }) => println!("skipped: 4M slots exceed this machine's memory"),
        other => panic!("capacity 4M: expected Corrupt, got {other:?}"),
    }
    // Unknown metric code.
    let mut b = good.clone();
    b[24] = 9;
    assert!(is_corrupt(reseal(b)));
    // A NaN in a vector.
    let mut b = good.clone();
    b[60 + 2 * n..60 + 2 * n + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(is_corrupt(reseal(b)));
    // M = 0.
    let mut b = good;
    b[28..32].copy_from_slice(&0u32.to_le_bytes());
    assert!(is_corrupt(reseal(b)));
    let _ = m;
}
