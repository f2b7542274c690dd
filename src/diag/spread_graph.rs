//! Scale-free association graphs for spread benchmarks: Barabási–Albert-like growth, as
//! `../shared/graphpeers/gen_workload.py` builds its base graph (without clusters).
//!
//! Node `i` links to `min(m, i)` distinct older nodes chosen preferentially (uniform over the
//! list of all edge endpoints so far, i.e. proportional to degree); each link gets a random
//! direction and a weight `1 − U[0, 1)` in (0, 1]. Mean out-degree ≈ `m`, heavy-tailed in- and
//! out-degrees. Deterministic for a seed.

use std::sync::Arc;

use crate::alloc::{MemPolicy, NodeArena};
use crate::rng::SplitMix64;
use crate::spread::{AssocGraph, GraphConfig, SpreadError, SpreadScratch};

/// The edges `(src, dst, weight)` of a scale-free graph on ids `0..nodes`.
pub fn scale_free_edges(nodes: usize, m: usize, seed: u64) -> Vec<(u64, u64, f32)> {
    let mut rng = SplitMix64::new(seed);
    let mut endpoints: Vec<u32> = Vec::with_capacity(nodes.saturating_mul(2 * m));
    let mut edges = Vec::with_capacity(nodes.saturating_mul(m));
    let mut picked: Vec<u32> = Vec::with_capacity(m);
    for i in 0..nodes as u32 {
        picked.clear();
        let want = m.min(i as usize);
        let mut tries = 0;
        while picked.len() < want && tries < 50 * m {
            tries += 1;
            let t = if endpoints.is_empty() || rng.below(4) == 0 {
                rng.below(u64::from(i)) as u32
            } else {
                endpoints[rng.below(endpoints.len() as u64) as usize]
            };
            if !picked.contains(&t) {
                picked.push(t);
            }
        }
        for &t in &picked {
            let w = 1.0 - (rng.below(1 << 24) as f32) / (1u32 << 24) as f32;
            if rng.below(2) == 0 {
                edges.push((u64::from(i), u64::from(t), w));
            } else {
                edges.push((u64::from(t), u64::from(i), w));
            }
            endpoints.push(i);
            endpoints.push(t);
        }
    }
    edges
}

/// A graph of `nodes` nodes with [`scale_free_edges`], in an arena under `policy` with room for
/// `scratches` scratches.
///
/// # Errors
/// Those of [`NodeArena::new`] and [`AssocGraph`]'s methods.
pub fn scale_free_graph(
    nodes: usize,
    m: usize,
    seed: u64,
    policy: MemPolicy,
    scratches: usize,
) -> Result<AssocGraph, SpreadError> {
    let edges = scale_free_edges(nodes, m, seed);
    let bytes =
        GraphConfig::arena_bytes_for(nodes, edges.len()) + scratches * SpreadScratch::bytes_for(nodes);
    let arena = Arc::new(NodeArena::new(policy, bytes, &Default::default())?);
    let g = AssocGraph::new(arena, GraphConfig::with_max_nodes(nodes.max(1)))?;
    for i in 0..nodes as u64 {
        g.add_node(i)?;
    }
    for (a, b, w) in edges {
        g.associate(a, b, w)?;
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_out_degree_is_m_and_degrees_are_heavy_tailed() {
        let e = scale_free_edges(5000, 8, 1);
        let mut out = vec![0u32; 5000];
        for &(a, b, w) in &e {
            assert_ne!(a, b);
            assert!(w > 0.0 && w <= 1.0);
            out[a as usize] += 1;
        }
        let mean = e.len() as f64 / 5000.0;
        assert!((7.5..=8.0).contains(&mean), "{mean}");
        assert!(*out.iter().max().unwrap_or(&0) > 80, "no hub");
    }
}
