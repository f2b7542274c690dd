//! The one scatter/gather to shards: a message per shard concerned, submitted to the shard's
//! node, answered by that shard's own workers into one [`Gather`], waited for until a deadline.
//! Search (`Engine::recall`'s fan-out), the requests of the caller's thread (`requests.rs`) and
//! the spread's hops (`spread.rs`) all go through [`scatter`].
//!
//! # One refusal
//!
//! A shard whose queue refuses a message is [`EngineError::Overloaded`] with
//! `retry_after = `[`retry_after`]`(depth / workers, QUEUE_ITEM_NS)` ([`refusal`]); an engine
//! closing is [`EngineError::Closed`]. Index-lag refusals of admission use the same formula with
//! the shard's measured absorption time per episode. What a refusal does to the call is the
//! call's rule, one of two, chosen by what the call can answer without that shard:
//!
//! - **needs every shard** (search, locate, rows, edges, forget): the call fails with the
//!   refusal. A search stops at the first refusal ([`OnRefusal::Stop`]); a request sends its
//!   other messages, which still run, and fails after gathering ([`OnRefusal::SendRest`]).
//! - **can answer with part** (a spread's hop): the refused hop is a missing reply, and the
//!   spread's result is `partial` (the caller ignores the refusal, [`OnRefusal::SendRest`]).

use std::time::{Duration, Instant};

use super::core::Inner;
use super::error::EngineError;
use super::task::Task;
use crate::exec::{ExecError, Gather, Missing, Priority, Rejected, ReplySlot, gather};

/// The assumed cost of one queued message per worker, for the `retry_after` of a full queue
/// (a guess: a search or a small observation on one worker).
pub(crate) const QUEUE_ITEM_NS: u64 = 20_000;

/// The one retry-after formula: `depth` items ahead, `per_item_ns` each (100 µs when nothing
/// was measured yet: a guess, an HNSW insert at 768 dims), at least one item, at most 10 s.
pub(crate) fn retry_after(depth: usize, per_item_ns: u64) -> Duration {
    let per = if per_item_ns == 0 { 100_000 } else { per_item_ns };
    Duration::from_nanos(per.saturating_mul(depth.max(1) as u64).min(10_000_000_000))
}

/// The one mapping of a refused submission to shard `shard`: a full queue is
/// [`EngineError::Overloaded`] (its depth shared by the shard's workers), anything else
/// [`EngineError::Closed`].
pub(crate) fn refusal(eng: &Inner, shard: usize, error: &ExecError) -> EngineError {
    match *error {
        ExecError::Overloaded { depth, .. } => EngineError::Overloaded {
            shard,
            depth,
            retry_after: retry_after(depth / eng.shard(shard).workers.max(1), QUEUE_ITEM_NS),
        },
        _ => EngineError::Closed,
    }
}

/// What [`scatter`] does when a shard's queue refuses a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnRefusal {
    /// Send nothing more and fail at once.
    Stop,
    /// Send the other messages; the refusal comes back in [`Scattered::refused`] (the refused
    /// part's reply is missing, [`Missing::Dropped`]).
    SendRest,
}

/// Messages sent by [`scatter`]: the shard of each reply slot, the gather, and the first
/// refusal.
pub(crate) struct Scattered<R> {
    /// `shards[i]` is the shard of reply `i`.
    pub(crate) shards: Vec<usize>,
    /// The replies.
    pub(crate) replies: Gather<R>,
    /// The first refusal ([`refusal`]), if a shard refused.
    pub(crate) refused: Option<EngineError>,
}

/// Sends `make(shard, part, reply)` for each `(shard, part)` at `class` to the shard's node.
///
/// # Errors
/// [`EngineError::Closed`] if the engine's workers are gone; with [`OnRefusal::Stop`], the
/// first [`refusal`].
pub(crate) fn scatter<P, R>(
    eng: &Inner,
    parts: Vec<(usize, P)>,
    class: Priority,
    on_refusal: OnRefusal,
    make: impl Fn(usize, P, ReplySlot<R>) -> Task,
) -> Result<Scattered<R>, EngineError> {
    let sub = eng.submitter()?;
    let shards: Vec<usize> = parts.iter().map(|p| p.0).collect();
    let (slots, replies) = gather(parts.len());
    let mut refused = None;
    for ((shard, part), slot) in parts.into_iter().zip(slots) {
        if let Err(Rejected { error, .. }) = sub.submit(eng.shard(shard).node, class, make(shard, part, slot))
        {
            let e = refusal(eng, shard, &error);
            if on_refusal == OnRefusal::Stop {
                return Err(e);
            }
            refused.get_or_insert(e);
        }
    }
    Ok(Scattered {
        shards,
        replies,
        refused,
    })
}

/// What the shards asked answered.
pub(crate) struct Answers<R> {
    /// `(shard, answer)` of every shard that answered.
    pub(crate) got: Vec<(usize, R)>,
    /// A shard that did not answer: which, how long the caller waited, and why.
    pub(crate) missing: Option<(usize, Duration, Missing)>,
}

impl<R> Answers<R> {
    /// The answers, or for a shard that did not answer [`EngineError::TimedOut`] (the deadline
    /// passed) or [`EngineError::Closed`] (its message was dropped unanswered: the engine is
    /// closing).
    pub(crate) fn complete(self) -> Result<Vec<(usize, R)>, EngineError> {
        match self.missing {
            None => Ok(self.got),
            Some((shard, waited, Missing::TimedOut)) => Err(EngineError::TimedOut {
                shard,
                waited,
                id: None,
            }),
            Some((_, _, Missing::Dropped)) => Err(EngineError::Closed),
        }
    }
}

/// Items grouped by the shard that owns them (by `id_of`), in shard order.
pub(crate) fn by_owner<T>(eng: &Inner, items: Vec<T>, id_of: impl Fn(&T) -> u64) -> Vec<(usize, Vec<T>)> {
    let mut groups: Vec<Vec<T>> = (0..eng.shards().len()).map(|_| Vec::new()).collect();
    for it in items {
        groups[eng.shard_of(id_of(&it))].push(it);
    }
    groups
        .into_iter()
        .enumerate()
        .filter(|g| !g.1.is_empty())
        .collect()
}

/// Sends `make(shard, part, reply)` for each `(shard, part)` at high priority and waits for the
/// answers until `deadline` (a request of the caller's thread: needs every shard).
///
/// # Errors
/// [`EngineError::Overloaded`] if a shard's queue refused its message (the messages already
/// sent still run), [`EngineError::Closed`] if the engine is closing.
pub(crate) fn ask<P, R>(
    eng: &Inner,
    parts: Vec<(usize, P)>,
    deadline: Instant,
    make: impl Fn(usize, P, ReplySlot<R>) -> Task,
) -> Result<Answers<R>, EngineError> {
    let started = Instant::now();
    let sent = scatter(eng, parts, Priority::High, OnRefusal::SendRest, make)?;
    let got = sent.replies.wait_until(deadline);
    if let Some(e) = sent.refused {
        return Err(e);
    }
    let shards = sent.shards;
    let missing = got
        .missing
        .first()
        .map(|&(i, why)| (shards[i], started.elapsed(), why));
    let got = got
        .replies
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.map(|r| (shards[i], r)))
        .collect();
    Ok(Answers { got, missing })
}
