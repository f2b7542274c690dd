//! Spreading activation over two node layouts, for the hot-node layout claim.
//!
//! [`HotGraph`] is the real thing: an [`AssocGraph`] (one-line [`HotNode`]s, cold metadata
//! apart, per-node edge blocks) spread by [`AssocGraph::spread`]. [`NaiveGraph`] runs the same
//! spread (same semantics, the same fixed-point arithmetic, so the same answer to the bit) over
//! one `repr(C)` struct per node holding everything in declaration order, the way a first version
//! would write it: id, a `String` label, timestamps and a 128-float embedding sit between the hot
//! fields, so each visit touches several lines and the working set is ~10× larger. Both run the
//! same operations; [`SpreadOutcome::checksum`] must agree.
//!
//! One spread: [`SEEDS`] seeds drawn from a seed value, [`HOPS`] hops, exponential decay
//! [`DECAY`], propagation threshold [`THRESHOLD`], no fan-out cap, top 10.
//!
//! [`HotNode`]: crate::spread::HotNode

use std::sync::Arc;

use serde::Serialize;

use crate::alloc::NodeArena;
use crate::rng::SplitMix64;
use crate::spread::fixed::{Fixed, contribution, from_fixed, scaled, to_fixed};
use crate::spread::{AssocGraph, Decay, GraphConfig, HotNode, SpreadError, SpreadParams, SpreadScratch};

/// Activation kept per hop.
pub const DECAY: f64 = 0.8;
/// Activation below which a node does not spread further.
pub const THRESHOLD: f64 = 0.001;
/// Hops per spread.
pub const HOPS: u32 = 3;
/// Seeds per spread.
pub const SEEDS: usize = 16;
/// Out-degree of every node.
pub const FANOUT: u32 = 8;
/// Embedding width of the naive layout (floats).
pub const EMBEDDING_DIM: usize = 128;
/// Results per spread.
const K: usize = 10;

/// What one spread did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpreadOutcome {
    /// Nodes reached (seeds included).
    pub activated: u64,
    /// Edges followed.
    pub edges_followed: u64,
    /// Sum of the top-10 activations (same for both layouts).
    pub checksum: f64,
}

/// A graph in one layout that runs the workload's spread.
pub trait LayoutWorkload {
    /// One spread from [`SEEDS`] seeds chosen by `seed`.
    fn spread(&mut self, seed: u64) -> SpreadOutcome;
    /// Bytes of node storage (the layout's working set, edges excluded).
    fn node_bytes(&self) -> usize;
    /// Nodes.
    fn len(&self) -> usize;
    /// Whether there is no node.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Edges `(src, dst, weight)`: [`FANOUT`] random targets per node.
fn random_edges(nodes: usize, seed: u64) -> Vec<(u64, u64, f32)> {
    let mut rng = SplitMix64::new(seed);
    let n = nodes.max(1) as u64;
    let mut out = Vec::with_capacity(nodes * FANOUT as usize);
    for u in 0..nodes as u64 {
        for _ in 0..FANOUT {
            let v = rng.below(n);
            let w = (0.5 + rng.below(1000) as f32 / 2000.0) / FANOUT as f32;
            out.push((u, v, w));
        }
    }
    out
}

fn seeds_of(seed: u64, nodes: usize) -> Vec<(u64, f32)> {
    let mut rng = SplitMix64::new(seed);
    (0..SEEDS)
        .map(|_| (rng.below(nodes.max(1) as u64), 1.0))
        .collect()
}

fn params() -> SpreadParams {
    SpreadParams {
        max_hops: HOPS,
        decay: Decay::Exponential { factor: DECAY },
        threshold: THRESHOLD,
        k: K,
        ..SpreadParams::default()
    }
}

/// The real association graph and a scratch for it.
pub struct HotGraph {
    graph: AssocGraph,
    scratch: SpreadScratch,
    params: SpreadParams,
}

/// The workload in the hot-node layout: an [`AssocGraph`] of `nodes` nodes, [`FANOUT`] random
/// edges each.
///
/// # Errors
/// [`SpreadError`] if the arena cannot be made or filled.
pub fn hot_graph(nodes: usize, seed: u64) -> Result<HotGraph, SpreadError> {
    let edges = random_edges(nodes, seed);
    let max = nodes.max(1);
    let bytes = GraphConfig::arena_bytes_for(max, edges.len()) + SpreadScratch::bytes_for(max);
    let arena = Arc::new(NodeArena::on_node(crate::alloc::first_allowed_node()?, bytes)?);
    let graph = AssocGraph::new(arena, GraphConfig::with_max_nodes(max))?;
    for u in 0..nodes as u64 {
        graph.add_node(u)?;
    }
    for (u, v, w) in edges {
        graph.associate(u, v, w)?;
    }
    let scratch = SpreadScratch::for_graph(&graph)?;
    Ok(HotGraph {
        graph,
        scratch,
        params: params(),
    })
}

impl LayoutWorkload for HotGraph {
    #[inline(never)]
    fn spread(&mut self, seed: u64) -> SpreadOutcome {
        if self.graph.is_empty() {
            return SpreadOutcome {
                activated: 0,
                edges_followed: 0,
                checksum: 0.0,
            };
        }
        let seeds = seeds_of(seed, self.graph.len());
        match self.graph.spread(&seeds, &self.params, &mut self.scratch) {
            Ok(r) => SpreadOutcome {
                activated: r.stats.nodes_touched,
                edges_followed: r.stats.edges_scanned,
                checksum: r.hits.iter().map(|h| h.activation).sum(),
            },
            // Seeds are drawn from the graph's own ids and the parameters are constants.
            Err(e) => unreachable!("workload spread failed: {e}"),
        }
    }

    fn node_bytes(&self) -> usize {
        self.graph.len() * size_of::<HotNode>()
    }

    fn len(&self) -> usize {
        self.graph.len()
    }
}

/// Everything about a node in one struct, hot fields interleaved with cold ones (`repr(C)`
/// keeps the declaration order, as a C programmer would have it).
#[derive(Debug, Clone)]
#[repr(C)]
pub struct NaiveNode {
    /// Node id.
    pub id: u64,
    /// Free-form label.
    pub label: String,
    /// Out-edges `(target, weight)` (hot).
    pub edges: Vec<(u64, f32)>,
    /// Creation time.
    pub created_ns: u64,
    /// The episode's embedding.
    pub embedding: [f32; EMBEDDING_DIM],
    /// Activation received this hop (hot).
    pub recv: Fixed,
    /// Last access time.
    pub last_access_ns: u64,
    /// Total activation (hot).
    pub total: Fixed,
    /// Recall count.
    pub access_count: u64,
    /// Epoch of the last spread that reached it (hot).
    pub epoch: u32,
    /// Hop epoch of the last contribution (hot).
    pub hop_epoch: u32,
    /// Hop of first reach (hot).
    pub first_hop: u32,
    /// Flags.
    pub flags: u8,
}

/// The same graph and spread in the naive layout.
pub struct NaiveGraph {
    /// The nodes.
    pub nodes: Vec<NaiveNode>,
    epoch: u32,
    hop_epoch: u32,
    frontier: Vec<(u32, Fixed)>,
    next: Vec<u32>,
    touched: Vec<u32>,
}

/// The workload in the naive layout.
pub fn naive_graph(nodes: usize, seed: u64) -> NaiveGraph {
    let mut out: Vec<NaiveNode> = (0..nodes)
        .map(|i| NaiveNode {
            id: i as u64,
            label: format!("episode-{i}"),
            edges: Vec::new(),
            created_ns: 1_700_000_000_000_000_000 + i as u64,
            embedding: [i as f32 * 1e-6; EMBEDDING_DIM],
            recv: 0,
            last_access_ns: 0,
            total: 0,
            access_count: 0,
            epoch: 0,
            hop_epoch: 0,
            first_hop: 0,
            flags: 0,
        })
        .collect();
    for (u, v, w) in random_edges(nodes, seed) {
        let edges = &mut out[u as usize].edges;
        // Strengthen a repeated pair, as `AssocGraph::associate` does.
        match edges.iter_mut().find(|e| e.0 == v) {
            Some(e) => e.1 += w,
            None => edges.push((v, w)),
        }
    }
    NaiveGraph {
        nodes: out,
        epoch: 0,
        hop_epoch: 0,
        frontier: Vec::new(),
        next: Vec::new(),
        touched: Vec::new(),
    }
}

impl LayoutWorkload for NaiveGraph {
    #[inline(never)]
    fn spread(&mut self, seed: u64) -> SpreadOutcome {
        let n = self.nodes.len();
        let mut out = SpreadOutcome {
            activated: 0,
            edges_followed: 0,
            checksum: 0.0,
        };
        if n == 0 {
            return out;
        }
        let threshold = to_fixed(THRESHOLD);
        self.epoch += 1;
        let epoch = self.epoch;
        self.touched.clear();
        self.frontier.clear();
        self.hop_epoch += 1;
        self.next.clear();
        for (s, a) in seeds_of(seed, n) {
            let node = &mut self.nodes[s as usize];
            if node.hop_epoch != self.hop_epoch {
                node.hop_epoch = self.hop_epoch;
                node.recv = 0;
                self.next.push(s as u32);
            }
            node.recv += to_fixed(f64::from(a));
        }
        for &s in &self.next {
            let node = &mut self.nodes[s as usize];
            node.epoch = epoch;
            node.first_hop = 0;
            node.total = 0;
            self.touched.push(s);
            if node.recv >= threshold {
                self.frontier.push((s, node.recv));
            }
        }
        for hop in 1..=HOPS {
            if self.frontier.is_empty() {
                break;
            }
            self.hop_epoch += 1;
            self.next.clear();
            for &(u, a) in &self.frontier {
                let s = scaled(a, DECAY);
                let count = self.nodes[u as usize].edges.len();
                for i in 0..count {
                    let (v, w) = self.nodes[u as usize].edges[i];
                    let target = &mut self.nodes[v as usize];
                    if target.hop_epoch != self.hop_epoch {
                        target.hop_epoch = self.hop_epoch;
                        target.recv = 0;
                        self.next.push(v as u32);
                    }
                    target.recv = target.recv.saturating_add(contribution(s, w));
                }
                out.edges_followed += count as u64;
            }
            self.frontier.clear();
            for &t in &self.next {
                let node = &mut self.nodes[t as usize];
                if node.epoch != epoch {
                    node.epoch = epoch;
                    node.total = 0;
                    node.first_hop = hop;
                    self.touched.push(t);
                }
                node.total = node.total.saturating_add(node.recv);
                if hop < HOPS && node.recv >= threshold {
                    self.frontier.push((t, node.recv));
                }
            }
        }
        let mut best: Vec<(Fixed, u64)> = self
            .touched
            .iter()
            .map(|&t| &self.nodes[t as usize])
            .filter(|x| x.first_hop > 0 && x.total > 0)
            .map(|x| (x.total, x.id))
            .collect();
        best.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        best.truncate(K);
        out.activated = self.touched.len() as u64;
        out.checksum = best.iter().map(|b| from_fixed(b.0)).sum();
        out
    }

    fn node_bytes(&self) -> usize {
        self.nodes.len() * size_of::<NaiveNode>()
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_compute_the_same_spread() {
        let mut hot = hot_graph(5000, 42).expect("graph");
        let mut naive = naive_graph(5000, 42);
        for seed in 0..5 {
            let a = hot.spread(seed);
            let b = naive.spread(seed);
            assert_eq!(a, b, "seed {seed}");
            assert!(a.activated > SEEDS as u64, "the spread reached beyond its seeds");
            assert!(a.edges_followed > 0);
        }
    }

    #[test]
    fn naive_nodes_spread_the_hot_fields_over_several_lines() {
        use std::mem::offset_of;
        assert!(size_of::<NaiveNode>() > 8 * 64);
        let hot_span = offset_of!(NaiveNode, epoch) - offset_of!(NaiveNode, edges);
        assert!(hot_span > 4 * 64, "hot fields are {hot_span} bytes apart");
        let hot = hot_graph(10, 1).expect("graph");
        let naive = naive_graph(10, 1);
        assert!(naive.node_bytes() > 8 * hot.node_bytes());
    }

    #[test]
    fn empty_graph_spreads_nothing() {
        let mut g = naive_graph(0, 1);
        assert_eq!(g.spread(1).activated, 0);
    }
}
