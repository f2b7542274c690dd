//! Unit tests of the graph's pure-memory code: link slots, upper-level blocks, the lost
//! back-link of a concurrent insert, and a small index end to end. They use heap regions and the
//! scalar kernels only (no system call, no SIMD), so every test named `miri_*` runs under Miri:
//! `cargo +nightly miri test --lib miri_`.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::sync::Arc;

use super::{HnswConfig, HnswIndex};
use crate::index::storage::{ROW_ALIGN, Region, RegionSource};
use crate::index::{IndexError, Kernels, Metric, Quantization};

/// Zeroed, 64-byte-aligned heap blocks: a region source without system calls.
#[derive(Clone, Copy)]
struct HeapRegions;

struct HeapRegion {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the block is owned by the value; access follows the stores' discipline.
unsafe impl Send for HeapRegion {}
// SAFETY: as for Send.
unsafe impl Sync for HeapRegion {}

// SAFETY: `alloc_zeroed` returns a zeroed block of `layout.size()` bytes aligned to ROW_ALIGN
// (non-null: checked in `region`), freed only on drop.
unsafe impl Region for HeapRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
    fn len(&self) -> usize {
        self.layout.size()
    }
}

impl Drop for HeapRegion {
    fn drop(&mut self) {
        // SAFETY: allocated by `alloc_zeroed` with this layout, freed once.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

impl RegionSource for HeapRegions {
    fn region(&self, bytes: usize) -> Result<Box<dyn Region>, IndexError> {
        let layout = Layout::from_size_align(bytes.max(ROW_ALIGN), ROW_ALIGN)
            .map_err(|_| IndexError::OutOfMemory { bytes })?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(IndexError::OutOfMemory { bytes });
        }
        Ok(Box::new(HeapRegion { ptr, layout }))
    }

    fn shared(&self) -> Option<Arc<dyn RegionSource>> {
        Some(Arc::new(HeapRegions))
    }
}

fn config(dim: usize, capacity: usize) -> HnswConfig {
    HnswConfig {
        m: 4,
        ef_construction: 16,
        quantization: Quantization::None,
        ..HnswConfig::new(dim, capacity, Metric::L2)
    }
}

fn small_index(capacity: usize) -> HnswIndex {
    HnswIndex::with_regions(config(4, capacity), Kernels::scalar(), &HeapRegions).unwrap()
}

fn point(i: usize) -> [f32; 4] {
    let x = i as f32;
    [x, (x * 0.7).sin(), (x * 1.3).cos(), 1.0]
}

#[test]
fn miri_link_slots_hold_what_was_written_and_upper_blocks_are_bounded() {
    let index = small_index(8);
    let g = &index.graph;
    let mut out = Vec::new();
    assert_eq!(g.init_node(0, 0), 0);
    g.write_links(0, 0, &[3, 5, 7]);
    g.read_links(0, 0, &mut out);
    assert_eq!(out, [3, 5, 7]);
    g.write_links(0, 0, &[1]);
    g.read_links(0, 0, &mut out);
    assert_eq!(out, [1], "a shorter list replaces a longer one");
    // A list longer than the slots is cut to max_links.
    let long: Vec<u32> = (0..20).collect();
    g.write_links(0, 0, &long);
    g.read_links(0, 0, &mut out);
    assert_eq!(out.len(), g.max_links(0));
    // Upper levels: a node gets its own block per level.
    assert_eq!(g.init_node(1, 2), 2);
    g.write_links(1, 1, &[0]);
    g.write_links(1, 2, &[2, 3]);
    g.read_links(1, 1, &mut out);
    assert_eq!(out, [0]);
    g.read_links(1, 2, &mut out);
    assert_eq!(out, [2, 3]);
    g.read_links(1, 3, &mut out);
    assert!(out.is_empty(), "no level 3 on node 1");
    g.read_links(0, 1, &mut out);
    assert!(out.is_empty(), "node 0 has no upper level");
    // Out-of-range ids read as empty, never out of bounds.
    g.read_links(99, 0, &mut out);
    assert!(out.is_empty());
}

#[test]
fn miri_upper_blocks_that_run_out_leave_the_node_on_level_0() {
    let g = super::graph::Graph::new(4, 4, 3, &HeapRegions).unwrap();
    assert_eq!(g.init_node(0, 2), 2);
    assert_eq!(
        g.init_node(1, 2),
        0,
        "only one block left: the node stays on level 0"
    );
    assert_eq!(g.init_node(2, 1), 1);
    assert_eq!(g.level(1), 0);
}

/// Issue 13 item 7: node `x` is being inserted; while it walks, another inserter `y` links to
/// `x` and adds the back-link `x → y`. When `x` then sets its own links, that back-link must
/// survive.
#[test]
fn miri_a_back_link_added_during_an_insert_survives_the_inserts_own_links() {
    let index = small_index(32);
    for i in 0..10 {
        index.insert(&point(i)).unwrap();
    }
    let x = index.claim(1).unwrap().start;
    let p = index.space.prepare(&point(10));
    // SAFETY: `x` was just claimed by this test and is linked nowhere yet.
    unsafe { index.space.write(x, &p) };
    assert_eq!(index.graph.init_node(x, 0), 0);
    // The concurrent inserter `y = 9` picked `x` as a neighbour and added its back-link.
    index.add_link(x, 9, 0);
    // `x`'s own walk chose other neighbours.
    index.set_own_links(x, 0, &[8, 7]);
    let mut out = Vec::new();
    index.graph.read_links(x, 0, &mut out);
    assert!(out.contains(&9), "back-link to 9 lost: {out:?}");
    assert!(out.contains(&8) && out.contains(&7), "{out:?}");
}

#[test]
fn miri_small_index_inserts_searches_deletes_and_compacts() {
    let n = 24;
    let mut index = small_index(n);
    for i in 0..n {
        assert_eq!(index.insert(&point(i)).unwrap(), i as u32);
    }
    for i in [0, 7, 23] {
        assert_eq!(index.search(&point(i), 1, 8).unwrap()[0].id, i as u32);
    }
    assert!(index.delete(7).unwrap());
    assert!(index.search(&point(7), 3, 8).unwrap().iter().all(|h| h.id != 7));
    index.repair();
    let (compact, map) = index.compact(n, 1).unwrap();
    assert_eq!(compact.len(), n - 1);
    assert!(!map.contains(&7));
    assert!(compact.degradations().is_empty(), "{:?}", compact.degradations());
    let hit = compact.search(&point(23), 1, 8).unwrap()[0].id;
    assert_eq!(map[hit as usize], 23);
}

#[test]
fn miri_concurrent_inserts_and_searches_see_complete_nodes() {
    let n = 24;
    let index = small_index(n);
    std::thread::scope(|s| {
        for t in 0..2 {
            let index = &index;
            s.spawn(move || {
                for i in (t..n).step_by(2) {
                    index.insert(&point(i)).unwrap();
                    let hits = index.search(&point(i), 2, 8).unwrap();
                    assert!(!hits.is_empty());
                }
            });
        }
    });
    assert_eq!(index.len(), n);
}

#[test]
fn a_source_that_cannot_be_kept_is_reported() {
    struct Unkept;
    impl RegionSource for Unkept {
        fn region(&self, bytes: usize) -> Result<Box<dyn Region>, IndexError> {
            HeapRegions.region(bytes)
        }
    }
    let index = HnswIndex::with_regions(config(4, 8), Kernels::scalar(), &Unkept).unwrap();
    assert_eq!(index.degradations(), [super::IndexDegradation::SourceNotKept]);
}

#[test]
fn a_capacity_beyond_this_machine_is_refused_before_allocating() {
    let huge = HnswConfig::new(768, (u32::MAX - 2) as usize, Metric::L2);
    match HnswIndex::with_regions(huge, Kernels::scalar(), &HeapRegions) {
        Err(IndexError::TooLarge { bytes, limit, .. }) => assert!(bytes > limit),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

/// The link rewrite never stores to the slot of an id that stays (so a reader loading slots one
/// by one mid-rewrite, each either old or new, always sees it), and ends holding exactly the new
/// list's distinct ids (the first that fit). Random old lists with holes and duplicates, random
/// new lists with duplicates, shorter and longer than the slots.
#[test]
fn miri_link_rewrite_never_moves_a_link_that_stays() {
    use super::graph::rewrite_plan;
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n) as u32
    };
    let rounds = if cfg!(miri) { 50 } else { 5_000 };
    for _ in 0..rounds {
        let slots = 1 + next(8) as usize;
        // Values 0 (VACANT) ..= 9; a small range forces overlaps and duplicates.
        let old: Vec<u32> = (0..slots).map(|_| next(10)).collect();
        let new: Vec<u32> = (0..next(12)).map(|_| 1 + next(9)).collect();
        let plan = rewrite_plan(&old, &new);
        let mut want: Vec<u32> = Vec::new();
        for &v in &new {
            if !want.contains(&v) && want.len() < slots {
                want.push(v);
            }
        }
        for &v in &want {
            if let Some(first) = old.iter().position(|&o| o == v) {
                assert!(
                    plan.iter().all(|&(i, _)| i != first),
                    "old {old:?} new {new:?}: plan {plan:?} stores to the slot of kept {v}"
                );
            }
        }
        let mut after = old.clone();
        for &(i, v) in &plan {
            after[i] = v;
        }
        let mut got: Vec<u32> = after.iter().copied().filter(|&v| v != 0).collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "old {old:?} new {new:?}: plan {plan:?}");
    }
}
