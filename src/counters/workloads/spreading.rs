//! Spreading activation over two node layouts, for the hot-node layout claim.
//!
//! The same graph (same edges, same seeds) is stored twice: as
//! [`HotNode`]s — every field the spreading loop touches in one 64-byte line, the cold rest
//! elsewhere — and as [`NaiveNode`]s, one `repr(C)` struct holding everything in declaration
//! order, the way a first version would write it: id, a `String` label, timestamps and a
//! 128-float embedding sit between the hot fields, so each visit touches several lines and the
//! working set is ~10× larger. [`Graph::spread`] runs one generic algorithm over either, so the two
//! runs execute the same operations and must produce the same checksum.
//!
//! One spread, in pseudo-code:
//! ```text
//! frontier = seeds (activation 1.0, stamped with this spread's epoch)
//! repeat HOPS times:
//!     for u in frontier:
//!         out = activation(u) * confidence(u) * DECAY / out_degree(u)
//!         if activation(u) * confidence(u) * DECAY < THRESHOLD: skip
//!         for v in edges(u):
//!             if epoch(v) != epoch: epoch(v) = epoch; activation(v) = 0; next.push(v)
//!             activation(v) += out
//!     frontier = next
//! ```

use serde::Serialize;

use crate::alloc::layout::HotNode;
use crate::rng::SplitMix64;

/// Activation kept per hop (a guess typical of spreading-activation models).
pub const DECAY: f32 = 0.8;
/// Activation below which a node does not spread further.
pub const THRESHOLD: f32 = 0.001;
/// Hops per spread.
pub const HOPS: usize = 3;
/// Seeds per spread.
pub const SEEDS: usize = 16;
/// Out-degree of every node.
pub const FANOUT: u32 = 8;
/// Embedding width of the naive layout (floats).
pub const EMBEDDING_DIM: usize = 128;

/// Everything about a node in one struct, hot fields interleaved with cold ones (`repr(C)`
/// keeps the declaration order, as a C programmer would have it).
#[derive(Debug, Clone)]
#[repr(C)]
pub struct NaiveNode {
    /// Node id.
    pub id: u64,
    /// Free-form label.
    pub label: String,
    /// First outgoing edge (hot).
    pub edge_start: u32,
    /// Creation time.
    pub created_ns: u64,
    /// The episode's embedding.
    pub embedding: [f32; EMBEDDING_DIM],
    /// Current activation (hot).
    pub activation: f32,
    /// Last access time.
    pub last_access_ns: u64,
    /// Recall count.
    pub access_count: u64,
    /// Confidence (hot).
    pub confidence: f32,
    /// Number of outgoing edges (hot).
    pub edge_count: u32,
    /// Epoch of the last spread that touched it (hot).
    pub epoch: u32,
    /// Storage tier.
    pub tier: u8,
    /// Flags.
    pub flags: u8,
}

/// What the spreading loop needs from a node.
pub trait SpreadNode {
    /// `(edge_start, edge_count)`.
    fn edges(&self) -> (u32, u32);
    /// Current activation.
    fn activation(&self) -> f32;
    /// Sets the activation.
    fn set_activation(&mut self, a: f32);
    /// Confidence.
    fn confidence(&self) -> f32;
    /// Epoch stamp.
    fn epoch(&self) -> u32;
    /// Sets the epoch stamp.
    fn set_epoch(&mut self, e: u32);
}

impl SpreadNode for HotNode {
    #[inline]
    fn edges(&self) -> (u32, u32) {
        (self.edge_start, self.edge_count)
    }
    #[inline]
    fn activation(&self) -> f32 {
        self.activation
    }
    #[inline]
    fn set_activation(&mut self, a: f32) {
        self.activation = a;
    }
    #[inline]
    fn confidence(&self) -> f32 {
        self.confidence
    }
    #[inline]
    fn epoch(&self) -> u32 {
        self.epoch
    }
    #[inline]
    fn set_epoch(&mut self, e: u32) {
        self.epoch = e;
    }
}

impl SpreadNode for NaiveNode {
    #[inline]
    fn edges(&self) -> (u32, u32) {
        (self.edge_start, self.edge_count)
    }
    #[inline]
    fn activation(&self) -> f32 {
        self.activation
    }
    #[inline]
    fn set_activation(&mut self, a: f32) {
        self.activation = a;
    }
    #[inline]
    fn confidence(&self) -> f32 {
        self.confidence
    }
    #[inline]
    fn epoch(&self) -> u32 {
        self.epoch
    }
    #[inline]
    fn set_epoch(&mut self, e: u32) {
        self.epoch = e;
    }
}

/// A graph in one layout: nodes plus a shared-shape edge array.
pub struct Graph<N> {
    /// The nodes.
    pub nodes: Vec<N>,
    /// Edge targets; node `u`'s edges are `edges[start..start + count]`.
    pub edges: Vec<u32>,
    epoch: u32,
    frontier: Vec<u32>,
    next: Vec<u32>,
}

/// What one spread did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpreadOutcome {
    /// Nodes activated (each once per spread).
    pub activated: u64,
    /// Edges followed.
    pub edges_followed: u64,
    /// Sum of the final activations of all activated nodes (same for both layouts).
    pub checksum: f64,
}

fn random_edges(nodes: usize, seed: u64) -> (Vec<u32>, Vec<f32>) {
    let mut rng = SplitMix64::new(seed);
    let n = nodes.max(1) as u64;
    let edges = (0..nodes * FANOUT as usize)
        .map(|_| rng.below(n) as u32)
        .collect();
    let confidence = (0..nodes)
        .map(|_| 0.5 + (rng.below(1000) as f32) / 2000.0)
        .collect();
    (edges, confidence)
}

/// The graph in the hot-node layout: `nodes` nodes, [`FANOUT`] random edges each.
pub fn hot_graph(nodes: usize, seed: u64) -> Graph<HotNode> {
    let (edges, confidence) = random_edges(nodes, seed);
    let nodes = (0..nodes)
        .map(|i| {
            let mut n = HotNode::new(i as u64, i as u32 * FANOUT, FANOUT);
            n.confidence = confidence[i];
            n
        })
        .collect();
    Graph::new(nodes, edges)
}

/// The same graph in the naive layout.
pub fn naive_graph(nodes: usize, seed: u64) -> Graph<NaiveNode> {
    let (edges, confidence) = random_edges(nodes, seed);
    let nodes = (0..nodes)
        .map(|i| NaiveNode {
            id: i as u64,
            label: format!("episode-{i}"),
            edge_start: i as u32 * FANOUT,
            created_ns: 1_700_000_000_000_000_000 + i as u64,
            embedding: [i as f32 * 1e-6; EMBEDDING_DIM],
            activation: 0.0,
            last_access_ns: 0,
            access_count: 0,
            confidence: confidence[i],
            edge_count: FANOUT,
            epoch: 0,
            tier: 0,
            flags: 0,
        })
        .collect();
    Graph::new(nodes, edges)
}

impl<N: SpreadNode> Graph<N> {
    fn new(nodes: Vec<N>, edges: Vec<u32>) -> Self {
        Self {
            nodes,
            edges,
            epoch: 0,
            frontier: Vec::new(),
            next: Vec::new(),
        }
    }

    /// Bytes of node storage (the layout's working set, edges excluded).
    pub fn node_bytes(&self) -> usize {
        self.nodes.len() * std::mem::size_of::<N>()
    }

    /// One spread from [`SEEDS`] seeds chosen by `seed` (so successive spreads start in
    /// different places, as queries would).
    #[inline(never)]
    pub fn spread(&mut self, seed: u64) -> SpreadOutcome {
        let n = self.nodes.len();
        if n == 0 {
            return SpreadOutcome {
                activated: 0,
                edges_followed: 0,
                checksum: 0.0,
            };
        }
        self.epoch = self.epoch.wrapping_add(1).max(1);
        let epoch = self.epoch;
        let mut rng = SplitMix64::new(seed);
        let mut out = SpreadOutcome {
            activated: 0,
            edges_followed: 0,
            checksum: 0.0,
        };
        let mut activated: Vec<u32> = Vec::new();
        self.frontier.clear();
        for _ in 0..SEEDS {
            let s = rng.below(n as u64) as u32;
            let node = &mut self.nodes[s as usize];
            if node.epoch() != epoch {
                node.set_epoch(epoch);
                node.set_activation(1.0);
                self.frontier.push(s);
                activated.push(s);
            }
        }
        for _ in 0..HOPS {
            self.next.clear();
            for &u in &self.frontier {
                let node = &self.nodes[u as usize];
                let outgoing = node.activation() * node.confidence() * DECAY;
                let (start, count) = node.edges();
                if outgoing < THRESHOLD || count == 0 {
                    continue;
                }
                let share = outgoing / count as f32;
                for &v in &self.edges[start as usize..(start + count) as usize] {
                    let target = &mut self.nodes[v as usize];
                    if target.epoch() != epoch {
                        target.set_epoch(epoch);
                        target.set_activation(0.0);
                        self.next.push(v);
                        activated.push(v);
                    }
                    target.set_activation(target.activation() + share);
                    out.edges_followed += 1;
                }
            }
            std::mem::swap(&mut self.frontier, &mut self.next);
        }
        out.activated = activated.len() as u64;
        out.checksum = activated
            .iter()
            .map(|&v| f64::from(self.nodes[v as usize].activation()))
            .sum();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_compute_the_same_spread() {
        let mut hot = hot_graph(5000, 42);
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
        assert!(std::mem::size_of::<NaiveNode>() > 8 * 64);
        let hot_span = offset_of!(NaiveNode, epoch) - offset_of!(NaiveNode, edge_start);
        assert!(hot_span > 4 * 64, "hot fields are {hot_span} bytes apart");
        let hot = hot_graph(10, 1);
        let naive = naive_graph(10, 1);
        assert!(naive.node_bytes() > 8 * hot.node_bytes());
    }

    #[test]
    fn empty_graph_spreads_nothing() {
        let mut g = hot_graph(0, 1);
        assert_eq!(g.spread(1).activated, 0);
    }
}
