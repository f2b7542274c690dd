//! [`DirLock`]: one process at a time in a durability directory.
//!
//! Two engines appending to the same logs would interleave their records and each would delete
//! segments the other still needs, so `open_in` takes an exclusive advisory lock on
//! `dir/LOCK` (`flock(LOCK_EX | LOCK_NB)`) and holds it until the engine is dropped. The kernel
//! releases the lock when the holding process dies (a `kill -9` included), so a crash never
//! leaves the directory locked; the file itself stays and is reused. `flock` locks belong to the
//! open file description: a second open of the same directory *in the same process* is refused
//! too.
//!
//! This file is the module's only raw system call. On platforms without `flock` the lock is not
//! taken ([`DirLock::is_held`] says so) and the caller must keep to one process per directory.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::DurabilityError;

/// The lock file's name in a durability directory.
pub const LOCK_NAME: &str = "LOCK";

/// An exclusive lock on a durability directory, released when dropped.
#[derive(Debug)]
pub struct DirLock {
    /// The open lock file; closing it releases the lock.
    _file: File,
    path: PathBuf,
    held: bool,
}

impl DirLock {
    /// Takes the lock on `dir` (which must exist), without waiting.
    ///
    /// # Errors
    /// [`DurabilityError::DirectoryLocked`] if another open engine (in this or another process)
    /// holds it; [`DurabilityError::ReadOnly`] or [`DurabilityError::Io`] if the lock file cannot
    /// be created or locked.
    pub fn acquire(dir: &Path) -> Result<DirLock, DurabilityError> {
        let path = dir.join(LOCK_NAME);
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            // A link planted as `LOCK` is refused (ELOOP), never followed to create or lock
            // its target.
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(libc::O_NOFOLLOW);
        }
        let file = options
            .open(&path)
            .map_err(|e| DurabilityError::from_io("create", &path, e))?;
        let held = try_lock_exclusive(&file).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                DurabilityError::DirectoryLocked { path: path.clone() }
            } else {
                DurabilityError::from_io("flock", &path, e)
            }
        })?;
        Ok(DirLock {
            _file: file,
            path,
            held,
        })
    }

    /// Whether the lock is really held (false where the platform has no `flock`).
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `flock(fd, LOCK_EX | LOCK_NB)`: `Ok(true)` when taken, `Err` with `WouldBlock` when another
/// open file description holds it.
#[cfg(unix)]
fn try_lock_exclusive(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: `file` is open for the whole call, so its descriptor is valid; `flock` reads
        // no memory of ours.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// No `flock` here: the lock is not taken.
#[cfg(not(unix))]
fn try_lock_exclusive(_file: &File) -> std::io::Result<bool> {
    Ok(false)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DirLock::acquire(dir.path()).expect("first lock");
        assert!(first.is_held());
        match DirLock::acquire(dir.path()) {
            Err(DurabilityError::DirectoryLocked { path }) => assert_eq!(path, first.path()),
            other => panic!("expected DirectoryLocked, got {other:?}"),
        }
        drop(first);
        let again = DirLock::acquire(dir.path()).expect("lock after the first is dropped");
        assert!(again.is_held());
    }
}
