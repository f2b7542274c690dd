//! Requests from the caller's thread to the shards that own some episodes: one high-priority
//! message per shard concerned, answered by that shard's own workers, gathered until a deadline.
//! The caller's thread never reads a shard's rows, metadata or graph itself.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::core::Inner;
use super::error::EngineError;
pub(crate) use super::fanout::{ask, by_owner};
use super::shard::Edge;
use super::task::EdgesDone;
use super::task::Task;
use crate::exec::Missing;
use crate::spread::SpreadError;

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

/// Forgets `id` on the workers of `shard` (its owner) and returns the space it was in (`None`:
/// it was not live there). The caller releases that space's quota.
///
/// # Errors
/// As [`ask`]; [`EngineError::TimedOut`] if the shard did not answer by `deadline`.
pub(crate) fn forget(
    inner: &Inner,
    shard: usize,
    id: u64,
    deadline: Instant,
) -> Result<Option<u16>, EngineError> {
    let parts = vec![(shard, id)];
    let a = ask(inner, parts, deadline, |shard, id, reply| Task::Forget {
        shard,
        id,
        reply,
    })?;
    Ok(a.complete()?.pop().and_then(|g| g.1))
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
