//! The engine: an associative memory of episodes, one shard per NUMA node.
//!
//! # Model
//!
//! ```text
//!  observe(Episode) ── validate ── shard_of(id) ──► Shard s (its node's pinned workers, normal)
//!                                                   ├─ rows staged in HNSW segments, once
//!                                                   ├─ append buffer = staged, not yet linked
//!                                                   │    └─ linked by parallel absorbers (low)
//!                                                   ├─ association graph (crate::spread)
//!                                                   └─ spaces: each its own slots and segments
//!  recall(Cue) ── one task per shard (high) ── each: segments + exact scan of its buffer
//!              ── merge top-k ── optional spread across shards (one batch per shard per hop)
//! ```
//!
//! - **Shards.** One per NUMA node of the [`PlacementPlan`](crate::topology::PlacementPlan)
//!   by default ([`ShardCount`]). A shard's work runs on its node's pinned workers
//!   ([`crate::exec`], per-worker state created on the worker's thread), its index segments
//!   live in arenas bound to its memory node ([`NodeRegions`](crate::index::NodeRegions)), and
//!   its rows and graph are first written by those workers.
//! - **Routing.** Episode `id` lives on shard [`shard_of`]`(id, shards)` (a hash; see [`route`]).
//! - **Accepted = visible.** [`Engine::observe`] returns once a worker of the episode's shard
//!   has stored it; every recall that starts afterwards finds it: in an index segment, or in the
//!   append buffer, whose every row recall scans (int8 codes with the SIMD kernels of
//!   [`crate::index`], the best `max(4k, 64)` re-ranked with exact f32) until the index absorbs
//!   it (see the `shard` module docs, `src/engine/shard/mod.rs`, for why nothing
//!   falls between the two). Every accepted episode passes the shard's [`ShardLog`] first (the
//!   write-ahead-log seam: [`NoLog`] with `open`; with [`EngineBuilder::open_in`] a per-shard
//!   write-ahead log whose fsync the observer waits for outside every lock, recovery and
//!   snapshots — see `docs/durability.md` and [`Engine::observe_durable`]).
//! - **One copy of each row.** An accepted episode's row is written once, straight into its
//!   index segment's node-bound rows (f32 and int8; *staged*, not yet linked); the buffer scan,
//!   [`Engine::get`], completion and absorption read it there. Up to one absorber per worker
//!   of the shard links a space's staged rows concurrently ([`IndexParams::absorbers`]), at low
//!   priority; an absorber stops after the insert in hand when a recall waits on its node and
//!   queues itself again ([`IndexParams::absorb_yields`]), so a recall waits for at most one
//!   HNSW insert of absorption (`docs/engine-benchmark.md` measures it).
//! - **Growth.** Each index segment holds a fixed number of episodes; a shard opens a new one
//!   when its newest is full, and recall searches all of them.
//! - **Associations.** Explicit links, the previous episode of the same stream, and the
//!   `similar` most similar episodes found when the index absorbs an episode: the nearest
//!   live neighbours of the insertion's own level-0 walk
//!   ([`HnswIndex::link_staged`](crate::index::HnswIndex::link_staged), exact-re-ranked, weight
//!   = similarity, only those ≥ `min_similarity`), so they cost no extra search. They are drawn
//!   from the episode's own segment (the `segment_capacity` episodes around it), not from older
//!   segments. Kept in each shard's
//!   [`AssocGraph`](crate::spread::AssocGraph) in an arena bound to the shard's node
//!   ([`AssociationParams`]; both off with `stream_weight = 0` and `similar = 0`). Associations
//!   are directed edges stored on their source's shard: [`Engine::associate`], the automatic
//!   ones and [`Episode::with_link`] store both directions; [`Engine::associate_directed`],
//!   [`Episode::with_link_to`] and [`Episode::with_link_from`] one ([`LinkDirection`]).
//!   Spreading activation ([`SpreadParams`]) runs one round per hop across shards, each shard's
//!   part on its own workers: from a recall's hits ([`Cue::with_spread`]) or from given seeds
//!   ([`Engine::spread`]).
//! - **Index and search overlap.** Only the newest segment takes inserts, and recalls search it
//!   while it does: the index guarantees that a search never misses a node indexed before the
//!   search began (`tests/index_concurrent_search.rs`; `tests/engine_concurrency.rs` checks
//!   read-your-writes through the engine).
//! - **Spaces** (tenants) are isolated: each has its own slots and segments on every shard and
//!   its own quota; a space at its quota gets *its* observations refused, no one else's.
//! - **Admission control.** A full queue, or an append buffer holding
//!   [`AdmissionLimits::max_unindexed`] episodes, refuses at once with
//!   [`EngineError::Overloaded`] (with a `retry_after`); nothing blocks past its deadline, and
//!   nothing accepted is dropped. [`Engine::observe_batch`] admits many episodes with one task
//!   per shard (results per episode), for bursts that one handoff per episode cannot carry.
//! - **Messages.** A shard's rows, metadata and graph are read and written only by its own
//!   workers; everything else reaches a shard as a task on its queue, a *message*, counted on
//!   arrival by kind ([`MessageKind`]; `locus_engine_messages_total{shard,node,kind}`, and
//!   `messages` per shard in [`Engine::metrics_snapshot`]). Which operation sends what:
//!
//!   | operation | messages (per shard concerned) |
//!   |---|---|
//!   | [`Engine::observe`] | `observe` to the episode's shard; then `edges` to each *other* shard that holds the source of one of its associations (the reverse edge of a two-way link or stream association, an incoming link), one batch per shard |
//!   | [`Engine::recall`] | `search` to every shard; with spread, `hop` to each shard reached per hop, then `score` to each shard holding a candidate |
//!   | [`Engine::complete`] | `search` to every shard, `score` to the owners of the candidates, `hop` for its one-hop spread, `score` to the owners of the episodes it reached, `rows` to the owners of the best `k` |
//!   | [`Engine::spread`] | `locate` to the seeds' shards; then one `spread` (one shard) or `hop` per shard reached per hop |
//!   | [`Engine::associate`], [`Engine::associate_directed`], [`Engine::associate_directed_many`] | `locate` to the episodes' shards, then `edges` to each source's shard (one of each per shard for a whole `_many` batch) |
//!   | [`Engine::forget`] | `forget` to the episode's shard |
//!
//!   No worker ever waits for another shard: a worker's edges for other shards leave after its
//!   task, and an observation's reply is sent by the last shard to write its edges (so
//!   `observe` still returns only once they are visible; see `src/engine/outbox.rs` for why this
//!   cannot deadlock). The caller's thread waits for answers with a deadline; a shard that
//!   misses it is a typed error ([`EngineError::TimedOut`]), or for recall a `partial` result.
//!   Absorption tasks, which a shard queues for itself and which carry no data, are not counted.
//!   Still read from the caller's thread: `observe`'s validation (link targets, a given id
//!   already taken), [`Engine::get`], and the counters behind `stats` and the metrics.
//! - **Metrics.** [`Engine::metrics_text`] (Prometheus) and [`Engine::metrics_snapshot`]
//!   (serde); recording never waits for a scrape ([`metrics`]).
//!
//! # Example
//!
//! ```
//! use locus::engine::{Cue, Engine, Episode, SpreadParams};
//!
//! # fn main() -> Result<(), locus::engine::EngineError> {
//! let engine = Engine::builder().dimension(4).open()?;
//! let coffee = engine.observe(Episode::new(vec![1.0, 0.1, 0.0, 0.0]).with_payload("coffee").in_stream("morning"))?;
//! let paper = engine.observe(Episode::new(vec![0.0, 1.0, 0.0, 0.1]).with_payload("newspaper").in_stream("morning"))?;
//!
//! // Nearest neighbours: visible as soon as `observe` returned.
//! let r = engine.recall(&Cue::new(vec![0.9, 0.2, 0.0, 0.0], 1))?;
//! assert_eq!(r.hits[0].id, coffee);
//!
//! // With spreading: the stream associated the two episodes, so the newspaper is recalled
//! // through the coffee even though it is not similar to the cue.
//! let r = engine.recall(&Cue::new(vec![1.0, 0.0, 0.0, 0.0], 2).with_spread(SpreadParams::default()))?;
//! assert!(r.hits.iter().any(|h| h.id == paper && h.activation > 0.0));
//!
//! // Pattern completion from the first two dimensions.
//! let c = engine.complete(&[1.0, 0.1, 0.0, 0.0], &[true, true, false, false], 1)?;
//! assert_eq!(c.supporting[0].0, coffee);
//! println!("{}", engine.metrics_text().lines().count());
//! # Ok(())
//! # }
//! ```

#[cfg(test)]
mod absorb_tests;
mod admit;
mod config;
mod core;
mod durable;
mod error;
mod facade;
mod fanout;
mod handler;
mod join;
mod log;
pub mod metrics;
mod outbox;
mod requests;
pub mod route;
mod shard;
mod spread;
mod task;
mod types;

pub use config::{
    AdmissionLimits, AssociationParams, DEFAULT_SPACE, DurabilityOptions, EngineBuilder, IndexParams,
    ShardCount, SpaceSpec,
};
pub use durable::{DroppedTail, RecoveryReport, SnapshotReport};
pub use error::EngineError;
pub use facade::{Engine, EngineStats, ShardPlacement};
pub use log::{Guarantee, LogRecord, NoLog, ShardLog};
pub use metrics::{EngineMetrics, MessageKind, OpSnapshot, RejectReason, ShardSnapshot, SpaceShardMetrics};
pub use route::shard_of;
pub use spread::SpreadParams;
pub use types::{
    Completion, Cue, Episode, EpisodeId, EpisodeRecord, Hit, Link, LinkDirection, RecallResult, ShardTiming,
};
