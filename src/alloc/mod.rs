//! Node-local memory and cache-conscious layout.
//!
//! ## Model
//! Every NUMA node gets its own [`NodeArena`]: an anonymous mapping whose memory policy is set
//! with `mbind` *before any page is touched*, because Linux places a page on first touch and
//! leaves it there. Whatever thread writes first, an arena's pages land on its node; the
//! [`PlacementReport`] proves it page by page with `move_pages`, and says which policy the kernel
//! holds (`get_mempolicy`). An arena hands out aligned chunks by atomic bump allocation.
//!
//! On top of an arena, a [`RecordPool`] recycles fixed-size records (spreading activation's
//! per-query records) through per-thread caches ([`PoolHandle`]) in front of a lock-free shared
//! free list, so that steady-state acquire/release never calls an allocator; [`PoolStats`]
//! counts hits, misses (the real allocator calls), the high-water mark and utilization.
//!
//! [`crate::diag::access`] measures what placement is worth: latency (pointer chase) and bandwidth (streaming
//! read) from workers on each node to arenas on each node.
//!
//! Refusals are typed: errors ([`AllocError`]) or fallbacks the arena keeps and reports
//! ([`Binding::Unbound`], [`HugePageOutcome::FellBack`]). Off Linux, arenas are plain memory and
//! report [`UnboundReason::NotLinux`].
//!
//! ## Example
//! ```
//! use std::sync::Arc;
//!
//! use locus::alloc::{NodeArena, PageSample, PoolConfig, RecordPool, Reset};
//!
//! # fn main() -> Result<(), locus::alloc::AllocError> {
//! // 1 MiB bound, before any page is touched, to the first node this process may use.
//! let node = locus::alloc::first_allowed_node()?;
//! let arena = Arc::new(NodeArena::on_node(node, 1 << 20)?);
//! println!("{}", arena.binding()); // "bound: bind to node N", or why not
//!
//! #[derive(Default)]
//! struct Visit {
//!     node: u64,
//!     energy: f32,
//! }
//! impl Reset for Visit {
//!     fn reset(&mut self) {
//!         *self = Self::default();
//!     }
//! }
//! let pool = RecordPool::<Visit>::new(arena.clone(), PoolConfig::with_max_records(1024))?;
//! let mut cache = pool.handle(); // one per thread
//! let mut visit = cache.acquire()?; // first acquire carves a slab: one miss
//! visit.node = 7;
//! visit.energy = 0.5;
//! cache.release(visit); // reset, kept in this thread's cache
//! let again = cache.acquire()?; // a hit: no allocator call
//! assert_eq!(again.node, 0);
//! assert_eq!(pool.stats().misses, 1);
//!
//! match arena.placement_report(PageSample::All) {
//!     Ok(report) => println!("{report}"), // pages per node, from move_pages
//!     Err(e) => println!("placement unknown here: {e}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! - [`layout`]: [`CachePadded`](layout::CachePadded) for contended state and the cache-line
//!   size the layouts assume (the one-line graph node is [`crate::spread::HotNode`]).

mod arena;
pub mod error;
pub mod layout;
#[cfg(all(loom, test))]
mod loom_tests;
mod placement;
mod policy;
mod pool;
mod stats;
// Under Miri (which runs no NUMA system call) the single-node fallback: plain anonymous memory,
// so the pool's free list and the arena's bump allocation can be checked by it.
#[cfg(all(target_os = "linux", not(miri)))]
mod sys_linux;
#[cfg(any(miri, not(target_os = "linux")))]
mod sys_other;

#[cfg(all(target_os = "linux", not(miri)))]
use sys_linux as sys;
#[cfg(any(miri, not(target_os = "linux")))]
use sys_other as sys;

pub use arena::NodeArena;
pub use error::AllocError;
pub use placement::{KernelPolicy, KernelPolicyMode, PageSample, PlacementReport, placement_of};
pub use policy::{ArenaOptions, Binding, HugePageOutcome, HugePages, MAX_NODES, MemPolicy, UnboundReason};
pub use pool::{PoolConfig, PoolHandle, Record, RecordPool, Reset};
pub use stats::PoolStats;

/// The nodes this process may allocate memory on, as the kernel reports them
/// (`get_mempolicy(MPOL_F_MEMS_ALLOWED)`); `{0}` off Linux.
///
/// # Errors
/// [`AllocError::Unsupported`] on a Linux kernel without NUMA support.
#[doc(alias = "get_mempolicy")]
pub fn allowed_memory_nodes() -> Result<crate::topology::NodeSet, AllocError> {
    sys::allowed_mems()
}

/// The lowest-numbered node this process may allocate memory on: where a caller with no
/// placement of its own (a test, an example, a diagnostic) should put an arena. Node 0 is not
/// always allowed (a cpuset can exclude it, and node ids need not start at 0).
///
/// # Errors
/// What [`allowed_memory_nodes`] returns, and [`AllocError::Unsupported`] when the allowed set
/// is empty.
pub fn first_allowed_node() -> Result<u32, AllocError> {
    allowed_memory_nodes()?.first().ok_or(AllocError::Unsupported {
        what: "an allowed memory node (the process's allowed set is empty)",
    })
}
