//! [`SpreadScratch`]: one worker's reusable per-query state, and [`ScratchPool`].
//!
//! A scratch holds one [`Cell`] per local node index (received activation this hop, total,
//! epoch stamps, first hop), stamped with epochs as `index::hnsw::visited` does: starting a spread
//! or a hop is an increment, never a clear (the cells are zeroed only when the 32-bit epoch
//! wraps). Its lists (frontier, touched nodes, fan-out selection, candidates) keep their capacity
//! between queries, so a spread on a warm scratch allocates only its result vector.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;

use super::error::SpreadError;
use super::fixed::Fixed;
use super::graph::AssocGraph;
use crate::alloc::NodeArena;
use crate::sync::Mutex;

/// One node's per-query state. 48 bytes: the fields a contribution updates sit together.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub(crate) struct Cell {
    /// Activation received in the current hop (valid when `hop_stamp` is current).
    pub(crate) recv: Fixed,
    /// Total activation over the spread (valid when `stamp` is current).
    pub(crate) total: Fixed,
    /// Spread epoch that last reached the node.
    pub(crate) stamp: u32,
    /// Hop epoch that last gave the node activation.
    pub(crate) hop_stamp: u32,
    /// Hop at which the node was first reached (0: seed).
    pub(crate) first_hop: u32,
}

/// The cells, on the heap or in an arena.
struct Cells {
    ptr: NonNull<Cell>,
    len: usize,
    _heap: Option<Vec<Cell>>,
    _arena: Option<Arc<NodeArena>>,
}

// SAFETY: `Cells` owns its memory (a Vec, or an arena chunk handed out once and kept alive by the
// Arc); it is accessed only through `&mut self` of the scratch that owns it.
unsafe impl Send for Cells {}

impl Cells {
    fn slice(&mut self) -> &mut [Cell] {
        // SAFETY: `ptr` points to `len` initialized cells owned by `self` (see `Send`).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

/// One worker's reusable spread state, for graphs of up to [`SpreadScratch::capacity`] nodes.
/// Not shared: each worker (or each concurrent spread) uses its own.
pub struct SpreadScratch {
    cells: Cells,
    epoch: u32,
    hop_epoch: u32,
    pub(crate) frontier: Vec<(u32, Fixed)>,
    pub(crate) next: Vec<u32>,
    pub(crate) touched: Vec<u32>,
    pub(crate) select: Vec<(f32, u64, u32)>,
    pub(crate) candidates: Vec<(Fixed, u64, u32)>,
    pub(crate) remote: Vec<(u64, Fixed)>,
}

impl std::fmt::Debug for SpreadScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpreadScratch")
            .field("capacity", &self.cells.len)
            .field("in_arena", &self.cells._arena.is_some())
            .finish_non_exhaustive()
    }
}

impl SpreadScratch {
    fn with_cells(cells: Cells) -> Self {
        Self {
            cells,
            epoch: 0,
            hop_epoch: 0,
            frontier: Vec::new(),
            next: Vec::new(),
            touched: Vec::new(),
            select: Vec::new(),
            candidates: Vec::new(),
            remote: Vec::new(),
        }
    }

    /// A scratch on the heap for graphs of up to `capacity` nodes (its pages land on the node of
    /// the thread that first writes them, here: the calling thread).
    pub fn new(capacity: usize) -> Self {
        let mut v = vec![Cell::default(); capacity];
        let ptr = NonNull::new(v.as_mut_ptr()).unwrap_or(NonNull::dangling());
        Self::with_cells(Cells {
            ptr,
            len: capacity,
            _heap: Some(v),
            _arena: None,
        })
    }

    /// A scratch whose cells live in `arena` (so on the arena's node, whatever thread uses it).
    /// Arena memory is never returned: create scratches once per worker, or pool them.
    ///
    /// # Errors
    /// [`SpreadError::Arena`] if it does not fit.
    pub fn in_arena(arena: &Arc<NodeArena>, capacity: usize) -> Result<Self, SpreadError> {
        let layout = Layout::array::<Cell>(capacity.max(1))
            .and_then(|l| l.align_to(64))
            .map_err(|_| SpreadError::InvalidInput {
                what: format!("scratch of {capacity} nodes overflows"),
            })?;
        let ptr = arena.alloc(layout)?.cast::<Cell>();
        for i in 0..capacity {
            // SAFETY: the chunk holds `capacity` cells and is ours alone.
            unsafe { ptr.as_ptr().add(i).write(Cell::default()) };
        }
        Ok(Self::with_cells(Cells {
            ptr,
            len: capacity,
            _heap: None,
            _arena: Some(arena.clone()),
        }))
    }

    /// A scratch for `graph`, in the graph's arena (on its node).
    ///
    /// # Errors
    /// [`SpreadError::Arena`] if the arena has no room for it.
    pub fn for_graph(graph: &AssocGraph) -> Result<Self, SpreadError> {
        Self::in_arena(graph.arena(), graph.capacity())
    }

    /// Arena bytes [`SpreadScratch::in_arena`] takes for `capacity` nodes.
    pub fn bytes_for(capacity: usize) -> usize {
        capacity.saturating_mul(size_of::<Cell>()).saturating_add(64)
    }

    /// Nodes this scratch covers.
    pub fn capacity(&self) -> usize {
        self.cells.len
    }

    /// Address and length in bytes of the cells (for placement checks).
    pub fn cells_region(&self) -> (*const u8, usize) {
        (self.cells.ptr.as_ptr().cast(), self.cells.len * size_of::<Cell>())
    }

    pub(crate) fn check(&self, graph: &AssocGraph) -> Result<(), SpreadError> {
        if self.capacity() < graph.capacity() {
            return Err(SpreadError::ScratchTooSmall {
                scratch: self.capacity(),
                graph: graph.capacity(),
            });
        }
        Ok(())
    }

    /// Starts a spread: every node unreached. Returns the spread epoch.
    pub(crate) fn begin_spread(&mut self) -> u32 {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.cells.slice().iter_mut().for_each(|c| c.stamp = 0);
            self.epoch = 1;
        }
        self.touched.clear();
        self.frontier.clear();
        self.epoch
    }

    /// Starts a hop: no node has received anything. Returns the hop epoch.
    pub(crate) fn begin_hop(&mut self) -> u32 {
        self.hop_epoch = self.hop_epoch.wrapping_add(1);
        if self.hop_epoch == 0 {
            self.cells.slice().iter_mut().for_each(|c| c.hop_stamp = 0);
            self.hop_epoch = 1;
        }
        self.next.clear();
        self.hop_epoch
    }

    /// The cells and the lists, borrowed apart.
    pub(crate) fn parts(&mut self) -> Parts<'_> {
        let cells = self.cells.slice();
        Parts {
            cells,
            frontier: &mut self.frontier,
            next: &mut self.next,
            touched: &mut self.touched,
            select: &mut self.select,
            candidates: &mut self.candidates,
            remote: &mut self.remote,
        }
    }
}

/// A scratch's pieces, borrowed separately.
pub(crate) struct Parts<'a> {
    pub(crate) cells: &'a mut [Cell],
    pub(crate) frontier: &'a mut Vec<(u32, Fixed)>,
    pub(crate) next: &'a mut Vec<u32>,
    pub(crate) touched: &'a mut Vec<u32>,
    pub(crate) select: &'a mut Vec<(f32, u64, u32)>,
    pub(crate) candidates: &'a mut Vec<(Fixed, u64, u32)>,
    pub(crate) remote: &'a mut Vec<(u64, Fixed)>,
}

/// A pool of scratches for one graph, in its arena, for callers that do not keep one per
/// worker. Hits and misses are counted in the graph's [`SpreadMetrics`](super::SpreadMetrics).
pub struct ScratchPool {
    free: Mutex<Vec<SpreadScratch>>,
}

impl std::fmt::Debug for ScratchPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScratchPool").finish_non_exhaustive()
    }
}

impl Default for ScratchPool {
    fn default() -> Self {
        Self::new()
    }
}

impl ScratchPool {
    /// An empty pool.
    pub fn new() -> Self {
        Self {
            free: Mutex::new(Vec::new()),
        }
    }

    /// A scratch for `graph`: a pooled one (a hit) or a new one in the graph's arena (a miss).
    ///
    /// # Errors
    /// [`SpreadError::Arena`] if a new one does not fit.
    pub fn take(&self, graph: &AssocGraph) -> Result<SpreadScratch, SpreadError> {
        let pooled = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match pooled {
            Some(s) if s.capacity() >= graph.capacity() => {
                graph.metrics.scratch_hits.inc();
                Ok(s)
            }
            _ => {
                graph.metrics.scratch_misses.inc();
                SpreadScratch::for_graph(graph)
            }
        }
    }

    /// Returns a scratch to the pool.
    pub fn give_back(&self, scratch: SpreadScratch) {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).push(scratch);
    }
}
