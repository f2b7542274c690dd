//! Errors of the index module.

use std::path::PathBuf;

/// What went wrong building, querying or persisting an index.
///
/// Every fallible operation validates its input before it changes anything, so an error never
/// leaves a half-inserted vector or a partly deleted node behind.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A vector's length differs from the index's dimension. Pass vectors of `expected` floats.
    #[error("vector has {got} components, the index holds {expected}-dimensional vectors")]
    DimensionMismatch {
        /// The index's dimension.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A vector holds NaN or an infinity at `position`; such a vector has no meaningful distance.
    #[error("vector component {position} is {value} (not finite)")]
    NonFinite {
        /// Index of the first bad component.
        position: usize,
        /// The bad value.
        value: f32,
    },
    /// A parameter or argument is out of its valid range (`k = 0`, `M < 2`, a zero dimension…).
    #[error("invalid input: {what}")]
    InvalidInput {
        /// What was wrong, in words.
        what: String,
    },
    /// The index is full: it was created with room for `capacity` vectors. Create a larger index
    /// (or compact this one after deletions).
    #[error("index is full ({capacity} vectors); create it with a larger capacity")]
    CapacityExceeded {
        /// The capacity the index was created with.
        capacity: usize,
    },
    /// An index of this capacity would need more memory than this machine has (physical
    /// memory plus swap); nothing was allocated. Create it with a smaller capacity (or, for a
    /// snapshot, load it on a machine with more memory).
    #[error("an index of capacity {capacity} needs {bytes} bytes; this machine has {limit}")]
    TooLarge {
        /// The capacity asked for.
        capacity: usize,
        /// The memory it would need.
        bytes: usize,
        /// The memory this machine has for it.
        limit: usize,
    },
    /// The id names no vector of this index.
    #[error("no vector with id {id}")]
    UnknownId {
        /// The id asked for.
        id: u32,
    },
    /// Memory for the index could not be obtained.
    #[error("cannot allocate {bytes} bytes for the index")]
    OutOfMemory {
        /// The size asked for.
        bytes: usize,
    },
    /// A snapshot file could not be read or written.
    #[error("snapshot I/O on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A snapshot file is truncated, corrupt, or from an unknown format version; nothing was
    /// loaded. Re-create the snapshot from a live index.
    #[error("snapshot {path} refused: {reason}")]
    CorruptSnapshot {
        /// The file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },
    /// The requested SIMD kernel set cannot run on this CPU.
    #[error("distance kernels {name:?} are not available on this CPU (available: {available})")]
    Unsupported {
        /// The kernel set asked for.
        name: String,
        /// The kernel sets this CPU can run.
        available: String,
    },
    /// A node-bound arena for the index could not be created (see [`crate::alloc::AllocError`]
    /// for what to do: a node outside the allowed ones, binding refused, no memory).
    #[error("node-bound memory for the index: {source}")]
    NodeMemory {
        /// What the arena reported.
        #[source]
        source: crate::alloc::AllocError,
    },
}
