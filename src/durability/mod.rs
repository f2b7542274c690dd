//! Durability: a per-shard write-ahead log with group commit, checksummed snapshots, and
//! recovery that loses no acknowledged record.
//!
//! The model (byte layouts and rules in `docs/durability.md`):
//! - Every accepted change of a shard is a [`Record`] appended to that shard's [`ShardWal`].
//!   Appends from many threads are grouped: one `write` and at most one `fdatasync` per group.
//!   [`SyncPolicy`] says when an append returns, and the returned [`Durable`] says what it got.
//! - A log is a series of segment files `wal-<shard>-<seq>.log`, each with a checksummed header
//!   (format version, shard, dimension, first sequence number) and frames (length, CRC-32,
//!   sequence number, record). Segments rotate by size.
//! - A snapshot ([`SnapshotWriter`]) holds caller-provided byte sections and, per shard, the
//!   sequence number it covers up to; `MANIFEST` names the current one. Both are written to a
//!   temporary name, fsynced and renamed. [`ShardWal::truncate_before`] then deletes the covered
//!   segments.
//! - [`Recovery::open`] loads the snapshot, checks every shard's log, truncates a torn tail (and
//!   reports it), refuses anything else that is damaged, and hands back per-shard record
//!   iterators to replay.
//!
//! ```
//! use locus::durability::{Durable, EpisodeRecord, Record, Recovery, ShardWal, SyncPolicy, WalOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let wal = ShardWal::open(dir.path(), 0, WalOptions::new(2, SyncPolicy::EveryBatch))?;
//! let rec = Record::Episode(EpisodeRecord {
//!     seq: 0, id: 1, space: "default".into(), stream: None, timestamp: 0,
//!     embedding: vec![0.5, 1.0], payload: b"hi".to_vec(), links: vec![],
//! });
//! assert_eq!(wal.append(&rec)?, Durable::Synced { lsn: 0 });
//! drop(wal);
//! let (state, report) = Recovery::open(dir.path(), 2, 1)?;
//! assert_eq!(report.records_to_replay(), 1);
//! let replayed: Vec<_> = state.shards[0].records().collect::<Result<_, _>>()?;
//! assert_eq!(replayed, vec![(0, rec)]);
//! # Ok(())
//! # }
//! ```

mod chain_head;
mod dir_lock;
mod error;
mod frame;
pub(crate) mod fsutil;
mod manifest;
mod policy;
mod record;
mod recovery;
mod scan;
mod segment;
mod snapshot;
mod storage;
mod wal;

pub use dir_lock::{DirLock, LOCK_NAME};
pub use error::DurabilityError;
pub use manifest::MANIFEST_NAME;
pub use policy::{Durable, FaultInjector, SyncPolicy, WalOptions, WriteFault};
pub use record::{EpisodeRecord, LinkKind, LinkRecord, Record, RecordLimits};
pub use recovery::{
    RecoveredState, Recovery, RecoveryMode, RecoveryOptions, RecoveryReport, ReplayIter, ShardRecovery,
    ShardReplay,
};
pub use scan::TornTail;
pub use segment::{FORMAT_VERSION, segment_name};
pub use snapshot::{
    Section, Snapshot, SnapshotInfo, SnapshotWriter, load as load_snapshot,
    load_current as load_current_snapshot, next_snapshot_id, snapshot_name,
};
pub use storage::{OsStorage, Storage, StorageFile};
pub use wal::{ShardWal, Ticket, WalStats};
