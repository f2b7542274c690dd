//! [`ShardLog`]: the one point every accepted episode passes where a write-ahead-log record
//! would be written. Durability (the log itself, group commit, recovery) is its own issue; the
//! engine ships [`NoLog`], which keeps nothing.

use super::types::EpisodeId;

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
}

/// A shard's write-ahead log. `append` runs on the shard's worker, inside the shard's write
/// section, before the episode becomes visible: when it returns, the episode is as durable as
/// the log makes it.
pub trait ShardLog: Send + Sync + std::fmt::Debug {
    /// Records an accepted episode.
    fn append(&self, record: &LogRecord<'_>);
}

/// Keeps nothing: episodes live as long as the process.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLog;

impl ShardLog for NoLog {
    fn append(&self, _: &LogRecord<'_>) {}
}
