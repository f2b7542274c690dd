//! Disk failures: a full disk (ENOSPC, injected through the writer's fault hook, partial writes
//! included), an fsync that fails (EIO), and a read-only directory.
#![cfg(target_os = "linux")]

mod durability_support;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use durability_support::{episode, id_of, recover_all};
use locus::durability::{
    DurabilityError, Durable, FaultInjector, ShardWal, SyncPolicy, WalOptions, WriteFault, segment_name,
};

const DIM: u32 = 8;

#[derive(Debug, Default)]
struct Faults {
    /// Fail every write with ENOSPC after writing `partial` bytes of it.
    full: AtomicBool,
    partial: AtomicUsize,
    /// Fail every fdatasync with EIO.
    eio_on_sync: AtomicBool,
}

impl FaultInjector for Faults {
    fn before_write(&self, len: usize) -> WriteFault {
        if self.full.load(Ordering::SeqCst) {
            WriteFault::Partial {
                written: self.partial.load(Ordering::SeqCst).min(len),
                error: io::Error::from_raw_os_error(libc::ENOSPC),
            }
        } else {
            WriteFault::Proceed
        }
    }

    fn before_sync(&self) -> io::Result<()> {
        if self.eio_on_sync.load(Ordering::SeqCst) {
            Err(io::Error::from_raw_os_error(libc::EIO))
        } else {
            Ok(())
        }
    }
}

fn open_with_faults(dir: &Path, policy: SyncPolicy) -> (ShardWal, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let mut options = WalOptions::new(DIM, policy);
    options.faults = Some(faults.clone());
    (ShardWal::open(dir, 0, options).unwrap(), faults)
}

fn seg_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(segment_name(0, 0))).unwrap().len()
}

#[test]
fn a_full_disk_refuses_the_group_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, faults) = open_with_faults(dir.path(), SyncPolicy::EveryBatch);
    for id in 0..10 {
        let _ = wal.append(&episode(id, 8)).unwrap();
    }
    let before = seg_len(dir.path());
    faults.partial.store(7, Ordering::SeqCst);
    faults.full.store(true, Ordering::SeqCst);
    for id in 100..103 {
        let err = wal.append(&episode(id, 8)).unwrap_err();
        assert!(matches!(err, DurabilityError::StorageFull { .. }), "{err}");
    }
    assert_eq!(seg_len(dir.path()), before, "the partial write was cut off again");
    faults.full.store(false, Ordering::SeqCst);
    assert_eq!(
        wal.append(&episode(10, 8)).unwrap(),
        Durable::Synced { lsn: 10 },
        "no gap in the numbering"
    );
    drop(wal);
    let ids: Vec<u64> = recover_all(dir.path(), DIM)
        .unwrap()
        .iter()
        .map(|(_, r)| id_of(r))
        .collect();
    assert_eq!(ids, (0..11).collect::<Vec<_>>());
}

#[test]
fn a_failed_fsync_stops_the_log_and_recovery_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, faults) = open_with_faults(dir.path(), SyncPolicy::EveryBatch);
    for id in 0..5 {
        let _ = wal.append(&episode(id, 8)).unwrap();
    }
    faults.eio_on_sync.store(true, Ordering::SeqCst);
    let err = wal.append(&episode(5, 8)).unwrap_err();
    assert!(matches!(err, DurabilityError::Io { .. }), "{err}");
    faults.eio_on_sync.store(false, Ordering::SeqCst);
    let err = wal.append(&episode(6, 8)).unwrap_err();
    assert!(
        matches!(err, DurabilityError::WalBroken { .. }),
        "the log refuses appends after an fsync failure: {err}"
    );
    drop(wal);
    // Record 5 was written but its fsync failed: it may or may not be there; 0..5 must be.
    let records = recover_all(dir.path(), DIM).unwrap();
    let ids: Vec<u64> = records.iter().map(|(_, r)| id_of(r)).collect();
    assert!(
        ids == (0..5).collect::<Vec<_>>() || ids == (0..6).collect::<Vec<_>>(),
        "{ids:?}"
    );
}

#[test]
fn every_ms_keeps_a_failed_group_and_writes_it_once_the_disk_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, faults) = open_with_faults(dir.path(), SyncPolicy::EveryMs(1));
    faults.full.store(true, Ordering::SeqCst);
    for id in 0..5 {
        assert!(matches!(
            wal.append(&episode(id, 8)).unwrap(),
            Durable::Pending { .. }
        ));
    }
    // The background flush meets the full disk; new appends are then refused, not buffered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let refused = loop {
        match wal.append(&episode(1000, 8)) {
            Err(e) => break e,
            Ok(_) if std::time::Instant::now() > deadline => panic!("the full disk was never reported"),
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
        }
    };
    assert!(
        matches!(refused, DurabilityError::StorageFull { .. }),
        "{refused}"
    );
    faults.full.store(false, Ordering::SeqCst);
    let next = wal.flush().unwrap();
    drop(wal);
    let ids: Vec<u64> = recover_all(dir.path(), DIM)
        .unwrap()
        .iter()
        .map(|(_, r)| id_of(r))
        .collect();
    assert_eq!(ids.len() as u64, next);
    assert_eq!(
        &ids[..5],
        &[0, 1, 2, 3, 4],
        "the kept group was written, in order"
    );
    assert!(
        ids[5..].iter().all(|&id| id == 1000),
        "only the retries that were accepted follow"
    );
}

#[test]
fn a_read_only_directory_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(&ro, perms).unwrap();
    // Root ignores directory permissions; sysfs refuses file creation to everyone.
    let target = if std::fs::File::create(ro.join("probe")).is_ok() {
        eprintln!("running as root: using /sys/kernel as the read-only directory instead of a chmod 555 one");
        Path::new("/sys/kernel").to_path_buf()
    } else {
        ro
    };
    let err = ShardWal::open(&target, 0, WalOptions::new(DIM, SyncPolicy::EveryBatch)).unwrap_err();
    assert!(matches!(err, DurabilityError::ReadOnly { .. }), "{err}");
}
