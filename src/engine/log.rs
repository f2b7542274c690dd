//! [`ShardLog`]: the one point every accepted episode passes where a write-ahead-log record is
//! written. [`NoLog`] keeps nothing (an engine opened with `open`); an engine opened with
//! [`open_in`](super::EngineBuilder::open_in) logs to its directory (`src/engine/durable/`).
//!
//! The log is written in two halves so that the wait for the disk happens outside every lock:
//! [`ShardLog::append`] runs on the shard's worker *inside* the shard's write section and only
//! adds the record to the group being formed (cheap, ordered with the store); the observing
//! thread then calls [`ShardLog::settle`] *after* the worker replied, outside every lock, and
//! waits there for the group's write and fsync. Concurrent observers of a shard thereby join one
//! group and share one fsync (group commit).

use super::error::EngineError;
use super::types::{EpisodeId, Link};
use crate::durability::Durable;

/// What a shard's log sees of an accepted episode.
#[derive(Debug, Clone, Copy)]
pub struct LogRecord<'a> {
    /// The episode.
    pub id: EpisodeId,
    /// Its space (by name).
    pub space: &'a str,
    /// Its unit-normalised embedding.
    pub embedding: &'a [f32],
    /// Its payload.
    pub payload: &'a [u8],
    /// Its timestamp.
    pub timestamp: u64,
    /// Its stream (by name), if any.
    pub stream: Option<&'a str>,
    /// Its explicit links, with their directions.
    pub links: &'a [Link],
}

/// Which guarantee an accepted episode has when `observe` returns
/// ([`Engine::observe_durable`](super::Engine::observe_durable)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    /// Kept in memory only (an engine without a directory): lost when the process ends.
    Memory,
    /// In the shard's write-ahead log with this guarantee ([`Durable::Synced`] with the
    /// `every batch` policy, [`Durable::Written`] with `none`, [`Durable::Pending`] with
    /// `every N ms`).
    Logged(Durable),
}

/// A shard's write-ahead log (see the module docs for the two halves).
pub trait ShardLog: Send + Sync + std::fmt::Debug {
    /// Adds an accepted episode's record to the log's pending group. Runs on the shard's worker
    /// inside the shard's write section, before the episode becomes visible; it does not wait
    /// for the disk. On error the episode must not be stored (the caller returns the error).
    ///
    /// # Errors
    /// [`EngineError::Durability`] if the log refuses the record (closed, stopped after a
    /// failed fsync, a record over its limits).
    fn append(&self, record: &LogRecord<'_>) -> Result<(), EngineError>;

    /// Waits, outside every lock, until the record [`append`](Self::append) added for `id` is
    /// as durable as the log's policy makes it, and says which guarantee it got.
    ///
    /// # Errors
    /// [`EngineError::Durability`] if the group holding it could not be written (disk full,
    /// I/O error): the record is not in the log.
    fn settle(&self, id: EpisodeId) -> Result<Guarantee, EngineError>;
}

/// Keeps nothing: episodes live as long as the process.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLog;

impl ShardLog for NoLog {
    fn append(&self, _: &LogRecord<'_>) -> Result<(), EngineError> {
        Ok(())
    }

    fn settle(&self, _: EpisodeId) -> Result<Guarantee, EngineError> {
        Ok(Guarantee::Memory)
    }
}
