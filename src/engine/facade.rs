//! [`Engine`]: the facade. Validates, routes writes to a shard, fans reads out to every shard and
//! merges.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::admit::{self, Answer, checked_unit};
use super::config::{DEFAULT_SPACE, EngineBuilder, ShardCount};
use super::core::{Inner, SpaceInfo};
use super::durable::{RecoveryReport, SnapshotReport, Store, replay};
use super::error::EngineError;
use super::fanout::{OnRefusal, Scattered, scatter};
use super::handler::EngineHandler;
use super::log::{Guarantee, NoLog};
use super::metrics::{EngineMetrics, RejectReason, ShardSnapshot, SpaceShardMetrics, render};
use super::requests;
use super::shard::{Edge, Shard, ShardHits, ShardSettings, top_k};
use super::spread::{SpreadParams, WorkerHops, delivered};
use super::task::Task;
use super::types::{Completion, Cue, Episode, EpisodeId, EpisodeRecord, Hit, RecallResult, ShardTiming};
use crate::alloc::{MemPolicy, PageSample, placement_of};
use crate::exec::{
    ExecError, Executor, Missing, PinPolicy, Priority, Rejected, StealPolicy, WorkerPoolConfig, oneshot,
};
use crate::index::Kernels;
use crate::spread::spread_across;
use crate::topology::{PlacementPlan, PlanOptions, Topology};

/// Softmax temperature that turns completion candidates' scores into weights. Small, so a
/// candidate that matches the known dimensions clearly better than the rest dominates the
/// completed embedding. A guess, checked only by the completion tests.
const COMPLETION_TEMPERATURE: f32 = 0.05;

/// Weight of the one-hop activation in a completion candidate's score (a guess).
const COMPLETION_ACTIVATION_WEIGHT: f32 = 0.5;

/// Opening lives here, beside the private `Engine::open`, so that `config.rs` stays on the ground floor.
impl EngineBuilder {
    /// Opens a durable engine whose state lives in `dir` (created if missing): every accepted
    /// episode, association and forget is logged per shard, and what `dir` holds from an earlier
    /// run (a snapshot and each shard's log after it) is recovered first, through the normal
    /// store path on each shard's own workers. See `docs/durability.md`.
    ///
    /// # Errors
    /// As [`open`](Self::open); [`EngineError::Durability`] if `dir` cannot be written, holds
    /// another format version, dimension or shard count, or is damaged before a log's tail
    /// (nothing is loaded then); [`EngineError::UnknownSpace`] if it holds episodes of a space
    /// this builder does not declare.
    pub fn open_in(mut self, dir: impl AsRef<std::path::Path>) -> Result<Engine, EngineError> {
        self.dir = Some(dir.as_ref().to_path_buf());
        self.validate()?;
        Engine::open(self)
    }

    /// Opens the engine.
    ///
    /// # Errors
    /// [`EngineError::InvalidConfig`] for a zero dimension, zero shards, a bad space (empty or
    /// duplicate name) or out-of-range index parameters; [`EngineError::Topology`] if the
    /// machine's topology cannot be read; [`EngineError::Exec`] if workers cannot start;
    /// [`EngineError::Index`] if a shard's first segment cannot be reserved.
    pub fn open(self) -> Result<Engine, EngineError> {
        self.validate()?;
        Engine::open(self)
    }
}

/// The associative memory: one shard per NUMA node (see the [module docs](super)).
pub struct Engine {
    pub(super) inner: Arc<Inner>,
    exec: Executor<Task>,
    /// The directory and logs of an engine opened with `open_in`. Dropped last, after the
    /// workers and the shards' logs: it holds the directory's lock.
    store: Option<Arc<Store>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dimension", &self.inner.dim())
            .field("shards", &self.inner.shards().len())
            .finish_non_exhaustive()
    }
}

/// How many pages of one shard's memory are on its memory node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardPlacement {
    /// The shard.
    pub shard: usize,
    /// The node its workers run on.
    pub node: u32,
    /// The node its memory should be on.
    pub memory_node: u32,
    /// Pages present (touched), all extents of rows and index together.
    pub pages_present: usize,
    /// Of those, pages on `memory_node`.
    pub pages_on_home: usize,
    /// Present pages per node.
    pub per_node: BTreeMap<u32, usize>,
    /// Why the report is incomplete, if it is (e.g. `move_pages` unavailable).
    pub error: Option<String>,
}

impl ShardPlacement {
    /// `pages_on_home / pages_present` (`None` when nothing is present).
    pub fn home_fraction(&self) -> Option<f64> {
        (self.pages_present > 0).then(|| self.pages_on_home as f64 / self.pages_present as f64)
    }
}

/// A cheap summary of the engine's contents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineStats {
    /// Live episodes, all spaces.
    pub episodes: usize,
    /// Shards.
    pub shards: usize,
    /// Episodes accepted but not yet indexed, all shards and spaces.
    pub unindexed: usize,
    /// Index segments, all shards and spaces.
    pub segments: usize,
    /// Association edges (each direction counted).
    pub edges: usize,
    /// Bytes of episode rows held (f32, each row once: in its index segment, whose
    /// `index_bytes` include them).
    pub row_bytes: usize,
    /// Bytes the index segments reserve (see [`HnswIndex::memory_bytes`](crate::index::HnswIndex::memory_bytes)).
    pub index_bytes: usize,
}

/// What a fan-out search gathered: merged `(id, similarity)` hits, per-shard timings, and
/// whether a shard is missing.
type FanOut = (Vec<(u64, f32)>, Vec<ShardTiming>, bool);

impl Engine {
    /// A builder with the defaults (one shard per NUMA node, the default space unlimited).
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    pub(crate) fn open(config: EngineBuilder) -> Result<Self, EngineError> {
        let plan = match &config.plan {
            Some(p) => p.clone(),
            None => {
                let topo = Topology::discover().map_err(|source| EngineError::Topology { source })?;
                let opts = PlanOptions {
                    max_workers_per_node: config.workers_per_node,
                    ..PlanOptions::default()
                };
                PlacementPlan::new(&topo, &opts).map_err(|source| EngineError::Topology { source })?
            }
        };
        let nodes: Vec<(u32, u32, usize)> = plan
            .nodes
            .iter()
            .filter(|n| !n.workers.is_empty())
            .map(|n| (n.node, n.memory_node, n.workers.len()))
            .collect();
        if nodes.is_empty() {
            return Err(EngineError::Exec {
                source: ExecError::EmptyPlan,
            });
        }
        let count = match config.shards {
            ShardCount::PerNode(n) => n * nodes.len(),
            ShardCount::Exactly(n) => n,
        };
        let per_node = match config.shards {
            ShardCount::PerNode(n) => n,
            ShardCount::Exactly(_) => 1,
        };
        let prepared = match &config.dir {
            Some(dir) => Some(Store::prepare(dir, &config, count)?),
            None => None,
        };
        let mut spaces = vec![SpaceInfo::new(DEFAULT_SPACE.into(), config.default_quota)];
        spaces.extend(
            config
                .spaces
                .iter()
                .map(|s| SpaceInfo::new(s.name.clone(), s.quota)),
        );
        let settings = Arc::new(ShardSettings {
            shards: count,
            dim: config.dimension,
            kernels: *Kernels::detect(),
            index: config.index.clone(),
            assoc: config.associations.clone(),
            space_names: spaces.iter().map(|s| s.name().to_owned()).collect(),
            keep_similar: prepared.is_some(),
        });
        let shards = (0..count)
            .map(|i| -> Result<Shard, EngineError> {
                let placed = match config.shards {
                    ShardCount::PerNode(_) => nodes[i / per_node],
                    ShardCount::Exactly(_) => nodes[i % nodes.len()],
                };
                let log = match &prepared {
                    Some((store, ..)) => store.log_for(i),
                    None => Box::new(NoLog),
                };
                Shard::new(i, placed, settings.clone(), log)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut degradations: Vec<String> = plan.degradations.iter().map(|d| format!("plan: {d}")).collect();
        let pool = WorkerPoolConfig {
            capacity: config.admission.queue_capacity,
            pin: if config.pin {
                PinPolicy::BestEffort
            } else {
                PinPolicy::Skip
            },
            // A shard's tasks read and write its node's memory: a worker of another node never
            // runs one (cross-node traffic is only the counted messages; see the module docs).
            steal: StealPolicy::WithinNode,
            ..WorkerPoolConfig::for_plan(&plan)
        };
        let store = prepared.as_ref().map(|p| p.0.clone());
        let inner = Arc::new(Inner::new(config, shards, spaces));
        let exec = Executor::start_with(&plan, pool, EngineHandler { inner: inner.clone() })
            .map_err(|source| EngineError::Exec { source })?;
        degradations.extend(exec.degradations().iter().map(|d| format!("exec: {d}")));
        inner.set_degradations(degradations);
        inner.attach_submitter(exec.submitter());
        let engine = Self { inner, exec, store };
        if let Some((store, state, checked)) = prepared {
            let (report, next_seq) = replay::recover(&engine.inner, &store, state, checked)?;
            store.attach(next_seq)?;
            let _ = store.recovery.set(report);
        }
        Ok(engine)
    }

    /// The embedding dimension.
    pub fn dimension(&self) -> usize {
        self.inner.dim()
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.inner.shards().len()
    }

    /// The shard episode `id` lives on (see [`shard_of`](super::shard_of)).
    pub fn shard_of(&self, id: EpisodeId) -> usize {
        self.inner.shard_of(id.0)
    }

    pub(super) fn space_id(&self, name: Option<&str>) -> Result<u16, EngineError> {
        self.inner.space_named(name)
    }

    /// Stores an episode and returns its id once it is accepted: from then on every recall that
    /// starts sees it (in the append buffer until the index absorbs it), and it is never lost or
    /// duplicated while the process lives.
    ///
    /// Validation comes first, and on any error nothing is stored (when every shard's append
    /// buffer of the space is full, the refusal, [`EngineError::Overloaded`], comes even
    /// before validation, so that refusing under overload costs almost nothing). The episode
    /// goes to shard [`shard_of`](super::shard_of)`(id)`, where one of that shard's workers
    /// stores it.
    ///
    /// # Errors
    /// [`EngineError::DimensionMismatch`], [`EngineError::NonFinite`], [`EngineError::ZeroVector`],
    /// [`EngineError::UnknownEpisode`] (a link target), [`EngineError::DuplicateId`],
    /// [`EngineError::UnknownSpace`], [`EngineError::InvalidInput`] (payload or links too large,
    /// a bad link weight), [`EngineError::QuotaExceeded`], [`EngineError::Overloaded`],
    /// [`EngineError::TimedOut`] (outcome unknown: check with [`Engine::get`]),
    /// [`EngineError::Closed`].
    pub fn observe(&self, ep: Episode) -> Result<EpisodeId, EngineError> {
        self.observe_durable(ep).map(|(id, _)| id)
    }

    /// As [`Engine::observe`], and says which guarantee the episode has when it returns: kept
    /// in memory only (an engine opened with `open`), or in its shard's write-ahead log with
    /// the policy's [`Durable`](crate::durability::Durable) guarantee (`open_in`). The wait for
    /// the log's write and fsync happens here, on the calling thread, outside every lock of the
    /// engine, so concurrent observers of a shard share one group commit.
    ///
    /// If the log's write fails after the episode was stored (disk full, I/O error), the
    /// episode is forgotten again and the error returned: a recall running meanwhile may have
    /// seen it, no later one will, and its quota is released (its id stays taken until restart).
    ///
    /// # Errors
    /// As [`Engine::observe`], and [`EngineError::Durability`] when the log refuses or fails.
    pub fn observe_durable(&self, ep: Episode) -> Result<(EpisodeId, Guarantee), EngineError> {
        let started = Instant::now();
        let eng = &*self.inner;
        // Validation, id, quota and index lag: see `admit.rs`.
        let prepared = admit::admit(eng, ep)?;
        let (id, space) = (prepared.id, prepared.space);
        let s = eng.shard_of(id);
        let Some(sub) = eng.try_submitter() else {
            admit::unadmit(eng, space, id);
            return Err(EngineError::Closed);
        };
        let (reply, answer) = oneshot();
        let task = Task::Observe {
            shard: s,
            ep: prepared,
            reply,
        };
        if let Err(Rejected { error, .. }) = sub.submit(eng.shard(s).node, Priority::Normal, task) {
            admit::unadmit(eng, space, id);
            return Err(admit::refused(eng, s, space, &error));
        }
        let answer = match answer.wait_one(started + eng.config().admission.observe_deadline) {
            Ok(r) => Answer::Stored(r),
            Err(e) => Answer::from_wait(&e),
        };
        let out = admit::settle(eng, s, space, id, started, answer);
        if out.is_ok() {
            self.snapshot_if_due();
        }
        out
    }

    /// Stores many episodes: [`Engine::observe`] for each, with one task per shard for the
    /// whole batch instead of one per episode. Returns one result per episode, in order; each
    /// means what `observe`'s would (an `Ok` is visible to every recall that starts after this
    /// returns). Validation, quota and admission are per episode: a bad or refused episode
    /// fails alone. A shard whose queue is full refuses its part at once
    /// ([`EngineError::Overloaded`]); nothing here waits for room.
    ///
    /// Episodes of one batch bound for one shard are stored in batch order. On an engine opened
    /// with [`open_in`](super::EngineBuilder::open_in), each `Ok` has the guarantee
    /// [`Engine::observe_durable`] would report for it; the log records of one batch join one
    /// group commit, so `every batch` costs one fsync per shard per batch.
    pub fn observe_batch(&self, episodes: Vec<Episode>) -> Vec<Result<EpisodeId, EngineError>> {
        let out = admit::observe_batch(&self.inner, episodes);
        if out.iter().any(Result::is_ok) {
            self.snapshot_if_due();
        }
        out
    }

    /// Starts a background snapshot of a durable engine if its policy asks for one now and
    /// none is running (the store decides; the thread holds the engine only while it saves).
    fn snapshot_if_due(&self) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        if !store.claim_background() {
            return;
        }
        let engine = Arc::downgrade(&self.inner);
        store.run_background(move |store| match engine.upgrade() {
            Some(eng) => store.snapshot(&eng, store.limits),
            None => Err(EngineError::Closed),
        });
    }

    /// Searches every shard (one high-priority task each, on its own workers) and merges.
    fn fan_search(
        &self,
        space: u16,
        query: Arc<[f32]>,
        k: usize,
        deadline: Instant,
    ) -> Result<FanOut, EngineError> {
        let eng = &*self.inner;
        let n = eng.shards().len();
        let sent = Instant::now();
        let parts = (0..n).map(|shard| (shard, ())).collect();
        let Scattered { replies, .. } =
            scatter(eng, parts, Priority::High, OnRefusal::Stop, |shard, (), reply| {
                Task::Search {
                    shard,
                    space,
                    query: query.clone(),
                    k,
                    sent,
                    reply,
                }
            })?;
        let got = replies.wait_until(deadline);
        let partial = !got.is_complete();
        let mut all = Vec::new();
        let mut timings = Vec::with_capacity(n);
        for (shard, r) in got.replies.into_iter().enumerate() {
            let node = eng.shard(shard).node;
            match r {
                Some((
                    ShardHits {
                        hits,
                        scanned,
                        segments,
                    },
                    queued,
                    elapsed,
                )) => {
                    all.extend(hits);
                    timings.push(ShardTiming {
                        shard,
                        node,
                        elapsed: Some(elapsed),
                        queued: Some(queued),
                        scanned,
                        segments,
                    });
                }
                None => timings.push(ShardTiming {
                    shard,
                    node,
                    elapsed: None,
                    queued: None,
                    scanned: 0,
                    segments: 0,
                }),
            }
        }
        debug_assert!(
            got.missing
                .iter()
                .all(|m| matches!(m.1, Missing::TimedOut | Missing::Dropped))
        );
        Ok((top_k(all, k), timings, partial))
    }

    /// Cosine similarity on `mask`ed dimensions for `ids`, each computed by its own shard's
    /// workers ([`MessageKind::Score`](super::MessageKind::Score) messages); the flag says
    /// whether a shard did not answer by `deadline` (its ids are then missing).
    fn masked(
        &self,
        space: u16,
        q: &[f32],
        mask: &[bool],
        ids: &[u64],
        deadline: Instant,
    ) -> Result<(HashMap<u64, f32>, bool), EngineError> {
        requests::masked(&self.inner, space, q, mask, ids, deadline)
            .map(|(m, missing)| (m, missing.is_some()))
    }

    /// Recalls the episodes nearest to the cue, optionally spreading activation from them.
    ///
    /// Every shard searches its index segments and scans its append buffer (so every episode
    /// whose `observe` returned before this call began is a candidate), at high priority on its
    /// own workers; the answers are merged into the top `k` by similarity.
    ///
    /// **With spreading**, those hits seed a spread (seed activation = max(similarity, 0)) over
    /// the association graph across shards ([`SpreadParams`]). Every live episode reached is a
    /// candidate, and hits are ranked by `score = similarity + activation_weight × activation`,
    /// where `activation` is what the spread delivered to it (its total minus its seed).
    /// Without spreading, `score = similarity`.
    ///
    /// # Errors
    /// [`EngineError::DimensionMismatch`], [`EngineError::NonFinite`],
    /// [`EngineError::ZeroVector`], [`EngineError::InvalidInput`] (`k` = 0 or above 10 000, bad
    /// spread parameters), [`EngineError::UnknownSpace`], [`EngineError::Overloaded`] (a shard's
    /// high-priority queue is full), [`EngineError::Closed`]. A shard that does not answer within
    /// the budget is not an error: the result is marked `partial`.
    pub fn recall(&self, cue: &Cue) -> Result<RecallResult, EngineError> {
        let started = Instant::now();
        let eng = &*self.inner;
        let space = self.space_id(cue.space.as_deref())?;
        if cue.k == 0 || cue.k > 10_000 {
            return Err(EngineError::InvalidInput {
                what: format!("k = {} (must be in 1..=10000)", cue.k),
            });
        }
        if let Some(p) = &cue.spread {
            p.validate()
                .map_err(|e| EngineError::InvalidInput { what: e.to_string() })?;
        }
        let q: Arc<[f32]> = checked_unit(&cue.embedding, eng.dim())?.into();
        let deadline = started + cue.budget.unwrap_or(eng.config().admission.recall_deadline);
        let (found, shards, mut partial) = self.fan_search(space, q.clone(), cue.k, deadline)?;
        let hits = match &cue.spread {
            None => found
                .into_iter()
                .map(|(id, s)| Hit {
                    id: EpisodeId(id),
                    score: s,
                    similarity: s,
                    activation: 0.0,
                })
                .collect(),
            Some(params) => {
                let seeds: Vec<(u64, f32)> = found.iter().map(|&(id, s)| (id, s.max(0.0))).collect();
                let (got, cut) = delivered(eng, &seeds, params, cue.k, deadline)?;
                partial |= cut;
                let mut ids: Vec<u64> = got.keys().copied().collect();
                ids.extend(found.iter().map(|h| h.0));
                ids.sort_unstable();
                ids.dedup();
                let mask = vec![true; eng.dim()];
                let (sims, cut) = self.masked(space, &q, &mask, &ids, deadline)?;
                partial |= cut;
                let mut hits: Vec<Hit> = ids
                    .iter()
                    .filter_map(|id| {
                        let similarity = *sims.get(id)?;
                        let activation = got.get(id).copied().unwrap_or(0.0);
                        Some(Hit {
                            id: EpisodeId(*id),
                            score: similarity + cue.activation_weight * activation,
                            similarity,
                            activation,
                        })
                    })
                    .collect();
                hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
                hits.truncate(cue.k);
                hits
            }
        };
        if partial {
            eng.partial_recalls().inc();
        }
        let elapsed = started.elapsed();
        eng.recall_ops().record(elapsed);
        Ok(RecallResult {
            hits,
            partial,
            shards,
            elapsed,
        })
    }

    /// Pattern completion in the default space: see [`Engine::complete_in`].
    ///
    /// # Errors
    /// As [`Engine::complete_in`].
    pub fn complete(&self, partial: &[f32], mask: &[bool], k: usize) -> Result<Completion, EngineError> {
        self.complete_in(None, partial, mask, k)
    }

    /// Completes a partial embedding: `mask[i]` says whether dimension `i` of `partial` is known.
    ///
    /// 1. Candidates: the episodes nearest to the known part (every shard searched as in
    ///    [`Engine::recall`], `max(4k, 32)` each), ranked by cosine similarity **on the known
    ///    dimensions only**; the best `k` are kept.
    /// 2. Refinement: one hop of spreading from those (activation = masked similarity, decay
    ///    0.5) adds associated episodes as candidates; each scores
    ///    `masked similarity + 0.5 × activation`.
    /// 3. The best `k` by score are weighted by a softmax of their scores (temperature 0.05),
    ///    and the completion is the unit-normalised weighted mean of their stored embeddings.
    ///
    /// `confidence` is the best candidate's masked similarity (clamped to 0..=1) times its weight.
    ///
    /// # Errors
    /// [`EngineError::DimensionMismatch`] (`partial` or `mask` of the wrong length),
    /// [`EngineError::NonFinite`] (a known dimension), [`EngineError::ZeroVector`] (no known
    /// dimension, or all known ones zero), [`EngineError::InvalidInput`] (`k` out of 1..=1000),
    /// [`EngineError::UnknownSpace`], [`EngineError::Overloaded`], [`EngineError::Closed`].
    pub fn complete_in(
        &self,
        space: Option<&str>,
        partial: &[f32],
        mask: &[bool],
        k: usize,
    ) -> Result<Completion, EngineError> {
        let started = Instant::now();
        let eng = &*self.inner;
        let space = self.space_id(space)?;
        if mask.len() != eng.dim() {
            return Err(EngineError::DimensionMismatch {
                expected: eng.dim(),
                got: mask.len(),
            });
        }
        if k == 0 || k > 1000 {
            return Err(EngineError::InvalidInput {
                what: format!("k = {k} (must be in 1..=1000)"),
            });
        }
        let masked_query: Vec<f32> = partial
            .iter()
            .zip(mask)
            .map(|(x, &on)| if on { *x } else { 0.0 })
            .collect();
        let q = checked_unit(&masked_query, eng.dim())?;
        let wide = (4 * k).max(32);
        let deadline = started + eng.config().admission.recall_deadline;
        let (found, _, _) = self.fan_search(space, q.clone().into(), wide, deadline)?;
        let ids: Vec<u64> = found.iter().map(|h| h.0).collect();
        // A shard missing from a completion's scoring would change its answer unseen: an error.
        let scored = |ids: &[u64]| -> Result<HashMap<u64, f32>, EngineError> {
            let (m, missing) = requests::masked(eng, space, &q, mask, ids, deadline)?;
            match missing {
                None => Ok(m),
                Some((shard, waited, Missing::TimedOut)) => Err(EngineError::TimedOut {
                    shard,
                    waited,
                    id: None,
                }),
                Some((_, _, Missing::Dropped)) => Err(EngineError::Closed),
            }
        };
        let sims = scored(&ids)?;
        let mut cands: Vec<(u64, f32)> = sims.into_iter().collect();
        cands = top_k(cands, k);
        let params = SpreadParams {
            max_hops: 1,
            fan_out: 32,
            ..SpreadParams::default()
        };
        let seeds: Vec<(u64, f32)> = cands.iter().map(|&(id, s)| (id, s.max(0.0))).collect();
        let (got, _) = delivered(eng, &seeds, &params, k, deadline)?;
        let seed: HashMap<u64, f32> = seeds.iter().copied().collect();
        let reached: Vec<u64> = got.keys().copied().filter(|id| !seed.contains_key(id)).collect();
        let mut all = cands.clone();
        all.extend(scored(&reached)?);
        let scored: Vec<(u64, f32, f32)> = all
            .into_iter()
            .map(|(id, s)| {
                (
                    id,
                    s + COMPLETION_ACTIVATION_WEIGHT * got.get(&id).copied().unwrap_or(0.0),
                    s,
                )
            })
            .collect();
        let mut ranked = scored;
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        let Some(&(_, best_score, best_sim)) = ranked.first() else {
            eng.complete_ops().record(started.elapsed());
            return Ok(Completion {
                embedding: vec![0.0; eng.dim()],
                supporting: Vec::new(),
                confidence: 0.0,
            });
        };
        let raw: Vec<f32> = ranked
            .iter()
            .map(|r| ((r.1 - best_score) / COMPLETION_TEMPERATURE).exp())
            .collect();
        let total: f32 = raw.iter().sum();
        let weights: Vec<f32> = raw.iter().map(|w| w / total).collect();
        let wanted: Vec<u64> = ranked.iter().map(|r| r.0).collect();
        let rows = requests::rows(eng, space, &wanted, deadline)?;
        let mut out = vec![0.0f32; eng.dim()];
        for (r, w) in ranked.iter().zip(&weights) {
            if let Some(row) = rows.get(&r.0) {
                for (o, x) in out.iter_mut().zip(row) {
                    *o += w * x;
                }
            }
        }
        let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            out.iter_mut().for_each(|x| *x /= norm);
        }
        eng.complete_ops().record(started.elapsed());
        Ok(Completion {
            embedding: out,
            supporting: ranked
                .iter()
                .zip(&weights)
                .map(|(r, w)| (EpisodeId(r.0), *w))
                .collect(),
            confidence: best_sim.clamp(0.0, 1.0) * weights[0],
        })
    }

    /// Associates `a` and `b` (both directions) at `weight`, or raises an existing association
    /// to it.
    ///
    /// # Errors
    /// [`EngineError::UnknownEpisode`] if either is not live or they are in different spaces;
    /// [`EngineError::InvalidInput`] for a weight that is not finite and > 0, or for `a == b`
    /// (the same rule as [`Engine::associate_directed`]: an association joins two episodes).
    pub fn associate(&self, a: EpisodeId, b: EpisodeId, weight: f32) -> Result<(), EngineError> {
        let deadline = Instant::now() + self.inner.config().admission.observe_deadline;
        self.check_pair(a, b, weight, deadline)?;
        self.log_association(a, b, weight, true)?;
        let edge = |source: EpisodeId, target: EpisodeId| Edge {
            source: source.0,
            target: target.0,
            weight,
        };
        requests::store_edges(&self.inner, vec![edge(a, b), edge(b, a)], deadline)
    }

    /// Associates `a → b` only, at `weight` (added to an existing `a → b` association): a spread
    /// reaching `a` passes activation to `b`, not back. Stored on `a`'s shard.
    ///
    /// # Errors
    /// As [`Engine::associate`]; [`EngineError::InvalidInput`] also for `a == b`.
    pub fn associate_directed(&self, a: EpisodeId, b: EpisodeId, weight: f32) -> Result<(), EngineError> {
        let deadline = Instant::now() + self.inner.config().admission.observe_deadline;
        self.check_pair(a, b, weight, deadline)?;
        self.log_association(a, b, weight, false)?;
        let edge = Edge {
            source: a.0,
            target: b.0,
            weight,
        };
        requests::store_edges(&self.inner, vec![edge], deadline)
    }

    /// Adds many directed associations `a → b` at `weight` at once: what
    /// [`Engine::associate_directed`] does for each, with one `locate` message per shard for the
    /// whole batch and one `edges` message per source shard, instead of two round trips per
    /// association (for loading a graph). Every association is checked before any is stored: a
    /// bad one (weight, `a == b`, an episode not live, two spaces) fails the call and stores
    /// nothing. On a durable engine each is logged, and waited for, before the batch is applied.
    ///
    /// # Errors
    /// As [`Engine::associate_directed`], for the first bad association.
    pub fn associate_directed_many(&self, edges: &[(EpisodeId, EpisodeId, f32)]) -> Result<(), EngineError> {
        if edges.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + self.inner.config().admission.observe_deadline;
        for &(a, b, weight) in edges {
            if !weight.is_finite() || weight <= 0.0 {
                return Err(EngineError::InvalidInput {
                    what: format!("association weight {weight} (must be finite and > 0)"),
                });
            }
            if a == b {
                return Err(EngineError::InvalidInput {
                    what: format!("association {a} → {a} (a directed association needs two episodes)"),
                });
            }
        }
        let mut ids: Vec<u64> = edges.iter().flat_map(|&(a, b, _)| [a.0, b.0]).collect();
        ids.sort_unstable();
        ids.dedup();
        let live = requests::locate(&self.inner, &ids, deadline)?;
        for &(a, b, _) in edges {
            let sa = live.get(&a.0).ok_or(EngineError::UnknownEpisode { id: a.0 })?;
            let sb = live.get(&b.0).ok_or(EngineError::UnknownEpisode { id: b.0 })?;
            if sa != sb {
                return Err(EngineError::UnknownEpisode { id: b.0 });
            }
        }
        for &(a, b, weight) in edges {
            self.log_association(a, b, weight, false)?;
        }
        let edges = edges
            .iter()
            .map(|&(a, b, weight)| Edge {
                source: a.0,
                target: b.0,
                weight,
            })
            .collect();
        requests::store_edges(&self.inner, edges, deadline)
    }

    /// Logs an explicit association on `a`'s shard (durable engines) and waits for it, outside
    /// every lock, before it is applied.
    fn log_association(&self, a: EpisodeId, b: EpisodeId, w: f32, both: bool) -> Result<(), EngineError> {
        if let Some(store) = self.store.as_ref() {
            store.log_change(self.inner.shard_of(a.0), |seq| {
                crate::durability::Record::Associate {
                    seq,
                    a: a.0,
                    b: b.0,
                    w,
                    both,
                }
            })?;
            self.snapshot_if_due();
        }
        Ok(())
    }

    /// Checks an association's weight, then that both episodes are live and in one space (asked
    /// of their shards: [`MessageKind::Locate`](super::MessageKind::Locate)).
    fn check_pair(
        &self,
        a: EpisodeId,
        b: EpisodeId,
        weight: f32,
        deadline: Instant,
    ) -> Result<(), EngineError> {
        if !weight.is_finite() || weight <= 0.0 {
            return Err(EngineError::InvalidInput {
                what: format!("association weight {weight} (must be finite and > 0)"),
            });
        }
        // One rule for both kinds: an association joins two episodes.
        if a == b {
            return Err(EngineError::InvalidInput {
                what: format!("association {a} → {a} (an association needs two episodes)"),
            });
        }
        let live = requests::locate(&self.inner, &[a.0, b.0], deadline)?;
        let sa = live.get(&a.0).ok_or(EngineError::UnknownEpisode { id: a.0 })?;
        let sb = live.get(&b.0).ok_or(EngineError::UnknownEpisode { id: b.0 })?;
        if sa != sb {
            return Err(EngineError::UnknownEpisode { id: b.0 });
        }
        Ok(())
    }

    /// Spreads activation from the given seeds `(episode, initial activation)` over the
    /// association graph across shards (see [`crate::spread`] for the model): one round per hop,
    /// each shard's part on its own workers at high priority. `params.k`, `include_seeds` and
    /// the thresholds apply as in [`crate::spread::AssocGraph::spread`]; the answer equals a
    /// one-shard spread over the same graph to the bit. With no `params.budget`, the spread gets
    /// the engine's recall deadline ([`AdmissionLimits::recall_deadline`](super::AdmissionLimits)).
    ///
    /// On a one-shard engine the whole spread runs as one task on the shard's workers.
    ///
    /// A shard that does not answer in time is an error here (the caller asked for this spread
    /// and nothing else); the budget running out marks the result `partial`.
    ///
    /// # Errors
    /// [`EngineError::UnknownEpisode`] for a seed that is not live; [`EngineError::InvalidInput`]
    /// for no seeds, a seed activation that is not finite and >= 0, or bad parameters;
    /// [`EngineError::Spread`] if a shard did not answer in time or the spread failed.
    pub fn spread(
        &self,
        seeds: &[(EpisodeId, f32)],
        params: &SpreadParams,
    ) -> Result<crate::spread::SpreadResult, EngineError> {
        let started = Instant::now();
        let eng = &*self.inner;
        params
            .validate()
            .map_err(|e| EngineError::InvalidInput { what: e.to_string() })?;
        if seeds.is_empty() {
            return Err(EngineError::InvalidInput {
                what: "a spread needs at least one seed".into(),
            });
        }
        for &(id, a) in seeds {
            if !a.is_finite() || a < 0.0 {
                return Err(EngineError::InvalidInput {
                    what: format!("seed {id} activation {a} (must be finite and >= 0)"),
                });
            }
        }
        let budget = params.budget.unwrap_or(eng.config().admission.recall_deadline);
        let ids: Vec<u64> = seeds.iter().map(|s| s.0.0).collect();
        let live = requests::locate(eng, &ids, started + budget)?;
        if let Some(id) = ids.iter().find(|id| !live.contains_key(id)) {
            return Err(EngineError::UnknownEpisode { id: *id });
        }
        let seeds: Vec<(u64, f32)> = seeds.iter().map(|&(id, a)| (id.0, a)).collect();
        let mut p = params.clone();
        p.budget = Some(budget);
        let deadline = started + budget;
        let out = if eng.shards().len() == 1 {
            self.spread_on_one_shard(seeds, p, deadline)
        } else {
            let runner = WorkerHops { inner: eng, deadline };
            let route = |id: u64| eng.shard_of(id);
            spread_across(&runner, &route, eng.shards().len(), &seeds, &p)
        };
        out.map_err(|source| match source {
            crate::spread::SpreadError::UnknownSeed { id } => EngineError::UnknownEpisode { id },
            crate::spread::SpreadError::InvalidInput { what } => EngineError::InvalidInput { what },
            crate::spread::SpreadError::Shard { shard, .. } => EngineError::Spread {
                shard: Some(shard),
                source,
            },
            source => EngineError::Spread { shard: None, source },
        })
    }

    /// A one-shard engine's spread: the whole walk as one high-priority task on the shard's
    /// workers (one round trip instead of one per hop; the same answer, see
    /// [`crate::spread::spread_across`]).
    fn spread_on_one_shard(
        &self,
        seeds: Vec<(u64, f32)>,
        params: SpreadParams,
        deadline: Instant,
    ) -> Result<crate::spread::SpreadResult, crate::spread::SpreadError> {
        let eng = &*self.inner;
        let dropped = |what: &str| crate::spread::SpreadError::Shard {
            shard: 0,
            what: what.into(),
        };
        let parts = vec![(0, (seeds, params))];
        let sent = scatter(
            eng,
            parts,
            Priority::High,
            OnRefusal::Stop,
            |shard, (seeds, params), reply| Task::Spread {
                shard,
                seeds,
                params,
                reply,
            },
        );
        let answer = match sent {
            Ok(Scattered { replies, .. }) => replies,
            Err(EngineError::Closed) => return Err(dropped("the engine is closing")),
            Err(_) => return Err(dropped("the shard refused the spread (queue full or closing)")),
        };
        answer
            .wait_one(deadline)
            .map_err(|e| dropped(&format!("no answer within the budget ({e})")))?
    }

    /// Forgets an episode: no later recall, completion or `get` returns it, and its quota is
    /// released. Its id stays taken.
    ///
    /// One of the episode's shard's workers forgets it
    /// ([`MessageKind::Forget`](super::MessageKind::Forget)); this call waits for it (the observe
    /// deadline).
    ///
    /// # Errors
    /// [`EngineError::UnknownEpisode`] if it is not live; [`EngineError::TimedOut`] if the shard
    /// did not answer in time (the episode may be forgotten later: check with [`Engine::get`]);
    /// [`EngineError::Overloaded`], [`EngineError::Closed`].
    pub fn forget(&self, id: EpisodeId) -> Result<(), EngineError> {
        let eng = &*self.inner;
        let deadline = Instant::now() + eng.config().admission.observe_deadline;
        if let Some(store) = self.store.as_ref() {
            // Logged before it is applied, and only for a live episode (asked of its shard).
            if !requests::locate(eng, &[id.0], deadline)?.contains_key(&id.0) {
                return Err(EngineError::UnknownEpisode { id: id.0 });
            }
            let shard = eng.shard_of(id.0);
            store.log_change(shard, |seq| crate::durability::Record::Forget { seq, id: id.0 })?;
            self.snapshot_if_due();
        }
        let space = requests::forget(eng, eng.shard_of(id.0), id.0, deadline)?
            .ok_or(EngineError::UnknownEpisode { id: id.0 })?;
        eng.space(space).release();
        Ok(())
    }

    /// What recovery found and did when this engine was opened with
    /// [`open_in`](super::EngineBuilder::open_in) (`None` for an engine without a directory).
    pub fn recovery_report(&self) -> Option<&RecoveryReport> {
        self.store.as_ref().and_then(|s| s.recovery.get())
    }

    /// Takes a snapshot of a durable engine now and deletes the log segments it covers (see
    /// `src/engine/durable/fold.rs`: the logs are folded into the previous snapshot, so
    /// observe and recall go on meanwhile). Waits for a background snapshot in progress first.
    ///
    /// # Errors
    /// [`EngineError::InvalidInput`] for an engine without a directory;
    /// [`EngineError::Durability`] if the snapshot cannot be written (the previous one stays
    /// current and no segment is deleted).
    pub fn snapshot(&self) -> Result<SnapshotReport, EngineError> {
        let Some(store) = self.store.as_ref() else {
            return Err(EngineError::InvalidInput {
                what: "snapshot needs an engine opened with open_in(dir)".into(),
            });
        };
        store.snapshot(&self.inner, store.limits)
    }

    /// The outcome of the last background snapshot (taken by the `snapshot_every` policy), if
    /// one ran: its report, or its error in words.
    pub fn last_background_snapshot(&self) -> Option<Result<SnapshotReport, String>> {
        let store = self.store.as_ref()?;
        store.wait_snapshot(Duration::ZERO);
        store
            .last_snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Each shard's write-ahead-log counters (records, groups, fsyncs and their latency
    /// histogram); empty for an engine without a directory.
    pub fn wal_stats(&self) -> Vec<crate::durability::WalStats> {
        self.store.as_ref().map_or_else(Vec::new, |s| s.wal_stats())
    }

    /// The stored episode `id`, or `None` if it is not live.
    pub fn get(&self, id: EpisodeId) -> Option<EpisodeRecord> {
        let eng = &*self.inner;
        eng.shard(eng.shard_of(id.0)).get(id.0)
    }

    /// Live episodes, all spaces.
    pub fn len(&self) -> usize {
        self.inner.spaces().iter().map(SpaceInfo::live).sum()
    }

    /// Whether no episode is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live episodes of one space.
    ///
    /// # Errors
    /// [`EngineError::UnknownSpace`].
    pub fn space_len(&self, space: &str) -> Result<usize, EngineError> {
        let s = self.space_id(Some(space))?;
        Ok(self.inner.space(s).live())
    }

    /// A cheap summary.
    pub fn stats(&self) -> EngineStats {
        let eng = &*self.inner;
        let mut st = EngineStats {
            episodes: self.len(),
            shards: eng.shards().len(),
            unindexed: 0,
            segments: 0,
            edges: 0,
            row_bytes: 0,
            index_bytes: 0,
        };
        for sh in eng.shards() {
            st.edges += sh.graph.edge_count() as usize;
            for sp in &sh.spaces {
                st.unindexed += sp.lag();
                let segs = sp.segments();
                st.segments += segs.len();
                st.index_bytes += segs.iter().map(|s| s.index.memory_bytes()).sum::<usize>();
                st.row_bytes += sp.row_bytes(eng.dim());
            }
        }
        st
    }

    /// Waits until every accepted episode is in the index (or `timeout` passes); returns whether
    /// it got there. For tests and benchmarks that want to measure the index, not the buffer.
    pub fn wait_indexed(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            let eng = &*self.inner;
            let mut done = true;
            for (s, sh) in eng.shards().iter().enumerate() {
                for (i, sp) in sh.spaces.iter().enumerate() {
                    if sp.lag() > 0 {
                        done = false;
                        eng.schedule_absorb(s, i as u16);
                    }
                }
            }
            if done {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Switches index absorption off or on (on at open). While off, accepted episodes stay in
    /// the append buffer (recall scans every one of them) until admission control refuses more
    /// ([`AdmissionLimits::max_unindexed`](super::AdmissionLimits::max_unindexed)); use it to
    /// keep a bulk load's index work for later, or to measure the buffer alone. Switching it on
    /// schedules absorption of every buffer at once.
    pub fn set_absorption(&self, on: bool) {
        let eng = &*self.inner;
        eng.set_absorbing(on);
        if on {
            for (s, sh) in eng.shards().iter().enumerate() {
                for i in 0..sh.spaces.len() {
                    eng.schedule_absorb(s, i as u16);
                }
            }
        }
    }

    /// Where each shard's memory (episode rows and index regions) is, page by page
    /// (`move_pages`; at most `pages_per_extent` pages checked per extent, 0 for all).
    pub fn placement(&self, pages_per_extent: usize) -> Vec<ShardPlacement> {
        let page = 4096;
        let sample = if pages_per_extent == 0 {
            PageSample::All
        } else {
            PageSample::AtMost(pages_per_extent)
        };
        self.inner
            .shards()
            .iter()
            .map(|sh| {
                let mut p = ShardPlacement {
                    shard: sh.index,
                    node: sh.node,
                    memory_node: sh.memory_node,
                    pages_present: 0,
                    pages_on_home: 0,
                    per_node: BTreeMap::new(),
                    error: None,
                };
                match sh.graph.arena().placement_report(sample) {
                    Ok(r) => {
                        for (n, c) in &r.per_node {
                            *p.per_node.entry(*n).or_insert(0) += c;
                            p.pages_present += c;
                        }
                        p.pages_on_home += r.per_node.get(&sh.memory_node).copied().unwrap_or(0);
                    }
                    Err(e) => p.error = Some(e.to_string()),
                }
                let want = MemPolicy::Bind(sh.memory_node);
                for (addr, len) in sh.extents() {
                    match placement_of(addr as *const u8, len, page, &want, sample) {
                        Ok(r) => {
                            for (n, c) in &r.per_node {
                                *p.per_node.entry(*n).or_insert(0) += c;
                                p.pages_present += c;
                            }
                            p.pages_on_home += r.per_node.get(&sh.memory_node).copied().unwrap_or(0);
                        }
                        Err(e) => p.error = Some(e.to_string()),
                    }
                }
                p
            })
            .collect()
    }

    /// Everything that makes the running engine weaker than its design (the placement plan's
    /// degradations, workers not pinned, absorption failures), as text.
    pub fn degradations(&self) -> Vec<String> {
        self.inner.degradations()
    }

    /// The name of the distance kernels in use.
    pub fn kernels(&self) -> &'static str {
        self.inner.kernels().name()
    }

    /// A snapshot of every metric (JSON-serialisable). Takes no lock a worker waits for: see
    /// the metrics module docs.
    pub fn metrics_snapshot(&self) -> EngineMetrics {
        let eng = &*self.inner;
        let sub = eng.try_submitter();
        let placement = self.placement(64);
        let shards = eng
            .shards()
            .iter()
            .zip(placement)
            .map(|(sh, pl)| ShardSnapshot {
                shard: sh.index,
                node: sh.node,
                memory_node: sh.memory_node,
                workers: sh.workers,
                queue_depth: Priority::ALL.map(|c| sub.map_or(0, |s| s.depth(sh.node, c))),
                absorbed_total: sh.metrics.absorbed.get(),
                absorb_yields_total: sh.metrics.absorb_yields.get(),
                edges: sh.graph.edge_count() as usize,
                messages: sh.metrics.messages(),
                edges_lost: sh.metrics.edges_lost.get(),
                tasks_off_node: sh.metrics.off_node.get(),
                observe: sh.metrics.observe.snapshot(),
                search: sh.metrics.search.snapshot(),
                search_queued: sh.metrics.search_queued.snapshot(),
                spaces: sh
                    .spaces
                    .iter()
                    .enumerate()
                    .map(|(i, sp)| SpaceShardMetrics {
                        space: eng.spaces()[i].name().to_owned(),
                        episodes: sp.live(),
                        index_lag_episodes: sp.lag(),
                        index_lag_seconds: sp.lag_age().as_secs_f64(),
                        segments: sp.segments().len(),
                        accepted: sh.metrics.accepted[i].get(),
                        rejected: RejectReason::ALL
                            .iter()
                            .map(|&r| (r, sh.metrics.rejected[i][r as usize].get()))
                            .collect(),
                    })
                    .collect(),
                placement_home_fraction: pl.home_fraction(),
            })
            .collect();
        EngineMetrics {
            uptime_s: eng.opened().elapsed().as_secs_f64(),
            kernels: eng.kernels().name().into(),
            shards,
            recall: eng.recall_ops().snapshot(),
            complete: eng.complete_ops().snapshot(),
            recalls_partial: eng.partial_recalls().get(),
            degradations: self.degradations(),
        }
    }

    /// Every metric as Prometheus text (format 0.0.4): `locus_engine_*` families with constant
    /// labels `shard`, `node`, `space`; latencies as histograms with fixed buckets, in seconds.
    pub fn metrics_text(&self) -> String {
        render(&self.metrics_snapshot())
    }

    /// Stops the workers after they finish the work already queued; a durable engine also
    /// waits for a background snapshot in progress (so that the directory can be reopened at
    /// once). The logs are flushed and closed when the engine is dropped.
    pub fn shutdown(self) {
        let _ = self.exec.shutdown();
        if let Some(store) = self.store.as_ref() {
            store.join_snapshot();
        }
    }
}
