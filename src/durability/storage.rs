//! The I/O seam of the durability layer: every file the log, the snapshots and the manifest
//! *write* goes through a [`Storage`]. Production uses [`OsStorage`]; the power-loss and
//! failed-I/O tests put a recording or failing implementation in its place
//! ([`WalOptions::storage`](super::WalOptions::storage),
//! [`SnapshotWriter::create_in`](super::SnapshotWriter::create_in)).
//!
//! The operations are the ones whose order and durability matter after a crash: creating a
//! file, appending, cutting back, fdatasync / fsync, rename, remove, and the directory fsync that
//! makes a create, rename or remove durable. Reading (recovery) uses the file system directly.
//!
//! [`OsStorage`] creates files with `O_CREAT | O_EXCL | O_NOFOLLOW` and opens them with
//! `O_NOFOLLOW`, so a symbolic link planted under one of the module's names is never written
//! through: the open fails (`EEXIST` / `ELOOP`) instead.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// One file opened for writing through a [`Storage`].
pub trait StorageFile: Write + Send + std::fmt::Debug {
    /// Cuts the file to `len` bytes (the undo of a failed write). Later writes append at `len`.
    ///
    /// # Errors
    /// The OS error.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// fdatasync: the file's data (and its size) are durable when this returns.
    ///
    /// # Errors
    /// The OS error (after which the file's durable state is unknown).
    fn sync_data(&mut self) -> io::Result<()>;
    /// fsync: data and metadata.
    ///
    /// # Errors
    /// The OS error.
    fn sync_all(&mut self) -> io::Result<()>;
}

/// The file operations the durability layer's writers use (see the module docs).
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Creates `path`, which must not exist (not even as a symbolic link), for appending.
    ///
    /// # Errors
    /// `AlreadyExists` if something has that name; other OS errors.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Opens the existing regular file `path` for appending (a symbolic link is refused).
    ///
    /// # Errors
    /// The OS error (`ELOOP` for a link).
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Renames `from` to `to`, replacing `to`.
    ///
    /// # Errors
    /// The OS error.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file `path` (a link is removed, never its target).
    ///
    /// # Errors
    /// The OS error (`NotFound` if there is none).
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Fsyncs the directory `dir`: creates, renames and removes in it become durable.
    ///
    /// # Errors
    /// The OS error.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsStorage;

#[derive(Debug)]
struct OsFile(File);

impl Write for OsFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl StorageFile for OsFile {
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
}

/// `O_NOFOLLOW` where the platform has it.
fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW)
    }
    #[cfg(not(unix))]
    {
        options
    }
}

impl Storage for OsStorage {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        // `create_new` is O_CREAT | O_EXCL: with O_NOFOLLOW a planted link is an error, not a
        // file written through.
        let f = no_follow(OpenOptions::new().append(true).create_new(true)).open(path)?;
        Ok(Box::new(OsFile(f)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let f = no_follow(OpenOptions::new().append(true)).open(path)?;
        Ok(Box::new(OsFile(f)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Removes `path` if it exists (a leftover of an interrupted write, or something planted under
/// the name): a link is removed, never followed.
pub(crate) fn remove_if_present(storage: &dyn Storage, path: &Path) -> io::Result<()> {
    match storage.remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_planted_link_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(OsStorage.create_new(&link).is_err());
        assert!(OsStorage.open_append(&link).is_err());
        remove_if_present(&OsStorage, &link).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert!(!link.exists());
    }
}
