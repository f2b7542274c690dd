//! Failed I/O at every operation of the durability seam, as SQLite's I/O-error tests do: a run
//! of appends with rotation, a snapshot and log truncation is repeated with the `n`-th write,
//! fsync, create, rename, remove or directory fsync failing (EIO, ENOSPC, or a short write
//! followed by an error), for every `n`. Each operation either succeeds or fails with a typed
//! error; afterwards the directory opens in the default mode and holds every acknowledged
//! record exactly once, and nothing that was never appended.

mod durability_support;

use durability_support::{episode, id_of, scratch_dir};
use locus::durability::{
    DurabilityError, OsStorage, Recovery, ShardWal, SnapshotWriter, Storage, StorageFile, SyncPolicy,
    WalOptions,
};
use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const DIM: u32 = 8;
const RECORDS: u64 = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Eio,
    Enospc,
    /// Half the bytes, then EIO (writes only; other operations fail with EIO).
    Short,
}

/// Counts every operation; the `fail_at`-th fails once with `fault`.
#[derive(Debug)]
struct FailingStorage {
    ops: Arc<AtomicU64>,
    fail_at: u64,
    fault: Fault,
}

impl FailingStorage {
    /// Whether this operation is the one to fail, and how.
    fn hit(&self) -> Option<io::Error> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        (n == self.fail_at).then(|| match self.fault {
            Fault::Enospc => io::Error::from_raw_os_error(libc::ENOSPC),
            _ => io::Error::from_raw_os_error(libc::EIO),
        })
    }
}

#[derive(Debug)]
struct FailingFile {
    real: Box<dyn StorageFile>,
    storage: Arc<FailingStorage>,
}

impl Write for FailingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(e) = self.storage.hit() {
            if self.storage.fault == Fault::Short {
                self.real.write_all(&buf[..buf.len() / 2])?;
            }
            return Err(e);
        }
        self.real.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.real.flush()
    }
}

impl StorageFile for FailingFile {
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.storage.hit().map_or(Ok(()), Err)?;
        self.real.set_len(len)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.storage.hit().map_or(Ok(()), Err)?;
        self.real.sync_data()
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.storage.hit().map_or(Ok(()), Err)?;
        self.real.sync_all()
    }
}

/// The seam handed to the log: it needs an `Arc<FailingStorage>` to give its files.
#[derive(Debug)]
struct Seam(Arc<FailingStorage>);

impl Storage for Seam {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.0.hit().map_or(Ok(()), Err)?;
        Ok(Box::new(FailingFile {
            real: OsStorage.create_new(path)?,
            storage: Arc::clone(&self.0),
        }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.0.hit().map_or(Ok(()), Err)?;
        Ok(Box::new(FailingFile {
            real: OsStorage.open_append(path)?,
            storage: Arc::clone(&self.0),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.hit().map_or(Ok(()), Err)?;
        OsStorage.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.hit().map_or(Ok(()), Err)?;
        OsStorage.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.hit().map_or(Ok(()), Err)?;
        OsStorage.sync_dir(dir)
    }
}

fn typed(e: &DurabilityError) -> bool {
    matches!(
        e,
        DurabilityError::StorageFull { .. } | DurabilityError::Io { .. } | DurabilityError::WalBroken { .. }
    )
}

/// One run with the `fail_at`-th operation failing; returns how many operations it made.
fn run(dir: &Path, policy: SyncPolicy, fail_at: u64, fault: Fault) -> u64 {
    let ops = Arc::new(AtomicU64::new(0));
    let storage = Arc::new(FailingStorage {
        ops: Arc::clone(&ops),
        fail_at,
        fault,
    });
    let seam: Arc<dyn Storage> = Arc::new(Seam(Arc::clone(&storage)));
    let mut options = WalOptions::new(DIM, policy);
    options.segment_bytes = 4096;
    options.storage = Arc::clone(&seam);
    let case = format!("{policy:?}, operation {fail_at} fails with {fault:?}");
    let wal = match ShardWal::open(dir, 0, options) {
        Ok(w) => Some(w),
        Err(e) => {
            assert!(typed(&e), "{case}: open: {e}");
            None
        }
    };
    let mut acked = Vec::new();
    let mut attempted = HashSet::new();
    if let Some(wal) = &wal {
        for id in 0..RECORDS {
            attempted.insert(id);
            match wal.append(&episode(id, DIM as usize)) {
                Ok(_) => acked.push(id),
                Err(e) => {
                    assert!(typed(&e), "{case}: append {id}: {e}");
                    if matches!(e, DurabilityError::WalBroken { .. }) {
                        break;
                    }
                }
            }
            if id == RECORDS / 2 {
                // A snapshot and truncation in the middle (a snapshot holding nothing: the
                // records stay in the log unless truncated, and truncation only follows a
                // committed snapshot — so this one covers nothing).
                match wal.flush() {
                    Ok(_) => match SnapshotWriter::create_in(Arc::clone(&seam), dir, DIM, vec![0])
                        .and_then(|w| w.commit())
                    {
                        Ok(info) => {
                            if let Err(e) = wal.truncate_before(&info) {
                                assert!(typed(&e), "{case}: truncate: {e}");
                            }
                        }
                        Err(e) => assert!(typed(&e), "{case}: snapshot: {e}"),
                    },
                    Err(e) => {
                        assert!(typed(&e), "{case}: flush: {e}");
                        if matches!(e, DurabilityError::WalBroken { .. }) {
                            break;
                        }
                    }
                }
            }
        }
        if policy != SyncPolicy::EveryBatch {
            // Acknowledged durable for the other policies: what a successful flush covered.
            if wal.flush().is_err() {
                acked.clear();
            }
        }
    }
    drop(wal);
    let made = ops.load(Ordering::SeqCst);
    // The directory opens and holds every acknowledged record exactly once.
    let (state, _) = Recovery::open(dir, DIM, 1).unwrap_or_else(|e| panic!("{case}: recovery refused: {e}"));
    let mut seen = HashSet::new();
    for item in state.shards[0].records() {
        let (_, r) = item.unwrap_or_else(|e| panic!("{case}: replay: {e}"));
        let id = id_of(&r);
        assert_eq!(r, episode(id, DIM as usize), "{case}: record {id} damaged");
        assert!(attempted.contains(&id), "{case}: record {id} was never appended");
        assert!(seen.insert(id), "{case}: record {id} twice");
    }
    for id in &acked {
        assert!(seen.contains(id), "{case}: acknowledged record {id} lost");
    }
    made
}

fn every_operation_fails_once(policy: SyncPolicy) {
    let total = run(scratch_dir().path(), policy, u64::MAX, Fault::Eio);
    assert!(total > 50, "{total} operations");
    let mut cases = 0;
    for fail_at in 0..total {
        for fault in [Fault::Eio, Fault::Enospc, Fault::Short] {
            run(scratch_dir().path(), policy, fail_at, fault);
            cases += 1;
        }
    }
    println!(
        "failed I/O, policy {policy:?}: {total} seam operations, {cases} runs with one failing: all typed, none lost an acknowledged record"
    );
}

#[test]
fn a_failure_at_any_operation_is_typed_and_loses_nothing_acknowledged_every_batch() {
    every_operation_fails_once(SyncPolicy::EveryBatch);
}

#[test]
fn a_failure_at_any_operation_is_typed_and_loses_nothing_acknowledged_none() {
    every_operation_fails_once(SyncPolicy::None);
}
