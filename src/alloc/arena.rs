//! [`NodeArena`]: a region of memory bound to a NUMA node before its first touch, handing out
//! aligned chunks by atomic bump allocation.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use crossbeam::utils::CachePadded;
use memmap2::MmapMut;

use super::error::AllocError;
use super::placement::{self, PageSample, PlacementReport};
#[cfg(test)]
use super::policy::MAX_NODES;
use super::policy::{ArenaOptions, Binding, HugePageOutcome, MemPolicy, UnboundReason};
use super::sys;
use crate::sync::AtomicUsize;

/// A fixed-size region of anonymous memory whose pages come from one NUMA node (or an
/// interleave set), handing out aligned chunks.
///
/// ## Why the binding comes before the first touch
/// Linux places an anonymous page when it is first written (first touch), on the node the
/// memory policy names, or by default on the node of the CPU that touched it; a page once placed
/// stays there until someone migrates it. So the arena maps the region untouched, applies its
/// policy with `mbind`, and only then hands out memory: whichever thread writes first, the pages
/// land on the arena's node. [`NodeArena::placement_report`] checks this with `move_pages`.
///
/// ## Allocation
/// Bump allocation: one atomic offset, advanced with compare-and-swap, so any number of threads
/// may allocate concurrently. Nothing is freed individually; the whole region is unmapped when
/// the arena is dropped. The arena never runs destructors: it hands out raw memory
/// ([`NodeArena::alloc`]) or slices of `Copy` values ([`NodeArena::alloc_slice_copy`]); owners
/// of richer types drop them themselves (as [`RecordPool`](super::RecordPool) does).
///
/// Every refusal is typed: an error, or a fallback recorded in [`NodeArena::binding`] and
/// [`NodeArena::huge_pages`].
#[derive(Debug)]
pub struct NodeArena {
    /// Keeps the mapping alive; never dereferenced (all access goes through `base`).
    _map: MmapMut,
    base: NonNull<u8>,
    capacity: usize,
    page_size: usize,
    /// Offset of the first free byte. Padded: every allocating thread writes it.
    next: CachePadded<AtomicUsize>,
    binding: Binding,
    huge_pages: HugePageOutcome,
}

// SAFETY: the arena's memory is reached only through `base`; the shared state that changes after
// construction is the atomic `next`, and each chunk is handed out exactly once (bump allocation
// never reuses memory), so no two threads receive overlapping memory through the arena. The
// mapping itself (`MmapMut`) is Send and Sync.
unsafe impl Send for NodeArena {}
// SAFETY: see `Send`; `&NodeArena` methods only read immutable fields or use the atomic.
unsafe impl Sync for NodeArena {}

impl NodeArena {
    /// An arena of `capacity` bytes bound to `node` with `MPOL_BIND` and default options.
    ///
    /// # Errors
    /// Those of [`NodeArena::new`].
    pub fn on_node(node: u32, capacity: usize) -> Result<Self, AllocError> {
        Self::new(MemPolicy::Bind(node), capacity, &ArenaOptions::default())
    }

    /// An arena of `capacity` bytes (rounded up to whole pages) under `policy`.
    ///
    /// The nodes are checked against the nodes this process may use before `mbind` is called.
    /// Where binding is impossible (not Linux, ENOSYS, EPERM) the arena is still created, with
    /// [`Binding::Unbound`], unless `options.require_binding`.
    ///
    /// # Errors
    /// - [`AllocError::InvalidInput`]: zero capacity, an empty node set, a node ≥
    ///   [`MAX_NODES`](super::MAX_NODES) (checked before anything is sized by it);
    /// - [`AllocError::NodeNotAllowed`]: a node outside this process's allowed memory nodes;
    /// - [`AllocError::OutOfMemory`]: the mapping or the policy could not get memory;
    /// - [`AllocError::Unsupported`] / [`AllocError::PermissionDenied`]: binding impossible and
    ///   `options.require_binding`;
    /// - [`AllocError::HugePagesRefused`]: huge pages refused and `options.require_huge_pages`;
    /// - [`AllocError::Os`]: any other OS error.
    #[doc(alias = "mbind")]
    pub fn new(policy: MemPolicy, capacity: usize, options: &ArenaOptions) -> Result<Self, AllocError> {
        if capacity == 0 {
            return Err(AllocError::InvalidInput {
                what: "arena capacity must be > 0".into(),
            });
        }
        // Before anything is sized by a node index (`policy.nodes()` builds a bitset).
        policy.validate()?;
        let nodes = policy.nodes();
        if nodes.is_empty() {
            return Err(AllocError::InvalidInput {
                what: "memory policy names no node".into(),
            });
        }
        // Check in Rust first, so a bad node is a clear error rather than a bare EINVAL.
        if let Ok(allowed) = sys::allowed_mems()
            && !nodes.is_subset(&allowed)
        {
            return Err(AllocError::NodeNotAllowed {
                nodes: nodes.to_list_string(),
                allowed: allowed.to_list_string(),
            });
        }
        let (mut map, page_size, huge_pages) =
            sys::map_anonymous(capacity, options.huge_pages, options.require_huge_pages)?;
        let capacity = map.len();
        let base = NonNull::new(map.as_mut_ptr()).ok_or_else(|| AllocError::InvalidInput {
            what: "mmap returned a null mapping".into(),
        })?;
        let binding = match sys::mbind(&mut map, &policy) {
            Ok(()) => Binding::Bound { policy },
            Err(e @ (AllocError::Unsupported { .. } | AllocError::PermissionDenied { .. }))
                if options.require_binding =>
            {
                return Err(e);
            }
            Err(AllocError::Unsupported { .. }) => Binding::Unbound {
                requested: policy,
                reason: if cfg!(target_os = "linux") {
                    UnboundReason::NoKernelSupport
                } else {
                    UnboundReason::NotLinux
                },
            },
            Err(AllocError::PermissionDenied { .. }) => Binding::Unbound {
                requested: policy,
                reason: UnboundReason::PermissionDenied,
            },
            Err(e) => return Err(e),
        };
        Ok(Self {
            _map: map,
            base,
            capacity,
            page_size,
            next: CachePadded::new(AtomicUsize::new(0)),
            binding,
            huge_pages,
        })
    }

    /// Whether the memory policy is in force, and which.
    pub fn binding(&self) -> &Binding {
        &self.binding
    }

    /// What became of the huge-page request.
    pub fn huge_pages(&self) -> &HugePageOutcome {
        &self.huge_pages
    }

    /// The policy asked for (in force if [`Binding::Bound`]).
    pub fn policy(&self) -> &MemPolicy {
        match &self.binding {
            Binding::Bound { policy }
            | Binding::Unbound {
                requested: policy, ..
            } => policy,
        }
    }

    /// The node pages should be on (`None` for an interleaved arena).
    pub fn home_node(&self) -> Option<u32> {
        self.policy().home_node()
    }

    /// Size of the region in bytes (a whole number of pages).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes handed out so far, including alignment padding.
    pub fn used(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }

    /// Bytes still free (ignoring the padding a future alignment may need).
    pub fn remaining(&self) -> usize {
        self.capacity - self.used()
    }

    /// The size of the pages backing the region (base or explicit huge page size).
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// A chunk of `layout.size()` bytes aligned to `layout.align()`: uninitialized memory the
    /// caller owns until the arena is dropped (on a fresh arena it reads as zero, but callers
    /// should not rely on that).
    ///
    /// # Errors
    /// [`AllocError::ArenaFull`] if the request does not fit.
    pub fn alloc(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let base = self.base.as_ptr() as usize;
        let mut current = self.next.load(Ordering::Relaxed);
        loop {
            // `base + current` does not overflow: `current <= capacity` and `base + capacity` is
            // the end of a mapping. Aligning up can overflow for absurd alignments: that is full.
            let start = (base + current)
                .checked_next_multiple_of(layout.align())
                .map(|a| a - base);
            let end = start
                .and_then(|s| s.checked_add(layout.size()))
                .filter(|&e| e <= self.capacity);
            let (Some(start), Some(end)) = (start, end) else {
                return Err(AllocError::ArenaFull {
                    requested: layout.size().saturating_add(layout.align() - 1),
                    remaining: self.capacity - current,
                    capacity: self.capacity,
                });
            };
            match self
                .next
                .compare_exchange_weak(current, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                // SAFETY: `start <= capacity`, so the result lies within (or one past) the mapping
                // that `base` points into.
                Ok(_) => return Ok(unsafe { NonNull::new_unchecked(self.base.as_ptr().add(start)) }),
                Err(seen) => current = seen,
            }
        }
    }

    /// A slice of `len` copies of `value` in the arena. Writing the values is the first touch of
    /// their pages, so this is how to place data on the arena's node.
    ///
    /// # Errors
    /// [`AllocError::ArenaFull`] if it does not fit; [`AllocError::InvalidInput`] if the size
    /// overflows.
    #[allow(clippy::mut_from_ref)] // Each chunk is handed out exactly once (bump allocation).
    pub fn alloc_slice_copy<T: Copy>(&self, len: usize, value: T) -> Result<&mut [T], AllocError> {
        let layout = Layout::array::<T>(len).map_err(|_| AllocError::InvalidInput {
            what: format!("{len} elements of {} bytes overflow", size_of::<T>()),
        })?;
        let ptr = self.alloc(layout)?.cast::<T>();
        // Zero-sized values need no writes (and `len` may be anything).
        let writes = if size_of::<T>() == 0 { 0 } else { len };
        for i in 0..writes {
            // SAFETY: `ptr` is aligned for `T` and the chunk holds `len` of them; `i < len`.
            unsafe { ptr.as_ptr().add(i).write(value) };
        }
        // SAFETY: all `len` elements were initialized above; the chunk is handed out once and
        // lives as long as `self`, so this is the only reference to it.
        Ok(unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) })
    }

    /// Where the pages of the used part of the arena really live (`move_pages`), and the policy
    /// the kernel holds for it (`get_mempolicy`). Pages never touched count as not present.
    ///
    /// # Errors
    /// [`AllocError::Unsupported`] where `move_pages` is unavailable (not Linux, no NUMA
    /// support); [`AllocError::Os`] on other failures.
    #[doc(alias = "move_pages")]
    #[doc(alias = "get_mempolicy")]
    pub fn placement_report(&self, sample: PageSample) -> Result<PlacementReport, AllocError> {
        let len = self.used().next_multiple_of(self.page_size).min(self.capacity);
        placement::report(self.base.as_ptr(), len, self.page_size, self.policy(), sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena(capacity: usize) -> NodeArena {
        NodeArena::on_node(crate::alloc::first_allowed_node().unwrap(), capacity).unwrap()
    }

    #[test]
    fn rejects_zero_capacity_and_far_nodes() {
        assert!(matches!(
            NodeArena::on_node(crate::alloc::first_allowed_node().unwrap(), 0),
            Err(AllocError::InvalidInput { .. })
        ));
        let err = NodeArena::on_node(5000, 4096).unwrap_err();
        assert!(
            matches!(
                err,
                AllocError::NodeNotAllowed { .. } | AllocError::InvalidInput { .. }
            ),
            "{err}"
        );
    }

    #[test]
    fn absurd_node_indexes_are_refused_before_any_set_is_sized() {
        for node in [MAX_NODES, u32::MAX - 1, u32::MAX] {
            for policy in [MemPolicy::Bind(node), MemPolicy::Preferred(node)] {
                let err = NodeArena::new(policy, 4096, &ArenaOptions::default()).unwrap_err();
                assert!(matches!(err, AllocError::InvalidInput { .. }), "{err}");
            }
        }
        let err = NodeArena::on_node(u32::MAX, 4096).unwrap_err();
        assert!(err.to_string().contains("not a NUMA node index"), "{err}");
    }

    #[test]
    fn allocations_are_aligned_disjoint_and_bounded() {
        let a = arena(8192);
        assert_eq!(a.capacity() % a.page_size(), 0);
        let p1 = a.alloc(Layout::from_size_align(3, 1).unwrap()).unwrap();
        let p2 = a.alloc(Layout::from_size_align(64, 64).unwrap()).unwrap();
        assert_eq!(p2.as_ptr() as usize % 64, 0);
        assert!(p2.as_ptr() as usize >= p1.as_ptr() as usize + 3);
        assert_eq!(a.used(), 128);
        let err = a
            .alloc(Layout::from_size_align(a.capacity(), 8).unwrap())
            .unwrap_err();
        assert!(matches!(err, AllocError::ArenaFull { .. }), "{err}");
        // A failed request consumes nothing.
        assert_eq!(a.used(), 128);
    }

    #[test]
    fn slices_hold_their_values() {
        let a = arena(1 << 16);
        let s = a.alloc_slice_copy(1000, 7u64).unwrap();
        assert!(s.iter().all(|&v| v == 7));
        s[3] = 9;
        let t = a.alloc_slice_copy(10, 1u8).unwrap();
        assert_eq!(s[3], 9);
        assert_eq!(t.len(), 10);
    }

    #[test]
    fn concurrent_bump_allocation_hands_out_disjoint_chunks() {
        let a = arena(1 << 20);
        let mut all: Vec<usize> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..500)
                            .map(|_| {
                                a.alloc(Layout::from_size_align(48, 16).unwrap())
                                    .unwrap()
                                    .as_ptr() as usize
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        all.sort_unstable();
        for w in all.windows(2) {
            assert!(w[1] - w[0] >= 48, "overlapping chunks");
        }
        assert_eq!(all.len(), 2000);
    }

    #[test]
    fn bound_arena_reports_its_pages_on_its_node() {
        let a = arena(64 * 4096);
        a.alloc_slice_copy(a.capacity(), 1u8).unwrap();
        match a.placement_report(PageSample::All) {
            Ok(r) => {
                assert!(a.binding().is_bound(), "{}", a.binding());
                assert_eq!(r.pages_checked, a.capacity() / a.page_size());
                assert_eq!(r.pages_on_home, r.pages_checked, "{r}");
            }
            Err(AllocError::Unsupported { .. }) => println!("skipped: move_pages unsupported here"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn huge_page_requests_succeed_or_report_a_fallback() {
        for huge in [
            super::super::HugePages::Transparent,
            super::super::HugePages::Explicit,
        ] {
            let opts = ArenaOptions {
                huge_pages: huge,
                ..ArenaOptions::default()
            };
            let a = NodeArena::new(MemPolicy::Bind(0), 4 << 20, &opts).unwrap();
            match a.huge_pages() {
                HugePageOutcome::FellBack { reason, .. } => {
                    assert!(!reason.is_empty());
                    assert_eq!(a.page_size(), sys::base_page_size());
                }
                HugePageOutcome::Explicit { page_size } => assert_eq!(a.page_size(), *page_size),
                HugePageOutcome::Transparent { .. } => {}
                HugePageOutcome::NormalPages => panic!("huge pages asked, normal pages reported"),
            }
            a.alloc_slice_copy(1 << 20, 3u32).unwrap();
            let strict = ArenaOptions {
                huge_pages: huge,
                require_huge_pages: true,
                ..ArenaOptions::default()
            };
            if let Err(e) = NodeArena::new(MemPolicy::Bind(0), 4 << 20, &strict) {
                assert!(matches!(e, AllocError::HugePagesRefused { .. }), "{e}");
            }
        }
    }
}
