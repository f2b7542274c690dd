//! [`CloseGate`]: lets submitters race shutdown without losing an accepted item.
//!
//! A submit *enters* the gate (raising `inflight`, then checking `closing`) and leaves it after
//! its push; shutdown *closes* it (setting `closing`, then waiting for `inflight` to reach 0)
//! before it joins the workers and sweeps the queues. Both sides fence with `SeqCst` between
//! their write and their read, so in every
//! interleaving either the submit sees `closing` and hands its item back, or shutdown sees the
//! submit in flight and waits for its push, which the sweep then finds. `loom_tests` checks
//! exactly that (`RUSTFLAGS="--cfg loom" cargo test --release --lib exec::close::loom_tests`).

use crate::sync::{AtomicBool, AtomicUsize, Ordering, fence, yield_now};

/// The closing flag and the count of submits in flight.
#[derive(Debug)]
pub(crate) struct CloseGate {
    closing: AtomicBool,
    inflight: AtomicUsize,
}

/// A submit inside the gate; leaving (drop) lets a waiting `close` proceed.
pub(crate) struct Entered<'a>(&'a CloseGate);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CloseGate {
    pub(crate) fn new() -> Self {
        Self {
            closing: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
        }
    }

    /// Enters for one submit, or `None` once closing has begun.
    pub(crate) fn enter(&self) -> Option<Entered<'_>> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        // Store-buffering (Dekker) shape: each side writes one flag and reads the other's. The
        // SeqCst fences on both sides forbid both reads missing both writes (SeqCst accesses
        // alone suffice in C++20, but the fences make it hold under loom, which models SeqCst
        // accesses as AcqRel, and spell the requirement out).
        fence(Ordering::SeqCst);
        if self.closing.load(Ordering::SeqCst) {
            self.inflight.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Entered(self))
    }

    /// Refuses every later `enter` and waits for the submits inside to leave (each is a few
    /// instructions of queue push).
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        while self.inflight.load(Ordering::SeqCst) != 0 {
            yield_now();
        }
    }

    /// Whether closing has begun.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::{Arc, Mutex};

    /// One submitter racing shutdown: an item the submitter was told is accepted is always in
    /// the queue shutdown sweeps; a refused one never is.
    #[test]
    fn accepted_items_are_always_swept() {
        loom::model(|| {
            let gate = Arc::new(CloseGate::new());
            let queue = Arc::new(Mutex::new(Vec::new()));
            let submitter = {
                let (gate, queue) = (gate.clone(), queue.clone());
                loom::thread::spawn(move || match gate.enter() {
                    Some(_inside) => {
                        queue.lock().unwrap().push(1);
                        true
                    }
                    None => false,
                })
            };
            gate.close();
            let swept: Vec<i32> = queue.lock().unwrap().drain(..).collect();
            let accepted = submitter.join().unwrap();
            assert_eq!(swept.len(), usize::from(accepted));
        });
    }
}
