//! The HNSW index in node-bound memory (`index::NodeRegions`): same answers as on the heap, and
//! every one of its allocations (rows, links, levels, flags, locks, visited sets), page by page,
//! on the node asked for even when another node's thread builds, compacts or loads it. The multi-node test
//! runs inside the emulated machine (`scripts/vm-tests.sh`); on one node it prints a skip reason.
//!
//! WARNING: this binary pins its test thread. It runs as its own process for that reason.

mod index_support;
mod vm_support;

use index_support::clustered;
use std::collections::BTreeSet;

use locus::alloc::{MemPolicy, PageSample};
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

/// Every allocation of `index` (rows, links, levels, flags, locks, upper-level lists, visited
/// sets), each page checked with `move_pages`: the parts not on `node`, with their pages per
/// node, and the names of the parts that have pages at all.
fn parts_off_node(index: &HnswIndex, node: u32) -> (Vec<String>, BTreeSet<String>) {
    let reports = index
        .placement_report(&MemPolicy::Bind(node), PageSample::All)
        .expect("move_pages in the VM");
    let mut off = Vec::new();
    let mut touched = BTreeSet::new();
    for (part, report) in &reports {
        if report.pages_present() > 0 {
            touched.insert(part.part.clone());
        }
        let elsewhere: usize = report
            .per_node
            .iter()
            .filter(|(n, _)| **n != node)
            .map(|(_, c)| c)
            .sum();
        if elsewhere > 0 || !part.from_source {
            off.push(format!("{} ({} bytes): {report}", part.part, part.bytes));
        }
    }
    (off, touched)
}

/// The parts a built and searched index must have touched (so the check above saw them).
const TOUCHED: &[&str] = &[
    "f32 rows",
    "int8 rows",
    "links level 0",
    "links upper levels",
    "upper-level index",
    "levels",
    "flags",
    "locks",
    "visited set",
];

fn assert_all_on(index: &HnswIndex, node: u32, what: &str) {
    let (off, touched) = parts_off_node(index, node);
    eprintln!("{what}: parts with pages: {touched:?}");
    assert!(
        off.is_empty(),
        "{what}: memory off node {node}:\n{}",
        off.join("\n")
    );
    for part in TOUCHED {
        assert!(
            touched.contains(*part),
            "{what}: no page of {part} present: {touched:?}"
        );
    }
    assert!(
        index.degradations().is_empty(),
        "{what}: {:?}",
        index.degradations()
    );
}

#[test]
fn every_part_of_the_index_lives_on_the_bound_node_when_another_node_builds_it() {
    let test = "every_part_of_the_index_lives_on_the_bound_node_when_another_node_builds_it";
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
    let regions = NodeRegions::bind(target);
    let index = HnswIndex::with_regions(
        HnswConfig::new(dim, n, Metric::InnerProduct),
        *Kernels::detect(),
        &regions,
    )
    .expect("index");
    // One inserting (and searching) thread, pinned to the first node: every first touch of
    // rows, links, per-node state and visited sets comes from there.
    index.insert_batch(&data, 1).expect("insert");
    for q in data.chunks_exact(dim).take(20) {
        index.search(q, 10, 64).expect("search");
    }
    eprintln!("built on node {} bound to node {target}", first.node);
    assert_all_on(&index, target, "built index");

    // Compaction and a snapshot loaded with the same regions stay on the node.
    for id in 0..100 {
        index.delete(id).expect("delete");
    }
    let (compact, _) = index.compact(n, 1).expect("compact");
    compact.search(&data[..dim], 10, 64).expect("search");
    assert_all_on(&compact, target, "compacted index");
    let dir = std::env::temp_dir().join(format!("numa_index_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("index.hnsw");
    compact.save(&path).expect("save");
    let loaded = HnswIndex::load_with_regions(&path, &regions).expect("load");
    loaded.search(&data[..dim], 10, 64).expect("search");
    assert_all_on(&loaded, target, "loaded index");
    let _ = std::fs::remove_dir_all(&dir);

    // The check can fail: an index in ordinary memory built from the first node has its pages
    // there, and the same check reports them.
    let heap = HnswIndex::new(HnswConfig::new(dim, 1_000, Metric::InnerProduct)).expect("heap");
    heap.insert_batch(&data[..1_000 * dim], 1).expect("insert");
    let (off, _) = parts_off_node(&heap, target);
    assert!(
        !off.is_empty(),
        "a heap index built on node {} passed the check",
        first.node
    );
}
