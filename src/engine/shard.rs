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

use super::config::AssociationParams;
use super::error::EngineError;
use super::facade::Inner;
use super::log::{LogRecord, ShardLog};
use super::metrics::ShardMetrics;
use super::progress::AbsorbProgress;
use super::regions::TrackedRegions;
use super::types::{EpisodeId, EpisodeRecord, Link, LinkDirection};
use crate::alloc::{ArenaOptions, MemPolicy, NodeArena};
use crate::index::{HnswConfig, HnswIndex, IndexError, Metric};
use crate::spread::{AssocGraph, GraphConfig, ScratchPool, SpreadError, SpreadScratch};

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
    /// Observations submitted to this shard and space and not yet stored or refused.
    pub(crate) pending: AtomicUsize,
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

/// What a shard's search found.
#[derive(Debug, Default)]
pub(crate) struct ShardHits {
    /// `(episode id, similarity)`, best first, deduplicated.
    pub(crate) hits: Vec<(u64, f32)>,
    pub(crate) scanned: usize,
    pub(crate) segments: usize,
}

/// A shard. See the module docs.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) node: u32,
    pub(crate) memory_node: u32,
    pub(crate) workers: usize,
    /// The embedding dimension.
    pub(crate) dim: usize,
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

/// Buffer rows kept per wanted hit by the int8 pass of the append-buffer scan, for the exact
/// f32 re-rank (at least [`BUFFER_SHORTLIST_MIN`]). A guess: int8 (one scale per vector)
/// rarely moves a true top-k row this far down.
const BUFFER_SHORTLIST_PER_HIT: usize = 4;

/// The smallest shortlist of the append-buffer scan.
const BUFFER_SHORTLIST_MIN: usize = 64;

/// Similarity of unit vectors from the index's inner-product distance.
fn similarity(distance: f32) -> f32 {
    1.0 - distance
}

impl Shard {
    /// A shard whose association graph is sized by `assoc` and bound to `memory_node`.
    ///
    /// # Errors
    /// [`EngineError::Spread`] if the graph's arena cannot be reserved.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: usize,
        node: u32,
        memory_node: u32,
        workers: usize,
        spaces: usize,
        dim: usize,
        assoc: &AssociationParams,
        log: Box<dyn ShardLog>,
    ) -> Result<Self, EngineError> {
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
            dim,
            spaces: (0..spaces).map(|_| SpaceShard::new()).collect(),
            ids: RwLock::new(HashMap::new()),
            graph,
            scratches: ScratchPool::new(),
            log,
            regions: TrackedRegions::bind(memory_node),
            metrics: ShardMetrics::new(spaces),
            absorb_ns: AtomicU64::new(0),
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

    /// Stores an episode (on a worker of this shard). The duplicate check and the insert happen
    /// under the id map's write lock, so two observations of one id cannot both succeed.
    pub(crate) fn observe(&self, eng: &Inner, ep: Prepared) -> Result<EpisodeId, EngineError> {
        let sp = &self.spaces[ep.space as usize];
        debug_assert_eq!(ep.embedding.len(), self.dim);
        let mut ids = self.ids.write().unwrap_or_else(|p| p.into_inner());
        if ids.contains_key(&ep.id) {
            return Err(EngineError::DuplicateId { id: ep.id });
        }
        // The segment of the next slot, opened before anything changes (only observers, all
        // holding `ids`, raise `len`, so the next slot is this one).
        let next = sp.len.load(Ordering::Acquire);
        let seg = self.segment_for(eng, sp, next)?;
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
                space: &eng.spaces[ep.space as usize].name,
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
                LinkDirection::Both => eng.associate_auto(a, b, link.weight),
                LinkDirection::Out => eng.associate_one(a, b, link.weight),
                LinkDirection::In => eng.associate_one(b, a, link.weight),
            }
        }
        if let Some(stream) = ep.stream
            && eng.config.associations.stream_weight > 0.0
        {
            let prev = eng
                .streams
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((ep.space, stream), ep.id);
            if let Some(prev) = prev {
                eng.associate_auto(ep.id, prev, eng.config.associations.stream_weight);
            }
        }
        Ok(EpisodeId(ep.id))
    }

    /// How many absorption tasks may work on one space of this shard at once.
    pub(crate) fn max_absorbers(&self, eng: &Inner) -> usize {
        match eng.config.index.absorbers {
            0 => self.workers.max(1),
            n => n,
        }
    }

    /// [`absorb_until`](Self::absorb_until) that never stops early (for tests).
    #[cfg(test)]
    pub(crate) fn absorb(&self, eng: &Inner, space: u16) -> Result<bool, EngineError> {
        self.absorb_until(eng, space, || false)
    }

    /// Links one batch (`absorb_batch` slots) of the append buffer of `space` into the index
    /// (the caller counted itself in `absorbers`); returns whether unclaimed slots remain.
    /// Several absorbers run at once: see the module docs. Stops early, after at least one
    /// insert, as soon as `yield_now` says so (asked between inserts; counted in the shard's
    /// `absorb_yields`). Slots are claimed one at a time, so stopping leaves no claimed slot
    /// unlinked.
    pub(crate) fn absorb_until(
        &self,
        eng: &Inner,
        space: u16,
        yield_now: impl Fn() -> bool,
    ) -> Result<bool, EngineError> {
        let sp = &self.spaces[space as usize];
        // Held while claiming and linking: a snapshot pauses absorption to save the index.
        let Some(_running) = sp.progress.enter() else {
            return Ok(false);
        };
        let t = sp.len.load(Ordering::SeqCst);
        let batch = eng.config.index.absorb_batch;
        // Taken after `len` was loaded: holds the segment of every slot below `t`.
        let segs = sp.segments();
        let assoc = &eng.config.associations;
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
                if eng.durable.is_some() {
                    let _ = m.similar.set(similar.clone().into_boxed_slice());
                }
                (m.id, m.forgotten, similar)
            };
            if forgotten {
                let _ = seg.index.delete(node);
            }
            // The `similar` associations come from the insertion walk itself: no extra search.
            for (other, sim) in similar {
                eng.associate_auto(me, other, sim);
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
    fn segment_for(&self, eng: &Inner, sp: &SpaceShard, slot: usize) -> Result<Arc<Segment>, EngineError> {
        if let Some(last) = sp.segments.read().unwrap_or_else(|p| p.into_inner()).last()
            && slot < last.base + last.index.capacity()
        {
            return Ok(last.clone());
        }
        debug_assert_eq!(slot % eng.config.index.segment_capacity, 0);
        let ix = &eng.config.index;
        let mut cfg = HnswConfig::new(eng.dim, ix.segment_capacity, Metric::InnerProduct);
        cfg.m = ix.m;
        cfg.ef_construction = ix.ef_construction;
        cfg.quantization = ix.quantization;
        cfg.seed = 42 + slot as u64;
        let index = HnswIndex::with_regions(cfg, eng.kernels, &self.regions).map_err(|source| {
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

    /// Top `k` `(id, similarity)` of the segments only (live episodes), each segment walked
    /// with `ef` (at least `k`).
    fn search_segments(
        &self,
        sp: &SpaceShard,
        q: &[f32],
        k: usize,
        ef: usize,
        count: &mut usize,
    ) -> Vec<(u64, f32)> {
        let segs = sp.segments();
        *count = 0;
        let mut found = Vec::new();
        for seg in &segs {
            // Nothing linked yet (only staged rows, which the buffer scan covers): not searched.
            if seg.index.is_empty() {
                continue;
            }
            *count += 1;
            let res = seg.index.search(q, k, ef.max(k));
            if let Ok(ns) = res {
                found.extend(
                    ns.iter()
                        .map(|n| (seg.base + n.id as usize, similarity(n.distance))),
                );
            }
        }
        let d = sp.read();
        found
            .into_iter()
            .filter_map(|(slot, s)| d.meta.get(slot).filter(|m| !m.forgotten).map(|m| (m.id, s)))
            .collect()
    }

    /// The `k` live episodes of `space` most similar to `q` (unit): segments, then the append
    /// buffer scanned row by row (see the module docs for why nothing is missed).
    pub(crate) fn search(&self, eng: &Inner, space: u16, q: &[f32], k: usize) -> ShardHits {
        let sp = &self.spaces[space as usize];
        let a = sp.absorbed();
        let mut segments = 0;
        let mut hits = self.search_segments(sp, q, k, eng.config.index.ef_search, &mut segments);
        let d = sp.read();
        let segs = sp.segments();
        let t = d.meta.len();
        let shortlist = (BUFFER_SHORTLIST_PER_HIT * k).max(BUFFER_SHORTLIST_MIN);
        for seg in &segs {
            let (lo, hi) = (a.max(seg.base), t.min(seg.base + seg.index.capacity()));
            if lo >= hi {
                continue;
            }
            let local = (lo - seg.base) as u32..(hi - seg.base) as u32;
            let keep = |node: u32| !d.meta[seg.base + node as usize].forgotten;
            if let Ok(found) = seg.index.scan(q, local, k, shortlist, keep) {
                hits.extend(
                    found
                        .iter()
                        .map(|n| (d.meta[seg.base + n.id as usize].id, similarity(n.distance))),
                );
            }
        }
        drop(d);
        ShardHits {
            hits: top_k(hits, k),
            scanned: t.saturating_sub(a),
            segments,
        }
    }

    /// Cosine similarity on the dimensions where `mask` is true, for every live episode of
    /// `space` among `ids` (unknown ids are skipped). `q` is the masked query (zeros elsewhere).
    pub(crate) fn masked_similarity(
        &self,
        space: u16,
        q: &[f32],
        mask: &[bool],
        ids: &[u64],
    ) -> Vec<(u64, f32)> {
        let qn: f32 = q
            .iter()
            .zip(mask)
            .filter(|p| *p.1)
            .map(|p| p.0 * p.0)
            .sum::<f32>()
            .sqrt();
        let map = self.ids();
        let sp = &self.spaces[space as usize];
        let d = sp.read();
        let segs = sp.segments();
        ids.iter()
            .filter_map(|id| {
                let &(s, slot) = map.get(id)?;
                let m = d.meta.get(slot as usize).filter(|m| s == space && !m.forgotten)?;
                let row = SpaceShard::row(&segs, slot as usize)?;
                let (mut dot, mut nn) = (0.0f32, 0.0f32);
                for ((x, y), &on) in q.iter().zip(row).zip(mask) {
                    if on {
                        dot += x * y;
                        nn += y * y;
                    }
                }
                let den = qn * nn.sqrt();
                Some((m.id, if den > 0.0 { dot / den } else { 0.0 }))
            })
            .collect()
    }

    /// Rows of live episodes of `space` among `ids`.
    pub(crate) fn rows(&self, space: u16, ids: &[u64]) -> Vec<(u64, Vec<f32>)> {
        let map = self.ids();
        let sp = &self.spaces[space as usize];
        let d = sp.read();
        let segs = sp.segments();
        ids.iter()
            .filter_map(|id| {
                let &(s, slot) = map.get(id)?;
                d.meta.get(slot as usize).filter(|m| s == space && !m.forgotten)?;
                Some((*id, SpaceShard::row(&segs, slot as usize)?.to_vec()))
            })
            .collect()
    }

    /// The stored episode `id`.
    pub(crate) fn get(&self, eng: &Inner, id: u64) -> Option<EpisodeRecord> {
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
            space: eng.spaces[space as usize].name.clone(),
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

/// Best `k` by similarity (ties by id), one entry per id.
pub(crate) fn top_k(mut hits: Vec<(u64, f32)>, k: usize) -> Vec<(u64, f32)> {
    hits.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    let mut seen = std::collections::HashSet::new();
    hits.retain(|h| seen.insert(h.0));
    hits.truncate(k);
    hits
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;
    use std::sync::atomic::AtomicBool;

    use crate::engine::{AdmissionLimits, AssociationParams, Cue, Engine, Episode, IndexParams, ShardCount};

    use crate::rng::test_vector as vector;

    /// Two absorbers link one space's buffer at once (the engine's own absorption is off, so
    /// these two threads are the only ones), across segment rollovers, while a third thread
    /// observes and checks read-your-writes; afterwards every episode is indexed and found.
    #[test]
    fn two_absorbers_at_once_lose_nothing_and_recall_misses_nothing() {
        let dim = 16;
        let engine = Engine::builder()
            .dimension(dim)
            .shards(ShardCount::Exactly(1))
            .index(IndexParams {
                segment_capacity: 256,
                absorb_batch: 4,
                ef_search: 128,
                ..IndexParams::default()
            })
            .associations(AssociationParams {
                similar: 2,
                min_similarity: -1.0,
                max_episodes_per_shard: 1 << 12,
                ..AssociationParams::default()
            })
            .pin_workers(false)
            .open()
            .unwrap();
        engine.set_absorption(false);
        let (before, during) = (600u64, 400u64);
        for i in 0..before {
            engine.observe(Episode::new(vector(i, dim)).with_id(i)).unwrap();
        }
        let eng = &*engine.inner;
        let sh = &eng.shards[0];
        let start = Barrier::new(3);
        let observing = AtomicBool::new(true);
        let batches: Vec<usize> = std::thread::scope(|s| {
            let absorbers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        let mut n = 0;
                        loop {
                            let more = sh.absorb(eng, 0).unwrap();
                            n += 1;
                            if !more
                                && !observing.load(super::Ordering::Acquire)
                                && !sh.spaces[0].has_unclaimed()
                            {
                                return n;
                            }
                        }
                    })
                })
                .collect();
            start.wait();
            for i in before..before + during {
                let v = vector(i, dim);
                let id = engine.observe(Episode::new(v.clone()).with_id(i)).unwrap();
                let hits = engine.recall(&Cue::new(v, 3)).unwrap().hits;
                assert!(
                    hits.iter().any(|h| h.id == id),
                    "{id} not recalled after observe returned"
                );
            }
            observing.store(false, super::Ordering::Release);
            absorbers.into_iter().map(|a| a.join().unwrap()).collect()
        });
        assert!(
            batches.iter().all(|&n| n > 1),
            "both absorbers linked batches: {batches:?}"
        );
        let sp = &sh.spaces[0];
        let total = (before + during) as usize;
        assert_eq!(sp.len.load(super::Ordering::Acquire), total);
        assert_eq!(sp.absorbed(), total, "absorbed is the whole prefix");
        let segs = sp.segments();
        assert_eq!(segs.len(), total.div_ceil(256));
        assert_eq!(
            segs.iter().map(|s| s.index.len()).sum::<usize>(),
            total,
            "each slot linked once"
        );
        for i in 0..before + during {
            let r = engine.recall(&Cue::new(vector(i, dim), 3)).unwrap();
            assert_eq!(r.shards[0].scanned, 0, "nothing left in the buffer");
            assert!(r.hits.iter().any(|h| h.id.0 == i), "{i} not found in the index");
        }
        assert!(
            engine.stats().edges > 0,
            "the insertion walk gave similar associations"
        );
    }

    /// One shard with `workers` workers, `n` episodes in its append buffer, absorption off.
    fn buffered_engine(dim: usize, n: u64, absorb_batch: usize, workers: usize) -> Engine {
        let engine = Engine::builder()
            .dimension(dim)
            .shards(ShardCount::Exactly(1))
            .workers_per_node(workers)
            .index(IndexParams {
                absorb_batch,
                ef_search: 128,
                ..IndexParams::default()
            })
            .admission(AdmissionLimits {
                max_unindexed: n as usize + 1,
                ..AdmissionLimits::default()
            })
            .pin_workers(false)
            .open()
            .unwrap();
        engine.set_absorption(false);
        for i in 0..n {
            engine.observe(Episode::new(vector(i, dim)).with_id(i)).unwrap();
        }
        engine
    }

    /// `absorb_until` asks only after an insert, stops at the first yes (counted), leaves no
    /// claimed slot unlinked, and the next absorber goes on from there.
    #[test]
    fn absorb_until_stops_after_the_insert_in_hand_and_loses_nothing() {
        let dim = 16;
        let engine = buffered_engine(dim, 50, 8, 2);
        let eng = &*engine.inner;
        let sh = &eng.shards[0];
        let sp = &sh.spaces[0];
        let asked = std::cell::Cell::new(0);
        let more = sh
            .absorb_until(eng, 0, || {
                asked.set(asked.get() + 1);
                true
            })
            .unwrap();
        assert!(more);
        assert_eq!(asked.get(), 1, "asked once, after the first insert");
        assert_eq!(sp.absorbed(), 1, "one insert, then it stopped");
        assert_eq!(sh.metrics.absorb_yields.get(), 1);
        assert!(sh.absorb_until(eng, 0, || false).unwrap());
        assert_eq!(sp.absorbed(), 9, "a whole batch when nothing waits");
        while sh.absorb_until(eng, 0, || false).unwrap() {}
        assert_eq!(sp.absorbed(), 50);
        assert_eq!(sp.segments()[0].index.len(), 50, "each slot linked once");
        assert_eq!(sh.metrics.absorb_yields.get(), 1);
        for i in 0..50 {
            let r = engine.recall(&Cue::new(vector(i, dim), 3)).unwrap();
            assert_eq!(r.shards[0].scanned, 0);
            assert!(r.hits.iter().any(|h| h.id.0 == i), "{i} not found in the index");
        }
    }

    /// One worker, in an absorption task that would link the whole buffer: a recall submitted
    /// meanwhile runs after the insert in hand (so it still scans most of the buffer), not after
    /// the buffer is absorbed (it would scan nothing). Ordering, not timing: the recall is sent
    /// once the task has linked its first node.
    #[test]
    fn a_recall_waits_for_one_insert_of_absorption_not_a_whole_task() {
        let (dim, n) = (64, 4000u64);
        let engine = buffered_engine(dim, n, 1 << 20, 1);
        let sh = &engine.inner.shards[0];
        engine.set_absorption(true);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while sh.spaces[0].segments()[0].index.is_empty() {
            assert!(std::time::Instant::now() < until, "absorption never started");
            std::thread::yield_now();
        }
        // A budget long enough that even a recall waiting for the whole task gets its answer.
        let cue = Cue::new(vector(7, dim), 3).with_budget(std::time::Duration::from_secs(120));
        let r = engine.recall(&cue).unwrap();
        assert!(!r.partial && r.hits.iter().any(|h| h.id.0 == 7));
        assert!(
            r.shards[0].scanned > n as usize / 2,
            "the recall ran after {} of {n} episodes were absorbed",
            n as usize - r.shards[0].scanned
        );
        assert!(
            sh.metrics.absorb_yields.get() >= 1,
            "the absorber stopped for the recall"
        );
        assert!(engine.wait_indexed(std::time::Duration::from_secs(120)));
        assert_eq!(sh.spaces[0].absorbed(), n as usize);
        assert_eq!(
            sh.spaces[0].segments()[0].index.len(),
            n as usize,
            "each slot linked once"
        );
    }
}
