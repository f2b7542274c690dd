//! The engine's side of spreading activation: each shard's [`AssocGraph`](crate::spread::AssocGraph)
//! runs its hops on the shard's own pinned workers (sent by [`scatter`](super::fanout::scatter)), and [`crate::spread::spread_across`] drives a
//! spread across shards with one batch per shard per hop ([`WorkerHops`]).
//!
//! See [`crate::spread`] for the model (hops, decay, thresholds, fan-out cap, fixed-point sums
//! that make a spread over any number of shards equal the one-shard answer to the bit).

use std::collections::HashMap;
use std::time::Instant;

use crate::exec::{Missing, Priority};
pub use crate::spread::SpreadParams;
use crate::spread::{HopReply, HopRequest, HopRunner, SpreadError, spread_across};

use super::core::Inner;
use super::error::EngineError;
use super::fanout::{OnRefusal, Scattered, scatter};
use super::task::Task;

/// Runs each round's hops as one high-priority task per shard, on that shard's workers, and
/// waits for them until the deadline.
pub(crate) struct WorkerHops<'a> {
    pub(crate) inner: &'a Inner,
    pub(crate) deadline: Instant,
}

impl HopRunner for WorkerHops<'_> {
    fn run_hop(&self, shard: usize, request: HopRequest) -> Result<HopReply, SpreadError> {
        self.run_hops(vec![(shard, request)])
            .pop()
            .map(|r| r.1)
            .unwrap_or_else(|| {
                Err(SpreadError::Shard {
                    shard,
                    what: "no reply".into(),
                })
            })
    }

    fn run_hops(&self, requests: Vec<(usize, HopRequest)>) -> Vec<(usize, Result<HopReply, SpreadError>)> {
        let shards_of: Vec<usize> = requests.iter().map(|r| r.0).collect();
        // A refused hop is a missing reply (`Dropped`): the spread answers with what it reached.
        let sent = scatter(
            self.inner,
            requests,
            Priority::High,
            OnRefusal::SendRest,
            |shard, request, reply| Task::Hop {
                shard,
                request,
                reply,
            },
        );
        let Ok(Scattered { shards, replies, .. }) = sent else {
            // No workers (closing): every hop is missing.
            return shards_of
                .into_iter()
                .map(|shard| {
                    (
                        shard,
                        Err(SpreadError::Shard {
                            shard,
                            what: "the shard refused or dropped the hop (queue full or closing)".into(),
                        }),
                    )
                })
                .collect();
        };
        let got = replies.wait_until(self.deadline);
        let missing: HashMap<usize, Missing> = got.missing.iter().copied().collect();
        got.replies
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let shard = shards[i];
                let out = r.unwrap_or_else(|| {
                    Err(SpreadError::Shard {
                        shard,
                        what: match missing.get(&i) {
                            Some(Missing::TimedOut) => "no answer within the budget".into(),
                            _ => "the shard refused or dropped the hop (queue full or closing)".into(),
                        },
                    })
                });
                (shard, out)
            })
            .collect()
    }
}

/// Spreads from `seeds` across the engine's shards and returns, per node reached, the
/// activation the spread *delivered* to it (its total minus its own seed), and whether the
/// spread was cut short (a shard did not answer in time, or the budget ran out): then the map
/// holds what was computed, possibly nothing, and the caller reports a partial result.
///
/// # Errors
/// [`EngineError::InvalidInput`] for parameters the spread refuses.
pub(crate) fn delivered(
    inner: &Inner,
    seeds: &[(u64, f32)],
    params: &SpreadParams,
    k: usize,
    deadline: Instant,
) -> Result<(HashMap<u64, f32>, bool), EngineError> {
    let seeds: Vec<(u64, f32)> = seeds.iter().copied().filter(|s| s.1 > 0.0).collect();
    if seeds.is_empty() {
        return Ok((HashMap::new(), false));
    }
    let mut p = params.clone();
    p.include_seeds = true;
    p.k = p.k.max(k).max(seeds.len() * 4);
    if p.budget.is_none() {
        p.budget = Some(deadline.saturating_duration_since(Instant::now()));
    }
    let runner = WorkerHops { inner, deadline };
    let route = |id: u64| inner.shard_of(id);
    match spread_across(&runner, &route, inner.shards().len(), &seeds, &p) {
        Ok(r) => {
            let seed: HashMap<u64, f32> = seeds.iter().copied().collect();
            let out = r
                .hits
                .iter()
                .map(|h| {
                    let own = f64::from(seed.get(&h.id).copied().unwrap_or(0.0));
                    (h.id, (h.activation - own) as f32)
                })
                .collect();
            Ok((out, r.partial))
        }
        // A shard that did not answer, or a seed forgotten meanwhile: no spread, result partial.
        Err(SpreadError::Shard { .. } | SpreadError::UnknownSeed { .. }) => Ok((HashMap::new(), true)),
        Err(e @ (SpreadError::InvalidInput { .. } | SpreadError::InvalidWeight { .. })) => {
            Err(EngineError::InvalidInput { what: e.to_string() })
        }
        Err(source) => Err(EngineError::Spread { shard: None, source }),
    }
}
