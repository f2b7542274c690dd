//! Operators' mistakes on a log directory: segments deleted, renamed, swapped, truncated or
//! copied in, stray files, planted symbolic links, a read-only medium. Each is detected and
//! reported by the default open (never read as a shorter log), salvaged only by the
//! point-in-time mode, which says what it left out.

mod durability_support;

use durability_support::{episode, id_of};
use locus::durability::{
    DurabilityError, Record, RecordLimits, Recovery, RecoveryMode, RecoveryOptions, RecoveryReport, ShardWal,
    SnapshotWriter, SyncPolicy, WalOptions, segment_name,
};
use std::path::Path;

const DIM: u32 = 8;

/// A one-shard log of `n` records in 4 KiB segments, closed; returns the number of segments.
fn log(dir: &Path, n: u64) -> u64 {
    let mut options = WalOptions::new(DIM, SyncPolicy::EveryBatch);
    options.segment_bytes = 4096;
    let wal = ShardWal::open(dir, 0, options).unwrap();
    for id in 0..n {
        let _ = wal.append(&episode(id, DIM as usize)).unwrap();
    }
    drop(wal);
    let segments = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name().to_string_lossy().into_owned();
            n.starts_with("wal-0-") && n.ends_with(".log")
        })
        .count() as u64;
    assert!(segments >= 4, "the test needs several segments, got {segments}");
    segments
}

fn strict(dir: &Path) -> Result<(Vec<u64>, RecoveryReport), DurabilityError> {
    open(dir, RecoveryOptions::default())
}

fn salvage(dir: &Path) -> (Vec<u64>, RecoveryReport) {
    let options = RecoveryOptions {
        mode: RecoveryMode::PointInTime,
        read_only: false,
    };
    open(dir, options).expect("point-in-time recovery opens the intact prefix")
}

fn open(dir: &Path, options: RecoveryOptions) -> Result<(Vec<u64>, RecoveryReport), DurabilityError> {
    let (state, report) = Recovery::open_opts(dir, RecordLimits::new(DIM), 1, options)?;
    let mut ids = Vec::new();
    for item in state.shards[0].records() {
        let (lsn, r) = item?;
        assert_eq!(r, episode(lsn, DIM as usize), "record {lsn} is not intact");
        ids.push(id_of(&r));
    }
    Ok((ids, report))
}

fn seg(dir: &Path, seq: u64) -> std::path::PathBuf {
    dir.join(segment_name(0, seq))
}

fn is_chain(e: &DurabilityError) -> bool {
    matches!(e, DurabilityError::SegmentChain { shard: 0, .. })
}

#[test]
fn deleting_the_newest_segment_is_reported_not_read_as_a_shorter_log() {
    let dir = tempfile::tempdir().unwrap();
    let n = log(dir.path(), 200);
    std::fs::remove_file(seg(dir.path(), n - 1)).unwrap();
    let err = strict(dir.path()).unwrap_err();
    assert!(is_chain(&err), "{err}");
    assert!(err.to_string().contains(&format!("segment {}", n - 1)), "{err}");
    // The last two as well.
    std::fs::remove_file(seg(dir.path(), n - 2)).unwrap();
    let err = strict(dir.path()).unwrap_err();
    assert!(is_chain(&err), "{err}");
    // Salvage opens what is there: a prefix, in order, and says why it stops short.
    let (ids, report) = salvage(dir.path());
    let why = report.shards[0].stopped.as_deref().unwrap_or_default();
    assert!(why.contains("missing"), "{report:?}");
    assert!(!ids.is_empty() && ids.len() < 200);
    assert!(ids.iter().enumerate().all(|(i, &id)| id == i as u64));
    // ... and the directory is consistent again for the default open.
    let (again, _) = strict(dir.path()).unwrap();
    assert_eq!(again, ids);
}

#[test]
fn renamed_swapped_or_copied_in_segments_break_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let n = log(dir.path(), 200);
    let work = tempfile::tempdir().unwrap();
    let fresh = |work: &Path| {
        for e in std::fs::read_dir(work).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), work.join(e.file_name())).unwrap();
        }
    };
    // Renamed: the newest segment under the next name.
    fresh(work.path());
    std::fs::rename(seg(work.path(), n - 1), seg(work.path(), n)).unwrap();
    let err = strict(work.path()).unwrap_err();
    assert!(is_chain(&err), "renamed: {err}");
    // Swapped: two sealed segments' names.
    fresh(work.path());
    let tmp = work.path().join("swap");
    std::fs::rename(seg(work.path(), 1), &tmp).unwrap();
    std::fs::rename(seg(work.path(), 2), seg(work.path(), 1)).unwrap();
    std::fs::rename(&tmp, seg(work.path(), 2)).unwrap();
    let err = strict(work.path()).unwrap_err();
    assert!(is_chain(&err), "swapped: {err}");
    // Copied in: an old segment again, as the newest.
    fresh(work.path());
    std::fs::copy(seg(work.path(), 1), seg(work.path(), n)).unwrap();
    let err = strict(work.path()).unwrap_err();
    assert!(is_chain(&err), "copied in: {err}");
    // Replaced: a segment of another log with the same numbering (same records, other bytes).
    fresh(work.path());
    let other = tempfile::tempdir().unwrap();
    let mut options = WalOptions::new(DIM, SyncPolicy::None);
    options.segment_bytes = 4096;
    let wal = ShardWal::open(other.path(), 0, options).unwrap();
    for id in 0..200 {
        let mut r = episode(id, DIM as usize);
        if let Record::Episode(e) = &mut r {
            e.timestamp += 1;
        }
        let _ = wal.append(&r).unwrap();
    }
    drop(wal);
    std::fs::copy(seg(other.path(), 1), seg(work.path(), 1)).unwrap();
    let err = strict(work.path()).unwrap_err();
    assert!(is_chain(&err), "replaced: {err}");
    // Salvage keeps the prefix before the break and moves the rest aside, reported.
    let (ids, report) = salvage(work.path());
    assert!(ids.iter().enumerate().all(|(i, &id)| id == i as u64));
    assert!(!report.shards[0].left_out.is_empty(), "{report:?}");
    assert!(report.dropped_bytes() > 0);
}

#[test]
fn truncating_fsynced_records_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let n = log(dir.path(), 200);
    // A sealed segment cut at a frame boundary or inside one.
    let len = std::fs::metadata(seg(dir.path(), 1)).unwrap().len();
    let work = durability_support::copy_dir(dir.path());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(seg(work.path(), 1))
        .unwrap();
    f.set_len(len - 7).unwrap();
    drop(f);
    assert!(strict(work.path()).is_err(), "a cut sealed segment");
    // The newest segment, after the log was reopened (its head says everything was fsynced).
    let mut options = WalOptions::new(DIM, SyncPolicy::EveryBatch);
    options.segment_bytes = 4096;
    drop(ShardWal::open(dir.path(), 0, options).unwrap());
    let last = seg(dir.path(), n - 1);
    let len = std::fs::metadata(&last).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.set_len(len - 100).unwrap();
    drop(f);
    let err = strict(dir.path()).unwrap_err();
    assert!(is_chain(&err), "{err}");
    assert!(err.to_string().contains("fsynced"), "{err}");
    let (ids, report) = salvage(dir.path());
    assert!(ids.len() < 200 && ids.iter().enumerate().all(|(i, &id)| id == i as u64));
    assert!(report.shards[0].torn_tail.is_some(), "{report:?}");
}

#[test]
fn a_bit_flip_in_a_sealed_segment_is_refused_and_salvaged_only_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let n = log(dir.path(), 200);
    let path = seg(dir.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let err = strict(dir.path()).unwrap_err();
    match &err {
        DurabilityError::Corrupt { path: p, what, .. } => {
            assert_eq!(p, &path);
            assert!(what.contains("shard 0"), "{err}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let (ids, report) = salvage(dir.path());
    let s = &report.shards[0];
    let tail = s.torn_tail.as_ref().expect("the cut is reported");
    assert_eq!(tail.path, path);
    assert_eq!(s.left_out.len() as u64, n - 2, "{report:?}");
    assert_eq!(ids.len() as u64, tail.from_lsn);
    // What was left out is kept beside the log, and the log goes on from the cut.
    let kept = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".left-out")
        })
        .count() as u64;
    assert_eq!(kept, n - 1);
    let wal = ShardWal::open(dir.path(), 0, WalOptions::new(DIM, SyncPolicy::EveryBatch)).unwrap();
    let next = ids.len() as u64;
    assert_eq!(
        wal.append(&episode(next, DIM as usize)).unwrap(),
        locus::durability::Durable::Synced { lsn: next }
    );
    drop(wal);
    let (after, _) = strict(dir.path()).unwrap();
    assert_eq!(after.len() as u64, next + 1);
}

#[test]
fn stray_files_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    log(dir.path(), 100);
    for name in [
        "notes.txt",
        "wal-0-x.log",
        "wal-0-3.log.bak",
        "snap-x.snap",
        "wal-.log",
    ] {
        std::fs::write(dir.path().join(name), b"stray").unwrap();
    }
    let (ids, _) = strict(dir.path()).unwrap();
    assert_eq!(ids.len(), 100);
    for name in [
        "notes.txt",
        "wal-0-x.log",
        "wal-0-3.log.bak",
        "snap-x.snap",
        "wal-.log",
    ] {
        assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), b"stray", "{name}");
    }
}

#[cfg(unix)]
#[test]
fn planted_symbolic_links_are_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    for name in [
        ".locus-write-probe",
        "wal-0-0.log.tmp",
        "wal-0-1.log.tmp",
        "MANIFEST.tmp",
        "wal-0.head.tmp",
    ] {
        std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
    }
    let mut options = WalOptions::new(DIM, SyncPolicy::EveryBatch);
    options.segment_bytes = 4096;
    let wal = ShardWal::open(dir.path(), 0, options).unwrap();
    for id in 0..100 {
        let _ = wal.append(&episode(id, DIM as usize)).unwrap();
    }
    let covered = wal.flush().unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("snap-1.snap.tmp")).unwrap();
    let info = SnapshotWriter::create(dir.path(), DIM, vec![covered])
        .unwrap()
        .commit()
        .unwrap();
    drop(wal);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(
        dir.path()
            .join(&info.file)
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_file()
    );
    // A segment replaced by a link is not appended through either.
    let (_, _) = strict(dir.path()).unwrap();
    let last = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("wal-0-") && n.ends_with(".log"))
        .max_by_key(|n| {
            n.trim_start_matches("wal-0-")
                .trim_end_matches(".log")
                .parse::<u64>()
                .unwrap()
        })
        .unwrap();
    let real = victim_dir.path().join("moved");
    std::fs::rename(dir.path().join(&last), &real).unwrap();
    std::os::unix::fs::symlink(&real, dir.path().join(&last)).unwrap();
    let before = std::fs::read(&real).unwrap();
    let err = ShardWal::open(dir.path(), 0, WalOptions::new(DIM, SyncPolicy::EveryBatch)).unwrap_err();
    assert!(matches!(err, DurabilityError::Io { .. }), "{err}");
    assert_eq!(std::fs::read(&real).unwrap(), before);
}

#[test]
fn a_read_only_open_changes_nothing_and_reads_what_a_writable_open_keeps() {
    let dir = tempfile::tempdir().unwrap();
    log(dir.path(), 100);
    let last = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .unwrap();
    // A torn tail and a leftover temporary file: a writable open would cut and remove them.
    let mut bytes = std::fs::read(&last).unwrap();
    bytes.extend_from_slice(&[0xAB; 37]);
    std::fs::write(&last, &bytes).unwrap();
    std::fs::write(dir.path().join("MANIFEST.tmp"), b"half").unwrap();
    let listing = |d: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(dir.path());
    let ro = RecoveryOptions {
        read_only: true,
        ..RecoveryOptions::default()
    };
    let (ids, report) = open(dir.path(), ro).unwrap();
    assert_eq!(ids.len(), 100);
    assert_eq!(
        report.shards[0].torn_tail.as_ref().map(|t| t.dropped_bytes),
        Some(37)
    );
    assert_eq!(
        listing(dir.path()),
        before,
        "a read-only open changed the directory"
    );
    let (writable, _) = strict(dir.path()).unwrap();
    assert_eq!(writable, ids);
    // The absolute mode refuses even an unsynced tail.
    let dir2 = tempfile::tempdir().unwrap();
    log(dir2.path(), 100);
    let last2 = dir2.path().join(last.file_name().unwrap());
    let mut bytes = std::fs::read(&last2).unwrap();
    bytes.extend_from_slice(&[0xAB; 37]);
    std::fs::write(&last2, &bytes).unwrap();
    let abs = RecoveryOptions {
        mode: RecoveryMode::Absolute,
        read_only: true,
    };
    assert!(matches!(
        open(dir2.path(), abs),
        Err(DurabilityError::Corrupt { .. })
    ));
}

#[test]
fn a_failed_snapshots_leftover_files_are_removed_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    log(dir.path(), 100);
    let info = SnapshotWriter::create(dir.path(), DIM, vec![0])
        .unwrap()
        .commit()
        .unwrap();
    // Files of snapshot `info.id` (committed) stay; those of the next id (never committed) go.
    let kept = format!("snap-{}.0.default.0.hnsw", info.id);
    std::fs::write(dir.path().join(&kept), b"index").unwrap();
    let next = info.id + 1;
    let leftovers = [
        format!("snap-{next}.snap"),
        format!("snap-{next}.0.default.0.hnsw"),
    ];
    for name in &leftovers {
        std::fs::write(dir.path().join(name), b"half a snapshot").unwrap();
    }
    let (_, report) = strict(dir.path()).unwrap();
    for name in &leftovers {
        assert!(!dir.path().join(name).exists(), "{name} left behind");
        assert!(
            report.removed_temp_files.contains(name),
            "{name} not reported: {report:?}"
        );
    }
    assert!(dir.path().join(&kept).exists());
    assert!(dir.path().join(&info.file).exists());
}
