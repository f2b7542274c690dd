//! Reply paths: a caller that submits work to one or many workers waits for their answers, with
//! a deadline.
//!
//! [`gather`] makes `n` [`ReplySlot`]s (one per submitted item, each sent with its item) and one
//! [`Gather`] that the caller keeps. A handler answers with [`ReplySlot::send`]; a slot dropped
//! unanswered (the handler panicked, or shutdown handed the item back) is recorded as
//! [`Missing::Dropped`] at once, so the caller never waits for an answer that cannot come.
//! [`Gather::wait_until`] returns when every slot has answered or been dropped, or at the
//! deadline, with whatever arrived: a fan-out merges what it has and reports what is missing.
//! [`oneshot`] is the one-slot case.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use locus::exec::reply::gather;
//!
//! let (slots, replies) = gather::<u32>(3);
//! for (i, slot) in slots.into_iter().enumerate() {
//!     if i < 2 {
//!         std::thread::spawn(move || slot.send(i as u32 * 10));
//!     } // slot 2 is dropped unanswered
//! }
//! let got = replies.wait_until(Instant::now() + Duration::from_secs(5));
//! assert_eq!(got.replies[..2], [Some(0), Some(10)]);
//! assert_eq!(got.missing, [(2, locus::exec::reply::Missing::Dropped)]);
//! ```

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;

use super::error::ExecError;

struct State<R> {
    replies: Vec<Option<R>>,
    dropped: Vec<bool>,
    /// Slots neither answered nor dropped.
    pending: usize,
}

struct Inner<R> {
    state: Mutex<State<R>>,
    done: Condvar,
}

impl<R> Inner<R> {
    fn lock(&self) -> MutexGuard<'_, State<R>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn settle(&self, index: usize, value: Option<R>) {
        let mut s = self.lock();
        match value {
            Some(v) => s.replies[index] = Some(v),
            None => s.dropped[index] = true,
        }
        s.pending -= 1;
        if s.pending == 0 {
            self.done.notify_all();
        }
    }
}

/// Where one answer goes. Send it with [`ReplySlot::send`]; dropping it unanswered tells the
/// waiting caller at once ([`Missing::Dropped`]).
pub struct ReplySlot<R> {
    inner: Arc<Inner<R>>,
    index: usize,
    settled: bool,
}

impl<R> std::fmt::Debug for ReplySlot<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplySlot").field("index", &self.index).finish()
    }
}

impl<R> ReplySlot<R> {
    /// The slot's position among the gathered replies.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Delivers the answer (a caller that already gave up at its deadline ignores it).
    pub fn send(mut self, value: R) {
        self.settled = true;
        self.inner.settle(self.index, Some(value));
    }
}

impl<R> Drop for ReplySlot<R> {
    fn drop(&mut self) {
        if !self.settled {
            self.inner.settle(self.index, None);
        }
    }
}

/// Why a reply is missing from a [`Gathered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// The deadline passed first.
    TimedOut,
    /// The slot was dropped unanswered.
    Dropped,
}

/// What [`Gather::wait_until`] collected.
#[derive(Debug)]
pub struct Gathered<R> {
    /// Reply `i` came from slot `i` (`None` where it is missing).
    pub replies: Vec<Option<R>>,
    /// The missing slots and why, by index.
    pub missing: Vec<(usize, Missing)>,
}

impl<R> Gathered<R> {
    /// Whether every slot answered.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// The caller's end of [`gather`].
pub struct Gather<R> {
    inner: Arc<Inner<R>>,
}

impl<R> std::fmt::Debug for Gather<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gather").finish_non_exhaustive()
    }
}

/// `n` reply slots and the one [`Gather`] that waits for them.
pub fn gather<R>(n: usize) -> (Vec<ReplySlot<R>>, Gather<R>) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            replies: (0..n).map(|_| None).collect(),
            dropped: vec![false; n],
            pending: n,
        }),
        done: Condvar::new(),
    });
    let slots = (0..n)
        .map(|index| ReplySlot {
            inner: inner.clone(),
            index,
            settled: false,
        })
        .collect();
    (slots, Gather { inner })
}

/// One reply slot and its waiter.
pub fn oneshot<R>() -> (ReplySlot<R>, Gather<R>) {
    let (mut slots, g) = gather(1);
    // `gather(1)` made exactly one slot.
    let slot = slots
        .pop()
        .unwrap_or_else(|| unreachable!("gather(1) returns one slot"));
    (slot, g)
}

impl<R> Gather<R> {
    /// Waits until every slot has answered or been dropped, or until `deadline`; returns what
    /// arrived. Never blocks past the deadline.
    pub fn wait_until(self, deadline: Instant) -> Gathered<R> {
        let mut s = self.inner.lock();
        while s.pending > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            s = match self.inner.done.wait_timeout(s, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        let replies: Vec<Option<R>> = s.replies.iter_mut().map(Option::take).collect();
        let missing = replies
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_none())
            .map(|(i, _)| {
                (
                    i,
                    if s.dropped[i] {
                        Missing::Dropped
                    } else {
                        Missing::TimedOut
                    },
                )
            })
            .collect();
        Gathered { replies, missing }
    }

    /// The answer of a [`oneshot`] (the first slot), waiting until `deadline`.
    ///
    /// # Errors
    /// [`ExecError::DeadlineExceeded`] if none came in time; [`ExecError::NoReply`] if the slot
    /// was dropped unanswered.
    pub fn wait_one(self, deadline: Instant) -> Result<R, ExecError> {
        let started = Instant::now();
        let mut g = self.wait_until(deadline);
        match g.replies.first_mut().and_then(Option::take) {
            Some(v) => Ok(v),
            None => match g.missing.first() {
                Some((_, Missing::Dropped)) => Err(ExecError::NoReply),
                _ => Err(ExecError::DeadlineExceeded {
                    waited: started.elapsed(),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn all_answers_arrive_in_slot_order() {
        let (slots, g) = gather::<usize>(4);
        let hs: Vec<_> = slots
            .into_iter()
            .rev()
            .map(|s| {
                std::thread::spawn(move || {
                    let v = s.index() * 2;
                    s.send(v)
                })
            })
            .collect();
        let got = g.wait_until(Instant::now() + Duration::from_secs(10));
        for h in hs {
            h.join().unwrap();
        }
        assert!(got.is_complete());
        assert_eq!(got.replies, [Some(0), Some(2), Some(4), Some(6)]);
    }

    #[test]
    fn deadline_returns_partial_and_never_blocks_past_it() {
        let (mut slots, g) = gather::<u8>(2);
        let late = slots.pop().unwrap();
        slots.pop().unwrap().send(7);
        let t = Instant::now();
        let got = g.wait_until(t + Duration::from_millis(50));
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(got.replies, [Some(7), None]);
        assert_eq!(got.missing, [(1, Missing::TimedOut)]);
        late.send(1); // a late answer is harmless
    }

    #[test]
    fn dropped_slot_ends_the_wait_at_once() {
        let (slot, g) = oneshot::<u8>();
        drop(slot);
        let t = Instant::now();
        assert!(matches!(
            g.wait_one(t + Duration::from_secs(30)),
            Err(ExecError::NoReply)
        ));
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
