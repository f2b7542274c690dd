//! Errors of the alloc module.

use crate::sys::SysError;

/// What went wrong creating, binding, inspecting or drawing from node-local memory.
///
/// Refusals the caller can live with (no NUMA support in the kernel, binding forbidden, huge pages
/// not available) are not errors unless the caller asked for strictness: they come back as typed
/// fallbacks ([`Binding::Unbound`](super::Binding::Unbound),
/// [`HugePageOutcome::FellBack`](super::HugePageOutcome::FellBack)) that the arena reports.
#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    /// An argument is out of range (zero capacity, a node index beyond what the kernel supports,
    /// a zero-sized record type…). Fix the call.
    #[error("invalid input: {what}")]
    InvalidInput {
        /// What was wrong.
        what: String,
    },
    /// The node is not one this process may allocate on (not in `cpuset.mems`, offline, or not
    /// present; EINVAL from `mbind`). Choose a node from
    /// [`Topology::allowed_mems`](crate::topology::Topology::allowed_mems).
    #[error("node(s) {nodes} not allowed for this process's memory (allowed: {allowed})")]
    NodeNotAllowed {
        /// The nodes asked for, as a list (`0-1,3`).
        nodes: String,
        /// The nodes this process may use, as a list, or `unknown`.
        allowed: String,
    },
    /// The kernel has no NUMA memory-policy support (ENOSYS), or this is not Linux, and the
    /// caller asked for a real binding ([`ArenaOptions::require_binding`](super::ArenaOptions)).
    #[error("{what} is not supported here")]
    Unsupported {
        /// What was asked for.
        what: &'static str,
    },
    /// The OS refused a memory-policy change (EPERM), and the caller asked for a real binding.
    #[error("permission denied by the OS for {call}")]
    PermissionDenied {
        /// The system call.
        call: &'static str,
    },
    /// The kernel could not find memory for the mapping or its policy (ENOMEM). Use a smaller
    /// arena or another node.
    #[error("out of memory in {call} ({bytes} bytes)")]
    OutOfMemory {
        /// The system call.
        call: &'static str,
        /// The size asked for.
        bytes: usize,
    },
    /// The arena has no room left for the request. Create a bigger arena, or another one.
    #[error("arena full: asked for {requested} bytes, {remaining} of {capacity} left")]
    ArenaFull {
        /// Bytes asked for (including alignment padding).
        requested: usize,
        /// Bytes still free.
        remaining: usize,
        /// The arena's capacity.
        capacity: usize,
    },
    /// Every record the pool may hold is in use, cached by another thread, or (briefly) in a
    /// slab another thread is carving. Release records, or give the pool a larger `max_records`.
    #[error("record pool exhausted: all {max_records} records in use")]
    PoolExhausted {
        /// The pool's limit.
        max_records: usize,
    },
    /// A huge-page mapping was required ([`ArenaOptions::require_huge_pages`](super::ArenaOptions))
    /// and the OS refused it.
    #[error("huge pages refused: {reason}")]
    HugePagesRefused {
        /// Why.
        reason: String,
    },
    /// A system call failed with an errno that has no more specific variant: the crate's one
    /// failed-call shape ([`SysError`]: the call and its errno), passed on unchanged.
    #[error(transparent)]
    Os(SysError),
}
