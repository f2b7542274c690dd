//! File-system steps shared by the log, snapshots and the manifest.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::DurabilityError;
use super::storage::{OsStorage, Storage, remove_if_present};

/// Fsyncs a directory, so that files created, renamed or removed in it stay so after a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), DurabilityError> {
    sync_dir_in(&OsStorage, dir)
}

/// [`sync_dir`] through `storage`.
pub(crate) fn sync_dir_in(storage: &dyn Storage, dir: &Path) -> Result<(), DurabilityError> {
    storage
        .sync_dir(dir)
        .map_err(|e| DurabilityError::from_io("fsync directory", dir, e))
}

/// Writes `bytes` to `dir/name` atomically: a temporary file, fsynced, renamed, directory fsynced.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), DurabilityError> {
    write_atomic_in(&OsStorage, dir, name, bytes)
}

/// [`write_atomic`] through `storage`. The temporary file is created new (`O_EXCL`,
/// `O_NOFOLLOW`) after removing a leftover one, so a planted link is never written through.
pub(crate) fn write_atomic_in(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<(), DurabilityError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    remove_if_present(storage, &tmp).map_err(|e| DurabilityError::from_io("remove", &tmp, e))?;
    let mut f = storage
        .create_new(&tmp)
        .map_err(|e| DurabilityError::from_io("create", &tmp, e))?;
    f.write_all(bytes)
        .map_err(|e| DurabilityError::from_io("write", &tmp, e))?;
    f.sync_all()
        .map_err(|e| DurabilityError::from_io("fsync", &tmp, e))?;
    drop(f);
    storage
        .rename(&tmp, &path)
        .map_err(|e| DurabilityError::from_io("rename", &path, e))?;
    sync_dir_in(storage, dir)
}

/// Checks through `storage` that `dir` exists and accepts new files (a probe file is created and
/// removed; a leftover or planted `.locus-write-probe` is removed first, never written through).
pub(crate) fn check_writable_in(storage: &dyn Storage, dir: &Path) -> Result<(), DurabilityError> {
    let probe = dir.join(".locus-write-probe");
    remove_if_present(storage, &probe).map_err(|e| DurabilityError::from_io("remove", &probe, e))?;
    let f = storage
        .create_new(&probe)
        .map_err(|e| DurabilityError::from_io("create", &probe, e))?;
    drop(f);
    storage
        .remove_file(&probe)
        .map_err(|e| DurabilityError::from_io("remove", &probe, e))
}

/// Removes leftover temporary files of this module (an interrupted segment creation, snapshot
/// or manifest write): `wal-*.tmp`, `snap-*.tmp`, `MANIFEST.tmp`. Other files are left alone.
pub(crate) fn remove_temp_files(dir: &Path) -> Result<Vec<String>, DurabilityError> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| DurabilityError::from_io("read_dir", dir, e))? {
        let entry = entry.map_err(|e| DurabilityError::from_io("read_dir", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with("wal-") || name.starts_with("snap-") || name.starts_with("MANIFEST");
        if ours && name.ends_with(".tmp") {
            fs::remove_file(entry.path()).map_err(|e| DurabilityError::from_io("remove", entry.path(), e))?;
            removed.push(name);
        }
    }
    Ok(removed)
}
