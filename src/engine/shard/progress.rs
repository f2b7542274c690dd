//! [`AbsorbProgress`]: the lock-free bookkeeping of one space's parallel absorption — which
//! slots absorbers have claimed, how far the linked prefix (`absorbed`) reaches, and how many
//! absorption tasks are queued or running. The per-slot `indexed` flags live with the slots'
//! metadata; [`AbsorbProgress::advance`] reads them through a closure. Modelled with loom
//! (`loom_tests` below: `RUSTFLAGS="--cfg loom" cargo test --release --lib loom`).
//!
//! **Pausing** ([`AbsorbProgress::pause`], for a snapshot of the index) is a plain lock, not
//! lock-free logic: an absorber holds a shared gate while it claims and links
//! ([`AbsorbProgress::enter`], which does not wait: a paused space's absorber returns at once),
//! and the snapshot takes the gate exclusively, which waits for the running absorbers to
//! finish. The `paused` flag only tells a finishing absorber not to queue another one; the
//! snapshot queues them again when it resumes (clears the flag, then tries to add an absorber):
//! one of the two sees the other (`loom_tests::a_resumed_space_always_gets_an_absorber`).

use std::ops::Range;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use crate::sync::{AtomicBool, AtomicUsize, Ordering, fence};

/// See the module docs. Both hand-offs here are store-buffering patterns (each side writes one
/// location, then reads the other's), which need sequential consistency: each side has a
/// `fence(SeqCst)` between its write and its read (inside these methods), so the argument
/// holds in the C11 model itself, not only for SeqCst accesses (which loom checks only as
/// AcqRel: without the fences, loom finds both failures).
#[derive(Debug)]
pub(crate) struct AbsorbProgress {
    /// Slots linked: a prefix, only raised.
    absorbed: AtomicUsize,
    /// Slots handed to absorbers (linked or being linked).
    claimed: AtomicUsize,
    /// Absorption tasks queued or running.
    absorbers: AtomicUsize,
    /// Held shared by each running absorber, exclusively by a pause.
    gate: RwLock<()>,
    /// Set while a pause is wanted or held.
    paused: AtomicBool,
}

/// Absorption of one space paused (see the module docs); it resumes when this is dropped.
#[derive(Debug)]
pub(crate) struct Paused<'a> {
    _gate: RwLockWriteGuard<'a, ()>,
    paused: &'a AtomicBool,
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

impl AbsorbProgress {
    pub(crate) fn new() -> Self {
        Self {
            absorbed: AtomicUsize::new(0),
            claimed: AtomicUsize::new(0),
            absorbers: AtomicUsize::new(0),
            gate: RwLock::new(()),
            paused: AtomicBool::new(false),
        }
    }

    /// Lets one absorber in unless absorption is paused (it never waits); it holds the
    /// returned guard while it claims and links.
    pub(crate) fn enter(&self) -> Option<RwLockReadGuard<'_, ()>> {
        match self.gate.try_read() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Stops new claims and waits for the running absorbers to finish: while the returned
    /// guard lives, no slot is claimed or linked, so the linked slots are exactly
    /// `0..absorbed()` unless an absorber failed mid-batch (then `claimed() > absorbed()`).
    pub(crate) fn pause(&self) -> Paused<'_> {
        self.paused.store(true, Ordering::SeqCst);
        let gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        Paused {
            _gate: gate,
            paused: &self.paused,
        }
    }

    /// Whether a pause is wanted or held (a finishing absorber then queues no other).
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Slots handed to absorbers.
    pub(crate) fn claimed(&self) -> usize {
        self.claimed.load(Ordering::SeqCst)
    }

    /// Marks slots `0..n` claimed and linked (recovery, before any absorber of the space runs:
    /// their nodes were loaded linked). Never lowers either count.
    pub(crate) fn restore_linked(&self, n: usize) {
        self.claimed.fetch_max(n, Ordering::SeqCst);
        self.absorbed.fetch_max(n, Ordering::SeqCst);
    }

    /// Slots linked (every slot below it is searchable in the index).
    pub(crate) fn absorbed(&self) -> usize {
        self.absorbed.load(Ordering::SeqCst)
    }

    /// Counts one more absorption task unless `max` are queued or running; returns whether it
    /// did (the caller then queues one, or calls [`absorber_done`](Self::absorber_done)).
    pub(crate) fn try_add_absorber(&self, max: usize) -> bool {
        // An observer's `len` store (before this call) is ordered before its read of the count.
        fence(Ordering::SeqCst);
        self.absorbers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1))
            .is_ok()
    }

    /// An absorption task finished (or was never queued).
    pub(crate) fn absorber_done(&self) {
        self.absorbers.fetch_sub(1, Ordering::SeqCst);
        // Ordered before the caller's read of `len` for `has_unclaimed`.
        fence(Ordering::SeqCst);
    }

    /// Whether slots below `len` (loaded SeqCst *after* [`absorber_done`](Self::absorber_done))
    /// wait for an absorber. An observer raises `len` (SeqCst) and then tries to add an
    /// absorber; a finishing absorber leaves the count and then checks this: one of the two
    /// sees the other, so no slot waits for an absorber that is never queued.
    pub(crate) fn has_unclaimed(&self, len: usize) -> bool {
        self.claimed.load(Ordering::SeqCst) < len
    }

    /// Claims the next up to `batch` slots below `len`, or `None` if all are claimed. Each slot
    /// is claimed once.
    pub(crate) fn claim(&self, len: usize, batch: usize) -> Option<Range<usize>> {
        let start = self
            .claimed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                (c < len).then(|| (c + batch).min(len))
            })
            .ok()?;
        Some(start..(start + batch).min(len))
    }

    /// Raises `absorbed` over the contiguous prefix of slots for which `indexed` holds (flags
    /// are only ever set), with `fetch_max`, so concurrent callers never lower it and any of
    /// them may carry it past slots another linked.
    pub(crate) fn advance(&self, indexed: impl Fn(usize) -> bool) {
        // The caller's flag stores are ordered before the flags read here: of two absorbers
        // that each set a flag and then advance, at least one sees both.
        fence(Ordering::SeqCst);
        let mut a = self.absorbed.load(Ordering::SeqCst);
        while indexed(a) {
            a += 1;
        }
        self.absorbed.fetch_max(a, Ordering::SeqCst);
    }
}

#[cfg(all(loom, test))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicBool;

    /// Two absorbers claim and link two slots (one per claim) while a reader reads
    /// `absorbed`: each slot is claimed once, every slot below any `absorbed` the reader sees
    /// is linked, and at the end `absorbed` covers both (without the fence in `advance`, loom
    /// finds an end with one: each absorber missed the flag the other had just set).
    #[test]
    fn absorbed_is_always_a_linked_prefix() {
        loom::model(|| {
            const LEN: usize = 2;
            let p = Arc::new(AbsorbProgress::new());
            let linked: Arc<Vec<AtomicBool>> = Arc::new((0..LEN).map(|_| AtomicBool::new(false)).collect());
            let claims: Arc<Vec<AtomicUsize>> = Arc::new((0..LEN).map(|_| AtomicUsize::new(0)).collect());
            let absorber =
                |p: Arc<AbsorbProgress>, linked: Arc<Vec<AtomicBool>>, claims: Arc<Vec<AtomicUsize>>| {
                    move || {
                        while let Some(r) = p.claim(LEN, 1) {
                            for s in r {
                                claims[s].fetch_add(1, Ordering::SeqCst);
                                linked[s].store(true, Ordering::SeqCst);
                            }
                            p.advance(|s| s < LEN && linked[s].load(Ordering::SeqCst));
                        }
                    }
                };
            let a = loom::thread::spawn(absorber(p.clone(), linked.clone(), claims.clone()));
            let b = loom::thread::spawn(absorber(p.clone(), linked.clone(), claims.clone()));
            let seen = p.absorbed();
            for s in 0..seen {
                assert!(
                    linked[s].load(Ordering::SeqCst),
                    "slot {s} below absorbed {seen} not linked"
                );
            }
            a.join().unwrap();
            b.join().unwrap();
            assert_eq!(p.absorbed(), LEN);
            for c in claims.iter() {
                assert_eq!(c.load(Ordering::SeqCst), 1);
            }
        });
    }

    /// An absorber finishes while its space is paused (it claimed nothing) and a snapshot
    /// resumes the space meanwhile (clears the flag, then tries to queue an absorber, as
    /// `index_files::save_all` does): either the finishing absorber sees the flag cleared and
    /// queues one, or the resume finds the count freed and queues one.
    #[test]
    fn a_resumed_space_always_gets_an_absorber() {
        loom::model(|| {
            let p = Arc::new(AbsorbProgress::new());
            p.paused.store(true, Ordering::SeqCst);
            assert!(p.try_add_absorber(1), "the running absorber");
            let absorber = {
                let p = p.clone();
                loom::thread::spawn(move || {
                    p.absorber_done();
                    p.has_unclaimed(1) && !p.is_paused() && p.try_add_absorber(1)
                })
            };
            p.paused.store(false, Ordering::SeqCst);
            let resumed = p.try_add_absorber(1);
            let requeued = absorber.join().unwrap();
            assert!(
                resumed || requeued,
                "slot 0 waits for an absorber after the resume"
            );
        });
    }

    /// An observer accepts a slot while the only absorber (at most one allowed) finishes
    /// having found nothing: either that absorber claims the slot, or one of the two queues a
    /// new absorber. No slot is left with no absorber coming.
    #[test]
    fn no_accepted_slot_waits_for_an_absorber_never_queued() {
        loom::model(|| {
            let p = Arc::new(AbsorbProgress::new());
            let len = Arc::new(AtomicUsize::new(0));
            assert!(p.try_add_absorber(1), "the running absorber");
            let absorber = {
                let (p, len) = (p.clone(), len.clone());
                loom::thread::spawn(move || {
                    let claimed = p.claim(len.load(Ordering::SeqCst), 8).is_some();
                    p.absorber_done();
                    let queued = p.has_unclaimed(len.load(Ordering::SeqCst)) && p.try_add_absorber(1);
                    claimed || queued
                })
            };
            len.store(1, Ordering::SeqCst);
            let observer_queued = p.try_add_absorber(1);
            let absorber_covered = absorber.join().unwrap();
            assert!(
                absorber_covered || observer_queued,
                "slot 0 has no absorber coming"
            );
        });
    }
}
