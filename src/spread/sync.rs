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
