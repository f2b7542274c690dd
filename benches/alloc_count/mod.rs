//! A global allocator that counts calls into the system allocator, shared by the benches that
//! report allocator calls per operation (`pool`, `spread`). A bench installs it with
//! `#[global_allocator] static GLOBAL: alloc_count::Counting = alloc_count::Counting;` and reads
//! [`calls`] before and after the work it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts calls into the system allocator (alloc, alloc_zeroed, realloc; frees are not counted).
pub struct Counting;

static CALLS: AtomicU64 = AtomicU64::new(0);

/// Allocator calls so far in this process.
pub fn calls() -> u64 {
    CALLS.load(Ordering::Relaxed)
}

// SAFETY: forwards every call unchanged to `System`, which upholds `GlobalAlloc`'s contract.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}
