//! Node-local memory on a multi-node machine (run inside the emulated one by
//! `scripts/vm-tests.sh`; on a one-node machine the multi-node tests print a skip reason).
//!
//! Each arena is bound to its node and then first touched **from a thread pinned to another
//! node**: without the binding, first touch would put the pages on the toucher's node (the
//! control case checks that it does), so 100 % of pages on the arena's node proves the binding.
//!
//! WARNING: this binary pins threads. It runs as its own process so that no other test's threads
//! are affected.

mod vm_support;

use locus::alloc::{AllocError, MemPolicy, NodeArena, PageSample, PlacementReport, placement_of};
use locus::topology::{CpuSet, NodeSet, PlacementPlan, PlanOptions, Topology, pin_and_verify};
use vm_support::{require_cpuless_node, require_nodes};

const ARENA_BYTES: usize = 4 << 20;

/// Prints a finding where it is always seen (stderr, past the harness's capture), so the VM logs
/// carry the placement figures.
fn show(line: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn plan() -> (Topology, PlacementPlan) {
    let topo = Topology::discover().expect("discovery");
    let plan = PlacementPlan::new(&topo, &PlanOptions::default()).expect("plan");
    (topo, plan)
}

/// The first planned CPU of a node other than `node`, and that node.
fn cpu_elsewhere(plan: &PlacementPlan, node: u32) -> (CpuSet, u32) {
    let other = plan
        .nodes
        .iter()
        .find(|n| n.node != node && !n.workers.is_empty())
        .expect("another node with a worker");
    (other.workers[0].cpus.clone(), other.node)
}

/// Creates an arena under `policy`, fills it from a thread pinned to `toucher`, and reports.
fn fill_from(policy: MemPolicy, toucher: &CpuSet) -> (NodeArena, PlacementReport, u32) {
    let arena = NodeArena::new(policy, ARENA_BYTES, &Default::default()).expect("arena");
    let where_ran = std::thread::scope(|s| {
        s.spawn(|| {
            let loc = pin_and_verify(toucher).expect("pin");
            arena.alloc_slice_copy(arena.capacity(), 0xA5u8).expect("fill");
            loc.node
        })
        .join()
        .expect("toucher")
    });
    let report = arena.placement_report(PageSample::All).expect("placement report");
    (arena, report, where_ran)
}

#[test]
fn arena_pages_stay_on_their_node_when_touched_from_another_node() {
    if !require_nodes("arena_pages_stay_on_their_node_when_touched_from_another_node", 2) {
        return;
    }
    let (_topo, plan) = plan();
    let mut targets: Vec<u32> = plan.nodes.iter().map(|n| n.memory_node).collect();
    targets.extend(&plan.memory_only_nodes);
    targets.dedup();
    for node in targets {
        let (cpus, toucher_node) = cpu_elsewhere(&plan, node);
        let (arena, report, ran_on) = fill_from(MemPolicy::Bind(node), &cpus);
        assert_eq!(ran_on, toucher_node);
        show(format!(
            "node {node} (touched from node {ran_on}, cpu {cpus}): {report}"
        ));
        assert!(arena.binding().is_bound(), "{}", arena.binding());
        assert_eq!(report.pages_checked, ARENA_BYTES / arena.page_size());
        assert_eq!(report.not_present, 0, "{report}");
        assert_eq!(report.pages_on_home, report.pages_checked, "{report}");
        let kernel = report.kernel_policy.as_ref().expect("get_mempolicy");
        assert_eq!(kernel.nodes, NodeSet::single(node));
    }

    // Control: the same fill without a policy lands on the toucher's node, so the check above
    // could have failed.
    let target = plan.nodes[0].node;
    let (cpus, toucher_node) = cpu_elsewhere(&plan, target);
    let mut map = memmap2::MmapMut::map_anon(ARENA_BYTES).expect("map");
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_and_verify(&cpus).expect("pin");
            map.fill(0x5A);
        });
    });
    let control = placement_of(
        map.as_ptr(),
        map.len(),
        4096,
        &MemPolicy::Bind(toucher_node),
        PageSample::All,
    )
    .expect("report");
    show(format!(
        "control, unbound, touched from node {toucher_node}: {control}"
    ));
    assert!(
        control.home_fraction() > 0.9,
        "first touch should place pages locally: {control}"
    );
}

#[test]
fn interleave_spreads_pages_within_one_page_of_even() {
    if !require_nodes("interleave_spreads_pages_within_one_page_of_even", 2) {
        return;
    }
    let (topo, plan) = plan();
    let nodes = topo.allowed_mems.clone();
    let (cpus, _) = cpu_elsewhere(&plan, plan.nodes[0].node);
    let (_arena, report, _) = fill_from(MemPolicy::Interleave(nodes.clone()), &cpus);
    show(format!("interleave over {nodes}: {report}"));
    assert_eq!(report.not_present, 0, "{report}");
    assert_eq!(
        report.per_node.len(),
        nodes.len(),
        "every node got pages: {report}"
    );
    let max = report.per_node.values().max().copied().unwrap_or(0);
    let min = report.per_node.values().min().copied().unwrap_or(0);
    assert!(max - min <= 1, "uneven interleave: {report}");
    assert_eq!(report.pages_present(), report.pages_checked);
}

#[test]
fn memory_only_node_can_be_a_target() {
    let Some(spec) = require_cpuless_node("memory_only_node_can_be_a_target") else {
        return;
    };
    let (_topo, plan) = plan();
    let node = spec.cpu_nodes();
    assert!(
        plan.memory_only_nodes.contains(&node),
        "{:?}",
        plan.memory_only_nodes
    );
    let (cpus, _) = cpu_elsewhere(&plan, node);
    let (arena, report, ran_on) = fill_from(MemPolicy::Bind(node), &cpus);
    show(format!(
        "memory-only node {node} (touched from node {ran_on}): {report}"
    ));
    assert!(arena.binding().is_bound());
    assert!(report.all_on_home(), "{report}");
    // Preferred works there too.
    let (_a, preferred, _) = fill_from(MemPolicy::Preferred(node), &cpus);
    assert!(preferred.all_on_home(), "{preferred}");
}

#[test]
fn node_outside_the_allowed_mems_is_a_typed_error() {
    // Runs on any machine: the node after the last one this process may use does not exist or is
    // not allowed.
    let allowed = locus::alloc::allowed_memory_nodes().expect("allowed mems");
    let outside = allowed.last().expect("some node") + 1;
    match NodeArena::on_node(outside, ARENA_BYTES) {
        Err(AllocError::NodeNotAllowed {
            nodes,
            allowed: listed,
        }) => {
            show(format!("node {outside}: refused, allowed {listed}"));
            assert_eq!(nodes, outside.to_string());
            assert_eq!(listed, allowed.to_list_string());
        }
        other => panic!("expected NodeNotAllowed for node {outside}, got {other:?}"),
    }
    let mut with_outside = allowed.clone();
    with_outside.insert(outside);
    assert!(matches!(
        NodeArena::new(
            MemPolicy::Interleave(with_outside),
            ARENA_BYTES,
            &Default::default()
        ),
        Err(AllocError::NodeNotAllowed { .. })
    ));
    assert!(matches!(
        NodeArena::on_node(4096, ARENA_BYTES),
        Err(AllocError::NodeNotAllowed { .. } | AllocError::InvalidInput { .. })
    ));
}
