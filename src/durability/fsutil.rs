//! File-system steps shared by the log, snapshots and the manifest.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::DurabilityError;

/// Fsyncs a directory, so that files created, renamed or removed in it stay so after a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), DurabilityError> {
    let d = File::open(dir).map_err(|e| DurabilityError::from_io("open directory", dir, e))?;
    d.sync_all()
        .map_err(|e| DurabilityError::from_io("fsync directory", dir, e))
}

/// Writes `bytes` to `dir/name` atomically: a temporary file, fsynced, renamed, directory fsynced.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), DurabilityError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| DurabilityError::from_io("create", &tmp, e))?;
    f.write_all(bytes)
        .map_err(|e| DurabilityError::from_io("write", &tmp, e))?;
    f.sync_all()
        .map_err(|e| DurabilityError::from_io("fsync", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(|e| DurabilityError::from_io("rename", &path, e))?;
    sync_dir(dir)
}

/// Checks that `dir` exists and accepts new files (a probe file is created and removed).
pub(crate) fn check_writable(dir: &Path) -> Result<(), DurabilityError> {
    let probe = dir.join(".locus-write-probe");
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&probe)
        .map_err(|e| DurabilityError::from_io("create", &probe, e))?;
    drop(f);
    fs::remove_file(&probe).map_err(|e| DurabilityError::from_io("remove", &probe, e))
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
