//! The work the engine's pinned workers do, and the handler that runs it.
//!
//! Priorities follow `../shared/DESIGN.md`: recall (search and spread hops) is **high**,
//! observation **normal**, index absorption **low** (it still gets one batch in every
//! `low_share`, so the append buffer drains while observations stream in).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::error::EngineError;
use super::facade::Inner;
use super::shard::{Prepared, ShardHits};
use super::types::EpisodeId;
use crate::exec::{Priority, ReplySlot, WorkerContext, WorkerHandler};
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
        reply: ReplySlot<(ShardHits, Duration)>,
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

    fn handle(&self, _: &mut WorkerLocal, _: &WorkerContext, _: Priority, batch: &mut Vec<Task>) {
        let eng = &*self.inner;
        for task in batch.drain(..) {
            match task {
                Task::Observe { shard, ep, reply } => {
                    let space = ep.space;
                    let sh = &eng.shards[shard];
                    let out = sh.observe(eng, ep);
                    sh.spaces[space as usize].pending.fetch_sub(1, Ordering::AcqRel);
                    if out.is_ok() {
                        eng.schedule_absorb(shard, space);
                    }
                    reply.send(out);
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
                    reply.send(out);
                }
                Task::Absorb { shard, space } => {
                    let sh = &eng.shards[shard];
                    let sp = &sh.spaces[space as usize];
                    if eng.absorbing.load(Ordering::Acquire)
                        && let Err(e) = sh.absorb(eng, space)
                    {
                        // The batch's slots stay unindexed (scanned by every recall, and
                        // counted by admission control); later slots are still absorbed.
                        eng.note_degradation(format!("shard {shard}: absorption failed: {e}"));
                    }
                    // Leave the count first, then look: see `SpaceShard::has_unclaimed`.
                    sp.absorber_done();
                    if sp.has_unclaimed() {
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
                    let hits = eng.shards[shard].search(eng, space, &query, k);
                    eng.shards[shard].metrics.search.record(started.elapsed());
                    reply.send((hits, sent.elapsed()));
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
            }
        }
    }
}
