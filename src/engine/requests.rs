//! Requests from the caller's thread to the shards that own some episodes: one high-priority
//! message per shard concerned, answered by that shard's own workers, gathered until a deadline.
//! The caller's thread never reads a shard's rows, metadata or graph itself.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::error::EngineError;
use super::facade::Inner;
use super::outbox::{Edge, EdgesDone};
use super::task::Task;
use crate::exec::{ExecError, Missing, Priority, Rejected, ReplySlot, gather};
use crate::spread::SpreadError;

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
pub(crate) fn by_owner<T>(inner: &Inner, items: Vec<T>, id_of: impl Fn(&T) -> u64) -> Vec<(usize, Vec<T>)> {
    let mut groups: Vec<Vec<T>> = (0..inner.shards.len()).map(|_| Vec::new()).collect();
    for it in items {
        groups[inner.shard_of(id_of(&it))].push(it);
    }
    groups
        .into_iter()
        .enumerate()
        .filter(|g| !g.1.is_empty())
        .collect()
}

/// Sends `make(shard, part, reply)` for each `(shard, part)` at high priority and waits for the
/// answers until `deadline`.
///
/// # Errors
/// [`EngineError::Overloaded`] if a shard's queue refused its message (the messages already
/// sent still run), [`EngineError::Closed`] if the engine is closing.
pub(crate) fn ask<P, R>(
    inner: &Inner,
    parts: Vec<(usize, P)>,
    deadline: Instant,
    make: impl Fn(usize, P, ReplySlot<R>) -> Task,
) -> Result<Answers<R>, EngineError> {
    let sub = inner.submitter.get().ok_or(EngineError::Closed)?;
    let started = Instant::now();
    let shards: Vec<usize> = parts.iter().map(|p| p.0).collect();
    let (slots, replies) = gather(parts.len());
    let mut refused = None;
    for ((shard, part), slot) in parts.into_iter().zip(slots) {
        if let Err(Rejected { error, .. }) =
            sub.submit(inner.shards[shard].node, Priority::High, make(shard, part, slot))
        {
            refused.get_or_insert(match error {
                ExecError::Overloaded { depth, .. } => EngineError::Overloaded {
                    shard,
                    depth,
                    retry_after: Duration::from_micros(50).saturating_mul(depth.min(1 << 20) as u32),
                },
                _ => EngineError::Closed,
            });
        }
    }
    let got = replies.wait_until(deadline);
    if let Some(e) = refused {
        return Err(e);
    }
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

/// Similarity by episode, and a shard that did not answer (with how long the caller waited).
pub(crate) type Scores = (HashMap<u64, f32>, Option<(usize, Duration, Missing)>);

/// Masked cosine similarity to `q` of the live episodes of `space` among `ids`, each computed by
/// its own shard's workers; the flag says whether a shard did not answer by `deadline`.
///
/// # Errors
/// As [`ask`].
pub(crate) fn masked(
    inner: &Inner,
    space: u16,
    q: &[f32],
    mask: &[bool],
    ids: &[u64],
    deadline: Instant,
) -> Result<Scores, EngineError> {
    let query: std::sync::Arc<[f32]> = q.into();
    let mask: std::sync::Arc<[bool]> = mask.into();
    let parts = by_owner(inner, ids.to_vec(), |id| *id);
    let a = ask(inner, parts, deadline, |shard, ids, reply| Task::Score {
        shard,
        space,
        query: query.clone(),
        mask: mask.clone(),
        ids,
        reply,
    })?;
    Ok((a.got.into_iter().flat_map(|g| g.1).collect(), a.missing))
}

/// The stored embeddings of the live episodes of `space` among `ids`, each read by its own
/// shard's workers.
///
/// # Errors
/// As [`ask`]; [`EngineError::TimedOut`] if a shard did not answer by `deadline`.
pub(crate) fn rows(
    inner: &Inner,
    space: u16,
    ids: &[u64],
    deadline: Instant,
) -> Result<HashMap<u64, Vec<f32>>, EngineError> {
    let parts = by_owner(inner, ids.to_vec(), |id| *id);
    let a = ask(inner, parts, deadline, |shard, ids, reply| Task::Rows {
        shard,
        space,
        ids,
        reply,
    })?;
    Ok(a.complete()?.into_iter().flat_map(|g| g.1).collect())
}

/// The space of each of `ids` that is live, as its own shard's workers see it (absent: not live).
///
/// # Errors
/// As [`ask`]; [`EngineError::TimedOut`] if a shard did not answer by `deadline`.
pub(crate) fn locate(
    inner: &Inner,
    ids: &[u64],
    deadline: Instant,
) -> Result<HashMap<u64, u16>, EngineError> {
    let parts = by_owner(inner, ids.to_vec(), |id| *id);
    let a = ask(inner, parts, deadline, |shard, ids, reply| Task::Locate {
        shard,
        ids,
        reply,
    })?;
    Ok(a.complete()?
        .into_iter()
        .flat_map(|g| g.1)
        .filter_map(|(id, space)| Some((id, space?)))
        .collect())
}

/// Stores `edges` (each on its source's shard, one message per shard, written by that shard's
/// workers) and waits until they are written or `deadline` passes. For the caller's thread: a
/// worker never waits for another shard (see the `outbox` module).
///
/// # Errors
/// As [`ask`]; [`EngineError::TimedOut`] if a shard did not answer by `deadline` (its edges may
/// still be written later); [`EngineError::InvalidInput`] or [`EngineError::Spread`] for the
/// first edge a graph refused (the others of the call are stored).
pub(crate) fn store_edges(inner: &Inner, edges: Vec<Edge>, deadline: Instant) -> Result<(), EngineError> {
    for (shard, results) in store_edges_each(inner, edges, deadline)? {
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err(match e {
                SpreadError::InvalidInput { what } => EngineError::InvalidInput { what },
                source => EngineError::Spread {
                    shard: Some(shard),
                    source,
                },
            });
        }
    }
    Ok(())
}

/// As [`store_edges`], but returns how many of `edges` the graphs refused instead of the first
/// refusal (for recovery, which counts the links it could not restore).
///
/// # Errors
/// As [`ask`]; [`EngineError::TimedOut`] if a shard did not answer by `deadline`.
pub(crate) fn store_edges_counting(
    inner: &Inner,
    edges: Vec<Edge>,
    deadline: Instant,
) -> Result<u64, EngineError> {
    let each = store_edges_each(inner, edges, deadline)?;
    Ok(each.iter().flat_map(|(_, r)| r).filter(|r| r.is_err()).count() as u64)
}

/// One shard's answer to an `edges` message: a result per edge, in order.
type EdgeResults = Vec<Result<(), SpreadError>>;

/// Sends `edges` to their source shards (one message per shard) and gathers each shard's
/// per-edge results.
fn store_edges_each(
    inner: &Inner,
    edges: Vec<Edge>,
    deadline: Instant,
) -> Result<Vec<(usize, EdgeResults)>, EngineError> {
    let parts = by_owner(inner, edges, |e| e.source);
    let a = ask(inner, parts, deadline, |shard, edges, reply| Task::Edges {
        shard,
        edges,
        done: Some(EdgesDone::Reply(reply)),
    })?;
    a.complete()
}
