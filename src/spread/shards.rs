//! Spreading across shards: one hop per shard at a time, activation crossing shards only as
//! batched messages.
//!
//! ## Protocol
//! A cross-shard spread runs in rounds. Round `r` sends each shard one [`HopRequest`] whose
//! `inbox` holds what the shard's nodes received in hop `r − 1` (for round 1: the seeds), summed
//! over every sender. The shard ([`AssocGraph::apply_hop`]) keeps the entries that are its live
//! nodes (`received`), lets those at or above the propagation threshold pass activation along
//! their (capped) out-edges, and answers with `outgoing`: the hop's contributions per target id,
//! summed, local and remote targets alike. The driver ([`spread_across`]) adds `received` to the
//! totals, splits `outgoing` by destination shard into one batch per (source, destination) —
//! the messages, counted in [`SpreadStats::messages`] — and merges the batches into each
//! shard's next inbox. A last round without propagation settles the final hop's contributions.
//! No shard ever reads another shard's graph.
//!
//! Activation is 64.64 fixed point ([`super::fixed`]), so sums do not depend on the order
//! batches arrive in: a spread over any number of shards returns the single-shard answer to the
//! bit.
//!
//! ## Executors
//! The driver is executor-agnostic: it hands each round's requests to a [`HopRunner`], which
//! the engine implements by running each shard's hop on that shard's pinned workers (with that
//! worker's [`SpreadScratch`]). [`LocalShards`] is a runner for graphs in this process (tests,
//! benches). A runner may also split a request into work items ([`HopRequest::split`], sized by a
//! [`FrontierBatcher`](super::FrontierBatcher)) and merge the replies ([`HopReply::merge`]).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::error::SpreadError;
use super::fixed::{Fixed, from_fixed, to_fixed};
use super::graph::AssocGraph;
use super::params::SpreadParams;
use super::result::{SpreadHit, SpreadResult, SpreadStats};
use super::scratch::SpreadScratch;
use super::single::{check_seeds, top_k};
use crate::sync::Mutex;

/// One shard's share of one round of a cross-shard spread.
#[derive(Debug, Clone, PartialEq)]
pub struct HopRequest {
    /// The hop this round computes (1-based; `max_hops + 1` for the settling round).
    pub hop: u32,
    /// What this shard's nodes received in the previous hop (round 1: the seeds' initial
    /// activation), summed over senders.
    pub inbox: Vec<(u64, Fixed)>,
    /// Whether the inbox holds seeds (then an entry that is not a live node here is an error).
    pub seeds: bool,
    /// Whether nodes propagate (false in the settling round).
    pub propagate: bool,
    /// This hop's decay factor `d(hop)`.
    pub factor: f64,
    /// Propagation threshold (fixed point).
    pub threshold: Fixed,
    /// Fan-out cap (0 = all edges).
    pub fan_out: usize,
}

impl HopRequest {
    /// Splits the request into work items of at most `nodes_per_item` inbox entries (at least
    /// one item). The inbox must hold each id once (the driver's inboxes do), so the items'
    /// replies merged with [`HopReply::merge`] equal the whole request's reply.
    pub fn split(mut self, nodes_per_item: usize) -> Vec<HopRequest> {
        let per = nodes_per_item.max(1);
        if self.inbox.len() <= per {
            return vec![self];
        }
        let inbox = std::mem::take(&mut self.inbox);
        inbox
            .chunks(per)
            .map(|c| HopRequest {
                inbox: c.to_vec(),
                ..self.clone()
            })
            .collect()
    }
}

/// A shard's answer to a [`HopRequest`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HopReply {
    /// The inbox entries that are live nodes of this shard (what they received), one per id.
    pub received: Vec<(u64, Fixed)>,
    /// This hop's contributions per target id (summed, sorted by id), for every target.
    pub outgoing: Vec<(u64, Fixed)>,
    /// Edges followed.
    pub edges_scanned: u64,
    /// Time the shard spent, nanoseconds.
    pub elapsed_ns: u64,
}

impl HopReply {
    /// Merges the replies of the work items of one request.
    pub fn merge(replies: Vec<HopReply>) -> HopReply {
        let mut out = HopReply::default();
        for r in replies {
            out.received.extend(r.received);
            out.outgoing.extend(r.outgoing);
            out.edges_scanned += r.edges_scanned;
            out.elapsed_ns += r.elapsed_ns;
        }
        sum_sorted(&mut out.outgoing);
        out
    }
}

/// Sorts by id and sums entries of equal id.
fn sum_sorted(v: &mut Vec<(u64, Fixed)>) {
    v.sort_unstable_by_key(|e| e.0);
    v.dedup_by(|later, kept| {
        if later.0 == kept.0 {
            kept.1 = kept.1.saturating_add(later.1);
            true
        } else {
            false
        }
    });
}

/// Runs shards' hops: the engine implements it with each shard's pinned workers.
pub trait HopRunner {
    /// Runs `request` on `shard` (with one of that shard's scratches).
    ///
    /// # Errors
    /// What [`AssocGraph::apply_hop`] returns, or [`SpreadError::Shard`] if the shard does not
    /// exist or failed.
    fn run_hop(&self, shard: usize, request: HopRequest) -> Result<HopReply, SpreadError>;

    /// Runs one round's requests (at most one per shard), concurrently if the runner can. The
    /// default runs them one after another.
    fn run_hops(&self, requests: Vec<(usize, HopRequest)>) -> Vec<(usize, Result<HopReply, SpreadError>)> {
        requests
            .into_iter()
            .map(|(s, r)| (s, self.run_hop(s, r)))
            .collect()
    }
}

impl AssocGraph {
    /// Runs one round of a cross-shard spread on this shard (see the module docs of
    /// `spread::shards`): keeps the inbox entries that are live nodes here, propagates from those
    /// at or above the threshold, and returns the contributions per target.
    ///
    /// # Errors
    /// [`SpreadError::UnknownSeed`] if `request.seeds` and an inbox id is not a live node here;
    /// [`SpreadError::ScratchTooSmall`].
    pub fn apply_hop(
        &self,
        request: &HopRequest,
        scratch: &mut SpreadScratch,
    ) -> Result<HopReply, SpreadError> {
        let start = Instant::now();
        scratch.check(self)?;
        if request.seeds {
            for &(id, _) in &request.inbox {
                if self.live_local(id).is_none() {
                    return Err(SpreadError::UnknownSeed { id });
                }
            }
            self.metrics.spreads.inc();
        }
        scratch.begin_spread();
        let in_epoch = scratch.begin_hop();
        let mut reply = HopReply::default();
        {
            let p = scratch.parts();
            for &(id, a) in &request.inbox {
                let Some(t) = self.live_local(id) else { continue };
                let cell = &mut p.cells[t as usize];
                if cell.hop_stamp != in_epoch {
                    cell.hop_stamp = in_epoch;
                    cell.recv = 0;
                    p.next.push(t);
                }
                cell.recv = cell.recv.saturating_add(a);
            }
            reply.received.reserve(p.next.len());
            for &t in p.next.iter() {
                let a = p.cells[t as usize].recv;
                reply.received.push((self.hot(t).id(), a));
                if request.propagate && a >= request.threshold {
                    p.frontier.push((t, a));
                }
            }
        }
        self.metrics.nodes_touched.add(reply.received.len() as u64);
        if request.propagate && !scratch.frontier.is_empty() {
            let hop_epoch = scratch.begin_hop();
            let mut p = scratch.parts();
            let mut remote = std::mem::take(p.remote);
            remote.clear();
            let scanned = self.hop_kernel(&mut p, hop_epoch, request.factor, request.fan_out, |id, c| {
                remote.push((id, c));
            });
            self.metrics.remote_contributions.add(remote.len() as u64);
            sum_sorted(&mut remote);
            reply.outgoing.reserve(p.next.len() + remote.len());
            for &t in p.next.iter() {
                reply.outgoing.push((self.hot(t).id(), p.cells[t as usize].recv));
            }
            reply.outgoing.extend_from_slice(&remote);
            sum_sorted(&mut reply.outgoing);
            *p.remote = remote;
            reply.edges_scanned = scanned;
            self.metrics.hops.inc();
            self.metrics.edges_scanned.add(scanned);
        }
        reply.elapsed_ns = start.elapsed().as_nanos() as u64;
        Ok(reply)
    }
}

/// A [`HopRunner`] over graphs in this process, one scratch per shard; with `parallel`, each
/// round's shards run on scoped threads.
pub struct LocalShards<'g> {
    graphs: Vec<&'g AssocGraph>,
    scratches: Vec<Mutex<SpreadScratch>>,
    parallel: bool,
}

impl std::fmt::Debug for LocalShards<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalShards")
            .field("shards", &self.graphs.len())
            .field("parallel", &self.parallel)
            .finish()
    }
}

impl<'g> LocalShards<'g> {
    /// A runner over `graphs` (shard `i` is `graphs[i]`), each with a scratch in its own arena.
    ///
    /// # Errors
    /// [`SpreadError::Arena`] if a scratch does not fit in its graph's arena.
    pub fn new(graphs: Vec<&'g AssocGraph>, parallel: bool) -> Result<Self, SpreadError> {
        let scratches = graphs
            .iter()
            .map(|g| SpreadScratch::for_graph(g).map(Mutex::new))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            graphs,
            scratches,
            parallel,
        })
    }

    /// The scratch of `shard` (for placement checks).
    pub fn with_scratch<R>(&self, shard: usize, f: impl FnOnce(&SpreadScratch) -> R) -> Option<R> {
        self.scratches
            .get(shard)
            .map(|m| f(&m.lock().unwrap_or_else(|e| e.into_inner())))
    }
}

impl HopRunner for LocalShards<'_> {
    fn run_hop(&self, shard: usize, request: HopRequest) -> Result<HopReply, SpreadError> {
        let (Some(g), Some(s)) = (self.graphs.get(shard), self.scratches.get(shard)) else {
            return Err(SpreadError::Shard {
                shard,
                what: format!("no such shard (have {})", self.graphs.len()),
            });
        };
        let mut scratch = s.lock().unwrap_or_else(|e| e.into_inner());
        g.apply_hop(&request, &mut scratch)
    }

    fn run_hops(&self, requests: Vec<(usize, HopRequest)>) -> Vec<(usize, Result<HopReply, SpreadError>)> {
        if !self.parallel || requests.len() < 2 {
            return requests
                .into_iter()
                .map(|(s, r)| (s, self.run_hop(s, r)))
                .collect();
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = requests
                .into_iter()
                .map(|(s, r)| (s, scope.spawn(move || self.run_hop(s, r))))
                .collect();
            handles
                .into_iter()
                .map(|(s, h)| {
                    let r = h.join().unwrap_or_else(|_| {
                        Err(SpreadError::Shard {
                            shard: s,
                            what: "hop panicked".into(),
                        })
                    });
                    (s, r)
                })
                .collect()
        })
    }
}

/// Spreads from `seeds` over a graph split into `shards` shards (`shard_of(id)` names the shard
/// holding a node), running each shard's hops through `runner`. Same semantics and, to the bit,
/// the same answer as [`AssocGraph::spread`] on one graph holding every node. A latency budget
/// is checked between rounds (elapsed time only; the per-shard cost models predict inside
/// [`AssocGraph::spread`]).
///
/// # Errors
/// As [`AssocGraph::spread`]; [`SpreadError::Shard`] when `shard_of` names a shard `>= shards`
/// or the runner fails. Nothing changes on error.
// tidy: long-fn — one spread round after another, the state shared by every round
pub fn spread_across(
    runner: &impl HopRunner,
    shard_of: &dyn Fn(u64) -> usize,
    shards: usize,
    seeds: &[(u64, f32)],
    params: &SpreadParams,
) -> Result<SpreadResult, SpreadError> {
    let start = Instant::now();
    let factors = params.per_hop()?;
    check_seeds(seeds)?;
    if seeds.is_empty() {
        return Err(SpreadError::InvalidInput {
            what: "a spread needs at least one seed".into(),
        });
    }
    if shards == 0 {
        return Err(SpreadError::InvalidInput {
            what: "shards must be >= 1".into(),
        });
    }
    let route = |id: u64| -> Result<usize, SpreadError> {
        let s = shard_of(id);
        if s < shards {
            Ok(s)
        } else {
            Err(SpreadError::Shard {
                shard: s,
                what: format!("shard_of({id}) is past the {shards} shards"),
            })
        }
    };
    let threshold = to_fixed(params.threshold);
    let mut inboxes: Vec<HashMap<u64, Fixed>> = vec![HashMap::new(); shards];
    let mut seed_ids = HashSet::new();
    for &(id, a) in seeds {
        let e = inboxes[route(id)?].entry(id).or_insert(0);
        *e = e.saturating_add(to_fixed(f64::from(a)));
        seed_ids.insert(id);
    }
    let mut totals: HashMap<u64, (Fixed, u32)> = HashMap::new();
    let mut stats = SpreadStats::default();
    let mut partial = false;
    for round in 1..=params.max_hops + 1 {
        let requests: Vec<(usize, HopRequest)> = inboxes
            .iter_mut()
            .enumerate()
            .filter(|(_, m)| !m.is_empty())
            .map(|(s, m)| {
                let mut inbox: Vec<(u64, Fixed)> = m.drain().collect();
                inbox.sort_unstable_by_key(|e| e.0);
                let propagate = round <= params.max_hops;
                let req = HopRequest {
                    hop: round,
                    inbox,
                    seeds: round == 1,
                    propagate,
                    factor: if propagate {
                        factors[round as usize - 1]
                    } else {
                        0.0
                    },
                    threshold,
                    fan_out: params.fan_out,
                };
                (s, req)
            })
            .collect();
        if requests.is_empty() {
            break;
        }
        if round > 1 && round <= params.max_hops && params.budget.is_some_and(|b| start.elapsed() >= b) {
            partial = true;
            break;
        }
        stats.frontier_peak = stats
            .frontier_peak
            .max(requests.iter().map(|(_, r)| r.inbox.len() as u64).sum());
        let mut replies = runner.run_hops(requests);
        replies.sort_by_key(|(s, _)| *s);
        let mut replies_ok = Vec::with_capacity(replies.len());
        for (s, r) in replies {
            replies_ok.push((s, r?));
        }
        let mut sent: Vec<usize> = vec![0; shards];
        for (src, reply) in replies_ok {
            for (id, a) in reply.received {
                if round == 1 {
                    totals.insert(id, (if params.include_seeds { a } else { 0 }, 0));
                } else {
                    let e = totals.entry(id).or_insert((0, round - 1));
                    e.0 = e.0.saturating_add(a);
                }
            }
            stats.edges_scanned += reply.edges_scanned;
            sent.iter_mut().for_each(|c| *c = 0);
            for (id, c) in reply.outgoing {
                let d = route(id)?;
                let e = inboxes[d].entry(id).or_insert(0);
                *e = e.saturating_add(c);
                sent[d] += 1;
            }
            for (d, &n) in sent.iter().enumerate() {
                if d != src && n > 0 {
                    stats.messages += 1;
                    stats.message_entries += n as u64;
                }
            }
        }
        stats.hops_run = round.min(params.max_hops);
    }
    let result_threshold = to_fixed(params.result_threshold);
    let mut candidates: Vec<(Fixed, u64, u32)> = totals
        .iter()
        .filter(|(id, (t, _))| {
            (params.include_seeds || !seed_ids.contains(id)) && *t > 0 && *t >= result_threshold
        })
        .map(|(&id, &(t, h))| (t, id, h))
        .collect();
    top_k(&mut candidates, params.k);
    stats.nodes_touched = totals.len() as u64;
    stats.elapsed_ns = start.elapsed().as_nanos() as u64;
    Ok(SpreadResult {
        hits: candidates
            .into_iter()
            .map(|(t, id, hops)| SpreadHit {
                id,
                activation: from_fixed(t),
                hops,
            })
            .collect(),
        partial,
        stats,
    })
}
