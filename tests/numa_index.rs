//! The HNSW index in node-bound memory (`index::NodeRegions`): same answers as on the heap, and
//! its pages on the node asked for even when another node's thread builds it. The multi-node test
//! runs inside the emulated machine (`scripts/vm-tests.sh`); on one node it prints a skip reason.
//!
//! WARNING: this binary pins its test thread. It runs as its own process for that reason.

mod index_support;
mod vm_support;

use index_support::clustered;
use locus::index::{HnswConfig, HnswIndex, Kernels, Metric, NodeRegions};
use locus::topology::{PlacementPlan, PlanOptions, Topology, pin_current_thread};

#[test]
fn an_index_in_node_regions_answers_like_one_on_the_heap() {
    let (n, dim) = (3_000, 64);
    let data = clustered(7, n + 50, dim, 50, 1.0);
    let (base, queries) = data.split_at(n * dim);
    let node = Topology::discover().expect("discovery").numa_nodes[0].os_index;
    let heap = HnswIndex::new(HnswConfig::new(dim, n, Metric::InnerProduct)).expect("heap index");
    let bound = HnswIndex::with_regions(
        HnswConfig::new(dim, n, Metric::InnerProduct),
        *Kernels::detect(),
        &NodeRegions::bind(node),
    )
    .expect("node-bound index");
    // One thread each, so both builds insert in the same order and must give the same graph.
    heap.insert_batch(base, 1).expect("insert");
    bound.insert_batch(base, 1).expect("insert");
    for q in queries.chunks_exact(dim) {
        let a: Vec<u32> = heap
            .search(q, 10, 64)
            .expect("search")
            .iter()
            .map(|r| r.id)
            .collect();
        let b: Vec<u32> = bound
            .search(q, 10, 64)
            .expect("search")
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(a, b);
    }
}

/// Pages per node of every mapping whose policy is `bind:<node>`, from /proc/self/numa_maps.
fn bound_pages(node: u32) -> std::collections::BTreeMap<u32, u64> {
    let maps = std::fs::read_to_string("/proc/self/numa_maps").expect("numa_maps");
    let policy = format!("bind:{node}");
    let mut pages = std::collections::BTreeMap::new();
    for line in maps
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(policy.as_str()))
    {
        for (k, v) in line.split_whitespace().filter_map(|t| t.split_once('=')) {
            if let (Some(n), Ok(count)) = (k.strip_prefix('N').and_then(|n| n.parse().ok()), v.parse::<u64>())
            {
                *pages.entry(n).or_insert(0) += count;
            }
        }
    }
    pages
}

#[test]
fn index_pages_live_on_the_bound_node_when_another_node_builds_it() {
    let test = "index_pages_live_on_the_bound_node_when_another_node_builds_it";
    if !vm_support::require_nodes(test, 2) {
        return;
    }
    let topo = Topology::discover().expect("discovery");
    let plan = PlacementPlan::new(&topo, &PlanOptions::default()).expect("plan");
    let first = &plan.nodes[0];
    let target = plan.nodes.last().expect("nodes").node;
    pin_current_thread(&first.workers[0].cpus).expect("pin");
    let (n, dim) = (4_000, 128);
    let data = clustered(3, n, dim, 40, 1.0);
    let index = HnswIndex::with_regions(
        HnswConfig::new(dim, n, Metric::InnerProduct),
        *Kernels::detect(),
        &NodeRegions::bind(target),
    )
    .expect("index");
    // One inserting thread, pinned to the first node: every first touch comes from there.
    index.insert_batch(&data, 1).expect("insert");
    let pages = bound_pages(target);
    let on_target = pages.get(&target).copied().unwrap_or(0);
    let elsewhere: u64 = pages.iter().filter(|(n, _)| **n != target).map(|(_, c)| c).sum();
    // f32 rows alone are n × dim × 4 bytes; everything touched must be on the target node.
    let min_pages = (n * dim * 4 / 4096) as u64;
    eprintln!(
        "index built from node {} bound to node {target}: {on_target} pages there, {elsewhere} elsewhere",
        first.node
    );
    assert_eq!(elsewhere, 0, "pages off node {target}: {pages:?}");
    assert!(
        on_target >= min_pages,
        "only {on_target} pages on node {target}, rows need {min_pages}"
    );
}
