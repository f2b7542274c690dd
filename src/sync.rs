//! The crate's synchronisation primitives: `std`'s, or loom's when the unit tests are built with
//! `--cfg loom`, so the model checker sees (and reorders) every access made through them.
//!
//! Lock-free and handshake code (the arena's bump pointer, the pool's counters and record
//! reservation, the executor's park/wake handshake) imports its atomics, locks and fences from
//! here and nowhere else, so one switch puts all of it under the model checker. Run the models
//! with `RUSTFLAGS="--cfg loom" cargo test --release --lib --target-dir target/loom loom`
//! (`scripts/checkers.sh` does, in CI).
//!
//! Only test builds switch: loom is a dev-dependency, and a library built with `--cfg loom`
//! outside `cargo test` keeps `std`'s types. Code that is not modelled (crossbeam's queues, the
//! metrics' mutexes) uses `std` directly; loom treats each of its calls as one indivisible step.

#[cfg(all(loom, test))]
pub(crate) use loom::sync::{
    Condvar, Mutex,
    atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence},
};
#[cfg(all(loom, test))]
pub(crate) use loom::thread::yield_now;
#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::{
    Condvar, Mutex,
    atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence},
};
#[cfg(not(all(loom, test)))]
pub(crate) use std::thread::yield_now;

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
