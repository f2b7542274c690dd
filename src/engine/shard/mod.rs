//! A shard: the episodes routed to it, by space, with their index segments, append buffer,
//! payloads and associations. Its methods run on the shard's pinned workers.
//!
//! # Visibility: the append buffer and the index
//!
//! Each space of a shard numbers its episodes by *slot* (0, 1, 2, … in acceptance order).
//! Slot `s` lives in segment `s / segment_capacity` as its node `s % segment_capacity`.
//! `len` is the number of accepted slots, `absorbed` the number the index has linked (a
//! prefix); slots `absorbed..len` are the **append buffer**.
//!
//! **One copy of each row.** An episode is accepted by *staging* its row in its segment
//! ([`HnswIndex::stage`]: node id claimed, f32 and int8 rows written, not linked) and pushing its
//! metadata under the space's write lock, then raising `len`. The row is never copied again:
//! the buffer scan, `get`, completion and spreading read it from the segment
//! ([`HnswIndex::row`]), and absorption links the staged node in place
//! ([`HnswIndex::link_staged`]). Rows are written by the shard's workers into the segment's
//! node-bound regions.
//!
//! **Parallel absorption.** Up to `IndexParams::absorbers` absorption tasks per space (by
//! default one per worker of the shard) run at once: each claims a batch of slots from the
//! `claimed` counter, links them (concurrent inserts into one segment are safe; the index
//! links any staged node in any order), and sets each slot's `indexed` flag once its node is
//! searchable. `absorbed` then advances over the contiguous prefix of `indexed` slots (a
//! `fetch_max`, so any absorber may advance it past slots another finished).
//!
//! **Visibility.** A search reads `absorbed` *first*, then searches the segments, then scans
//! every row of `absorbed..len` ([`HnswIndex::scan`]: int8 distances, the best
//! `max(4k, 64)` re-ranked with exact f32): every slot below the `absorbed` it read was linked (and flagged)
//! before the search began, so the index finds it; every slot from it up is scanned; so nothing
//! accepted before the search began is missed. A slot linked meanwhile may be seen twice; hits
//! are deduplicated by id. Segment rollover needs no lock against absorbers: a slot's segment
//! exists before the slot is accepted (it is created by the observer that fills the previous
//! one), and an absorber reads only slots below the `len` it loaded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

mod progress;
mod reads;
mod regions;
mod scope;
mod search;
mod state;

pub(crate) use progress::AbsorbProgress;
pub(crate) use scope::{Edge, Scope, current_shard};
pub(crate) use search::{ShardHits, top_k};

use crate::alloc::{ArenaOptions, MemPolicy, NodeArena};
use crate::engine::config::{AssociationParams, IndexParams};
use crate::engine::error::EngineError;
use crate::engine::log::{LogRecord, ShardLog};
use crate::engine::metrics::ShardMetrics;
use crate::engine::route::shard_of;
use crate::engine::types::{EpisodeId, EpisodeRecord, Link, LinkDirection};
use crate::index::Kernels;
use crate::index::{HnswConfig, HnswIndex, IndexError, Metric};
use crate::spread::{AssocGraph, GraphConfig, ScratchPool, SpreadError, SpreadScratch};
use regions::TrackedRegions;

/// What a shard is given when it is made and never asks the engine for again: the engine's
/// shape (shard count, dimension, kernels), its index and association parameters, the names of
/// the declared spaces, and whether the engine is durable.
#[derive(Debug, Clone)]
pub(crate) struct ShardSettings {
    /// Shards of the engine (to tell this shard's edges from the others').
    pub(crate) shards: usize,
    /// The embedding dimension.
    pub(crate) dim: usize,
    /// The distance kernels of the index segments.
    pub(crate) kernels: Kernels,
    /// Index parameters.
    pub(crate) index: IndexParams,
    /// Association parameters.
    pub(crate) assoc: AssociationParams,
    /// Names of the declared spaces, by space id.
    pub(crate) space_names: Vec<String>,
    /// Whether absorbers keep each episode's `similar` associations for the snapshot.
    pub(crate) keep_similar: bool,
}

/// What a shard's task produced for the handler to send: edges whose source lives on another
/// shard (`(destination shard, edge)`), and the associations its own graph refused (for the
/// engine's degradations). Edges whose source lives on this shard are written at once.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    /// Edges for other shards, in the order they were made.
    pub(crate) edges: Vec<(usize, Edge)>,
    /// Refusals of this shard's graph.
    pub(crate) lost: Vec<SpreadError>,
}

/// An episode that passed validation, ready to store.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) id: u64,
    pub(crate) space: u16,
    /// Unit-normalised.
    pub(crate) embedding: Vec<f32>,
    pub(crate) payload: Vec<u8>,
    pub(crate) timestamp: u64,
    pub(crate) links: Vec<Link>,
    pub(crate) stream: Option<String>,
}

/// What a shard keeps per episode besides its row.
#[derive(Debug)]
pub(crate) struct Meta {
    pub(crate) id: u64,
    pub(crate) timestamp: u64,
    pub(crate) accepted: Instant,
    pub(crate) stream: Option<Arc<str>>,
    pub(crate) payload: Box<[u8]>,
    pub(crate) forgotten: bool,
    /// Set (under the space's read lock) once the episode's node is linked and searchable.
    pub(crate) indexed: AtomicBool,
    /// The `similar` associations its absorber made (durable engines only: a snapshot saves
    /// them with the index, which they are derived from; see `src/engine/durable/index_files.rs`).
    pub(crate) similar: OnceLock<Box<[(u64, f32)]>>,
}

/// Metadata of one space on one shard, by slot (the rows are in the segments).
#[derive(Debug)]
pub(crate) struct SpaceData {
    pub(crate) meta: Vec<Meta>,
}

/// One fixed-capacity HNSW index holding slots `base..base + capacity`. Only the newest segment
/// takes new rows; its staged nodes are linked by concurrent absorbers while searches run
/// (the index links a node bottom up and never moves a kept link, so a search never misses a
/// node linked before it began (the index links a new node bottom up and
///
/// `tests/index_concurrent_search.rs`, `tests/engine_concurrency.rs`).
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) index: HnswIndex,
    pub(crate) base: usize,
}

/// One space on one shard.
#[derive(Debug)]
pub(crate) struct SpaceShard {
    pub(crate) data: RwLock<SpaceData>,
    pub(crate) segments: RwLock<Vec<Arc<Segment>>>,
    /// Accepted slots.
    pub(crate) len: AtomicUsize,
    /// Slots claimed by absorbers, slots linked (`absorbed`), absorbers at work.
    pub(crate) progress: AbsorbProgress,
    /// Observations submitted to this shard and space and not yet stored or refused (the
    /// index-lag admission counter: see [`admit_pending`](Self::admit_pending)).
    pending: AtomicUsize,
    /// Slots forgotten (so live = `len - forgotten` without a scan).
    pub(crate) forgotten: AtomicUsize,
}

impl SpaceShard {
    fn new() -> Self {
        Self {
            data: RwLock::new(SpaceData { meta: Vec::new() }),
            segments: RwLock::new(Vec::new()),
            len: AtomicUsize::new(0),
            progress: AbsorbProgress::new(),
            pending: AtomicUsize::new(0),
            forgotten: AtomicUsize::new(0),
        }
    }

    /// See [`AbsorbProgress::try_add_absorber`].
    pub(crate) fn try_add_absorber(&self, max: usize) -> bool {
        self.progress.try_add_absorber(max)
    }

    /// See [`AbsorbProgress::absorber_done`].
    pub(crate) fn absorber_done(&self) {
        self.progress.absorber_done();
    }

    /// Whether accepted slots wait for an absorber (see [`AbsorbProgress::has_unclaimed`]:
    /// `len` is stored SeqCst by `observe`).
    pub(crate) fn has_unclaimed(&self) -> bool {
        self.progress.has_unclaimed(self.len.load(Ordering::SeqCst))
    }

    /// Slots the index has linked (a prefix).
    pub(crate) fn absorbed(&self) -> usize {
        self.progress.absorbed()
    }

    /// Bytes of f32 rows of the accepted episodes (each held once, in its segment).
    pub(crate) fn row_bytes(&self, dim: usize) -> usize {
        self.len.load(Ordering::Acquire) * dim * 4
    }

    /// Live episodes of this space on this shard.
    pub(crate) fn live(&self) -> usize {
        self.len
            .load(Ordering::Acquire)
            .saturating_sub(self.forgotten.load(Ordering::Acquire))
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, SpaceData> {
        self.data.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, SpaceData> {
        self.data.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn segments(&self) -> Vec<Arc<Segment>> {
        self.segments.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The row of an accepted `slot`, from `segs` (a copy of the segment list taken after
    /// `slot` was seen accepted, so its segment is in it).
    pub(crate) fn row(segs: &[Arc<Segment>], slot: usize) -> Option<&[f32]> {
        let cap = segs.first()?.index.capacity();
        let seg = segs.get(slot / cap)?;
        seg.index.row((slot - seg.base) as u32).ok()
    }

    /// Counts one observation admitted for this space and shard (not yet stored or refused);
    /// returns its index lag before it (accepted but not absorbed, plus in flight).
    pub(crate) fn admit_pending(&self) -> usize {
        self.pending.fetch_add(1, Ordering::AcqRel)
            + self.len.load(Ordering::Acquire).saturating_sub(self.absorbed())
    }

    /// Ends one [`admit_pending`](Self::admit_pending): the observation was stored, refused,
    /// or never handed to the shard.
    pub(crate) fn pending_done(&self) {
        let before = self.pending.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "an observation left the pending count twice");
    }

    /// Episodes accepted (or in flight) that the index has not absorbed.
    pub(crate) fn lag(&self) -> usize {
        (self.len.load(Ordering::Acquire) + self.pending.load(Ordering::Acquire))
            .saturating_sub(self.absorbed())
    }

    /// Age of the oldest episode the index has not absorbed.
    pub(crate) fn lag_age(&self) -> Duration {
        let a = self.absorbed();
        let d = self.read();
        d.meta.get(a).map(|m| m.accepted.elapsed()).unwrap_or_default()
    }
}

/// Similarity of unit vectors from the index's inner-product distance.
fn similarity(distance: f32) -> f32 {
    1.0 - distance
}

/// A shard. See the module docs.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) node: u32,
    pub(crate) memory_node: u32,
    pub(crate) workers: usize,
    /// Fixed at creation.
    pub(crate) settings: Arc<ShardSettings>,
    pub(crate) spaces: Vec<SpaceShard>,
    /// Episode id → (space, slot).
    pub(crate) ids: RwLock<HashMap<u64, (u16, u32)>>,
    /// The association graph, in an arena bound to `memory_node`.
    pub(crate) graph: AssocGraph,
    /// Spread scratches for this shard's graph (one per concurrent hop, reused).
    pub(crate) scratches: ScratchPool,
    pub(crate) log: Box<dyn ShardLog>,
    pub(crate) regions: TrackedRegions,
    pub(crate) metrics: ShardMetrics,
    /// Moving average of the time to absorb one episode (ns), for `retry_after`.
    pub(crate) absorb_ns: AtomicU64,
}

impl Shard {
    /// Shard `index` of `settings.shards`, on `(node, memory_node, workers)`, whose
    /// association graph is sized by `settings.assoc` and bound to `memory_node`.
    ///
    /// # Errors
    /// [`EngineError::Spread`] if the graph's arena cannot be reserved.
    pub(crate) fn new(
        index: usize,
        (node, memory_node, workers): (u32, u32, usize),
        settings: Arc<ShardSettings>,
        log: Box<dyn ShardLog>,
    ) -> Result<Self, EngineError> {
        assert!(index < settings.shards, "shard {index} of {}", settings.shards);
        let spaces = settings.space_names.len();
        let assoc = &settings.assoc;
        let max = assoc.max_episodes_per_shard;
        let spread_err = |source: SpreadError| EngineError::Spread {
            shard: Some(index),
            source,
        };
        let bytes = GraphConfig::arena_bytes_for(max, max.saturating_mul(assoc.edges_per_episode))
            .saturating_add((workers + 2).saturating_mul(SpreadScratch::bytes_for(max)));
        let arena = NodeArena::new(MemPolicy::Bind(memory_node), bytes, &ArenaOptions::default())
            .map_err(|e| spread_err(SpreadError::Arena(e)))?;
        let graph = AssocGraph::new(Arc::new(arena), GraphConfig::with_max_nodes(max)).map_err(spread_err)?;
        Ok(Self {
            index,
            node,
            memory_node,
            workers,
            spaces: (0..spaces).map(|_| SpaceShard::new()).collect(),
            ids: RwLock::new(HashMap::new()),
            graph,
            scratches: ScratchPool::new(),
            log,
            regions: TrackedRegions::bind(memory_node),
            metrics: ShardMetrics::new(spaces),
            absorb_ns: AtomicU64::new(0),
            settings,
        })
    }

    pub(crate) fn ids(&self) -> RwLockReadGuard<'_, HashMap<u64, (u16, u32)>> {
        self.ids.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Where `id` lives on this shard, if it is live.
    pub(crate) fn locate(&self, id: u64) -> Option<(u16, u32)> {
        let (space, slot) = *self.ids().get(&id)?;
        let d = self.spaces[space as usize].read();
        match d.meta.get(slot as usize) {
            Some(m) if !m.forgotten => Some((space, slot)),
            _ => None,
        }
    }

    /// Stores `source → target` at `weight` (the graph adds the weight to an existing edge):
    /// written here at once when `source` lives on this shard, else added to `out` for the
    /// handler to send. A refusal of this shard's graph is added to `out.lost`.
    pub(crate) fn connect(&self, source: u64, target: u64, weight: f32, out: &mut Outgoing) {
        let dest = shard_of(source, self.settings.shards);
        if dest == self.index {
            if let Err(e) = self.write_edge(source, target, weight) {
                out.lost.push(e);
            }
        } else {
            out.edges.push((
                dest,
                Edge {
                    source,
                    target,
                    weight,
                },
            ));
        }
    }

    /// `a ↔ b`: both directions, as [`connect`](Self::connect) stores them.
    pub(crate) fn connect_both(&self, a: u64, b: u64, weight: f32, out: &mut Outgoing) {
        self.connect(a, b, weight, out);
        self.connect(b, a, weight, out);
    }

    /// The weight of stream associations (0: none).
    pub(crate) fn stream_weight(&self) -> f32 {
        self.settings.assoc.stream_weight
    }

    /// Stores an episode (on a worker of this shard). The duplicate check and the insert happen
    /// under the id map's write lock, so two observations of one id cannot both succeed.
    ///
    /// Its links are stored as [`connect`](Self::connect) stores them (edges for other shards
    /// added to `out`). Returns its id, and its `(space, stream)` when the engine makes stream
    /// associations: the stream's last episode is engine-wide, so the handler looks it up and
    /// connects the two.
    pub(crate) fn observe(
        &self,
        ep: Prepared,
        out: &mut Outgoing,
    ) -> Result<(EpisodeId, Option<(u16, String)>), EngineError> {
        let sp = &self.spaces[ep.space as usize];
        assert_eq!(ep.embedding.len(), self.settings.dim, "validated by admission");
        let mut ids = self.ids.write().unwrap_or_else(|p| p.into_inner());
        if ids.contains_key(&ep.id) {
            return Err(EngineError::DuplicateId { id: ep.id });
        }
        // The segment of the next slot, opened before anything changes (only observers, all
        // holding `ids`, raise `len`, so the next slot is this one).
        let next = sp.len.load(Ordering::Acquire);
        let seg = self.segment_for(sp, next)?;
        match self.graph.add_node(ep.id) {
            Ok(_) => {}
            Err(SpreadError::GraphFull { .. }) => {
                return Err(EngineError::ShardFull {
                    shard: self.index,
                    capacity: self.graph.capacity(),
                });
            }
            Err(SpreadError::Forgotten { .. }) => return Err(EngineError::DuplicateId { id: ep.id }),
            Err(source) => {
                return Err(EngineError::Spread {
                    shard: Some(self.index),
                    source,
                });
            }
        }
        let slot = {
            let mut d = sp.write();
            self.log.append(&LogRecord {
                id: EpisodeId(ep.id),
                space: &self.settings.space_names[ep.space as usize],
                embedding: &ep.embedding,
                payload: &ep.payload,
                timestamp: ep.timestamp,
                stream: ep.stream.as_deref(),
                links: &ep.links,
            })?;
            let slot = d.meta.len();
            // Cannot fail: validated by the facade, and `segment_for` left room for `slot`. (The
            // log record is added first: a refused log stores nothing, and staging claims the
            // segment's next node, which must stay in step with `meta`.)
            let node = seg
                .index
                .stage(&ep.embedding)
                .map_err(|source| self.index_error(source))?;
            debug_assert_eq!((slot, node as usize), (next, slot - seg.base));
            d.meta.push(Meta {
                id: ep.id,
                timestamp: ep.timestamp,
                accepted: Instant::now(),
                stream: ep.stream.as_deref().map(Arc::from),
                payload: ep.payload.into_boxed_slice(),
                forgotten: false,
                indexed: AtomicBool::new(false),
                similar: OnceLock::new(),
            });
            sp.len.store(slot + 1, Ordering::SeqCst);
            slot
        };
        // Slots are bounded by the quota check and u32 ids: a space holds < 2^32 episodes per shard.
        ids.insert(ep.id, (ep.space, u32::try_from(slot).unwrap_or(u32::MAX)));
        drop(ids);
        for link in &ep.links {
            let (a, b) = (ep.id, link.target);
            match link.direction {
                LinkDirection::Both => self.connect_both(a, b, link.weight, out),
                LinkDirection::Out => self.connect(a, b, link.weight, out),
                LinkDirection::In => self.connect(b, a, link.weight, out),
            }
        }
        let stream = ep
            .stream
            .filter(|_| self.stream_weight() > 0.0)
            .map(|s| (ep.space, s));
        Ok((EpisodeId(ep.id), stream))
    }

    /// How many absorption tasks may work on one space of this shard at once.
    pub(crate) fn max_absorbers(&self) -> usize {
        match self.settings.index.absorbers {
            0 => self.workers.max(1),
            n => n,
        }
    }

    /// [`absorb_until`](Self::absorb_until) that never stops early, run as if by one of this
    /// shard's workers, for tests on a thread of their own (an engine of one shard: every edge
    /// is this shard's).
    #[cfg(test)]
    pub(crate) fn absorb(&self, space: u16) -> Result<bool, EngineError> {
        self.absorb_as_worker(space, || false)
    }

    /// [`absorb_until`](Self::absorb_until) run as if by one of this shard's workers, for tests
    /// of a one-shard engine.
    #[cfg(test)]
    pub(crate) fn absorb_as_worker(
        &self,
        space: u16,
        yield_now: impl Fn() -> bool,
    ) -> Result<bool, EngineError> {
        let _scope = Scope::enter(self.index);
        let mut out = Outgoing::default();
        let more = self.absorb_until(space, yield_now, &mut out);
        assert!(out.edges.is_empty(), "a one-shard engine sends no edges");
        more
    }

    /// Links one batch (`absorb_batch` slots) of the append buffer of `space` into the index
    /// (the caller counted itself in `absorbers`); returns whether unclaimed slots remain.
    /// Several absorbers run at once: see the module docs. Stops early, after at least one
    /// insert, as soon as `yield_now` says so (asked between inserts; counted in the shard's
    /// `absorb_yields`). Slots are claimed one at a time, so stopping leaves no claimed slot
    /// unlinked. The `similar` associations are stored as [`connect`](Self::connect) stores
    /// them (edges for other shards added to `out`, also when an error ends the batch).
    pub(crate) fn absorb_until(
        &self,
        space: u16,
        yield_now: impl Fn() -> bool,
        out: &mut Outgoing,
    ) -> Result<bool, EngineError> {
        let sp = &self.spaces[space as usize];
        // Held while claiming and linking: a snapshot pauses absorption to save the index.
        let Some(_running) = sp.progress.enter() else {
            return Ok(false);
        };
        let t = sp.len.load(Ordering::SeqCst);
        let batch = self.settings.index.absorb_batch;
        // Taken after `len` was loaded: holds the segment of every slot below `t`.
        let segs = sp.segments();
        let assoc = &self.settings.assoc;
        let started = Instant::now();
        let mut linked = 0usize;
        while linked < batch {
            if linked > 0 && yield_now() {
                self.metrics.absorb_yields.inc();
                break;
            }
            let Some(claim) = sp.progress.claim(t, 1) else {
                break;
            };
            let slot = claim.start;
            linked += 1;
            let seg = Self::segment_of(&segs, slot)
                .ok_or_else(|| self.index_error(IndexError::UnknownId { id: slot as u32 }))?;
            let node = (slot - seg.base) as u32;
            let near = seg
                .index
                .link_staged(node, assoc.similar)
                .map_err(|source| self.index_error(source))?;
            let (me, forgotten, similar) = {
                let d = sp.read();
                let m = &d.meta[slot];
                // Under the read lock: `forget` sets `forgotten` and reads this flag under the
                // write lock, so exactly one of the two sees the other and deletes the node.
                m.indexed.store(true, Ordering::SeqCst);
                let similar: Vec<(u64, f32)> = near
                    .iter()
                    .map(|n| (seg.base + n.id as usize, similarity(n.distance)))
                    .filter(|&(_, sim)| sim >= assoc.min_similarity)
                    .filter_map(|(s, sim)| d.meta.get(s).filter(|m| !m.forgotten).map(|m| (m.id, sim)))
                    .collect();
                if self.settings.keep_similar {
                    let _ = m.similar.set(similar.clone().into_boxed_slice());
                }
                (m.id, m.forgotten, similar)
            };
            if forgotten {
                let _ = seg.index.delete(node);
            }
            // The `similar` associations come from the insertion walk itself: no extra search.
            for (other, sim) in similar {
                self.connect_both(me, other, sim, out);
            }
        }
        if linked == 0 {
            return Ok(false);
        }
        self.advance_absorbed(sp);
        let per = started.elapsed().as_nanos() as u64 / linked as u64;
        let old = self.absorb_ns.load(Ordering::Relaxed);
        self.absorb_ns.store(
            if old == 0 { per } else { (old * 7 + per) / 8 },
            Ordering::Relaxed,
        );
        self.metrics.absorbed.add(linked as u64);
        Ok(sp.has_unclaimed())
    }

    /// Raises `absorbed` over the slots linked since (a contiguous prefix of `indexed` flags;
    /// `fetch_max`, so concurrent absorbers never lower it).
    fn advance_absorbed(&self, sp: &SpaceShard) {
        let d = sp.read();
        sp.progress
            .advance(|slot| d.meta.get(slot).is_some_and(|m| m.indexed.load(Ordering::SeqCst)));
    }

    /// The segment holding `slot`, from a segment list that includes it.
    fn segment_of(segs: &[Arc<Segment>], slot: usize) -> Option<&Arc<Segment>> {
        let cap = segs.first()?.index.capacity();
        segs.get(slot / cap)
    }

    fn index_error(&self, source: IndexError) -> EngineError {
        EngineError::Index {
            shard: self.index,
            source,
        }
    }

    /// The segment that will hold the next slot, `slot`: the newest, or a new one when it is
    /// full (every segment holds `segment_capacity` slots, so segment `i` starts at slot
    /// `i × segment_capacity`). Called by observers only, under the shard's id lock.
    fn segment_for(&self, sp: &SpaceShard, slot: usize) -> Result<Arc<Segment>, EngineError> {
        if let Some(last) = sp.segments.read().unwrap_or_else(|p| p.into_inner()).last()
            && slot < last.base + last.index.capacity()
        {
            return Ok(last.clone());
        }
        let ix = &self.settings.index;
        assert_eq!(
            slot % ix.segment_capacity,
            0,
            "a new segment starts at a multiple of its capacity"
        );
        let mut cfg = HnswConfig::new(self.settings.dim, ix.segment_capacity, Metric::InnerProduct);
        cfg.m = ix.m;
        cfg.ef_construction = ix.ef_construction;
        cfg.quantization = ix.quantization;
        cfg.seed = 42 + slot as u64;
        let index = HnswIndex::with_regions(cfg, self.settings.kernels, &self.regions).map_err(|source| {
            EngineError::Index {
                shard: self.index,
                source,
            }
        })?;
        let seg = Arc::new(Segment { index, base: slot });
        sp.segments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(seg.clone());
        Ok(seg)
    }

    /// The stored episode `id`.
    pub(crate) fn get(&self, id: u64) -> Option<EpisodeRecord> {
        let (space, slot) = self.locate(id)?;
        let sp = &self.spaces[space as usize];
        let links = self
            .graph
            .out_edges(id)
            .unwrap_or_default()
            .into_iter()
            .map(|(t, w)| (EpisodeId(t), w))
            .collect();
        let d = sp.read();
        let segs = sp.segments();
        let m = &d.meta[slot as usize];
        Some(EpisodeRecord {
            id: EpisodeId(id),
            embedding: SpaceShard::row(&segs, slot as usize)?.to_vec(),
            payload: m.payload.to_vec(),
            timestamp: m.timestamp,
            space: self.settings.space_names[space as usize].clone(),
            stream: m.stream.as_deref().map(str::to_owned),
            links,
            indexed: m.indexed.load(Ordering::Acquire),
        })
    }

    /// Forgets `id`: it is never returned again; its index node is deleted once absorbed.
    /// Returns its space if it was live.
    pub(crate) fn forget(&self, id: u64) -> Option<u16> {
        let (space, slot) = self.locate(id)?;
        let sp = &self.spaces[space as usize];
        let indexed = {
            let mut d = sp.write();
            let m = &mut d.meta[slot as usize];
            if m.forgotten {
                return None;
            }
            m.forgotten = true;
            sp.forgotten.fetch_add(1, Ordering::AcqRel);
            m.indexed.load(Ordering::SeqCst)
        };
        // Tombstoned: it no longer propagates nor appears in a spread (already checked live).
        let _ = self.graph.forget(id);
        let slot = slot as usize;
        // If the node was not linked yet, its absorber sees `forgotten` and deletes it (see
        // `absorb`: the flags are read and written under the space's lock).
        if indexed {
            for seg in sp.segments() {
                if (seg.base..seg.base + seg.index.capacity()).contains(&slot) {
                    let _ = seg.index.delete((slot - seg.base) as u32);
                }
            }
        }
        Some(space)
    }

    /// `(address, bytes)` of the shard's memory: the index regions (rows included).
    pub(crate) fn extents(&self) -> Vec<(usize, usize)> {
        self.regions.extents()
    }
}
