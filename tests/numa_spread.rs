//! Spreading activation across shards on the emulated multi-node machine: four shards, each
//! graph (and its scratch) in an arena bound to its own node; a spread whose walks cross every
//! shard returns exactly the single-shard answer, its cross-shard messages are counted, and every
//! shard's pages are on the shard's node (`move_pages`). Runs inside the VM
//! (`scripts/vm-tests.sh`); on fewer than four nodes it prints a skip reason.

mod vm_support;

use std::sync::Arc;

use locus::alloc::{MemPolicy, NodeArena, PageSample, PlacementReport};
use locus::diag::spread_graph::scale_free_edges;
use locus::spread::{AssocGraph, GraphConfig, LocalShards, SpreadParams, SpreadScratch, spread_across};
use locus::topology::{PlacementPlan, PlanOptions, Topology};

const NODES: usize = 3_000;

/// Every page that has memory is on `home`. Pages that were only read map the shared zero page
/// (`move_pages` status EFAULT): no memory was allocated for them anywhere, so they are allowed.
fn assert_all_home(r: &PlacementReport, home: u32, what: &str) {
    assert!(r.pages_present() > 0, "{what}: no page present: {r}");
    assert_eq!(
        r.pages_on_home,
        r.pages_present(),
        "{what}: pages off node {home}: {r}"
    );
    assert!(
        r.errors.keys().all(|&e| e == libc::EFAULT),
        "{what}: unexpected move_pages status: {r}"
    );
}

fn graph_on(node: u32, edges: usize) -> AssocGraph {
    let bytes = GraphConfig::arena_bytes_for(NODES, edges) + 2 * SpreadScratch::bytes_for(NODES);
    let arena = Arc::new(NodeArena::new(MemPolicy::Bind(node), bytes, &Default::default()).expect("arena"));
    AssocGraph::new(arena, GraphConfig::with_max_nodes(NODES)).expect("graph")
}

#[test]
fn a_spread_across_four_node_shards_equals_the_single_shard_answer() {
    let test = "a_spread_across_four_node_shards_equals_the_single_shard_answer";
    if !vm_support::require_nodes(test, 4) {
        return;
    }
    let topo = Topology::discover().expect("discovery");
    let plan = PlacementPlan::new(&topo, &PlanOptions::default()).expect("plan");
    let homes: Vec<u32> = plan.nodes.iter().take(4).map(|n| n.node).collect();
    assert_eq!(homes.len(), 4);
    let edges = scale_free_edges(NODES, 8, 9);
    let shard_of = |id: u64| (id % 4) as usize;

    let whole = graph_on(homes[0], edges.len());
    let shards: Vec<AssocGraph> = homes.iter().map(|&h| graph_on(h, edges.len())).collect();
    for id in 0..NODES as u64 {
        whole.add_node(id).expect("add");
        shards[shard_of(id)].add_node(id).expect("add");
    }
    for &(a, b, w) in &edges {
        whole.associate(a, b, w).expect("edge");
        shards[shard_of(a)].associate(a, b, w).expect("edge");
    }
    let runner = LocalShards::new(shards.iter().collect(), true).expect("runner");
    let mut scratch = SpreadScratch::for_graph(&whole).expect("scratch");
    let mut messages = 0;
    for (i, fan_out) in [(0u64, 0usize), (1, 32), (2, 0), (3, 4)] {
        let seeds = [(i * 101 + 5, 1.0), (i * 37 + 1000, 0.5)];
        let params = SpreadParams {
            fan_out,
            k: 50,
            ..SpreadParams::default()
        };
        let single = whole.spread(&seeds, &params, &mut scratch).expect("single");
        let multi = spread_across(&runner, &shard_of, 4, &seeds, &params).expect("multi");
        assert_eq!(multi.hits, single.hits, "seeds {seeds:?} F={fan_out}");
        let shards_hit: std::collections::BTreeSet<usize> =
            multi.hits.iter().map(|h| shard_of(h.id)).collect();
        assert_eq!(shards_hit.len(), 4, "the spread reached shards {shards_hit:?}");
        // 3 hops, 4 shards: at most 3 × 4 × 3 batches; at least one per hop that crossed.
        assert!(
            multi.stats.messages >= 3 && multi.stats.messages <= 36,
            "{:?}",
            multi.stats
        );
        messages += multi.stats.messages;
    }
    eprintln!("4 spreads across 4 shards: {messages} cross-shard messages");

    for (shard, (g, &home)) in shards.iter().zip(&homes).enumerate() {
        let report = g.arena().placement_report(PageSample::All).expect("placement");
        eprintln!("shard {shard} (node {home}): {report}");
        assert_all_home(&report, home, &format!("shard {shard} graph"));
        // The shard's scratch lives in the same arena: check its cells explicitly.
        runner
            .with_scratch(shard, |s| {
                let (addr, len) = s.cells_region();
                let r = locus::alloc::placement_of(
                    addr,
                    len,
                    g.arena().page_size(),
                    &MemPolicy::Bind(home),
                    PageSample::All,
                )
                .expect("scratch placement");
                assert_all_home(&r, home, &format!("shard {shard} scratch"));
            })
            .expect("scratch");
    }
}
