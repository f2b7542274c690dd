//! Parking idle workers without lost wake-ups.
//!
//! An idle worker must sleep (no busy spin by default) and a submitter must wake it, without the
//! classic lost wake-up: the worker checks its queues, finds them empty, and is about to sleep
//! when a submitter pushes and, seeing no sleeper yet, does not wake it. Two pieces prevent it:
//!
//! 1. [`Parker`]: a wake token (the state machine of std's generic parker: `EMPTY`, `PARKED`,
//!    `NOTIFIED`, with a mutex and condition variable). An `unpark` that comes before `park`
//!    leaves the token, and the `park` returns at once.
//! 2. [`Idle`]: a Dekker-style flag so submitters only pay for `unpark` when the worker sleeps.
//!
//!    ```text
//!    worker                                   submitter
//!    sleeping.store(true)                     queue.push(item)
//!    fence(SeqCst)                            fence(SeqCst)
//!    if queues non-empty { abort sleep }      if sleeping.load() { parker.unpark() }
//!    parker.park()
//!    ```
//!
//!    With both fences sequentially consistent, at least one side sees the other's write: the
//!    worker sees the item, or the submitter sees the flag and leaves a token.
//!
//! Under `cfg(loom)` the primitives come from loom ([`super::sync`]) and `loom_tests` checks the
//! handshake in every interleaving.

use super::sync::{AtomicBool, AtomicU8, Condvar, Mutex, Ordering, fence};

const EMPTY: u8 = 0;
const PARKED: u8 = 1;
const NOTIFIED: u8 = 2;

/// A one-token parker for one thread.
#[derive(Debug)]
pub(crate) struct Parker {
    state: AtomicU8,
    lock: Mutex<()>,
    cvar: Condvar,
}

impl Parker {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
        }
    }

    /// Blocks until a token is available, then consumes it. Only the owning thread calls this.
    pub(crate) fn park(&self) {
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        match self
            .state
            .compare_exchange(EMPTY, PARKED, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => {}
            Err(_) => {
                // NOTIFIED arrived between the first check and taking the lock.
                self.state.store(EMPTY, Ordering::SeqCst);
                return;
            }
        }
        loop {
            guard = self.cvar.wait(guard).unwrap_or_else(|p| p.into_inner());
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return;
            }
            // Spurious wake-up: still PARKED, wait again.
        }
    }

    /// Leaves a token and wakes the owner if it is parked.
    pub(crate) fn unpark(&self) {
        match self.state.swap(NOTIFIED, Ordering::SeqCst) {
            EMPTY | NOTIFIED => {}
            _ => {
                // Taking the lock orders this notify after the parker's wait began (it holds the
                // lock from its PARKED transition until `wait` releases it).
                drop(self.lock.lock().unwrap_or_else(|p| p.into_inner()));
                self.cvar.notify_one();
            }
        }
    }
}

/// A worker's sleeping flag and parker. See the module docs for the handshake.
#[derive(Debug)]
pub(crate) struct Idle {
    sleeping: AtomicBool,
    parker: Parker,
}

impl Idle {
    pub(crate) fn new() -> Self {
        Self {
            sleeping: AtomicBool::new(false),
            parker: Parker::new(),
        }
    }

    /// Worker side: announce sleep, re-check `has_work`, and park unless there is work.
    /// Returns whether it parked.
    pub(crate) fn sleep_unless(&self, has_work: impl Fn() -> bool) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if has_work() {
            self.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        self.parker.park();
        self.sleeping.store(false, Ordering::SeqCst);
        true
    }

    /// Whether the worker announced that it sleeps (a hint for choosing whom to wake).
    #[inline]
    pub(crate) fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::Relaxed)
    }

    /// Submitter side, after the work is visible: wake the worker if it sleeps. Returns whether
    /// it woke it.
    #[inline]
    pub(crate) fn wake_if_sleeping(&self) -> bool {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            self.parker.unpark();
            true
        } else {
            false
        }
    }

    /// Wakes the worker unconditionally (shutdown, resume).
    pub(crate) fn wake(&self) {
        self.parker.unpark();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn unpark_before_park_is_not_lost() {
        let p = Parker::new();
        p.unpark();
        p.park(); // returns at once: the token was left
    }

    /// Ping-pong 20 000 items through the handshake, one at a time: each item is only pushed
    /// after the previous was consumed, so the worker sleeps between almost every pair. A lost
    /// wake-up would hang the body; the watchdog turns that into a failure.
    #[test]
    fn no_lost_wakeups_under_ping_pong() {
        crate::exec::tests::within(std::time::Duration::from_secs(120), || {
            const N: usize = 20_000;
            let work = Arc::new(AtomicUsize::new(0));
            let done = Arc::new(AtomicUsize::new(0));
            let idle = Arc::new(Idle::new());
            let worker = {
                let (work, done, idle) = (work.clone(), done.clone(), idle.clone());
                std::thread::spawn(move || {
                    let mut parks = 0usize;
                    while done.load(Ordering::SeqCst) < N {
                        if work.swap(0, Ordering::SeqCst) == 1 {
                            done.fetch_add(1, Ordering::SeqCst);
                        } else if idle.sleep_unless(|| work.load(Ordering::SeqCst) != 0) {
                            parks += 1;
                        }
                    }
                    parks
                })
            };
            for i in 0..N {
                while done.load(Ordering::SeqCst) < i {
                    std::hint::spin_loop();
                }
                work.store(1, Ordering::SeqCst);
                idle.wake_if_sleeping();
            }
            let parks = worker.join().unwrap();
            assert_eq!(done.load(Ordering::SeqCst), N);
            // The worker really slept (the test exercises parking, not just spinning).
            assert!(parks > 0);
        });
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize;

    /// One item, one worker: in every interleaving the worker sees it and exits (a lost
    /// wake-up would be reported by loom as a deadlock).
    ///
    /// The worker checks the item with a load rather than consuming it with `swap`: loom 0.7
    /// can order a `swap` racing with a plain store in a way that breaks RMW atomicity
    /// (tokio-rs/loom#254, open), and then reports a deadlock no real machine can reach; with
    /// `swap` here loom showed exactly that history (the swap read 0, yet its write landed after
    /// the store of 1).
    #[test]
    fn submit_wakes_sleeping_worker() {
        loom::model(|| {
            let work = Arc::new(AtomicUsize::new(0));
            let idle = Arc::new(Idle::new());
            let worker = {
                let (work, idle) = (work.clone(), idle.clone());
                loom::thread::spawn(move || {
                    loop {
                        if work.load(Ordering::SeqCst) == 1 {
                            return;
                        }
                        idle.sleep_unless(|| work.load(Ordering::SeqCst) != 0);
                    }
                })
            };
            work.store(1, Ordering::SeqCst);
            idle.wake_if_sleeping();
            worker.join().unwrap();
        });
    }

    #[test]
    /// The owner parks, another thread unparks: the owner always returns.
    fn owner_parks_other_thread_unparks() {
        loom::model(|| {
            let p = Arc::new(Parker::new());
            let q = p.clone();
            let t = loom::thread::spawn(move || q.park());
            p.unpark();
            t.join().unwrap();
        });
    }

    /// Two wakes racing with one park: the token is consumed once, nothing hangs.
    #[test]
    fn parker_token_survives_racing_unparks() {
        loom::model(|| {
            let p = Arc::new(Parker::new());
            let q = p.clone();
            let t = loom::thread::spawn(move || q.unpark());
            p.unpark();
            p.park();
            t.join().unwrap();
        });
    }

    /// Negative control: announcing sleep *after* checking for work loses wake-ups, and loom
    /// finds the interleaving (so the test above could fail). Loom aborts the process on a
    /// deadlock (its destructors panic during unwinding), so `should_panic` cannot catch it:
    /// run it by hand and expect `deadlock; threads = ...` and an abort.
    #[test]
    #[ignore = "negative control: loom must report a deadlock and abort; run with --ignored"]
    fn check_before_announce_is_caught() {
        loom::model(|| {
            let work = Arc::new(AtomicUsize::new(0));
            let idle = Arc::new(Idle::new());
            let worker = {
                let (work, idle) = (work.clone(), idle.clone());
                loom::thread::spawn(move || {
                    while work.load(Ordering::SeqCst) == 0 {
                        // Wrong order: check, then announce, then park.
                        idle.sleeping.store(true, Ordering::SeqCst);
                        idle.parker.park();
                        idle.sleeping.store(false, Ordering::SeqCst);
                    }
                })
            };
            work.store(1, Ordering::SeqCst);
            idle.wake_if_sleeping();
            worker.join().unwrap();
        });
    }
}
