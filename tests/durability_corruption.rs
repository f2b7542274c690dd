//! Corruption loops: truncate a small log at every byte (record boundaries and mid-record) and
//! flip every bit of it, and of a snapshot and a manifest. Each case must either recover to a
//! prefix of what was written or refuse with a typed error — never panic, never return garbage.

mod durability_support;

use durability_support::{copy_dir, episode, recover_all, scratch_dir};
use locus::durability::{
    DurabilityError, MANIFEST_NAME, Record, ShardWal, SnapshotWriter, SyncPolicy, WalOptions, segment_name,
};
use std::path::Path;

const DIM: u32 = 4;
const RECORDS: u64 = 8;
const HEADER_LEN: usize = 48;
const FRAME_HEADER: usize = 24;

/// Writes `RECORDS` episodes into one segment and returns the directory, the originals, and
/// the byte offset where each frame starts (plus the file's end).
fn small_log() -> (tempfile::TempDir, Vec<Record>, Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let wal = ShardWal::open(dir.path(), 0, WalOptions::new(DIM, SyncPolicy::EveryBatch)).unwrap();
    let originals: Vec<Record> = (0..RECORDS).map(|id| episode(id, DIM as usize)).collect();
    for r in &originals {
        let _ = wal.append(r).unwrap();
    }
    drop(wal);
    let mut starts = vec![HEADER_LEN];
    for r in &originals {
        let last = *starts.last().unwrap();
        starts.push(last + FRAME_HEADER + r.encoded_len());
    }
    let len = std::fs::metadata(dir.path().join(segment_name(0, 0)))
        .unwrap()
        .len() as usize;
    assert_eq!(*starts.last().unwrap(), len, "frame layout as documented");
    (dir, originals, starts)
}

fn check_prefix(got: &[(u64, Record)], originals: &[Record]) -> usize {
    assert!(got.len() <= originals.len());
    for (i, (lsn, r)) in got.iter().enumerate() {
        assert_eq!(*lsn, i as u64);
        assert_eq!(r, &originals[i], "recovered record {i} differs: garbage returned");
    }
    got.len()
}

fn damage(dir: &Path, name: &str, f: impl FnOnce(&mut Vec<u8>)) -> tempfile::TempDir {
    let copy = copy_dir(dir);
    let path = copy.path().join(name);
    let mut bytes = std::fs::read(&path).unwrap();
    f(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    copy
}

/// Writes a damaged copy of the one-segment log `original` into `scratch` (reused across cases:
/// recovery changes only that file).
fn damage_in_place(scratch: &Path, original: &[u8], f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = original.to_vec();
    f(&mut bytes);
    std::fs::write(scratch.join(segment_name(0, 0)), &bytes).unwrap();
}

#[test]
fn truncation_at_every_byte_recovers_the_whole_records_before_it() {
    let (dir, originals, starts) = small_log();
    let seg = segment_name(0, 0);
    // Every byte: each record boundary and every mid-record position. The scratch directory
    // is on a memory file system when one exists, so the truncation fsyncs are cheap.
    let cuts = 0..=*starts.last().unwrap();
    let original = std::fs::read(dir.path().join(&seg)).unwrap();
    let scratch = scratch_dir();
    for cut in cuts {
        damage_in_place(scratch.path(), &original, |b| b.truncate(cut));
        let copy = &scratch;
        match recover_all(copy.path(), DIM) {
            Ok(got) => {
                assert!(cut >= HEADER_LEN, "cut {cut}: a truncated header must be refused");
                let whole = starts.iter().filter(|&&s| s > HEADER_LEN && s <= cut).count();
                assert_eq!(check_prefix(&got, &originals), whole, "cut {cut}");
                // The torn bytes are gone from the file: a second recovery finds a clean log.
                let (_, report) = locus::durability::Recovery::open(copy.path(), DIM, 1).unwrap();
                assert!(
                    report.shards[0].torn_tail.is_none(),
                    "cut {cut}: tail truncated on disk"
                );
            }
            Err(e) => {
                assert!(cut < HEADER_LEN, "cut {cut} refused: {e}");
                assert!(matches!(e, DurabilityError::Corrupt { .. }), "cut {cut}: {e}");
            }
        }
    }
}

#[test]
fn every_bit_flip_in_a_log_is_caught_or_cut_at_the_tail() {
    let (dir, originals, starts) = small_log();
    let seg = segment_name(0, 0);
    let len = *starts.last().unwrap();
    let last_frame = starts[starts.len() - 2];
    let (mut refused, mut cut_tail) = (0, 0);
    let bits = 0..len * 8;
    let original = std::fs::read(dir.path().join(&seg)).unwrap();
    let scratch = scratch_dir();
    for bit in bits {
        damage_in_place(scratch.path(), &original, |b| b[bit / 8] ^= 1 << (bit % 8));
        let copy = &scratch;
        let byte = bit / 8;
        match recover_all(copy.path(), DIM) {
            Ok(got) => {
                let n = check_prefix(&got, &originals);
                // Only damage in the last record may be taken for a torn tail.
                assert!(
                    byte >= last_frame,
                    "bit {bit} (byte {byte}) before the tail was skipped silently"
                );
                assert_eq!(n, originals.len() - 1, "bit {bit}");
                cut_tail += 1;
            }
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        DurabilityError::Corrupt { .. }
                            | DurabilityError::UnsupportedVersion { .. }
                            | DurabilityError::DimensionMismatch { .. }
                    ),
                    "bit {bit}: {e}"
                );
                refused += 1;
            }
        }
    }
    assert!(
        refused > 0 && cut_tail > 0,
        "refused {refused}, tail cut {cut_tail}"
    );
}

#[test]
fn damage_in_a_sealed_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = WalOptions::new(DIM, SyncPolicy::EveryBatch);
    options.segment_bytes = 4096;
    let wal = ShardWal::open(dir.path(), 0, options).unwrap();
    for id in 0..100 {
        let _ = wal.append(&episode(id, DIM as usize)).unwrap();
    }
    drop(wal);
    let seg = segment_name(0, 0);
    let len = std::fs::metadata(dir.path().join(&seg)).unwrap().len() as usize;
    // The very last bytes of a sealed segment: still corruption, not a torn tail.
    for byte in [HEADER_LEN + 3, len / 2, len - 1] {
        let copy = damage(dir.path(), &seg, |b| b[byte] ^= 0x40);
        let err = recover_all(copy.path(), DIM).unwrap_err();
        assert!(
            matches!(err, DurabilityError::Corrupt { .. }),
            "byte {byte}: {err}"
        );
    }
    let copy = damage(dir.path(), &seg, |b| b.truncate(len - 1));
    assert!(
        recover_all(copy.path(), DIM).is_err(),
        "a short sealed segment is refused"
    );
}

#[test]
fn every_truncation_and_bit_flip_of_a_snapshot_is_refused() {
    let dir = scratch_dir();
    let mut w = SnapshotWriter::create(dir.path(), DIM, vec![0]).unwrap();
    w.section("index", b"index bytes").unwrap();
    w.section("graph", &[9u8; 40]).unwrap();
    let info = w.commit().unwrap();
    let path = dir.path().join(&info.file);
    let good = locus::durability::load_snapshot(&path, DIM, 1).unwrap();
    assert_eq!(good.section("index"), Some(&b"index bytes"[..]));
    let bytes = std::fs::read(&path).unwrap();
    for cut in 0..bytes.len() {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert!(
            locus::durability::load_snapshot(&path, DIM, 1).is_err(),
            "cut {cut} accepted"
        );
    }
    for bit in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        std::fs::write(&path, &b).unwrap();
        assert!(
            locus::durability::load_snapshot(&path, DIM, 1).is_err(),
            "flip of bit {bit} accepted"
        );
    }
    // Trailing garbage is refused too.
    let mut b = bytes.clone();
    b.push(0);
    std::fs::write(&path, &b).unwrap();
    assert!(locus::durability::load_snapshot(&path, DIM, 1).is_err());
}

#[test]
fn every_bit_flip_of_the_manifest_is_refused() {
    let dir = scratch_dir();
    let _ = SnapshotWriter::create(dir.path(), DIM, vec![0])
        .unwrap()
        .commit()
        .unwrap();
    let path = dir.path().join(MANIFEST_NAME);
    let bytes = std::fs::read(&path).unwrap();
    for bit in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        std::fs::write(&path, &b).unwrap();
        assert!(
            locus::durability::Recovery::open(dir.path(), DIM, 1).is_err(),
            "flip of bit {bit} accepted"
        );
    }
}
