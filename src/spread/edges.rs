//! Per-node edge blocks and their publication.
//!
//! ## Choice: per-node blocks that double, not a delta + merge
//! Each node's out-edges live in one contiguous block in the shard's arena: a header (capacity,
//! published length) followed by `capacity` edge slots. The single writer (the graph's writer
//! lock) appends into the free tail and then publishes the new length with `Release`; when the
//! block is full it allocates a block of twice the capacity, copies the edges, writes the new
//! edge, and publishes the new block pointer in the node's [`HotNode`] with `Release`. A reader
//! loads the block pointer (`Acquire`), then the block's length (`Acquire`), and reads exactly
//! that prefix: every slot in it was fully written before the `Release` that published it, and
//! is never written again (except its weight, an atomic). So a spread sees a consistent prefix
//! of each node's edges and never a torn edge, without a lock, and a spread keeps reading a
//! replaced block safely because the arena never frees or reuses memory.
//!
//! A delta + periodic merge would keep edges sorted (cheaper fan-out caps) but needs a merge
//! thread and a second lookup per visit; doubling blocks keep one pointer chase per node. The
//! cost: replaced blocks are garbage in the arena (at most as much again as the live edges, the
//! usual doubling bound), which [`GraphConfig::arena_bytes_for`](super::GraphConfig) accounts for.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use super::error::SpreadError;
use super::node::HotNode;
use crate::alloc::NodeArena;
use crate::sync::{AtomicU32, UnsafeCell};

/// The local-index hint of an edge whose target was not in this graph when it was added.
pub(crate) const NO_LOCAL: u32 = u32::MAX;

/// The most edges one node may have.
pub(crate) const MAX_DEGREE: u32 = u32::MAX / 2;

/// Alignment of edge blocks: the header and the first three edges share a cache line.
const BLOCK_ALIGN: usize = 64;

/// The header of an edge block; `cap` [`EdgeSlot`]s follow it.
#[repr(C)]
pub struct BlockHeader {
    cap: u32,
    /// Edges published in this block. `Release` on append, `Acquire` on read.
    len: AtomicU32,
}

/// One out-edge: target id, the target's local index in this graph (or [`NO_LOCAL`]) and the
/// weight (f32 bits, atomic so strengthening never tears it).
#[repr(C)]
pub(crate) struct EdgeSlot {
    /// Plain data, written once before publication (a loom-tracked cell under the model checker,
    /// so an unordered read is caught).
    target: UnsafeCell<u64>,
    pub(crate) local: u32,
    weight: AtomicU32,
}

impl EdgeSlot {
    /// Writes the target of a slot not yet published (a tracked write under loom).
    ///
    /// # Safety
    /// The slot is unpublished: no reader can reach it.
    unsafe fn set_target(&self, target: u64) {
        // SAFETY: per the contract, nobody else accesses the cell.
        self.target.with_mut(|p| unsafe { *p = target });
    }

    #[inline]
    pub(crate) fn target(&self) -> u64 {
        // SAFETY: a slot's target is written once, before the Release store that publishes the
        // slot, and never again; readers reach the slot only after an Acquire load of that store.
        self.target.with(|p| unsafe { *p })
    }

    #[inline]
    pub(crate) fn weight(&self) -> f32 {
        f32::from_bits(self.weight.load(Ordering::Relaxed))
    }
}

fn slots_offset() -> usize {
    let header = Layout::new::<BlockHeader>();
    match header.extend(Layout::new::<EdgeSlot>()) {
        Ok((_, off)) => off,
        // Two small fixed layouts always combine.
        Err(_) => unreachable!("edge block layout"),
    }
}

fn block_layout(cap: u32) -> Option<Layout> {
    let header = Layout::new::<BlockHeader>();
    let slots = Layout::array::<EdgeSlot>(cap as usize).ok()?;
    let (l, _) = header.extend(slots).ok()?;
    l.align_to(BLOCK_ALIGN).ok().map(|l| l.pad_to_align())
}

/// Bytes one block of `cap` edges takes (for sizing arenas).
pub(crate) fn block_bytes(cap: u32) -> usize {
    block_layout(cap).map_or(usize::MAX, |l| l.size())
}

/// # Safety
/// `block` points to a live block header.
#[inline]
unsafe fn slot_ptr(block: NonNull<BlockHeader>, i: usize) -> *mut EdgeSlot {
    // SAFETY: the caller guarantees a live block; `slots_offset` is where the slots begin and
    // callers index within the block's capacity.
    unsafe {
        block
            .as_ptr()
            .cast::<u8>()
            .add(slots_offset())
            .cast::<EdgeSlot>()
            .add(i)
    }
}

/// The published edges of `node`: a consistent prefix, safe to read while a writer appends.
#[inline]
pub(crate) fn published(node: &HotNode) -> &[EdgeSlot] {
    let Some(block) = NonNull::new(node.block.load(Ordering::Acquire)) else {
        return &[];
    };
    // SAFETY: a non-null block pointer was published (Release) after its header and its first
    // `len` slots were written; the arena keeps the block alive as long as the graph (and so
    // `node`) lives; the slots `0..len` are never written again except through the atomic
    // weight, so shared references to them are sound.
    unsafe {
        let len = (*block.as_ptr()).len.load(Ordering::Acquire) as usize;
        std::slice::from_raw_parts(slot_ptr(block, 0), len)
    }
}

fn alloc_block(arena: &NodeArena, cap: u32) -> Result<NonNull<BlockHeader>, SpreadError> {
    let layout = block_layout(cap).ok_or_else(|| SpreadError::InvalidInput {
        what: format!("edge block of {cap} edges overflows"),
    })?;
    Ok(arena.alloc(layout)?.cast::<BlockHeader>())
}

/// Appends `target → weight` to `node`. Only the graph's writer (holding its lock) calls this.
pub(crate) fn append(
    node: &HotNode,
    arena: &NodeArena,
    initial_cap: u32,
    target: u64,
    local: u32,
    weight: f32,
) -> Result<(), SpreadError> {
    let slot = EdgeSlot {
        target: UnsafeCell::new(target),
        local,
        weight: AtomicU32::new(weight.to_bits()),
    };
    // The writer lock orders this writer after the previous one: Relaxed loads see its stores.
    let current = NonNull::new(node.block.load(Ordering::Relaxed));
    let len = match current {
        // SAFETY: a published block stays alive as long as the arena.
        Some(b) => unsafe { (*b.as_ptr()).len.load(Ordering::Relaxed) },
        None => 0,
    };
    if len >= MAX_DEGREE {
        return Err(SpreadError::TooManyEdges { id: node.id() });
    }
    match current {
        // SAFETY: as above.
        Some(b) if len < unsafe { (*b.as_ptr()).cap } => {
            // SAFETY: slot `len` is inside the block's capacity and unpublished: no reader
            // looks at it until the Release store below.
            unsafe {
                slot_ptr(b, len as usize).write(slot);
                (*slot_ptr(b, len as usize)).set_target(target);
                (*b.as_ptr()).len.store(len + 1, Ordering::Release);
            }
        }
        _ => {
            let cap = len.saturating_mul(2).max(initial_cap.max(1)).min(MAX_DEGREE);
            let fresh = alloc_block(arena, cap)?;
            // SAFETY: `fresh` is a new, unshared block of `cap > len` slots; the old block's
            // slots `0..len` are published and immutable (but for atomic weights).
            unsafe {
                fresh.as_ptr().write(BlockHeader {
                    cap,
                    len: AtomicU32::new(len + 1),
                });
                if let Some(old) = current {
                    for i in 0..len as usize {
                        let e = &*slot_ptr(old, i);
                        let copy = e.target();
                        slot_ptr(fresh, i).write(EdgeSlot {
                            target: UnsafeCell::new(copy),
                            local: e.local,
                            weight: AtomicU32::new(e.weight.load(Ordering::Relaxed)),
                        });
                        (*slot_ptr(fresh, i)).set_target(copy);
                    }
                }
                slot_ptr(fresh, len as usize).write(slot);
                (*slot_ptr(fresh, len as usize)).set_target(target);
            }
            node.block.store(fresh.as_ptr(), Ordering::Release);
        }
    }
    node.degree.store(len + 1, Ordering::Release);
    Ok(())
}

/// Adds `delta` (finite, > 0) to the weight of `node`'s edge to `target` if there is one;
/// returns whether it was found. The sum saturates at `f32::MAX`: a weight stays finite
/// however often it is strengthened. Only the writer calls this.
pub(crate) fn strengthen(node: &HotNode, target: u64, delta: f32) -> bool {
    for e in published(node) {
        if e.target() == target {
            let w = (e.weight() + delta).min(f32::MAX);
            e.weight.store(w.to_bits(), Ordering::Relaxed);
            return true;
        }
    }
    false
}
