//! Reading a small file a user or the system names, bounded *before* anything is allocated.
//!
//! A path given on a command line or found under a sysfs root may name a device
//! (`/dev/zero` reads forever), a FIFO (opening it for reading blocks until a writer comes) or a
//! file far larger than the format it should hold. [`read_regular`] opens without blocking,
//! refuses anything but a regular file, and reads at most `limit` bytes: a file that is (or
//! grows) larger is refused, never read to the end.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Why a bounded read refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BoundedReadError {
    /// The path names a directory, device, FIFO or socket: give a regular file.
    #[error("not a regular file ({kind})")]
    NotRegular {
        /// What it is instead (`directory`, `FIFO`, `character device`…).
        kind: &'static str,
    },
    /// The file holds more than the format allows: check that it is the right file.
    #[error("larger than {limit} bytes")]
    TooLarge {
        /// The most bytes accepted.
        limit: u64,
    },
    /// Opening or reading failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl BoundedReadError {
    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, BoundedReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The bytes of the regular file at `path`, at most `limit` of them.
///
/// # Errors
/// [`BoundedReadError::NotRegular`] for anything but a regular file (after following links),
/// [`BoundedReadError::TooLarge`] if it holds more than `limit` bytes, [`BoundedReadError::Io`]
/// if it cannot be opened or read.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, BoundedReadError> {
    let file = open_nonblocking(path)?;
    let meta = file.metadata()?;
    let kind = file_kind(&meta);
    if kind != "regular file" {
        return Err(BoundedReadError::NotRegular { kind });
    }
    // Procfs and sysfs files report a length of 0 or one page whatever they hold, so the
    // length is a hint only; the read below is what is bounded.
    if meta.len() > limit {
        return Err(BoundedReadError::TooLarge { limit });
    }
    let hint = usize::try_from(meta.len().min(limit)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(hint);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(BoundedReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// The text of the regular file at `path` (invalid UTF-8 refused), at most `limit` bytes.
///
/// # Errors
/// As [`read_regular`]; [`BoundedReadError::Io`] of kind `InvalidData` for invalid UTF-8.
pub fn read_regular_text(path: &Path, limit: u64) -> Result<String, BoundedReadError> {
    let bytes = read_regular(path, limit)?;
    String::from_utf8(bytes)
        .map_err(|e| BoundedReadError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// Opens for reading without waiting for a FIFO's writer (`O_NONBLOCK` has no effect on the
/// reads of a regular file, the only kind read afterwards).
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        return "regular file";
    }
    if t.is_dir() {
        return "directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_char_device() {
            return "character device";
        }
        if t.is_block_device() {
            return "block device";
        }
        if t.is_socket() {
            return "socket";
        }
    }
    "not a file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0-3\n").unwrap();
        assert_eq!(read_regular(&p, 4).unwrap(), b"0-3\n");
        assert!(matches!(
            read_regular(&p, 3),
            Err(BoundedReadError::TooLarge { limit: 3 })
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn devices_directories_and_fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(matches!(
            read_regular(&zero, 1 << 20),
            Err(BoundedReadError::NotRegular {
                kind: "character device"
            })
        ));
        assert!(matches!(
            read_regular(dir.path(), 1 << 20),
            Err(BoundedReadError::NotRegular { kind: "directory" })
        ));
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a NUL-terminated path that lives across the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            read_regular(&fifo, 1 << 20),
            Err(BoundedReadError::NotRegular { kind: "FIFO" })
        ));
        assert!(
            read_regular(&dir.path().join("missing"), 1)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn procfs_files_whose_length_is_zero_are_read_to_the_limit() {
        let text = read_regular_text(Path::new("/proc/self/status"), 1 << 20).unwrap();
        assert!(text.contains("Pid:"));
        assert!(matches!(
            read_regular(Path::new("/proc/self/status"), 16),
            Err(BoundedReadError::TooLarge { limit: 16 })
        ));
    }
}
