//! The spread on one shard: [`AssocGraph::spread`] (a whole spread) and the hop kernel it shares
//! with [`AssocGraph::apply_hop`] (one hop of a cross-shard spread).

use std::cmp::Ordering as CmpOrdering;
use std::time::Instant;

use super::edges::{self, NO_LOCAL};
use super::error::SpreadError;
use super::fixed::{Fixed, contribution, scaled, to_fixed};
use super::graph::AssocGraph;
use super::params::SpreadParams;
use super::predictor::MIN_SCORED_NS;
use super::result::{SpreadHit, SpreadResult, SpreadStats};
use super::scratch::{Parts, SpreadScratch};

/// Activation desc, then id asc: the result order.
#[inline]
pub(crate) fn rank(a: &(Fixed, u64, u32), b: &(Fixed, u64, u32)) -> CmpOrdering {
    b.0.cmp(&a.0).then(a.1.cmp(&b.1))
}

/// Sorts `candidates` into the top `k` (in place, truncating).
pub(crate) fn top_k(candidates: &mut Vec<(Fixed, u64, u32)>, k: usize) {
    if candidates.len() > k {
        candidates.select_nth_unstable_by(k - 1, rank);
        candidates.truncate(k);
    }
    candidates.sort_unstable_by(rank);
}

/// Checks seeds: finite, non-negative activations.
pub(crate) fn check_seeds(seeds: &[(u64, f32)]) -> Result<(), SpreadError> {
    for &(_, a) in seeds {
        if !a.is_finite() || a < 0.0 {
            return Err(SpreadError::InvalidWeight {
                what: "seed activation",
                value: a,
                rule: ">= 0",
            });
        }
    }
    Ok(())
}

impl AssocGraph {
    /// Turns `candidates` keyed by local index into the top `k` keyed by id. Reading a node's id
    /// costs a (likely missing) load of its hot line, so only the finalists are read: the `k`
    /// largest totals and every candidate tied with the k-th (ties break by id). If a finalist
    /// was forgotten, the slow path reads every candidate.
    fn finalists(&self, candidates: &mut Vec<(Fixed, u64, u32)>, k: usize) {
        let by_total = |a: &(Fixed, u64, u32), b: &(Fixed, u64, u32)| b.0.cmp(&a.0);
        let mut keep = candidates.len();
        if candidates.len() > k {
            candidates.select_nth_unstable_by(k - 1, by_total);
            let kth = candidates[k - 1].0;
            keep = k;
            for i in k..candidates.len() {
                if candidates[i].0 == kth {
                    candidates.swap(keep, i);
                    keep += 1;
                }
            }
        }
        let forgotten = candidates[..keep]
            .iter()
            .any(|c| self.hot(c.1 as u32).is_forgotten());
        if forgotten {
            candidates.retain(|c| !self.hot(c.1 as u32).is_forgotten());
        } else {
            candidates.truncate(keep);
        }
        for c in candidates.iter_mut() {
            c.1 = self.hot(c.1 as u32).id();
        }
        top_k(candidates, k);
    }

    /// Runs one hop: every node of `parts.frontier` passes `activation × factor × weight` along
    /// its out-edges (its `fan_out` heaviest, ties by target id, when `fan_out > 0`). Local
    /// targets accumulate in the cells (listed once in `parts.next`, in first-contribution
    /// order), other targets are handed to `remote`. Returns the edges followed.
    pub(crate) fn hop_kernel(
        &self,
        parts: &mut Parts<'_>,
        hop_epoch: u32,
        factor: f64,
        fan_out: usize,
        mut remote: impl FnMut(u64, Fixed),
    ) -> u64 {
        let mut scanned = 0u64;
        let cells = &mut *parts.cells;
        let next = &mut *parts.next;
        let mut give = |target: u64, hint: u32, c: Fixed, remote: &mut dyn FnMut(u64, Fixed)| {
            let local = if hint != NO_LOCAL {
                Some(hint)
            } else {
                self.local(target)
            };
            match local {
                Some(t) => {
                    let cell = &mut cells[t as usize];
                    if cell.hop_stamp != hop_epoch {
                        cell.hop_stamp = hop_epoch;
                        cell.recv = 0;
                        next.push(t);
                    }
                    cell.recv = cell.recv.saturating_add(c);
                }
                None => remote(target, c),
            }
        };
        for &(u, a) in parts.frontier.iter() {
            let s = scaled(a, factor);
            let slots = edges::published(self.hot(u));
            if fan_out > 0 && slots.len() > fan_out {
                let sel = &mut *parts.select;
                sel.clear();
                sel.extend(slots.iter().map(|e| (e.weight(), e.target(), e.local)));
                let by_weight =
                    |x: &(f32, u64, u32), y: &(f32, u64, u32)| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1));
                sel.select_nth_unstable_by(fan_out - 1, by_weight);
                for &(w, target, hint) in &sel[..fan_out] {
                    give(target, hint, contribution(s, w), &mut remote);
                }
                scanned += fan_out as u64;
            } else {
                for e in slots {
                    give(e.target(), e.local, contribution(s, e.weight()), &mut remote);
                }
                scanned += slots.len() as u64;
            }
        }
        scanned
    }

    /// Edges the next hop will scan: the frontier's out-degrees, capped at `fan_out`.
    fn edges_ahead(&self, frontier: &[(u32, Fixed)], fan_out: usize) -> u64 {
        frontier
            .iter()
            .map(|&(u, _)| {
                let d = self.hot(u).degree() as u64;
                if fan_out > 0 { d.min(fan_out as u64) } else { d }
            })
            .sum()
    }

    /// Spreads activation from `seeds` (`(id, initial activation)`) over this graph alone (edges
    /// to nodes of other graphs are ignored: use [`spread_across`](super::spread_across) for a
    /// sharded graph). See `docs/spreading.md` for the semantics. Deterministic: the same graph,
    /// seeds and parameters give the same bits (absent a latency budget).
    ///
    /// Per-query state lives in `scratch`; a warm scratch makes the spread allocate only the
    /// result's vector.
    ///
    /// # Errors
    /// [`SpreadError::InvalidInput`] for bad parameters (see [`SpreadParams::validate`]) or no
    /// seed; [`SpreadError::InvalidWeight`] for a NaN/negative/infinite seed activation;
    /// [`SpreadError::UnknownSeed`] for a seed that is not a live node;
    /// [`SpreadError::ScratchTooSmall`].
    // tidy: long-fn — the hot loop of the spread, kept in one piece for the optimiser and the reader
    pub fn spread(
        &self,
        seeds: &[(u64, f32)],
        params: &SpreadParams,
        scratch: &mut SpreadScratch,
    ) -> Result<SpreadResult, SpreadError> {
        let start = Instant::now();
        let factors = params.per_hop()?;
        scratch.check(self)?;
        check_seeds(seeds)?;
        if seeds.is_empty() {
            return Err(SpreadError::InvalidInput {
                what: "a spread needs at least one seed".into(),
            });
        }
        for &(id, _) in seeds {
            if self.live_local(id).is_none() {
                return Err(SpreadError::UnknownSeed { id });
            }
        }
        let threshold = to_fixed(params.threshold);
        let epoch = scratch.begin_spread();
        let seed_epoch = scratch.begin_hop();
        let mut stats = SpreadStats::default();
        let mut partial = false;
        {
            let p = scratch.parts();
            // Seeds: hop 0, duplicates summed.
            for &(id, a) in seeds {
                let Some(s) = self.live_local(id) else { continue };
                let cell = &mut p.cells[s as usize];
                if cell.hop_stamp != seed_epoch {
                    cell.hop_stamp = seed_epoch;
                    cell.recv = 0;
                    p.next.push(s);
                }
                cell.recv = cell.recv.saturating_add(to_fixed(f64::from(a)));
            }
            for &s in p.next.iter() {
                let cell = &mut p.cells[s as usize];
                cell.stamp = epoch;
                cell.first_hop = 0;
                cell.total = if params.include_seeds { cell.recv } else { 0 };
                p.touched.push(s);
                if cell.recv >= threshold {
                    p.frontier.push((s, cell.recv));
                }
            }
        }
        for hop in 1..=params.max_hops {
            if scratch.frontier.is_empty() {
                break;
            }
            let ahead = self.edges_ahead(&scratch.frontier, params.fan_out);
            let predicted = self.model.predict(scratch.frontier.len(), ahead);
            if let Some(budget) = params.budget {
                let left = budget.saturating_sub(start.elapsed()).as_nanos() as f64;
                if left <= 0.0 || predicted > left {
                    partial = true;
                    self.metrics.truncations.inc();
                    break;
                }
            }
            let hop_start = Instant::now();
            let hop_epoch = scratch.begin_hop();
            let mut p = scratch.parts();
            let frontier_len = p.frontier.len();
            stats.frontier_peak = stats.frontier_peak.max(frontier_len as u64);
            let scanned = self.hop_kernel(
                &mut p,
                hop_epoch,
                factors[hop as usize - 1],
                params.fan_out,
                |_, _| {},
            );
            stats.edges_scanned += scanned;
            p.frontier.clear();
            let last = hop == params.max_hops;
            for &t in p.next.iter() {
                let cell = &mut p.cells[t as usize];
                if cell.stamp != epoch {
                    cell.stamp = epoch;
                    cell.total = 0;
                    cell.first_hop = hop;
                    p.touched.push(t);
                }
                cell.total = cell.total.saturating_add(cell.recv);
                if !last && cell.recv >= threshold && !self.hot(t).is_forgotten() {
                    p.frontier.push((t, cell.recv));
                }
            }
            stats.hops_run = hop;
            let actual = hop_start.elapsed().as_nanos() as f64;
            if self.model.warmed() && actual >= MIN_SCORED_NS {
                self.metrics.record_prediction(predicted, actual);
            }
            self.model.observe(frontier_len, scanned, actual);
        }
        // Results: reached, live, not a seed (unless asked), total above the result threshold.
        let result_threshold = to_fixed(params.result_threshold);
        let p = scratch.parts();
        p.candidates.clear();
        for &t in p.touched.iter() {
            let cell = &p.cells[t as usize];
            if (cell.first_hop > 0 || params.include_seeds)
                && cell.total > 0
                && cell.total >= result_threshold
            {
                // Keyed by local index for now: ids are read only for the finalists.
                p.candidates.push((cell.total, u64::from(t), cell.first_hop));
            }
        }
        self.finalists(p.candidates, params.k);
        let hits = p
            .candidates
            .iter()
            .map(|&(total, id, hops)| SpreadHit {
                id,
                activation: super::fixed::from_fixed(total),
                hops,
            })
            .collect();
        stats.nodes_touched = p.touched.len() as u64;
        stats.elapsed_ns = start.elapsed().as_nanos() as u64;
        self.metrics.spreads.inc();
        self.metrics.hops.add(u64::from(stats.hops_run));
        self.metrics.nodes_touched.add(stats.nodes_touched);
        self.metrics.edges_scanned.add(stats.edges_scanned);
        Ok(SpreadResult { hits, partial, stats })
    }
}
