//! Spreading activation over the association graph, across shards.
//!
//! **Model** (`../shared/DESIGN.md`, "Spreading"): the seeds start with their activation. In
//! each hop, every node that *received* at least `propagation_threshold` in the previous hop
//! sends `received × weight × decay` along each of its out-edges (the `fan_out` heaviest, if
//! capped). A node's total is what it started with plus everything it received; after
//! `max_hops` hops the nodes whose total reaches `result_threshold` are reported. The order of
//! summation is fixed (by id), so the result does not depend on thread counts or timing.
//!
//! ```text
//! frontier = seeds; total = seeds
//! for hop in 1..=max_hops:
//!     received = {}
//!     for (node, a) in frontier where a >= propagation_threshold:      # on node's shard
//!         for (dst, w) in heaviest fan_out out-edges of node:
//!             received[dst] += a * w * decay
//!     total += received; frontier = received
//! report nodes with total >= result_threshold
//! ```
//!
//! Each hop sends one batch per shard that owns frontier nodes (the shard's workers walk its
//! own adjacency), never a pointer chase into another shard's memory.
//!
//! The graph lives in [`AssocGraph`], one per shard: a small adjacency map until the crate's
//! `spread` module (its own issue) replaces it behind the same calls.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// How activation spreads. See the module docs for the algorithm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpreadParams {
    /// Hops (0: the seeds only).
    pub max_hops: u32,
    /// Factor applied at every hop (0..=1).
    pub decay: f32,
    /// A node that received less than this in a hop does not propagate further.
    pub propagation_threshold: f32,
    /// A node whose total is below this is not reported.
    pub result_threshold: f32,
    /// At most this many out-edges (the heaviest) carry activation from one node (0: all).
    pub fan_out: usize,
    /// How much activation counts in a hit's score: `score = similarity + activation_weight ×
    /// activation`.
    pub activation_weight: f32,
}

impl Default for SpreadParams {
    fn default() -> Self {
        Self {
            max_hops: 2,
            decay: 0.5,
            propagation_threshold: 0.01,
            result_threshold: 0.0,
            fan_out: 32,
            activation_weight: 0.5,
        }
    }
}

impl SpreadParams {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let finite = [
            self.decay,
            self.propagation_threshold,
            self.result_threshold,
            self.activation_weight,
        ]
        .iter()
        .all(|v| v.is_finite());
        if !finite || !(0.0..=1.0).contains(&self.decay) || self.max_hops > 64 {
            return Err("spread: finite values, decay in 0..=1, at most 64 hops".into());
        }
        Ok(())
    }
}

/// One shard's association graph: out-edges by episode id.
#[derive(Debug, Default)]
pub(crate) struct AssocGraph {
    out: HashMap<u64, Vec<(u64, f32)>>,
}

impl AssocGraph {
    /// Adds (or strengthens to the larger weight) the edge `from → to`.
    pub(crate) fn associate(&mut self, from: u64, to: u64, weight: f32) {
        if from == to {
            return;
        }
        let edges = self.out.entry(from).or_default();
        match edges.iter_mut().find(|e| e.0 == to) {
            Some(e) => e.1 = e.1.max(weight),
            None => edges.push((to, weight)),
        }
    }

    /// Drops `node`'s out-edges (in-edges pointing to it are skipped when scoring).
    pub(crate) fn forget(&mut self, node: u64) {
        self.out.remove(&node);
    }

    /// `node`'s out-edges.
    pub(crate) fn edges(&self, node: u64) -> &[(u64, f32)] {
        self.out.get(&node).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Edges held.
    pub(crate) fn edge_count(&self) -> usize {
        self.out.values().map(Vec::len).sum()
    }

    /// One hop from this shard's part of the frontier: what each destination receives.
    pub(crate) fn hop(&self, frontier: &[(u64, f32)], params: &SpreadParams) -> Vec<(u64, f32)> {
        let mut sent = Vec::new();
        let mut heaviest = Vec::new();
        for &(node, a) in frontier {
            if a < params.propagation_threshold {
                continue;
            }
            let edges = self.edges(node);
            let chosen: &[(u64, f32)] = if params.fan_out == 0 || edges.len() <= params.fan_out {
                edges
            } else {
                heaviest.clear();
                heaviest.extend_from_slice(edges);
                heaviest.sort_by(|x: &(u64, f32), y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
                heaviest.truncate(params.fan_out);
                &heaviest
            };
            sent.extend(chosen.iter().map(|&(dst, w)| (dst, a * w * params.decay)));
        }
        sent
    }
}

/// Runs one hop on the shards that own the frontier: `frontier_by_shard[s]` goes to shard `s`;
/// returns what each shard sent (any order).
pub(crate) trait HopRunner {
    fn run_hop(&self, frontier_by_shard: Vec<Vec<(u64, f32)>>, params: &SpreadParams) -> Vec<(u64, f32)>;
}

/// Spreads from `seeds` over `shards` shards; returns every node's total activation (seeds
/// included), by id. Deterministic: per-destination sums are taken in id order of the senders.
pub(crate) fn spread_across(
    runner: &impl HopRunner,
    shard_of: impl Fn(u64) -> usize,
    shards: usize,
    seeds: &[(u64, f32)],
    params: &SpreadParams,
) -> BTreeMap<u64, f32> {
    let mut total: BTreeMap<u64, f32> = BTreeMap::new();
    let mut frontier: BTreeMap<u64, f32> = BTreeMap::new();
    for &(id, a) in seeds {
        *total.entry(id).or_insert(0.0) += a;
        *frontier.entry(id).or_insert(0.0) += a;
    }
    for _ in 0..params.max_hops {
        let mut by_shard = vec![Vec::new(); shards];
        for (&id, &a) in &frontier {
            if a >= params.propagation_threshold {
                by_shard[shard_of(id)].push((id, a));
            }
        }
        if by_shard.iter().all(Vec::is_empty) {
            break;
        }
        let mut sent = runner.run_hop(by_shard, params);
        // A fixed summation order whatever order the shards answered in.
        sent.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)));
        let mut received: BTreeMap<u64, f32> = BTreeMap::new();
        for (dst, a) in sent {
            *received.entry(dst).or_insert(0.0) += a;
        }
        for (&id, &a) in &received {
            *total.entry(id).or_insert(0.0) += a;
        }
        frontier = received;
    }
    total.retain(|_, a| *a >= params.result_threshold);
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Local(Vec<AssocGraph>);
    impl HopRunner for Local {
        fn run_hop(&self, f: Vec<Vec<(u64, f32)>>, p: &SpreadParams) -> Vec<(u64, f32)> {
            f.iter()
                .enumerate()
                .flat_map(|(s, f)| self.0[s].hop(f, p))
                .collect()
        }
    }

    fn chain(shards: usize) -> Local {
        let mut g: Vec<AssocGraph> = (0..shards).map(|_| AssocGraph::default()).collect();
        for i in 0..5u64 {
            g[(i as usize) % shards].associate(i, i + 1, 1.0);
        }
        Local(g)
    }

    #[test]
    fn activation_decays_along_a_chain_and_stops_at_max_hops() {
        let p = SpreadParams {
            max_hops: 3,
            decay: 0.5,
            propagation_threshold: 0.0,
            ..SpreadParams::default()
        };
        let t = spread_across(&chain(1), |_| 0, 1, &[(0, 1.0)], &p);
        assert_eq!(t.get(&1), Some(&0.5));
        assert_eq!(t.get(&2), Some(&0.25));
        assert_eq!(t.get(&3), Some(&0.125));
        assert_eq!(t.get(&4), None);
    }

    #[test]
    fn sharded_graph_spreads_like_one_graph() {
        let p = SpreadParams::default();
        let one = spread_across(&chain(1), |_| 0, 1, &[(0, 1.0), (2, 0.3)], &p);
        let three = spread_across(&chain(3), |id| (id as usize) % 3, 3, &[(0, 1.0), (2, 0.3)], &p);
        assert_eq!(one, three);
    }

    #[test]
    fn propagation_threshold_prunes_and_fan_out_keeps_the_heaviest() {
        let mut g = AssocGraph::default();
        g.associate(0, 1, 0.9);
        g.associate(0, 2, 0.1);
        g.associate(0, 3, 0.5);
        let p = SpreadParams {
            max_hops: 1,
            decay: 1.0,
            fan_out: 2,
            propagation_threshold: 0.0,
            ..SpreadParams::default()
        };
        let t = spread_across(&Local(vec![g]), |_| 0, 1, &[(0, 1.0)], &p);
        assert_eq!(t.keys().copied().collect::<Vec<_>>(), [0, 1, 3]);
        let pruned = SpreadParams {
            propagation_threshold: 2.0,
            ..p
        };
        let mut g = AssocGraph::default();
        g.associate(0, 1, 1.0);
        let t = spread_across(&Local(vec![g]), |_| 0, 1, &[(0, 1.0)], &pruned);
        assert_eq!(t.len(), 1);
    }
}
