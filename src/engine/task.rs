//! The messages of the engine: the work its pinned workers do for a shard ([`Task`]), and
//! nothing else (the handler that runs them is `handler.rs`).
//!
//! Priorities follow `../shared/DESIGN.md`: recall (search and spread hops) is **high**,
//! observation **normal**, index absorption **low** (it still gets one batch in every
//! `low_share`, so the append buffer drains while observations stream in).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::EngineError;
use super::join::{Deliver, Join};
use super::metrics::MessageKind;
use super::shard::{Edge, Prepared, ShardHits};
use super::types::EpisodeId;
use crate::exec::ReplySlot;
use crate::spread::{HopReply, HopRequest, SpreadError, SpreadParams, SpreadResult};

/// One unit of shard work.
pub(crate) enum Task {
    /// Store an episode.
    Observe {
        shard: usize,
        ep: Prepared,
        reply: ReplySlot<Result<EpisodeId, EngineError>>,
    },
    /// Store episodes (one batch of [`Engine::observe_batch`](super::Engine::observe_batch)),
    /// in order; one result each.
    ObserveBatch {
        shard: usize,
        eps: Vec<Prepared>,
        reply: ReplySlot<Vec<Result<EpisodeId, EngineError>>>,
    },
    /// Move a batch of the append buffer of `space` into the index.
    Absorb { shard: usize, space: u16 },
    /// Search one shard.
    Search {
        shard: usize,
        space: u16,
        query: Arc<[f32]>,
        k: usize,
        sent: Instant,
        /// Answered with the hits, the time the task waited in a queue, and the time from
        /// `sent` to the answer.
        reply: ReplySlot<(ShardHits, Duration, Duration)>,
    },
    /// A whole spread on a one-shard engine's graph (no messages to exchange between hops).
    Spread {
        shard: usize,
        seeds: Vec<(u64, f32)>,
        params: SpreadParams,
        reply: ReplySlot<Result<SpreadResult, SpreadError>>,
    },
    /// One round of a cross-shard spread on this shard's graph.
    Hop {
        shard: usize,
        request: HopRequest,
        reply: ReplySlot<Result<HopReply, SpreadError>>,
    },
    /// Association edges whose sources live on this shard, from another shard's worker or from
    /// the caller's thread (see the `outbox` module).
    Edges {
        shard: usize,
        edges: Vec<Edge>,
        done: Option<EdgesDone>,
    },
    /// Masked cosine similarity to `query` of this shard's live episodes of `space` among `ids`.
    Score {
        shard: usize,
        space: u16,
        query: Arc<[f32]>,
        mask: Arc<[bool]>,
        ids: Vec<u64>,
        reply: ReplySlot<Vec<(u64, f32)>>,
    },
    /// Stored embeddings of this shard's live episodes of `space` among `ids`.
    Rows {
        shard: usize,
        space: u16,
        ids: Vec<u64>,
        reply: ReplySlot<Vec<(u64, Vec<f32>)>>,
    },
    /// Which of `ids` are live on this shard, and in which space.
    Locate {
        shard: usize,
        ids: Vec<u64>,
        reply: ReplySlot<Vec<(u64, Option<u16>)>>,
    },
    /// Forget `id` (its space if it was live).
    Forget {
        shard: usize,
        id: u64,
        reply: ReplySlot<Option<u16>>,
    },
}

impl Task {
    /// The shard whose data the task reads or writes.
    pub(crate) fn shard(&self) -> usize {
        match self {
            Task::Observe { shard, .. }
            | Task::ObserveBatch { shard, .. }
            | Task::Absorb { shard, .. }
            | Task::Search { shard, .. }
            | Task::Spread { shard, .. }
            | Task::Hop { shard, .. }
            | Task::Edges { shard, .. }
            | Task::Score { shard, .. }
            | Task::Rows { shard, .. }
            | Task::Locate { shard, .. }
            | Task::Forget { shard, .. } => *shard,
        }
    }

    /// The message it is, for the counters (`None` for absorption, which a shard schedules for
    /// itself and which carries no data).
    pub(crate) fn kind(&self) -> Option<MessageKind> {
        Some(match self {
            Task::Observe { .. } | Task::ObserveBatch { .. } => MessageKind::Observe,
            Task::Absorb { .. } => return None,
            Task::Search { .. } => MessageKind::Search,
            Task::Spread { .. } => MessageKind::Spread,
            Task::Hop { .. } => MessageKind::Hop,
            Task::Edges { .. } => MessageKind::Edges,
            Task::Score { .. } => MessageKind::Score,
            Task::Rows { .. } => MessageKind::Rows,
            Task::Locate { .. } => MessageKind::Locate,
            Task::Forget { .. } => MessageKind::Forget,
        })
    }
}

/// An observation's reply slot and the answer to send it, once its edges are written: one
/// episode's ([`Task::Observe`]) or a batch's ([`Task::ObserveBatch`], one result per episode).
pub(crate) enum HeldReply {
    /// One episode.
    One(
        ReplySlot<Result<EpisodeId, EngineError>>,
        Result<EpisodeId, EngineError>,
    ),
    /// A batch.
    Batch(
        ReplySlot<Vec<Result<EpisodeId, EngineError>>>,
        Vec<Result<EpisodeId, EngineError>>,
    ),
}

impl Deliver for HeldReply {
    fn deliver(self) {
        match self {
            HeldReply::One(slot, out) => slot.send(out),
            HeldReply::Batch(slot, out) => slot.send(out),
        }
    }
}

/// Who waits for a [`Task::Edges`].
pub(crate) enum EdgesDone {
    /// An observation's reply ([`Join`]).
    Join(Arc<Join<HeldReply>>),
    /// A caller (`Engine::associate*`): one result per edge, in order.
    Reply(ReplySlot<Vec<Result<(), SpreadError>>>),
}
