//! Round trips of the write-ahead log, snapshots and recovery, and the typed refusals of
//! directories that do not match (dimension, version, shard count, missing files).

mod durability_support;

use std::collections::HashMap;
use std::sync::Arc;

use durability_support::{episode, id_of, recover_all};
use locus::durability::{
    DurabilityError, Durable, Recovery, ShardWal, SnapshotWriter, SyncPolicy, WalOptions, segment_name,
};

const DIM: u32 = 8;

fn append_from_threads(wal: &Arc<ShardWal>, threads: u64, per_thread: u64) -> Vec<(u64, Durable)> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let wal = Arc::clone(wal);
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|i| {
                        let id = t * 1_000_000 + i;
                        (id, wal.append(&episode(id, DIM as usize)).expect("append"))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("appender panicked"))
        .collect()
}

#[test]
fn every_policy_recovers_every_record_exactly_once() {
    for policy in [SyncPolicy::None, SyncPolicy::EveryBatch, SyncPolicy::EveryMs(2)] {
        let dir = tempfile::tempdir().unwrap();
        let mut options = WalOptions::new(DIM, policy);
        options.segment_bytes = 8192;
        let wal = Arc::new(ShardWal::open(dir.path(), 0, options).unwrap());
        let acked = append_from_threads(&wal, 4, 150);
        for (_, d) in &acked {
            match (policy, d) {
                (SyncPolicy::None, Durable::Written { .. })
                | (SyncPolicy::EveryBatch, Durable::Synced { .. })
                | (SyncPolicy::EveryMs(_), Durable::Pending { .. }) => {}
                other => panic!("policy and guarantee disagree: {other:?}"),
            }
        }
        assert_eq!(wal.flush().unwrap(), 600);
        let stats = wal.stats();
        assert_eq!(stats.records, 600);
        if !matches!(policy, SyncPolicy::EveryMs(_)) {
            // Groups hold at most one record per thread here; 60 KB of them span 8 KiB segments.
            // (An EveryMs group may hold everything, and a group is never split.)
            assert!(stats.rotations > 0, "8 KiB segments must rotate");
        }
        Arc::try_unwrap(wal).unwrap().close().unwrap();

        let records = recover_all(dir.path(), DIM).unwrap();
        assert_eq!(records.len(), 600, "{policy:?}");
        let mut seen = HashMap::new();
        for (i, (lsn, rec)) in records.iter().enumerate() {
            assert_eq!(*lsn, i as u64, "sequence numbers are contiguous");
            assert_eq!(rec, &episode(id_of(rec), DIM as usize), "record intact");
            *seen.entry(id_of(rec)).or_insert(0) += 1;
        }
        for (id, d) in acked {
            assert_eq!(seen.get(&id), Some(&1), "{id} present once ({policy:?})");
            if let Durable::Synced { lsn } | Durable::Written { lsn } = d {
                assert_eq!(
                    id_of(&records[lsn as usize].1),
                    id,
                    "the returned lsn is the record's"
                );
            }
        }
    }
}

#[test]
fn reopening_continues_the_numbering() {
    let dir = tempfile::tempdir().unwrap();
    let wal = ShardWal::open(dir.path(), 0, WalOptions::new(DIM, SyncPolicy::EveryBatch)).unwrap();
    for id in 0..5 {
        assert_eq!(wal.append(&episode(id, 8)).unwrap(), Durable::Synced { lsn: id });
    }
    drop(wal);
    let (_, report) = Recovery::open(dir.path(), DIM, 1).unwrap();
    assert_eq!(report.shards[0].end_lsn, 5);
    assert!(report.shards[0].torn_tail.is_none());
    let wal = ShardWal::open(dir.path(), 0, WalOptions::new(DIM, SyncPolicy::EveryBatch)).unwrap();
    assert_eq!(wal.append(&episode(5, 8)).unwrap(), Durable::Synced { lsn: 5 });
    drop(wal);
    assert_eq!(recover_all(dir.path(), DIM).unwrap().len(), 6);
}

#[test]
fn snapshot_covers_a_prefix_and_truncation_deletes_only_covered_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = WalOptions::new(DIM, SyncPolicy::EveryBatch);
    options.segment_bytes = 4096;
    let wal = ShardWal::open(dir.path(), 0, options).unwrap();
    for id in 0..300 {
        let _ = wal.append(&episode(id, 8)).unwrap();
    }
    let covered = wal.flush().unwrap();
    assert_eq!(covered, 300);
    let mut snap = SnapshotWriter::create(dir.path(), DIM, vec![covered]).unwrap();
    snap.section("index", &[1, 2, 3]).unwrap();
    snap.section("graph", &vec![7u8; 10_000]).unwrap();
    snap.section("empty", &[]).unwrap();
    let info = snap.commit().unwrap();
    for id in 300..350 {
        let _ = wal.append(&episode(id, 8)).unwrap();
    }
    let before = std::fs::read_dir(dir.path()).unwrap().count();
    let removed = wal.truncate_before(&info).unwrap();
    assert!(removed > 0, "300 records in 4 KiB segments span several segments");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before - removed);
    drop(wal);

    let (state, report) = Recovery::open(dir.path(), DIM, 1).unwrap();
    let snapshot = state.snapshot.as_ref().expect("a snapshot");
    assert_eq!(snapshot.section("index"), Some(&[1u8, 2, 3][..]));
    assert_eq!(snapshot.section("graph").map(<[u8]>::len), Some(10_000));
    assert_eq!(snapshot.section("empty"), Some(&[][..]));
    assert_eq!(report.shards[0].from_lsn, 300);
    let replayed: Vec<_> = state.shards[0].records().collect::<Result<_, _>>().unwrap();
    let ids: Vec<u64> = replayed.iter().map(|(_, r)| id_of(r)).collect();
    assert_eq!(ids, (300..350).collect::<Vec<_>>());

    // A second snapshot replaces the first; the first file is removed.
    let second = SnapshotWriter::create(dir.path(), DIM, vec![350])
        .unwrap()
        .commit()
        .unwrap();
    assert_eq!(second.id, info.id + 1);
    assert!(!dir.path().join(&info.file).exists());
}

#[test]
fn another_dimension_version_or_shard_count_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wal = ShardWal::open(dir.path(), 0, WalOptions::new(DIM, SyncPolicy::EveryBatch)).unwrap();
    let _ = wal.append(&episode(1, 8)).unwrap();
    drop(wal);

    let err = Recovery::open(dir.path(), DIM + 1, 1).unwrap_err();
    assert!(
        matches!(
            err,
            DurabilityError::DimensionMismatch {
                expected: 9,
                found: 8,
                ..
            }
        ),
        "{err}"
    );
    let err = ShardWal::open(dir.path(), 0, WalOptions::new(DIM + 1, SyncPolicy::None)).unwrap_err();
    assert!(matches!(err, DurabilityError::DimensionMismatch { .. }), "{err}");

    // A log of shard 1 in a directory opened with one shard would be ignored: refused instead.
    let wal1 = ShardWal::open(dir.path(), 1, WalOptions::new(DIM, SyncPolicy::None)).unwrap();
    drop(wal1);
    let err = Recovery::open(dir.path(), DIM, 1).unwrap_err();
    assert!(matches!(err, DurabilityError::ShardCountMismatch { .. }), "{err}");
    std::fs::remove_file(dir.path().join(segment_name(1, 0))).unwrap();

    // Another format version: rewrite the version field and fix the header checksum.
    let path = dir.path().join(segment_name(0, 0));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32fast::hash(&bytes[0..40]);
    bytes[40..44].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = Recovery::open(dir.path(), DIM, 1).unwrap_err();
    assert!(
        matches!(
            err,
            DurabilityError::UnsupportedVersion {
                found: 1,
                supported: locus::durability::FORMAT_VERSION,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_manifest_naming_a_missing_snapshot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let info = SnapshotWriter::create(dir.path(), DIM, vec![0])
        .unwrap()
        .commit()
        .unwrap();
    std::fs::remove_file(dir.path().join(&info.file)).unwrap();
    let err = Recovery::open(dir.path(), DIM, 1).unwrap_err();
    assert!(matches!(err, DurabilityError::MissingFile { .. }), "{err}");
}

#[test]
fn a_missing_middle_segment_is_a_gap_not_a_skip() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = WalOptions::new(DIM, SyncPolicy::EveryBatch);
    options.segment_bytes = 4096;
    let wal = ShardWal::open(dir.path(), 0, options).unwrap();
    for id in 0..200 {
        let _ = wal.append(&episode(id, 8)).unwrap();
    }
    drop(wal);
    std::fs::remove_file(dir.path().join(segment_name(0, 1))).unwrap();
    let err = Recovery::open(dir.path(), DIM, 1).unwrap_err();
    assert!(matches!(err, DurabilityError::WalGap { .. }), "{err}");
}

#[test]
fn a_torn_tail_must_be_recovered_before_appending() {
    let dir = tempfile::tempdir().unwrap();
    let wal = ShardWal::open(dir.path(), 0, WalOptions::new(DIM, SyncPolicy::EveryBatch)).unwrap();
    for id in 0..3 {
        let _ = wal.append(&episode(id, 8)).unwrap();
    }
    drop(wal);
    let path = dir.path().join(segment_name(0, 0));
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    let err = ShardWal::open(dir.path(), 0, WalOptions::new(DIM, SyncPolicy::EveryBatch)).unwrap_err();
    assert!(matches!(err, DurabilityError::UnrecoveredTail { .. }), "{err}");
    let (_, report) = Recovery::open(dir.path(), DIM, 1).unwrap();
    let tail = report.shards[0].torn_tail.as_ref().expect("a torn tail reported");
    assert!(tail.dropped_bytes > 0);
    assert_eq!(report.shards[0].end_lsn, 2);
    let wal = ShardWal::open(dir.path(), 0, WalOptions::new(DIM, SyncPolicy::EveryBatch)).unwrap();
    assert_eq!(wal.append(&episode(9, 8)).unwrap(), Durable::Synced { lsn: 2 });
}

#[test]
fn invalid_records_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let wal = ShardWal::open(dir.path(), 0, WalOptions::new(DIM, SyncPolicy::EveryBatch)).unwrap();
    let err = wal.append(&episode(1, 7)).unwrap_err();
    assert!(matches!(err, DurabilityError::InvalidRecord { .. }), "{err}");
    assert_eq!(wal.append(&episode(2, 8)).unwrap(), Durable::Synced { lsn: 0 });
}

#[test]
fn flush_returns_under_a_steady_stream_of_appends() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(ShardWal::open(dir.path(), 0, WalOptions::new(DIM, SyncPolicy::EveryBatch)).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let appenders: Vec<_> = (0..2)
        .map(|t| {
            let (wal, stop) = (Arc::clone(&wal), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = wal.append(&episode(t * 1_000_000 + i, 8)).unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    // A flush waits only for what was appended before it; a watchdog turns a starved flush into
    // a failure instead of a hang.
    let (tx, rx) = std::sync::mpsc::channel();
    let flusher = {
        let wal = Arc::clone(&wal);
        std::thread::spawn(move || {
            let mut last = 0;
            for _ in 0..10 {
                let covered = wal.flush().unwrap();
                assert!(covered >= last, "flush positions never go back");
                last = covered;
            }
            tx.send(last).unwrap();
        })
    };
    let result = rx.recv_timeout(std::time::Duration::from_secs(60));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for a in appenders {
        a.join().unwrap();
    }
    flusher.join().unwrap();
    assert!(result.is_ok(), "flush starved by concurrent appends");
}

#[test]
fn truncation_refuses_a_snapshot_beyond_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let wal = ShardWal::open(dir.path(), 0, WalOptions::new(DIM, SyncPolicy::EveryBatch)).unwrap();
    let _ = wal.append(&episode(1, 8)).unwrap();
    let info = SnapshotWriter::create(dir.path(), DIM, vec![5])
        .unwrap()
        .commit()
        .unwrap();
    let err = wal.truncate_before(&info).unwrap_err();
    assert!(matches!(err, DurabilityError::InvalidInput { .. }), "{err}");
    let two_shards = SnapshotWriter::create(dir.path(), DIM, vec![0, 0])
        .unwrap()
        .commit()
        .unwrap();
    assert_eq!(
        wal.truncate_before(&two_shards).unwrap(),
        0,
        "nothing covered, nothing removed"
    );
}

#[test]
fn an_abandoned_snapshot_leaves_the_previous_one_current_and_foreign_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let first = SnapshotWriter::create(dir.path(), DIM, vec![0]).unwrap();
    let first = {
        let mut w = first;
        w.section("index", b"one").unwrap();
        w.commit().unwrap()
    };
    let mut second = SnapshotWriter::create(dir.path(), DIM, vec![0]).unwrap();
    second.section("index", b"two").unwrap();
    drop(second);
    std::fs::write(dir.path().join("other.tmp"), b"not ours").unwrap();
    let (state, report) = Recovery::open(dir.path(), DIM, 1).unwrap();
    let snapshot = state.snapshot.unwrap();
    assert_eq!(snapshot.info.id, first.id);
    assert_eq!(snapshot.section("index"), Some(&b"one"[..]));
    assert!(
        report.removed_temp_files.is_empty(),
        "the abandoned writer removed its own file"
    );
    assert!(
        dir.path().join("other.tmp").exists(),
        "recovery removes only its own temporary files"
    );
}
