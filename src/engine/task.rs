//! The work the engine's pinned workers do, and the handler that runs it.
//!
//! Priorities follow `../shared/DESIGN.md`: recall (search and spread hops) is **high**,
//! observation **normal**, index absorption **low** (it still gets one batch in every
//! `low_share`, so the append buffer drains while observations stream in). An absorption task
//! also stops after the insert in hand when a recall waits on its node (`Urgency`), and
//! queues itself again: a recall waits for at most one HNSW insert of absorption.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::error::EngineError;
use super::facade::Inner;
use super::metrics::MessageKind;
use super::outbox::{self, Edge, EdgesDone, HeldReply, Scope};
use super::shard::{Prepared, ShardHits};
use super::types::EpisodeId;
use crate::exec::{Priority, ReplySlot, Urgency, WorkerContext, WorkerHandler};
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

/// What each worker keeps for itself (created on its pinned thread). Nothing yet: absorption
/// links rows where they are staged, without a copy.
pub(crate) struct WorkerLocal;

/// Runs [`Task`]s against the engine's shards.
pub(crate) struct EngineHandler {
    pub(crate) inner: Arc<Inner>,
}

impl WorkerHandler<Task> for EngineHandler {
    type Local = WorkerLocal;

    fn init(&self, _: &WorkerContext) -> WorkerLocal {
        WorkerLocal
    }

    fn handle(&self, local: &mut WorkerLocal, ctx: &WorkerContext, class: Priority, batch: &mut Vec<Task>) {
        self.handle_with(local, ctx, class, batch, &Urgency::never());
    }

    fn handle_with(
        &self,
        local: &mut WorkerLocal,
        ctx: &WorkerContext,
        _: Priority,
        batch: &mut Vec<Task>,
        urgency: &Urgency<'_>,
    ) {
        let eng = &*self.inner;
        for task in batch.drain(..) {
            let shard = task.shard();
            if let Some(kind) = task.kind() {
                eng.shards[shard].metrics.message(kind);
            }
            if ctx.node != eng.shards[shard].node {
                eng.shards[shard].metrics.off_node.inc();
            }
            // While the task runs, this thread works for `shard` only: edges for other shards
            // wait in the scope's outbox and leave as messages afterwards.
            let scope = Scope::enter(shard);
            let held = self.run(local, task, urgency);
            outbox::dispatch(eng, shard, scope.leave(), held);
        }
    }
}

impl EngineHandler {
    /// Runs one task; an observation's reply comes back to be sent after its edges. An
    /// absorption stops early when `urgency` reports a waiting recall (and
    /// [`IndexParams::absorb_yields`](super::IndexParams::absorb_yields) is on).
    fn run(&self, _: &mut WorkerLocal, task: Task, urgency: &Urgency<'_>) -> Option<HeldReply> {
        let eng = &*self.inner;
        {
            match task {
                Task::Observe { shard, ep, reply } => {
                    let space = ep.space;
                    let sh = &eng.shards[shard];
                    let out = sh.observe(eng, ep);
                    sh.spaces[space as usize].pending.fetch_sub(1, Ordering::AcqRel);
                    if out.is_ok() {
                        eng.schedule_absorb(shard, space);
                    }
                    return Some(HeldReply::One(reply, out));
                }
                Task::ObserveBatch { shard, eps, reply } => {
                    let sh = &eng.shards[shard];
                    let mut spaces = Vec::new();
                    let out = eps
                        .into_iter()
                        .map(|ep| {
                            let space = ep.space;
                            let r = sh.observe(eng, ep);
                            sh.spaces[space as usize].pending.fetch_sub(1, Ordering::AcqRel);
                            if r.is_ok() && !spaces.contains(&space) {
                                spaces.push(space);
                            }
                            r
                        })
                        .collect();
                    for space in spaces {
                        eng.schedule_absorb(shard, space);
                    }
                    return Some(HeldReply::Batch(reply, out));
                }
                Task::Absorb { shard, space } => {
                    let sh = &eng.shards[shard];
                    let sp = &sh.spaces[space as usize];
                    let yields = eng.config.index.absorb_yields;
                    if eng.absorbing.load(Ordering::Acquire)
                        && let Err(e) = sh.absorb_until(eng, space, || yields && urgency.high_waiting())
                    {
                        // The batch's slots stay unindexed (scanned by every recall, and
                        // counted by admission control); later slots are still absorbed.
                        eng.note_degradation(format!("shard {shard}: absorption failed: {e}"));
                    }
                    // Leave the count first, then look: see `SpaceShard::has_unclaimed`.
                    sp.absorber_done();
                    // A paused space is rescheduled by the snapshot that paused it.
                    if sp.has_unclaimed() && !sp.progress.is_paused() {
                        eng.schedule_absorb(shard, space);
                    }
                }
                Task::Search {
                    shard,
                    space,
                    query,
                    k,
                    sent,
                    reply,
                } => {
                    let started = Instant::now();
                    let queued = started.saturating_duration_since(sent);
                    let sh = &eng.shards[shard];
                    sh.metrics.search_queued.record(queued);
                    let hits = sh.search(eng, space, &query, k);
                    sh.metrics.search.record(started.elapsed());
                    reply.send((hits, queued, sent.elapsed()));
                }
                Task::Spread {
                    shard,
                    seeds,
                    params,
                    reply,
                } => {
                    let sh = &eng.shards[shard];
                    let out = sh.scratches.take(&sh.graph).and_then(|mut scratch| {
                        let r = sh.graph.spread(&seeds, &params, &mut scratch);
                        sh.scratches.give_back(scratch);
                        r
                    });
                    reply.send(out);
                }
                Task::Hop {
                    shard,
                    request,
                    reply,
                } => {
                    let sh = &eng.shards[shard];
                    // Scratches come from the graph's arena (on the shard's node) and are reused.
                    let out = sh.scratches.take(&sh.graph).and_then(|mut scratch| {
                        let r = sh.graph.apply_hop(&request, &mut scratch);
                        sh.scratches.give_back(scratch);
                        r
                    });
                    reply.send(out);
                }
                Task::Edges { shard, edges, done } => {
                    let results = outbox::write_edges(eng, shard, &edges);
                    match done {
                        Some(EdgesDone::Reply(reply)) => reply.send(results),
                        other => {
                            // Edges the engine made by itself: a failure loses only that edge.
                            for e in results.into_iter().filter_map(Result::err) {
                                eng.note_association_failure(e);
                            }
                            if let Some(EdgesDone::Join(join)) = other {
                                join.arrive();
                            }
                        }
                    }
                }
                Task::Score {
                    shard,
                    space,
                    query,
                    mask,
                    ids,
                    reply,
                } => reply.send(eng.shards[shard].masked_similarity(space, &query, &mask, &ids)),
                Task::Rows {
                    shard,
                    space,
                    ids,
                    reply,
                } => reply.send(eng.shards[shard].rows(space, &ids)),
                Task::Locate { shard, ids, reply } => reply.send(eng.shards[shard].locate_many(&ids)),
                Task::Forget { shard, id, reply } => reply.send(eng.shards[shard].forget(id)),
            }
        }
        None
    }
}
