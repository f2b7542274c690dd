//! The synchronisation primitives of the idle/park handshake and the close gate, from `std` or, under `cfg(loom)`,
//! from loom, so the model checker can explore every interleaving of park and wake
//! (`RUSTFLAGS="--cfg loom" cargo test --release --lib exec::park::loom_tests`).

#[cfg(loom)]
pub(crate) use loom::sync::{
    Condvar, Mutex,
    atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering, fence},
};
#[cfg(loom)]
pub(crate) use loom::thread::yield_now;
#[cfg(not(loom))]
pub(crate) use std::sync::{
    Condvar, Mutex,
    atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering, fence},
};
#[cfg(not(loom))]
pub(crate) use std::thread::yield_now;
