//! What an arena asks of the kernel (memory policy, huge pages) and what it got.
//!
//! The asks are [`MemPolicy`], [`HugePages`] and [`ArenaOptions`]; the answers are [`Binding`] and
//! [`HugePageOutcome`], which an arena keeps and reports, so that a refusal is data the caller can
//! see, never a silent downgrade.

use std::fmt;

use serde::Serialize;

use crate::topology::NodeSet;

/// Where an arena's pages must come from (the `mode` and `nodemask` of `mbind(2)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", content = "nodes", rename_all = "snake_case")]
pub enum MemPolicy {
    /// `MPOL_BIND`: only from this node; the allocation fails (or the OOM killer runs) rather
    /// than spill elsewhere. The default: a node-local shard wants its memory local or not at all.
    Bind(u32),
    /// `MPOL_PREFERRED`: from this node while it has free memory, else from the nearest other.
    Preferred(u32),
    /// `MPOL_INTERLEAVE`: page by page, round-robin over these nodes (for data every node reads
    /// equally, such as a shared read-only table).
    Interleave(NodeSet),
}

/// The number of NUMA nodes Linux supports at most (`MAX_NUMNODES` with the largest
/// `CONFIG_NODES_SHIFT`, 10): node indexes are below this.
pub const MAX_NODES: u32 = 1024;

impl MemPolicy {
    /// The nodes the policy names (empty for a node index of [`MAX_NODES`] or more, which
    /// [`MemPolicy::validate`] refuses; no set is ever sized by such an index).
    pub fn nodes(&self) -> NodeSet {
        match self {
            Self::Bind(n) | Self::Preferred(n) if *n < MAX_NODES => NodeSet::single(*n),
            Self::Bind(_) | Self::Preferred(_) => NodeSet::new(),
            Self::Interleave(set) => set.clone(),
        }
    }

    /// Checks that every node index is below [`MAX_NODES`] and that at least one node is named.
    ///
    /// # Errors
    /// [`AllocError::InvalidInput`](super::AllocError::InvalidInput) naming the bad node.
    pub fn validate(&self) -> Result<(), super::AllocError> {
        let bad = |what: String| Err(super::AllocError::InvalidInput { what });
        match self {
            Self::Bind(n) | Self::Preferred(n) if *n >= MAX_NODES => bad(format!(
                "node {n} is not a NUMA node index (Linux supports nodes 0..{MAX_NODES})"
            )),
            Self::Interleave(set) if set.last().is_some_and(|n| n >= MAX_NODES) => bad(format!(
                "interleave set {set} names a node at or above {MAX_NODES}"
            )),
            Self::Interleave(set) if set.is_empty() => bad("memory policy names no node".into()),
            _ => Ok(()),
        }
    }

    /// The node pages should live on, for single-node policies.
    pub fn home_node(&self) -> Option<u32> {
        match self {
            Self::Bind(n) | Self::Preferred(n) => Some(*n),
            Self::Interleave(_) => None,
        }
    }
}

impl fmt::Display for MemPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind(n) => write!(f, "bind to node {n}"),
            Self::Preferred(n) => write!(f, "prefer node {n}"),
            Self::Interleave(set) => write!(f, "interleave over nodes {set}"),
        }
    }
}

/// Which page size an arena asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HugePages {
    /// Base pages (4 KiB on x86_64), also where transparent huge pages are enabled system-wide
    /// (`madvise(MADV_NOHUGEPAGE)` opts the region out).
    #[default]
    None,
    /// Transparent huge pages: `madvise(MADV_HUGEPAGE)` on the region; the kernel backs aligned
    /// 2 MiB stretches with huge pages when it can.
    Transparent,
    /// Explicit huge pages from the hugetlbfs pool (`MAP_HUGETLB`); needs pages reserved in
    /// `/proc/sys/vm/nr_hugepages`. The capacity is rounded up to the huge page size.
    Explicit,
}

/// What an arena got for its [`HugePages`] request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HugePageOutcome {
    /// Base pages, as asked.
    NormalPages,
    /// `madvise(MADV_HUGEPAGE)` was accepted. Whether the kernel really uses huge pages also
    /// depends on `/sys/kernel/mm/transparent_hugepage/enabled`, reported here.
    Transparent {
        /// The THP mode in force (`always`, `madvise` or `never`), if readable.
        thp_mode: Option<String>,
    },
    /// The region is backed by explicit huge pages.
    Explicit {
        /// The huge page size in bytes.
        page_size: usize,
    },
    /// Huge pages were asked for and refused; the arena uses base pages.
    FellBack {
        /// What was asked for.
        requested: HugePages,
        /// Why it was refused (the OS error, or the THP setting).
        reason: String,
    },
}

/// Why an arena is not bound to its node although it asked to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnboundReason {
    /// Not Linux: there is no memory-policy interface; the arena is plain memory.
    NotLinux,
    /// The kernel was built without NUMA support (ENOSYS from `mbind`).
    NoKernelSupport,
    /// The OS refused (EPERM), e.g. a seccomp filter forbids `mbind`.
    PermissionDenied,
}

impl fmt::Display for UnboundReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotLinux => "not Linux: no memory policy interface",
            Self::NoKernelSupport => "kernel has no NUMA support (ENOSYS)",
            Self::PermissionDenied => "mbind not permitted (EPERM)",
        })
    }
}

/// Whether an arena's policy is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Binding {
    /// `mbind` accepted the policy before any page was touched.
    Bound {
        /// The policy in force.
        policy: MemPolicy,
    },
    /// The policy could not be applied; pages go wherever the process's default policy puts
    /// them (usually the node of the touching thread).
    Unbound {
        /// The policy that was asked for.
        requested: MemPolicy,
        /// Why it is not in force.
        reason: UnboundReason,
    },
}

impl Binding {
    /// Whether the policy is in force.
    pub fn is_bound(&self) -> bool {
        matches!(self, Self::Bound { .. })
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bound { policy } => write!(f, "bound: {policy}"),
            Self::Unbound { requested, reason } => write!(f, "UNBOUND ({reason}); asked to {requested}"),
        }
    }
}

/// How to create a [`NodeArena`](super::NodeArena).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArenaOptions {
    /// Page size to ask for.
    pub huge_pages: HugePages,
    /// Fail with [`AllocError::Unsupported`](super::AllocError::Unsupported) or
    /// [`AllocError::PermissionDenied`](super::AllocError::PermissionDenied) instead of falling
    /// back to [`Binding::Unbound`].
    pub require_binding: bool,
    /// Fail with [`AllocError::HugePagesRefused`](super::AllocError::HugePagesRefused) instead of
    /// falling back to base pages.
    pub require_huge_pages: bool,
}
