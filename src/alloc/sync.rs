//! The atomics of the alloc module: std's, or loom's when the unit tests are built with
//! `--cfg loom`, so that the model checker sees (and reorders) every access of the bump allocator
//! and the pool's counters (and the mutex of the pool's handle registry, which is held across
//! those atomics). Run: `RUSTFLAGS="--cfg loom" cargo test --lib --release loom`.
//!
//! crossbeam's `ArrayQueue` (the pools' shared list) is not instrumented: loom treats each push
//! and pop as one indivisible step. crossbeam model-checks it itself (`crossbeam_loom`).

#[cfg(all(loom, test))]
pub(crate) use loom::sync::Mutex;
#[cfg(all(loom, test))]
pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize};
#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::Mutex;
#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize};
