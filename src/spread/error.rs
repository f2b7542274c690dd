//! [`SpreadError`]: everything the association graph and the spread refuse, typed.

use thiserror::Error;

use crate::alloc::AllocError;

/// Why a graph operation or a spread was refused. On every error nothing was changed.
#[derive(Debug, Error)]
pub enum SpreadError {
    /// A parameter is out of range (`k = 0`, `max_hops = 0`, a NaN threshold, a decay table
    /// shorter than `max_hops`…). Fix the call; the message says which.
    #[error("invalid spread input: {what}")]
    InvalidInput {
        /// What was wrong.
        what: String,
    },
    /// An edge weight or seed activation is NaN, infinite, negative (or a weight is zero).
    /// Weights must be finite and > 0, activations finite and >= 0.
    #[error("invalid {what} {value} (must be finite and {rule})")]
    InvalidWeight {
        /// "edge weight" or "seed activation".
        what: &'static str,
        /// The value given.
        value: f32,
        /// "> 0" or ">= 0".
        rule: &'static str,
    },
    /// The id is not a (live) node of this graph: add it first, or route the call to the shard
    /// that holds it.
    #[error("node {id} is not in this graph")]
    UnknownNode {
        /// The id.
        id: u64,
    },
    /// A seed of a spread is not a live node (of this graph, or of any shard).
    #[error("seed {id} is not a node of the graph")]
    UnknownSeed {
        /// The seed's id.
        id: u64,
    },
    /// The node was forgotten (tombstoned); its id cannot be reused.
    #[error("node {id} was forgotten and cannot be used again")]
    Forgotten {
        /// The id.
        id: u64,
    },
    /// `u64::MAX` is reserved (it marks empty slots of the id map).
    #[error("node id {id} is reserved")]
    ReservedId {
        /// The id.
        id: u64,
    },
    /// The graph holds `max_nodes` nodes already. Create the graph with a larger
    /// [`GraphConfig::max_nodes`](super::GraphConfig::max_nodes).
    #[error("graph is full: {max_nodes} nodes")]
    GraphFull {
        /// The configured capacity.
        max_nodes: usize,
    },
    /// A node has the most edges a node may have (`u32::MAX / 2`).
    #[error("node {id} has the maximum number of out-edges")]
    TooManyEdges {
        /// The node.
        id: u64,
    },
    /// The shard's arena has no room for a node chunk or an edge block. Give the shard a bigger
    /// arena ([`GraphConfig::arena_bytes_for`](super::GraphConfig::arena_bytes_for) sizes one).
    #[error("arena exhausted: {0}")]
    Arena(#[from] AllocError),
    /// A scratch is smaller than the graph it is used on: take it from
    /// [`SpreadScratch::for_graph`](super::SpreadScratch::for_graph).
    #[error("scratch holds {scratch} nodes but the graph may hold {graph}")]
    ScratchTooSmall {
        /// Nodes the scratch covers.
        scratch: usize,
        /// The graph's capacity.
        graph: usize,
    },
    /// A cross-shard request named a shard the runner does not have, or a shard failed.
    #[error("shard {shard}: {what}")]
    Shard {
        /// The shard index.
        shard: usize,
        /// What went wrong.
        what: String,
    },
}
