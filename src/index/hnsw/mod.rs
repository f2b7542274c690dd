//! HNSW: Hierarchical Navigable Small World graphs (Yu. A. Malkov and D. A. Yashunin, "Efficient
//! and robust approximate nearest neighbor search using Hierarchical Navigable Small World
//! graphs", IEEE TPAMI 2020, arXiv:1603.09320).
//!
//! **The model.** Every vector is a node. Each node draws a top level `l = ⌊−ln U · 1/ln M⌋`
//! (so a node reaches level `l` with probability `M^-l`) and is linked, on every level up to
//! `l`, to a few close nodes of that level chosen by the paper's *heuristic* (a candidate is
//! kept only if it is closer to the new node than to every neighbour kept so far, which keeps
//! links pointing in diverse directions). A search descends greedily from the single entry point
//! on the top level to level 1, then runs a best-first walk on level 0 that keeps the `ef`
//! closest nodes seen; the best `k` of them are the answer.
//!
//! **Parameters.** `M` is the number of links per node on the upper levels (`2·M` on level 0):
//! more links give higher recall at a given `ef` and cost memory and insert time.
//! `ef_construction` is the `ef` of the walk that finds a new node's neighbours: higher builds a
//! better graph, slower. `ef_search` (per query) trades speed for recall; it is at least `k`.
//! The level draw is seeded and depends only on the node id, so a batch insert on any number of
//! threads draws the same levels.
//!
//! **Concurrency.** [`HnswIndex`] is `Sync`: inserts, searches and deletes run concurrently from
//! any threads through `&self`. See the `graph` submodule (`src/index/hnsw/graph.rs`) for how link lists are published; a node is
//! returned by a search only once its insertion has finished, and never after its deletion.
//! [`HnswIndex::repair`] (which unlinks deleted nodes) takes `&mut self`.
//!
//! **Quantisation.** With [`Quantization::Int8`] construction and the search walk use int8
//! distances and the final `ef` candidates are re-ranked with exact f32 distances (see
//! [`crate::index::space`]).

mod delete;
mod file;
pub(crate) mod graph;
mod insert;
mod placement;
mod search;
mod stage;
#[cfg(test)]
mod tests;
mod visited;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::distance::{Kernels, Metric};
use super::space::{Quantization, Space};
use super::storage::{MappedRegions, RegionSource, round_to_line};
use super::{IndexError, limits};
use crate::rng::SplitMix64;
use graph::Graph;
use visited::VisitedPool;

pub use placement::{IndexDegradation, MemoryPart};

/// The highest level a node may draw (a level above 30 has probability `M^-30`: never, in practice).
const MAX_LEVEL: usize = 30;

/// The packed value of the entry point of an empty graph.
const NO_ENTRY: u64 = u64::MAX;

/// How an index is built. Start from [`HnswConfig::new`] and change fields as needed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HnswConfig {
    /// Dimension of every vector (fixed for the index's life).
    pub dim: usize,
    /// The most vectors the index can hold (its memory is reserved at creation).
    pub capacity: usize,
    /// How distance is measured.
    pub metric: Metric,
    /// Links per node on upper levels (`2·M` on level 0). 16 is the common default; 2..=255.
    pub m: usize,
    /// `ef` of the walk that finds a new node's neighbours (≥ 1; 200 is common).
    pub ef_construction: usize,
    /// Seed of the level draw.
    pub seed: u64,
    /// Whether construction and the search walk use int8 vectors (re-ranked in f32).
    pub quantization: Quantization,
}

impl HnswConfig {
    /// `dim`-dimensional vectors, room for `capacity`, with M = 16, ef_construction = 200,
    /// seed 42 and int8 quantisation.
    pub fn new(dim: usize, capacity: usize, metric: Metric) -> Self {
        HnswConfig {
            dim,
            capacity,
            metric,
            m: 16,
            ef_construction: 200,
            seed: 42,
            quantization: Quantization::Int8,
        }
    }

    fn validate(&self) -> Result<(), IndexError> {
        let bad = |what: &str| {
            Err(IndexError::InvalidInput {
                what: what.to_string(),
            })
        };
        if self.dim == 0 {
            return bad("dimension must be at least 1");
        }
        if self.capacity >= u32::MAX as usize {
            return bad("capacity must be below 2^32 - 1");
        }
        if !(2..=255).contains(&self.m) {
            return bad("M must be in 2..=255");
        }
        if self.ef_construction == 0 {
            return bad("ef_construction must be at least 1");
        }
        if self.dim >= 1 << 17 && self.quantization == Quantization::Int8 {
            return bad("int8 quantisation supports dimensions below 131072");
        }
        Ok(())
    }

    /// Bytes an index of this configuration holds once full: vector rows (f32, and int8 with
    /// quantisation), link lists (with `upper_levels` reserved upper-level blocks), per-node
    /// state and one visited set. `None` if that overflows `usize`.
    fn memory_bytes(&self, upper_levels: usize) -> Option<usize> {
        let f32_row = round_to_line(self.dim.checked_mul(4)?)?;
        let i8_row = match self.quantization {
            Quantization::None => 0,
            Quantization::Int8 => round_to_line(self.dim.checked_add(8)?)?,
        };
        let rows = self.capacity.checked_mul(f32_row.checked_add(i8_row)?)?;
        let visited = self.capacity.checked_mul(size_of::<u16>())?;
        rows.checked_add(graph::graph_bytes(self.capacity, self.m, upper_levels)?)?
            .checked_add(visited)
    }

    /// Refuses a capacity whose memory this machine cannot hold, before anything is allocated.
    fn check_fits(&self, upper_levels: usize) -> Result<(), IndexError> {
        let limit = limits::machine_memory_bytes();
        let bytes = self.memory_bytes(upper_levels).unwrap_or(usize::MAX);
        if bytes > limit {
            return Err(IndexError::TooLarge {
                capacity: self.capacity,
                bytes,
                limit,
            });
        }
        Ok(())
    }
}

/// One search result: a node id and its distance to the query (smaller is closer).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbor {
    /// The id [`HnswIndex::insert`] returned for the vector.
    pub id: u32,
    /// Its distance to the query under the index's metric (exact f32).
    pub distance: f32,
}

/// An HNSW index over vectors of one fixed dimension. See the [module docs](self).
pub struct HnswIndex {
    config: HnswConfig,
    space: Space,
    graph: Graph,
    /// `(top level << 32) | node id` of the entry point, or [`NO_ENTRY`].
    entry: AtomicU64,
    /// Held by an insert whose node becomes the new top (at most one such insert at a time).
    grow_lock: Mutex<()>,
    /// Ids handed out so far (the next id to claim).
    next_id: AtomicU32,
    /// Nodes inserted and not deleted.
    live: AtomicUsize,
    visited: VisitedPool,
    /// Where the index's memory came from; `compact` builds its copy from the same source.
    source: Arc<dyn RegionSource>,
    /// Whether `source` is the caller's (false: it could not be kept, see `degradations`).
    source_kept: bool,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("config", &self.config)
            .field("len", &self.len())
            .field("kernels", &self.space.kernels().name())
            .finish()
    }
}

impl HnswIndex {
    /// An empty index, using the distance kernels detected for this CPU.
    ///
    /// # Errors
    /// [`IndexError::InvalidInput`] for a zero dimension, `M` outside 2..=255, a zero
    /// `ef_construction` or a capacity ≥ 2³²−1; [`IndexError::OutOfMemory`] if the memory for
    /// `capacity` vectors cannot be reserved; [`IndexError::TooLarge`] if they need more memory
    /// than this machine has (checked before allocating); [`IndexError::Unsupported`] if `LOCUS_SIMD` names
    /// a kernel set this CPU cannot run.
    pub fn new(config: HnswConfig) -> Result<Self, IndexError> {
        Self::with_kernels(config, *Kernels::try_detect()?)
    }

    /// An empty index using the given kernels (e.g. [`Kernels::scalar`] for a reference run).
    ///
    /// # Errors
    /// As for [`HnswIndex::new`].
    pub fn with_kernels(config: HnswConfig, kernels: Kernels) -> Result<Self, IndexError> {
        Self::with_regions(config, kernels, &MappedRegions)
    }

    /// An empty index whose memory — vector rows, link lists, levels, flags, locks, and the
    /// visited sets of its walks — all comes from regions of `source` (for example a
    /// node-bound arena: [`NodeRegions`](crate::index::NodeRegions)). If `source` cannot be
    /// kept ([`RegionSource::shared`] is `None`), the visited sets and a compacted copy come from
    /// anonymous mappings instead, and [`HnswIndex::degradations`] says so.
    ///
    /// # Errors
    /// As for [`HnswIndex::new`], plus whatever `source` returns, and
    /// [`IndexError::InvalidInput`] if it hands out a region that is too small or misaligned.
    pub fn with_regions(
        config: HnswConfig,
        kernels: Kernels,
        source: &dyn RegionSource,
    ) -> Result<Self, IndexError> {
        config.validate()?;
        let upper_levels = graph::upper_levels_for(config.capacity, config.m);
        Self::build(config, kernels, source, upper_levels)
    }

    /// An empty index with `upper_levels` reserved upper-level blocks (see `with_regions`).
    fn build(
        config: HnswConfig,
        kernels: Kernels,
        source: &dyn RegionSource,
        upper_levels: usize,
    ) -> Result<Self, IndexError> {
        config.validate()?;
        config.check_fits(upper_levels)?;
        let (kept, source_kept): (Arc<dyn RegionSource>, bool) = match source.shared() {
            Some(s) => (s, true),
            None => (Arc::new(MappedRegions), false),
        };
        let space = Space::new(
            config.dim,
            config.capacity,
            config.metric,
            config.quantization,
            kernels,
            source,
        )?;
        let graph = Graph::new(config.capacity, config.m, upper_levels, source)?;
        Ok(HnswIndex {
            visited: VisitedPool::new(config.capacity, kept.clone()),
            config,
            space,
            graph,
            entry: AtomicU64::new(NO_ENTRY),
            grow_lock: Mutex::new(()),
            next_id: AtomicU32::new(0),
            live: AtomicUsize::new(0),
            source: kept,
            source_kept,
        })
    }

    /// The configuration the index was built with.
    pub fn config(&self) -> &HnswConfig {
        &self.config
    }

    /// The vector dimension.
    pub fn dim(&self) -> usize {
        self.config.dim
    }

    /// Vectors inserted (completely) and not deleted.
    pub fn len(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Whether no live vector is in the index.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids handed out so far, deleted ones included (ids run from 0 to this, exclusive).
    pub fn ids_used(&self) -> usize {
        self.next_id.load(Ordering::Acquire) as usize
    }

    /// The most vectors the index can hold.
    pub fn capacity(&self) -> usize {
        self.config.capacity
    }

    /// The name of the distance kernels in use (`avx512`, `avx2`, `neon`, `scalar`).
    pub fn kernel_name(&self) -> &'static str {
        self.space.kernels().name()
    }

    /// Bytes of memory the index holds: vector rows (f32 and int8), link lists, per-node state
    /// and pooled visited sets. Reserved at creation for the full capacity (so this does not
    /// grow with inserts, except for visited sets).
    pub fn memory_bytes(&self) -> usize {
        self.space.bytes() + self.graph.bytes() + self.visited.bytes()
    }

    /// The stored (for cosine: normalised) vector of `id`.
    ///
    /// # Errors
    /// [`IndexError::UnknownId`] if `id` is not a completely inserted vector.
    pub fn vector(&self, id: u32) -> Result<&[f32], IndexError> {
        self.check_ready(id)?;
        // SAFETY: `id` is READY, so its row was written and published before the flag was set
        // (the Acquire load in `check_ready` pairs with the Release of the flag).
        Ok(unsafe { self.space.vector(id) })
    }

    /// Whether `id` was deleted.
    ///
    /// # Errors
    /// [`IndexError::UnknownId`] if `id` was never inserted.
    pub fn is_deleted(&self, id: u32) -> Result<bool, IndexError> {
        self.check_ready(id)?;
        Ok(self.graph.flags(id) & graph::DELETED != 0)
    }

    fn check_ready(&self, id: u32) -> Result<(), IndexError> {
        if (id as usize) < self.ids_used() && self.graph.flags(id) & graph::READY != 0 {
            Ok(())
        } else {
            Err(IndexError::UnknownId { id })
        }
    }

    /// The top level of node `id`, drawn from the seed and the id alone.
    fn level_for(&self, id: u32) -> usize {
        let mut rng = SplitMix64::new(self.config.seed ^ (u64::from(id)).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let ml = 1.0 / (self.config.m as f64).ln();
        let level = (-rng.next_open01().ln() * ml) as usize;
        level.min(MAX_LEVEL)
    }

    /// The entry point as `(id, top level)`, or `None` for an empty graph.
    fn entry_point(&self) -> Option<(u32, usize)> {
        let e = self.entry.load(Ordering::Acquire);
        (e != NO_ENTRY).then_some((e as u32, (e >> 32) as usize))
    }

    fn set_entry_point(&self, id: u32, level: usize) {
        self.entry
            .store(((level as u64) << 32) | u64::from(id), Ordering::Release);
    }
}
