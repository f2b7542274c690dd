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
    atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence},
};
#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::{
    Condvar, Mutex,
    atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence},
};
