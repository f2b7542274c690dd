//! Errors of the engine.

use std::time::Duration;

use crate::exec::ExecError;
use crate::index::IndexError;
use crate::topology::TopologyError;

/// What went wrong opening the engine or serving a call. Every refusal of an observation happens
/// before anything is stored: on error, nothing of the episode was kept.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// An embedding has the wrong length. Pass vectors of `expected` floats.
    #[error("embedding has {got} components, the engine holds {expected}-dimensional vectors")]
    DimensionMismatch {
        /// The engine's dimension.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// An embedding holds NaN or an infinity.
    #[error("embedding component {position} is {value} (not finite)")]
    NonFinite {
        /// Index of the first bad component.
        position: usize,
        /// The bad value.
        value: f32,
    },
    /// An embedding is all zeros (it has no direction, so no similarity).
    #[error("embedding is the zero vector")]
    ZeroVector,
    /// A link (or an `associate`/`get`/`forget` argument) names an episode this engine does not
    /// hold (never observed, forgotten, or in another space).
    #[error("no episode {id} in this space")]
    UnknownEpisode {
        /// The id.
        id: u64,
    },
    /// The episode id is already taken. Pick another id, or pass `None` to get a fresh one.
    #[error("episode id {id} is already in use")]
    DuplicateId {
        /// The id.
        id: u64,
    },
    /// The space was not declared with [`EngineBuilder::space`](super::EngineBuilder::space).
    #[error("unknown space {space:?}")]
    UnknownSpace {
        /// The name given.
        space: String,
    },
    /// The space holds its quota of episodes: this observation was refused (other spaces are
    /// unaffected). Forget episodes of this space, or raise its quota.
    #[error("space {space:?} is full ({quota} episodes)")]
    QuotaExceeded {
        /// The space.
        space: String,
        /// Its quota.
        quota: usize,
    },
    /// The shard cannot accept more work now (its queue is full, or its append buffer holds too
    /// many episodes the index has not absorbed yet). Nothing was stored: retry after
    /// `retry_after`, or shed the request.
    #[error("shard {shard} overloaded ({depth} waiting); retry after {retry_after:?}")]
    Overloaded {
        /// The shard.
        shard: usize,
        /// Its backlog when refused (queued tasks or unindexed episodes).
        depth: usize,
        /// A suggested wait before retrying (the backlog at the shard's measured drain rate).
        retry_after: Duration,
    },
    /// The shard did not answer within the deadline. For `observe` the outcome is unknown:
    /// check with [`Engine::get`](super::Engine::get) on `id` before retrying.
    #[error("shard {shard} did not answer within {waited:?} (episode {id:?})")]
    TimedOut {
        /// The shard.
        shard: usize,
        /// How long the caller waited.
        waited: Duration,
        /// The episode id in question, for `observe`.
        id: Option<u64>,
    },
    /// An argument is out of range (`k = 0`, a mask of the wrong length, a negative weight…).
    #[error("invalid input: {what}")]
    InvalidInput {
        /// What is wrong.
        what: String,
    },
    /// A builder value is out of range.
    #[error("invalid engine configuration: {field}: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The engine is shutting down.
    #[error("the engine is closed")]
    Closed,
    /// A shard's index refused an operation (out of memory for a new segment, …).
    #[error("shard {shard} index: {source}")]
    Index {
        /// The shard.
        shard: usize,
        /// What the index reported.
        #[source]
        source: IndexError,
    },
    /// A shard's association graph or a spread failed (graph full, arena exhausted).
    #[error("spreading (shard {shard:?}): {source}")]
    Spread {
        /// The shard, where one is concerned.
        shard: Option<usize>,
        /// What the spread module reported.
        #[source]
        source: crate::spread::SpreadError,
    },
    /// The shard holds `capacity` episodes, the most its association graph was sized for
    /// ([`AssociationParams::max_episodes_per_shard`](super::AssociationParams::max_episodes_per_shard)).
    /// Open the engine with more shards or a larger capacity.
    #[error("shard {shard} is full ({capacity} episodes)")]
    ShardFull {
        /// The shard.
        shard: usize,
        /// Its capacity.
        capacity: usize,
    },
    /// The workers could not be started.
    #[error("engine workers: {source}")]
    Exec {
        /// What the executor reported.
        #[source]
        source: ExecError,
    },
    /// The write-ahead log or the durable directory failed: an observation, association or
    /// forget whose record could not be written (disk full, I/O error, a log stopped after a
    /// failed fsync; nothing of it was kept), or a directory that recovery refuses (another
    /// format version, dimension or shard count, corruption before a log's tail). The source
    /// says which and what to do; the engine keeps serving recalls.
    #[error("durability (shard {shard:?}): {source}")]
    Durability {
        /// The shard whose log failed, where one is concerned.
        shard: Option<usize>,
        /// What the durability module reported.
        #[source]
        source: crate::durability::DurabilityError,
    },
    /// The machine's topology or placement plan could not be read.
    #[error("topology: {source}")]
    Topology {
        /// What topology discovery reported.
        #[source]
        source: TopologyError,
    },
}
