//! [`AssocGraph`]: one shard's association graph, in the shard's [`NodeArena`].

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::edges::{self, EdgeSlot, NO_LOCAL};
use super::error::SpreadError;
use super::idmap::IdMap;
use super::metrics::SpreadMetrics;
use super::node::{FORGOTTEN, HotNode, NodeMeta, now_ns};
use super::predictor::CostModel;
use crate::alloc::NodeArena;
use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, Mutex};

/// Nodes per chunk of the node tables (64 KiB of hot nodes). Chunks are allocated as the graph
/// grows and never move, so a published node stays where it is.
pub(crate) const CHUNK_NODES: usize = 1024;

/// Sizes of an [`AssocGraph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GraphConfig {
    /// The most nodes the graph may hold (the id map and the scratch arrays are sized by it).
    pub max_nodes: usize,
    /// Capacity of a node's first edge block (it doubles when full). Default 4.
    pub initial_edge_block: u32,
}

impl GraphConfig {
    /// A graph of up to `max_nodes` nodes, first edge blocks of 4 edges.
    pub fn with_max_nodes(max_nodes: usize) -> Self {
        Self {
            max_nodes,
            initial_edge_block: 4,
        }
    }

    /// A generous estimate of the arena bytes a graph of `max_nodes` nodes and `edges` edges
    /// needs (id map, node tables, edge blocks including the blocks doubling leaves behind).
    pub fn arena_bytes_for(max_nodes: usize, edges: usize) -> usize {
        let chunks = max_nodes.div_ceil(CHUNK_NODES).max(1);
        let node_bytes = chunks * CHUNK_NODES * (size_of::<HotNode>() + size_of::<NodeMeta>());
        let first_blocks = max_nodes.saturating_mul(edges::block_bytes(4));
        let edge_bytes = edges.saturating_mul(3 * size_of::<EdgeSlot>());
        IdMap::bytes_for(max_nodes)
            .saturating_add(node_bytes)
            .saturating_add(first_blocks)
            .saturating_add(edge_bytes)
            .saturating_add(1 << 20)
    }
}

/// One shard's association graph: nodes with stable `u64` ids, weighted directed edges, all in
/// the shard's [`NodeArena`].
///
/// Every method takes `&self`: mutations (`add_node`, `associate`, `forget`) serialize on one
/// writer lock per graph, while spreads and lookups read without any lock. A writer publishes
/// each change with a `Release` store (a node's record before its id-map entry and the node
/// count, an edge before its block's length, a grown block before the node's block pointer), and
/// readers load with `Acquire`, so a concurrent spread sees each node's edges as a consistent
/// prefix, never a torn edge (see `src/spread/edges.rs`).
pub struct AssocGraph {
    arena: Arc<NodeArena>,
    config: GraphConfig,
    ids: IdMap,
    hot: Box<[AtomicPtr<HotNode>]>,
    meta: Box<[AtomicPtr<NodeMeta>]>,
    /// Nodes published (forgotten ones included): local indexes `0..len` are valid.
    len: AtomicUsize,
    forgotten: AtomicUsize,
    edges: AtomicU64,
    writer: Mutex<()>,
    pub(crate) model: CostModel,
    pub(crate) metrics: SpreadMetrics,
}

// SAFETY: the node chunks live in the arena the graph holds (`Arc`), are reached only through the
// atomic chunk pointers, and are mutated only through atomics or by the writer (under `writer`)
// before publication.
unsafe impl Send for AssocGraph {}
// SAFETY: as above.
unsafe impl Sync for AssocGraph {}

impl std::fmt::Debug for AssocGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssocGraph")
            .field("nodes", &self.len())
            .field("edges", &self.edge_count())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AssocGraph {
    /// An empty graph whose id map, nodes and edges are allocated from `arena`.
    ///
    /// # Errors
    /// [`SpreadError::InvalidInput`] for `max_nodes` of 0 or past `u32::MAX - 1`;
    /// [`SpreadError::Arena`] if the id map does not fit in the arena.
    pub fn new(arena: Arc<NodeArena>, config: GraphConfig) -> Result<Self, SpreadError> {
        if config.max_nodes == 0 || config.max_nodes >= NO_LOCAL as usize {
            return Err(SpreadError::InvalidInput {
                what: format!("max_nodes must be in 1..{}, got {}", NO_LOCAL, config.max_nodes),
            });
        }
        if config.initial_edge_block == 0 {
            return Err(SpreadError::InvalidInput {
                what: "initial_edge_block must be > 0".into(),
            });
        }
        let ids = IdMap::new(&arena, config.max_nodes)?;
        let chunks = config.max_nodes.div_ceil(CHUNK_NODES);
        let hot = (0..chunks)
            .map(|_| AtomicPtr::new(std::ptr::null_mut()))
            .collect();
        let meta = (0..chunks)
            .map(|_| AtomicPtr::new(std::ptr::null_mut()))
            .collect();
        Ok(Self {
            arena,
            config,
            ids,
            hot,
            meta,
            len: AtomicUsize::new(0),
            forgotten: AtomicUsize::new(0),
            edges: AtomicU64::new(0),
            writer: Mutex::new(()),
            model: CostModel::new(),
            metrics: SpreadMetrics::default(),
        })
    }

    /// The arena holding the graph (for placement reports).
    pub fn arena(&self) -> &Arc<NodeArena> {
        &self.arena
    }

    /// The graph's sizes.
    pub fn config(&self) -> &GraphConfig {
        &self.config
    }

    /// The most nodes this graph may hold.
    pub fn capacity(&self) -> usize {
        self.config.max_nodes
    }

    /// Live nodes (added and not forgotten).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire) - self.forgotten.load(Ordering::Acquire)
    }

    /// Whether the graph has no live node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Edges added so far (strengthening does not add one).
    pub fn edge_count(&self) -> u64 {
        self.edges.load(Ordering::Relaxed)
    }

    /// The per-shard metrics of this graph's spreads.
    pub fn metrics(&self) -> &SpreadMetrics {
        &self.metrics
    }

    /// The hot record of local index `idx` (a published node's index).
    #[inline]
    pub(crate) fn hot(&self, idx: u32) -> &HotNode {
        let idx = idx as usize;
        let chunk = self.hot[idx / CHUNK_NODES].load(Ordering::Acquire);
        // SAFETY: callers pass indexes below a published length (or found in the id map); the
        // chunk and the node were written before that publication (Release/Acquire), live in the
        // arena as long as `self`, and are only mutated through atomics afterwards.
        unsafe { &*chunk.add(idx % CHUNK_NODES) }
    }

    fn meta_of(&self, idx: u32) -> &NodeMeta {
        let idx = idx as usize;
        let chunk = self.meta[idx / CHUNK_NODES].load(Ordering::Acquire);
        // SAFETY: as `hot`.
        unsafe { &*chunk.add(idx % CHUNK_NODES) }
    }

    /// The local index of `id`, forgotten or not.
    #[inline]
    pub(crate) fn local(&self, id: u64) -> Option<u32> {
        if id == u64::MAX {
            return None;
        }
        self.ids.get(id)
    }

    /// The local index of a live node.
    #[inline]
    pub(crate) fn live_local(&self, id: u64) -> Option<u32> {
        self.local(id).filter(|&i| !self.hot(i).is_forgotten())
    }

    /// Whether `id` is a live node of this graph.
    pub fn contains(&self, id: u64) -> bool {
        self.live_local(id).is_some()
    }

    /// The out-degree of a live node.
    pub fn degree(&self, id: u64) -> Option<u32> {
        self.live_local(id).map(|i| self.hot(i).degree())
    }

    /// The cold metadata of a live node.
    pub fn meta(&self, id: u64) -> Option<&NodeMeta> {
        self.live_local(id).map(|i| self.meta_of(i))
    }

    /// The published out-edges of a live node, `(target id, weight)` in insertion order.
    pub fn out_edges(&self, id: u64) -> Option<Vec<(u64, f32)>> {
        self.live_local(id).map(|i| {
            edges::published(self.hot(i))
                .iter()
                .map(|e| (e.target(), e.weight()))
                .collect()
        })
    }

    fn lock(&self) -> impl Drop + '_ {
        // A writer that panicked left no half-published state (publication is the last store),
        // so a poisoned lock is still usable.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds node `id`. Returns `true` if it was added, `false` if it was already a live node.
    ///
    /// # Errors
    /// [`SpreadError::ReservedId`] for `u64::MAX`; [`SpreadError::Forgotten`] for a forgotten id;
    /// [`SpreadError::GraphFull`] at `max_nodes`; [`SpreadError::Arena`] if a node chunk does not
    /// fit. Nothing changes on error.
    pub fn add_node(&self, id: u64) -> Result<bool, SpreadError> {
        if id == u64::MAX {
            return Err(SpreadError::ReservedId { id });
        }
        let _w = self.lock();
        if let Some(i) = self.ids.get(id) {
            return if self.hot(i).is_forgotten() {
                Err(SpreadError::Forgotten { id })
            } else {
                Ok(false)
            };
        }
        let idx = self.len.load(Ordering::Relaxed);
        if idx >= self.config.max_nodes {
            return Err(SpreadError::GraphFull {
                max_nodes: self.config.max_nodes,
            });
        }
        let chunk = idx / CHUNK_NODES;
        if idx % CHUNK_NODES == 0 {
            let hot = self.arena.alloc(chunk_layout::<HotNode>()?)?.cast::<HotNode>();
            let meta = self.arena.alloc(chunk_layout::<NodeMeta>()?)?.cast::<NodeMeta>();
            self.hot[chunk].store(hot.as_ptr(), Ordering::Release);
            self.meta[chunk].store(meta.as_ptr(), Ordering::Release);
        }
        let hot = NonNull::new(self.hot[chunk].load(Ordering::Relaxed));
        let meta = NonNull::new(self.meta[chunk].load(Ordering::Relaxed));
        let (Some(hot), Some(meta)) = (hot, meta) else {
            unreachable!("node chunk {chunk} allocated before its first node");
        };
        // SAFETY: slot `idx % CHUNK_NODES` of freshly allocated chunks is unpublished (idx >=
        // len), so no reader looks at it until the Release stores below.
        unsafe {
            hot.as_ptr().add(idx % CHUNK_NODES).write(HotNode::new(id));
            meta.as_ptr()
                .add(idx % CHUNK_NODES)
                .write(NodeMeta::new(now_ns()));
        }
        let local = u32::try_from(idx).unwrap_or(NO_LOCAL);
        self.ids.insert(id, local);
        self.len.store(idx + 1, Ordering::Release);
        Ok(true)
    }

    /// Adds the edge `a → b` with `weight`, or adds `weight` to the edge's weight if it exists;
    /// that sum saturates at `f32::MAX`, so a stored weight is always finite (and a spread's
    /// activations, summed in saturating fixed point, never overflow either). `a` may equal
    /// `b` (a self-loop, whose activation returns to its node). `a` must be a live node of this graph; `b` may live in another shard (the edge stores its
    /// id; a spread sends its activation there as a message).
    ///
    /// # Errors
    /// [`SpreadError::InvalidWeight`] for a NaN, infinite, zero or negative weight;
    /// [`SpreadError::UnknownNode`] / [`SpreadError::Forgotten`] if `a` is not a live node here;
    /// [`SpreadError::ReservedId`] for `b = u64::MAX`; [`SpreadError::TooManyEdges`];
    /// [`SpreadError::Arena`] if a grown edge block does not fit. Nothing changes on error.
    pub fn associate(&self, a: u64, b: u64, weight: f32) -> Result<(), SpreadError> {
        if !weight.is_finite() || weight <= 0.0 {
            return Err(SpreadError::InvalidWeight {
                what: "edge weight",
                value: weight,
                rule: "> 0",
            });
        }
        if b == u64::MAX {
            return Err(SpreadError::ReservedId { id: b });
        }
        let _w = self.lock();
        let ia = self.local(a).ok_or(SpreadError::UnknownNode { id: a })?;
        let node = self.hot(ia);
        if node.is_forgotten() {
            return Err(SpreadError::Forgotten { id: a });
        }
        if !edges::strengthen(node, b, weight) {
            let local = self.ids.get(b).unwrap_or(NO_LOCAL);
            edges::append(
                node,
                &self.arena,
                self.config.initial_edge_block,
                b,
                local,
                weight,
            )?;
            self.edges.fetch_add(1, Ordering::Relaxed);
        }
        let meta = self.meta_of(ia);
        meta.updated_ns.store(now_ns(), Ordering::Relaxed);
        meta.associations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Tombstones node `id`: it no longer propagates activation nor appears in results, and its
    /// id cannot be added again. Its memory stays (arenas never free).
    ///
    /// # Errors
    /// [`SpreadError::UnknownNode`] if `id` is not here; [`SpreadError::Forgotten`] if it
    /// already was forgotten.
    pub fn forget(&self, id: u64) -> Result<(), SpreadError> {
        let _w = self.lock();
        let i = self.local(id).ok_or(SpreadError::UnknownNode { id })?;
        let node = self.hot(i);
        if node.is_forgotten() {
            return Err(SpreadError::Forgotten { id });
        }
        node.flags.fetch_or(FORGOTTEN, Ordering::Release);
        self.forgotten.fetch_add(1, Ordering::Release);
        Ok(())
    }
}

fn chunk_layout<T>() -> Result<Layout, SpreadError> {
    Layout::array::<T>(CHUNK_NODES)
        .and_then(|l| l.align_to(4096))
        .map_err(|_| SpreadError::InvalidInput {
            what: "node chunk layout".into(),
        })
}
