//! The worker handler: runs a [`Task`] on one of its shard's pinned workers, then sends the
//! edges the shard returned for other shards through the outbox (and an observation's reply
//! once they are written; see `outbox.rs`).
//!
//! An absorption task stops after the insert in hand when a recall waits on its node
//! (`Urgency`), and queues itself again: a recall waits for at most one HNSW insert of
//! absorption.

use std::sync::Arc;
use std::time::Instant;

use super::core::Inner;
use super::error::EngineError;
use super::outbox;
use super::shard::{Edge, Outgoing, Prepared, Scope, Shard};
use super::task::{EdgesDone, HeldReply, Task};
use super::types::EpisodeId;
use crate::exec::{Priority, ReplySlot, Urgency, WorkerContext, WorkerHandler};

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
                eng.shard(shard).metrics.message(kind);
            }
            if ctx.node != eng.shard(shard).node {
                eng.shard(shard).metrics.off_node.inc();
            }
            // While the task runs, this thread works for `shard` only: edges for other shards
            // wait in the scope's outbox and leave as messages afterwards.
            let scope = Scope::enter(shard);
            let mut out = Outgoing::default();
            let held = self.run(local, task, urgency, &mut out);
            scope.leave();
            for e in out.lost {
                eng.note_association_failure(e);
            }
            outbox::dispatch(eng, shard, out.edges, held);
        }
    }
}

impl EngineHandler {
    /// Runs one task; an observation's reply comes back to be sent after its edges. An
    /// absorption stops early when `urgency` reports a waiting recall (and
    /// [`IndexParams::absorb_yields`](super::IndexParams::absorb_yields) is on). The edges the
    /// shard produced for other shards are added to `out`.
    fn run(
        &self,
        _: &mut WorkerLocal,
        task: Task,
        urgency: &Urgency<'_>,
        out: &mut Outgoing,
    ) -> Option<HeldReply> {
        let eng = &*self.inner;
        {
            match task {
                Task::Observe { shard, ep, reply } => return Some(observe_one(eng, shard, ep, reply, out)),
                Task::ObserveBatch { shard, eps, reply } => {
                    return Some(observe_batch(eng, shard, eps, reply, out));
                }
                Task::Absorb { shard, space } => absorb(eng, shard, space, urgency, out),
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
                    let sh = eng.shard(shard);
                    sh.metrics.search_queued.record(queued);
                    let hits = sh.search(space, &query, k);
                    sh.metrics.search.record(started.elapsed());
                    reply.send((hits, queued, sent.elapsed()));
                }
                Task::Spread {
                    shard,
                    seeds,
                    params,
                    reply,
                } => {
                    let sh = eng.shard(shard);
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
                    let sh = eng.shard(shard);
                    // Scratches come from the graph's arena (on the shard's node) and are reused.
                    let out = sh.scratches.take(&sh.graph).and_then(|mut scratch| {
                        let r = sh.graph.apply_hop(&request, &mut scratch);
                        sh.scratches.give_back(scratch);
                        r
                    });
                    reply.send(out);
                }
                Task::Edges { shard, edges, done } => write_edges(eng, shard, &edges, done),
                Task::Score {
                    shard,
                    space,
                    query,
                    mask,
                    ids,
                    reply,
                } => reply.send(eng.shard(shard).masked_similarity(space, &query, &mask, &ids)),
                Task::Rows {
                    shard,
                    space,
                    ids,
                    reply,
                } => reply.send(eng.shard(shard).rows(space, &ids)),
                Task::Locate { shard, ids, reply } => reply.send(eng.shard(shard).locate_many(&ids)),
                Task::Forget { shard, id, reply } => reply.send(eng.shard(shard).forget(id)),
            }
        }
        None
    }
}

/// Stores `ep` on `sh` and makes its stream association (the stream's last episode is
/// engine-wide, kept by the core); edges for other shards go to `out`.
fn observe(eng: &Inner, sh: &Shard, ep: Prepared, out: &mut Outgoing) -> Result<EpisodeId, EngineError> {
    let (id, stream) = sh.observe(ep, out)?;
    if let Some((space, stream)) = stream
        && let Some(prev) = eng.follow_stream(space, stream, id.0)
    {
        sh.connect_both(id.0, prev, sh.stream_weight(), out);
    }
    Ok(id)
}

/// An observation: stored, its pending count ended, absorption scheduled; the reply is held.
fn observe_one(
    eng: &Inner,
    shard: usize,
    ep: Prepared,
    reply: ReplySlot<Result<EpisodeId, EngineError>>,
    out: &mut Outgoing,
) -> HeldReply {
    let space = ep.space;
    let sh = eng.shard(shard);
    let r = observe(eng, sh, ep, out);
    sh.spaces[space as usize].pending_done();
    if r.is_ok() {
        eng.schedule_absorb(shard, space);
    }
    HeldReply::One(reply, r)
}

/// A batch of observations of one shard, in order; the replies are held.
fn observe_batch(
    eng: &Inner,
    shard: usize,
    eps: Vec<Prepared>,
    reply: ReplySlot<Vec<Result<EpisodeId, EngineError>>>,
    out: &mut Outgoing,
) -> HeldReply {
    let sh = eng.shard(shard);
    let mut spaces = Vec::new();
    let results = eps
        .into_iter()
        .map(|ep| {
            let space = ep.space;
            let r = observe(eng, sh, ep, out);
            sh.spaces[space as usize].pending_done();
            if r.is_ok() && !spaces.contains(&space) {
                spaces.push(space);
            }
            r
        })
        .collect();
    for space in spaces {
        eng.schedule_absorb(shard, space);
    }
    HeldReply::Batch(reply, results)
}

/// One absorption batch (stopping early for a waiting recall when `absorb_yields` is on),
/// then absorption queued again while slots wait.
fn absorb(eng: &Inner, shard: usize, space: u16, urgency: &Urgency<'_>, out: &mut Outgoing) {
    let sh = eng.shard(shard);
    let sp = &sh.spaces[space as usize];
    let yields = eng.config().index.absorb_yields;
    if eng.absorbing()
        && let Err(e) = sh.absorb_until(space, || yields && urgency.high_waiting(), out)
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

/// Edges whose sources live on `shard`; the results go to whoever waits (`done`).
fn write_edges(eng: &Inner, shard: usize, edges: &[Edge], done: Option<EdgesDone>) {
    let results = outbox::write_edges(eng, shard, edges);
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
