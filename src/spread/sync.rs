//! The synchronisation primitives of the association graph: std's, or loom's when the unit tests
//! are built with `--cfg loom`, so that the model checker sees every access of the edge-block
//! publication (`RUSTFLAGS="--cfg loom" cargo test --release --lib spread::loom`). All of
//! `spread`'s atomics and locks come from here (one place to switch to `crate::sync`).

#[cfg(all(loom, test))]
pub(crate) use loom::sync::{
    Mutex,
    atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize},
};
#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::{
    Mutex,
    atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize},
};

/// A cell for plain (non-atomic) data shared between threads under a publication protocol: loom's
/// `UnsafeCell` under the model checker, so that a read not ordered after the write that
/// published it is reported as a causality violation; a thin wrapper over std's otherwise.
#[cfg(all(loom, test))]
pub(crate) use loom::cell::UnsafeCell;

/// See the loom twin above.
#[cfg(not(all(loom, test)))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(all(loom, test)))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(v: T) -> Self {
        Self(std::cell::UnsafeCell::new(v))
    }

    /// Runs `f` with a pointer to the value (for reading).
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable pointer to the value (for writing).
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
