//! Criterion bench of one append to a shard's write-ahead log at 768 dims, per sync policy, from
//! one thread (short settings). The side-by-side table with 1 and 4 threads, group sizes, fsync
//! latency, bytes per episode and recovery time is `locus bench-wal` (docs/durability.md).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use locus::durability::{EpisodeRecord, LinkKind, LinkRecord, Record, ShardWal, SyncPolicy, WalOptions};

const DIM: u32 = 768;

fn record(id: u64) -> Record {
    Record::Episode(EpisodeRecord {
        seq: id,
        id,
        space: "default".into(),
        stream: None,
        timestamp: id,
        embedding: (0..DIM).map(|i| (i as f32 + id as f32) / 1000.0).collect(),
        payload: vec![b'p'; 64],
        links: vec![LinkRecord {
            target: id.wrapping_sub(1),
            weight: 0.5,
            direction: LinkKind::Both,
        }],
    })
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_append_768");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let rec = record(1);
    for (name, policy) in [
        ("none", SyncPolicy::None),
        ("every_batch", SyncPolicy::EveryBatch),
        ("every_1ms", SyncPolicy::EveryMs(1)),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = ShardWal::open(dir.path(), 0, WalOptions::new(DIM, policy)).expect("open");
        group.bench_function(name, |b| b.iter(|| wal.append(&rec).expect("append")));
        wal.close().expect("close");
    }
    group.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
