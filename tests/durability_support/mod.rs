//! Shared helpers of the durability tests: deterministic records whose content follows from
//! their id, so a recovered record can be checked as intact.
#![allow(dead_code)]

use locus::durability::{EpisodeRecord, LinkKind, LinkRecord, Record, Recovery};
use std::path::Path;

/// An episode whose every field is derived from `id`.
pub fn episode(id: u64, dim: usize) -> Record {
    let seed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Record::Episode(EpisodeRecord {
        seq: id,
        id,
        space: format!("space-{}", id % 3),
        stream: if id % 2 == 0 {
            Some(format!("stream-{}", id / 2))
        } else {
            None
        },
        timestamp: id * 10,
        embedding: (0..dim)
            .map(|i| ((seed >> (i % 48)) & 0xFFFF) as f32 / 65536.0 + i as f32)
            .collect(),
        payload: id.to_le_bytes().repeat((id % 4) as usize + 1),
        links: (0..(id % 3))
            .map(|k| LinkRecord {
                target: id.wrapping_sub(k + 1),
                weight: 0.5 + k as f32,
                direction: [LinkKind::Both, LinkKind::Out, LinkKind::In][(k % 3) as usize],
            })
            .collect(),
    })
}

/// The id of an episode record (panics on other kinds: the tests write only episodes).
pub fn id_of(r: &Record) -> u64 {
    match r {
        Record::Episode(e) => e.id,
        other => panic!("unexpected record {other:?}"),
    }
}

/// Recovers `dir` (one shard) and returns every replayed record in order, or the error.
pub fn recover_all(dir: &Path, dim: u32) -> Result<Vec<(u64, Record)>, locus::durability::DurabilityError> {
    let (state, _) = Recovery::open(dir, dim, 1)?;
    state.shards[0].records().collect()
}

/// Copies every file of `from` into a fresh temporary directory.
pub fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.path().join(entry.file_name())).expect("copy");
    }
    to
}

/// A temporary directory on a memory file system when there is one (`/dev/shm`), else the
/// default: the corruption loops rewrite thousands of small files and test parsing, not disks.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().expect("tempdir")
}
