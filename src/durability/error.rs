//! Errors of the durability module.

use std::path::PathBuf;

/// What went wrong writing, reading or recovering the write-ahead log and snapshots.
///
/// Every variant says what the caller can do. Nothing acknowledged is ever dropped to produce one
/// of these: a failed append was never acknowledged, and a refused recovery changes nothing on
/// disk except removing temporary files and truncating a torn tail it reports.
#[derive(Debug, thiserror::Error)]
pub enum DurabilityError {
    /// The disk is full (ENOSPC) while writing `path`. The batch that hit it was not acknowledged
    /// and was removed from the file again; acknowledged records are intact. Free space and retry.
    #[error("disk full writing {path}; nothing acknowledged was lost, free space and retry")]
    StorageFull {
        /// The file being written.
        path: PathBuf,
    },
    /// The directory cannot be written (read-only file system or no permission). Open it with a
    /// writable directory, or read it with [`Recovery::open`](super::Recovery::open) only.
    #[error("{path} is not writable ({source}); durability needs a writable directory")]
    ReadOnly {
        /// The directory or file that refused the write.
        path: PathBuf,
        /// The OS error (EROFS, EACCES or EPERM).
        source: std::io::Error,
    },
    /// Another I/O error on `path` during `op`.
    #[error("{op} on {path}: {source}")]
    Io {
        /// What was being done (`"open"`, `"write"`, `"fdatasync"`, …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A write or fsync failed in a way that leaves the file's state unknown (EIO, or the undo of
    /// a failed write failed too). The log refuses further appends; reopen the directory with
    /// [`Recovery::open`](super::Recovery::open), which keeps exactly what is intact on disk.
    #[error("the write-ahead log of shard {shard} stopped after a failed write: {reason}")]
    WalBroken {
        /// The shard whose log stopped.
        shard: u32,
        /// The first failure, in words.
        reason: String,
    },
    /// A record or header before the log's tail is corrupt (bad length, checksum, or content).
    /// This is not a crash artefact; restore the directory from a backup or move the file away.
    #[error("corrupt data in {path} at byte {offset}: {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the bad record or field.
        offset: u64,
        /// What is wrong, in words.
        what: String,
    },
    /// The records of a shard's log are not contiguous: a segment file is missing or the
    /// snapshot needs records the log no longer has. Restore the missing segment.
    #[error("shard {shard}: log record {expected} is missing (found {found} next)")]
    WalGap {
        /// The shard.
        shard: u32,
        /// The log sequence number that should come next.
        expected: u64,
        /// The one found instead (`u64::MAX`: none at all).
        found: u64,
    },
    /// A shard's segments do not form a chain: one is missing, renamed, swapped, or does not
    /// follow its predecessor (copied in from elsewhere, or its predecessor was replaced). The
    /// log is not read as a shorter one. Restore the segment named, or open with
    /// [`RecoveryMode::PointInTime`](super::RecoveryMode::PointInTime) to keep the prefix before it.
    #[error("shard {shard}: the segment chain breaks at {path}: {what}")]
    SegmentChain {
        /// The shard.
        shard: u32,
        /// The segment where the chain breaks.
        path: PathBuf,
        /// What is wrong, in words.
        what: String,
    },
    /// A snapshot section (or its table) fails its checksum. The snapshot is damaged; restore it.
    #[error("snapshot {path}: {what} fails its checksum")]
    SnapshotChecksum {
        /// The snapshot file.
        path: PathBuf,
        /// Which part (a section's name, or `"header"`).
        what: String,
    },
    /// The manifest names a file that does not exist. Restore it, or remove the manifest to
    /// start from the logs alone (only correct if the logs were never truncated).
    #[error("the manifest names {path}, which is missing")]
    MissingFile {
        /// The missing file.
        path: PathBuf,
    },
    /// A file was written by another format version. Use the Locus version that wrote it.
    #[error("{path} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// A file holds vectors of another dimension than the one asked for. Open with `found`.
    #[error("{path} holds {found}-dimensional vectors, {expected} were asked for")]
    DimensionMismatch {
        /// The file.
        path: PathBuf,
        /// The dimension the caller opened with.
        expected: u32,
        /// The dimension in the file.
        found: u32,
    },
    /// A snapshot was taken with another shard count than the one asked for.
    #[error("{path} covers {found} shards, {expected} were asked for")]
    ShardCountMismatch {
        /// The snapshot file.
        path: PathBuf,
        /// The shard count the caller opened with.
        expected: u32,
        /// The shard count in the snapshot.
        found: u32,
    },
    /// A record cannot be encoded or decoded: a field exceeds its limit or the bytes end early.
    #[error("invalid record: {what}")]
    InvalidRecord {
        /// What is wrong, in words.
        what: String,
    },
    /// An argument is out of range (zero dimension, a segment size too small, …).
    #[error("invalid input: {what}")]
    InvalidInput {
        /// What was wrong, in words.
        what: String,
    },
    /// The last segment of a shard's log ends in a torn or corrupt record. Run
    /// [`Recovery::open`](super::Recovery::open) first: it truncates the tail and reports it.
    #[error("shard {shard}: the log ends in a torn record at byte {offset} of {path}; recover first")]
    UnrecoveredTail {
        /// The shard.
        shard: u32,
        /// The last segment.
        path: PathBuf,
        /// Where the torn record starts.
        offset: u64,
    },
    /// The log was closed; no more appends are accepted.
    #[error("the write-ahead log is closed")]
    Closed,
    /// Another open engine (in this process or another) holds the directory's lock file. Close
    /// that engine first, or use another directory; a crashed process holds no lock.
    #[error("{path} is locked: another engine has this directory open")]
    DirectoryLocked {
        /// The lock file.
        path: PathBuf,
    },
}

impl DurabilityError {
    /// Classifies an I/O error: ENOSPC becomes [`StorageFull`](Self::StorageFull), EROFS, EACCES
    /// and EPERM become [`ReadOnly`](Self::ReadOnly), anything else [`Io`](Self::Io).
    pub(crate) fn from_io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        match source.raw_os_error() {
            Some(libc::ENOSPC) => Self::StorageFull { path },
            Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM) => Self::ReadOnly { path, source },
            _ => Self::Io { op, path, source },
        }
    }
}
