//! Admission of observations, one at a time ([`Engine::observe`](super::Engine::observe)) or in batches
//! ([`Engine::observe_batch`](super::Engine::observe_batch)): validation, id assignment, quota and index-lag checks on the
//! caller's thread, then one task per shard; and the settling of each answer (metrics, quota
//! released on refusal).
//!
//! A batch costs one cross-thread handoff per shard instead of one per episode, which is what
//! lets a burst of 100K observations a second through on a two-core machine: at that rate the
//! handoff and the wake-up of a sleeping worker cost more than storing the episode.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::core::{Inner, RESERVED_ID};
use super::error::EngineError;
use super::fanout::{refusal, retry_after};
use super::log::Guarantee;
use super::metrics::RejectReason;
use super::requests;
use super::shard::Prepared;
use super::task::Task;
use super::types::{Episode, EpisodeId};
use crate::exec::{ExecError, Priority, Rejected, oneshot};

/// Unit-normalises `v` after checking it (dimension, finite, not zero).
pub(super) fn checked_unit(v: &[f32], dim: usize) -> Result<Vec<f32>, EngineError> {
    if v.len() != dim {
        return Err(EngineError::DimensionMismatch {
            expected: dim,
            got: v.len(),
        });
    }
    if let Some((position, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(EngineError::NonFinite { position, value });
    }
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(EngineError::ZeroVector);
    }
    Ok(v.iter().map(|x| (f64::from(*x) / norm) as f32).collect())
}

/// What became of an observation handed to its shard.
pub(super) enum Answer {
    /// The shard stored it, or refused it with this error.
    Stored(Result<EpisodeId, EngineError>),
    /// No answer within the deadline (waited this long): it may still be stored.
    TimedOut(Duration),
    /// The shard dropped it (closing): not stored.
    Lost,
}

impl Answer {
    /// The answer of a wait that failed with `e`.
    pub(super) fn from_wait(e: &ExecError) -> Self {
        match e {
            &ExecError::DeadlineExceeded { waited } => Answer::TimedOut(waited),
            _ => Answer::Lost,
        }
    }
}

/// Validates `ep`, gives it an id, and takes its quota and room in its shard's append
/// buffer; on error nothing is taken. The caller submits it and settles the answer with
/// [`settle`](settle) (which releases the quota on refusal).
pub(super) fn admit(eng: &Inner, ep: Episode) -> Result<Prepared, EngineError> {
    let space = eng.space_named(ep.space.as_deref())?;
    let shard_hint = ep.id.map(|id| eng.shard_of(id)).unwrap_or(0);
    // Refused before any work when every shard's buffer of this space is full (whichever
    // shard the episode goes to would refuse it): under overload a refusal must be cheap.
    let limits = &eng.config().admission;
    if let Some(full) = all_buffers_full(eng, space) {
        return Err(full);
    }
    let invalid = |e: EngineError| {
        eng.shard(shard_hint).metrics.reject(space, RejectReason::Invalid);
        e
    };
    let embedding = checked_unit(&ep.embedding, eng.dim()).map_err(invalid)?;
    if ep.payload.len() > limits.max_payload || ep.links.len() > limits.max_links {
        return Err(invalid(EngineError::InvalidInput {
            what: format!(
                "payload of {} bytes (max {}) or {} links (max {})",
                ep.payload.len(),
                limits.max_payload,
                ep.links.len(),
                limits.max_links
            ),
        }));
    }
    for l in &ep.links {
        if !l.weight.is_finite() || l.weight <= 0.0 {
            return Err(invalid(EngineError::InvalidInput {
                what: format!("link weight {} (must be finite and > 0)", l.weight),
            }));
        }
        match eng.shard(eng.shard_of(l.target)).locate(l.target) {
            Some((s, _)) if s == space => {}
            _ => return Err(invalid(EngineError::UnknownEpisode { id: l.target })),
        }
    }
    let id = match ep.id {
        Some(id) => {
            if id == RESERVED_ID {
                return Err(invalid(EngineError::InvalidInput {
                    what: format!("episode id {id} (u64::MAX is reserved; give one below it)"),
                }));
            }
            if eng.shard(eng.shard_of(id)).ids().contains_key(&id) {
                eng.shard(eng.shard_of(id))
                    .metrics
                    .reject(space, RejectReason::Duplicate);
                return Err(EngineError::DuplicateId { id });
            }
            id
        }
        None => loop {
            let id = eng.fresh_id().ok_or_else(|| EngineError::InvalidInput {
                what: "automatic ids are used up (every id below u64::MAX is taken or was \
                       generated): give ids with Episode::with_id"
                    .into(),
            })?;
            if !eng.shard(eng.shard_of(id)).ids().contains_key(&id) {
                break id;
            }
        },
    };
    let s = eng.shard_of(id);
    let shard = &eng.shard(s);
    let info = eng.space(space);
    if !info.try_take() {
        shard.metrics.reject(space, RejectReason::Quota);
        return Err(EngineError::QuotaExceeded {
            space: info.name().to_owned(),
            quota: info.quota(),
        });
    }
    let sp = &shard.spaces[space as usize];
    // Counted as pending at once, so that the observations of one batch count against
    // `max_unindexed` before any of them is stored.
    let lag = sp.admit_pending();
    if lag >= limits.max_unindexed {
        sp.pending_done();
        info.release();
        shard.metrics.reject(space, RejectReason::IndexLag);
        eng.schedule_absorb(s, space);
        return Err(EngineError::Overloaded {
            shard: s,
            depth: lag,
            retry_after: retry_after(
                lag - limits.max_unindexed + 1,
                shard.absorb_ns.load(Ordering::Relaxed),
            ),
        });
    }
    // A given id moves the generator past it only once it is accepted: a refused one leaves
    // the generator where it was.
    if ep.id.is_some() {
        eng.id_taken(id);
    }
    Ok(Prepared {
        id,
        space,
        embedding,
        payload: ep.payload,
        timestamp: ep.timestamp,
        links: ep.links,
        stream: ep.stream,
    })
}

/// [`EngineError::Overloaded`] (for the least full shard) if every shard's append buffer
/// of `space` is at the limit, counted as an index-lag refusal there.
fn all_buffers_full(eng: &Inner, space: u16) -> Option<EngineError> {
    let max = eng.config().admission.max_unindexed;
    let (s, lag) = eng
        .shards()
        .iter()
        .enumerate()
        .map(|(s, sh)| (s, sh.spaces[space as usize].lag()))
        .min_by_key(|&(_, lag)| lag)?;
    if lag < max {
        return None;
    }
    let shard = &eng.shard(s);
    shard.metrics.reject(space, RejectReason::IndexLag);
    eng.schedule_absorb(s, space);
    Some(EngineError::Overloaded {
        shard: s,
        depth: lag,
        retry_after: retry_after(lag - max + 1, shard.absorb_ns.load(Ordering::Relaxed)),
    })
}

/// Undoes [`admit`](admit) for observation `id` of `space`, never handed to its shard.
pub(super) fn unadmit(eng: &Inner, space: u16, id: u64) {
    eng.shard(eng.shard_of(id)).spaces[space as usize].pending_done();
    eng.space(space).release();
}

/// The error for an observation whose shard `s` refused its task.
pub(super) fn refused(eng: &Inner, s: usize, space: u16, error: &ExecError) -> EngineError {
    let shard = eng.shard(s);
    if matches!(error, ExecError::Overloaded { .. }) {
        shard.metrics.reject(space, RejectReason::Queue);
    }
    refusal(eng, s, error)
}

/// Turns the answer to one admitted observation (`id` in `space` on shard `s`, started at
/// `started`) into its result: the wait for its log record (outside every lock, so
/// concurrent observers of the shard share one group commit), metrics, and the quota
/// released unless it was stored (or may have been: a timeout keeps it).
///
/// If the log's write fails after the episode was stored (disk full, I/O error), the
/// episode is forgotten again (a `forget` message to its shard) and the error returned.
pub(super) fn settle(
    eng: &Inner,
    s: usize,
    space: u16,
    id: u64,
    started: Instant,
    answer: Answer,
) -> Result<(EpisodeId, Guarantee), EngineError> {
    let shard = &eng.shard(s);
    let release = || {
        eng.space(space).release();
    };
    match answer {
        Answer::Stored(Ok(id)) => {
            let guarantee = match shard.log.settle(id) {
                Ok(g) => g,
                Err(e) => {
                    let deadline = Instant::now() + eng.config().admission.observe_deadline;
                    let forgot = requests::forget(eng, s, id.0, deadline).ok().flatten();
                    if forgot.is_some() {
                        release();
                    }
                    shard.metrics.reject(space, RejectReason::Invalid);
                    return Err(e);
                }
            };
            shard.metrics.accepted[space as usize].inc();
            shard.metrics.observe.record(started.elapsed());
            // (The public `Engine` then starts a background snapshot if the policy asks for one.)
            Ok((id, guarantee))
        }
        Answer::Stored(Err(e)) => {
            release();
            shard.metrics.reject(
                space,
                match e {
                    EngineError::DuplicateId { .. } => RejectReason::Duplicate,
                    _ => RejectReason::Invalid,
                },
            );
            Err(e)
        }
        Answer::TimedOut(waited) => {
            shard.metrics.reject(space, RejectReason::Timeout);
            Err(EngineError::TimedOut {
                shard: s,
                waited,
                id: Some(id),
            })
        }
        Answer::Lost => {
            release();
            Err(EngineError::Closed)
        }
    }
}

/// The body of `Engine::observe_batch` (see there): admits each episode, sends one task per
/// shard, settles each answer.
pub(super) fn observe_batch(eng: &Inner, episodes: Vec<Episode>) -> Vec<Result<EpisodeId, EngineError>> {
    let started = Instant::now();
    let n = episodes.len();
    let mut out: Vec<Option<Result<EpisodeId, EngineError>>> = (0..n).map(|_| None).collect();
    // Per shard: (positions in `episodes`, prepared episodes).
    let mut per_shard: Vec<(Vec<usize>, Vec<Prepared>)> = (0..eng.shards().len())
        .map(|_| (Vec::new(), Vec::new()))
        .collect();
    for (i, ep) in episodes.into_iter().enumerate() {
        match admit(eng, ep) {
            Ok(p) => {
                let part = &mut per_shard[eng.shard_of(p.id)];
                part.0.push(i);
                part.1.push(p);
            }
            Err(e) => out[i] = Some(Err(e)),
        }
    }
    let deadline = started + eng.config().admission.observe_deadline;
    let mut waiting = Vec::new();
    for (s, (positions, eps)) in per_shard.into_iter().enumerate() {
        if eps.is_empty() {
            continue;
        }
        let keys: Vec<(u16, u64)> = eps.iter().map(|p| (p.space, p.id)).collect();
        let Some(sub) = eng.try_submitter() else {
            for (&(space, id), &i) in keys.iter().zip(&positions) {
                unadmit(eng, space, id);
                out[i] = Some(Err(EngineError::Closed));
            }
            continue;
        };
        let (reply, answer) = oneshot();
        let task = Task::ObserveBatch { shard: s, eps, reply };
        match sub.submit(eng.shard(s).node, Priority::Normal, task) {
            Ok(()) => waiting.push((s, positions, keys, answer)),
            Err(Rejected { error, .. }) => {
                for (&(space, id), &i) in keys.iter().zip(&positions) {
                    unadmit(eng, space, id);
                    out[i] = Some(Err(refused(eng, s, space, &error)));
                }
            }
        }
    }
    for (s, positions, keys, answer) in waiting {
        match answer.wait_one(deadline) {
            Ok(results) => {
                for ((r, &i), &(space, id)) in results.into_iter().zip(&positions).zip(&keys) {
                    out[i] = Some(settle(eng, s, space, id, started, Answer::Stored(r)).map(|(id, _)| id));
                }
            }
            Err(e) => {
                let answer = || Answer::from_wait(&e);
                for (&i, &(space, id)) in positions.iter().zip(&keys) {
                    out[i] = Some(settle(eng, s, space, id, started, answer()).map(|(id, _)| id));
                }
            }
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or(Err(EngineError::Closed)))
        .collect()
}
