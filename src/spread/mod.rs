//! Spreading activation over a streaming association graph, sharded per NUMA node.
//!
//! ## Model
//! Each shard owns an [`AssocGraph`] in its [`NodeArena`](crate::alloc::NodeArena): nodes with
//! stable `u64` ids (the engine's episode ids) mapped to shard-local indexes, a one-cache-line
//! [`HotNode`] per node (edge block, degree, flags) with the cold [`NodeMeta`] apart, and per-node
//! edge blocks that grow by doubling. Edges are appended while spreads run: one writer lock per
//! graph, lock-free readers that see each node's edges as a consistent prefix (Release/Acquire
//! publication, model-checked with loom).
//!
//! A spread ([`AssocGraph::spread`]): in each hop the activation a node *received in the previous
//! hop* flows along its out-edges (its `F` heaviest with a fan-out cap), multiplied by the edge
//! weight and the hop's [`Decay`]; contributions are summed per node; a node that received less
//! than the propagation threshold does not propagate; the result is the top-k nodes by total
//! activation (seeds excluded unless asked, ties by id), each with its activation and hop
//! distance, `partial` when the latency budget cut the spread short. With threshold 0 and no
//! cap it is the exact walk sum of `../shared/graphpeers` (`docs/spreading.md`).
//!
//! Activation is summed in 64.64 fixed point, so a spread is deterministic to the bit however
//! its work is split. Per-query state lives in a reusable, epoch-stamped [`SpreadScratch`]
//! (one per worker). Across shards ([`spread_across`]) activation travels only as one batch per
//! hop per destination shard, through a [`HopRunner`] that the engine implements with each
//! shard's workers. A per-shard online cost model predicts each hop for the latency budget;
//! [`FrontierBatcher`] sizes work items by measured latency; [`SpreadMetrics`] counts it all.
//!
//! ## Example
//! ```
//! use std::sync::Arc;
//!
//! use locus::alloc::NodeArena;
//! use locus::spread::{
//!     AssocGraph, GraphConfig, LocalShards, SpreadParams, SpreadScratch, spread_across,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = GraphConfig::with_max_nodes(1000);
//! let bytes = GraphConfig::arena_bytes_for(1000, 4000) + SpreadScratch::bytes_for(1000);
//! let graph = AssocGraph::new(Arc::new(NodeArena::on_node(0, bytes)?), config)?;
//! for id in 1..=3 {
//!     graph.add_node(id)?;
//! }
//! graph.associate(1, 2, 0.8)?; // adds 1 → 2
//! graph.associate(2, 3, 0.5)?;
//! graph.associate(2, 3, 0.1)?; // strengthens 2 → 3 to 0.6
//!
//! let mut scratch = SpreadScratch::for_graph(&graph)?; // one per worker, reused
//! let params = SpreadParams::default(); // 3 hops, decay 0.5, k = 10
//! let result = graph.spread(&[(1, 1.0)], &params, &mut scratch)?;
//! assert_eq!(result.hits[0].id, 2); // 1.0 × 0.8 × 0.5 = 0.4, one hop away
//! assert_eq!(result.hits[0].hops, 1);
//! assert_eq!(result.hits[1].id, 3); // 0.4 × 0.6 × 0.5 = 0.12
//!
//! // The same spread through the cross-shard driver (here: one shard, run in-process). The
//! // engine implements `HopRunner` with each shard's pinned workers instead.
//! let runner = LocalShards::new(vec![&graph], false)?;
//! let across = spread_across(&runner, &|_| 0, 1, &[(1, 1.0)], &params)?;
//! assert_eq!(across.hits, result.hits); // to the bit
//! # Ok(())
//! # }
//! ```

mod batching;
mod edges;
mod error;
pub mod fixed;
mod graph;
mod idmap;
#[cfg(all(loom, test))]
mod loom_tests;
mod metrics;
mod node;
mod params;
mod predictor;
mod result;
mod scratch;
mod shards;
mod single;
mod sync;
#[cfg(all(test, not(loom)))]
mod tests;

pub use batching::{BatcherConfig, FrontierBatcher};
pub use error::SpreadError;
pub use fixed::Fixed;
pub use graph::{AssocGraph, GraphConfig};
pub use metrics::{SpreadMetrics, SpreadMetricsSnapshot, write_prometheus_all};
pub use node::{HotNode, NodeMeta};
pub use params::{Decay, MAX_HOPS, SpreadParams};
pub use result::{SpreadHit, SpreadResult, SpreadStats};
pub use scratch::{ScratchPool, SpreadScratch};
pub use shards::{HopReply, HopRequest, HopRunner, LocalShards, spread_across};
