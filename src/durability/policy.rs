//! What an append promises: the sync policy, the guarantee it returns, the log's options, and
//! the fault-injection hook the failure tests use.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::record::RecordLimits;
use super::storage::{OsStorage, Storage};

/// When the log fsyncs (fdatasync) what it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Never fsync (except when a segment is sealed): an append returns once its group is
    /// written to the OS. Survives the process being killed, not a power loss.
    None,
    /// An append returns once the group holding it is written and fsynced.
    EveryBatch,
    /// An append returns at once; a background thread writes and fsyncs every `n` ms, so a crash
    /// loses at most the records of the last `n` ms plus the time one group takes to write and
    /// fsync (bounded by [`WalOptions::max_pending_bytes`], beyond which appends wait).
    EveryMs(u64),
}

/// The guarantee an acknowledged record has when [`ShardWal::append`](super::ShardWal::append)
/// returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Durable {
    /// Written to the OS under log sequence number `lsn` (policy [`SyncPolicy::None`]).
    Written {
        /// The record's log sequence number.
        lsn: u64,
    },
    /// Written and fsynced under `lsn` (policy [`SyncPolicy::EveryBatch`]).
    Synced {
        /// The record's log sequence number.
        lsn: u64,
    },
    /// Buffered; written and fsynced within `within` (policy [`SyncPolicy::EveryMs`]). Its
    /// sequence number is assigned when the background flush writes it.
    Pending {
        /// The flush period: the record is written and synced by the first background flush that
        /// starts after it, i.e. within this period plus the write and fsync of one group (while
        /// the process lives and the disk accepts writes).
        within: Duration,
    },
}

/// What the fault hook tells the writer to do with one write.
#[derive(Debug)]
pub enum WriteFault {
    /// Write normally.
    Proceed,
    /// Write only the first `written` bytes, then fail with `error` (a partial write).
    Partial {
        /// Bytes written before the failure.
        written: usize,
        /// The error returned.
        error: io::Error,
    },
}

/// A hook that injects disk failures into a log's writes and syncs (ENOSPC, EIO), for tests of
/// the failure paths. Production code leaves [`WalOptions::faults`] at `None`.
pub trait FaultInjector: Send + Sync + std::fmt::Debug {
    /// Called before each batch write of `len` bytes.
    fn before_write(&self, len: usize) -> WriteFault;
    /// Called before each fdatasync; an error is returned as the sync's error.
    fn before_sync(&self) -> io::Result<()>;
}

/// Options of one shard's log.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// When to fsync.
    pub policy: SyncPolicy,
    /// Size at which a segment is sealed and a new one started (a batch is never split, so a
    /// segment may exceed this by one batch).
    pub segment_bytes: u64,
    /// Dimension and field limits of the records.
    pub limits: RecordLimits,
    /// With [`SyncPolicy::EveryMs`], appends wait once this many bytes are buffered
    /// (backpressure). It bounds a background group, so the loss window of a crash is `n` ms plus
    /// the time to write and fsync this many bytes.
    pub max_pending_bytes: usize,
    /// Failure injection for tests; `None` in production.
    pub faults: Option<Arc<dyn FaultInjector>>,
    /// Where the log's files are written: the real file system ([`OsStorage`]) unless a test
    /// records or fails the writes (the power-loss and failed-I/O tests).
    pub storage: Arc<dyn Storage>,
}

impl WalOptions {
    /// Options for `dim`-dimensional records: the given policy, 64 MiB segments, default limits,
    /// 8 MiB of pending bytes at most with `EveryMs` (about 2 600 records of 768 dims).
    pub fn new(dim: u32, policy: SyncPolicy) -> Self {
        Self {
            policy,
            segment_bytes: 64 << 20,
            limits: RecordLimits::new(dim),
            max_pending_bytes: 8 << 20,
            faults: None,
            storage: Arc::new(OsStorage),
        }
    }
}
