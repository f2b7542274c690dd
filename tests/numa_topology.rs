//! Topology and pinning on a multi-node machine (run inside the emulated one by
//! `scripts/vm-tests.sh`; on a one-node machine the multi-node tests print a skip reason).
//!
//! WARNING: this binary pins threads. It runs as its own process so that no other test's threads
//! are affected.

mod vm_support;

use locus::topology::{
    CpuSet, PlacementPlan, PlanOptions, Topology, TopologyError, WorkerGranularity, pin_current_thread,
    spawn_pinned,
};
use vm_support::{VmSpec, require_cpuless_node, require_nodes};

fn spec_or_skip(test: &str) -> Option<VmSpec> {
    if !require_nodes(test, 2) {
        return None;
    }
    match VmSpec::from_env() {
        Some(spec) => Some(spec),
        None => {
            vm_support::skip(
                test,
                "a multi-node machine without LOCUS_VM_SPEC: nothing to compare against",
            );
            None
        }
    }
}

#[test]
fn discovered_topology_is_what_qemu_was_told() {
    let Some(spec) = spec_or_skip("discovered_topology_is_what_qemu_was_told") else {
        return;
    };
    let topo = Topology::discover().expect("discovery");
    assert_eq!(
        topo.numa_nodes.len() as u32,
        spec.total_nodes(),
        "node count: {topo:#?}"
    );
    assert_eq!(topo.allowed_cpus.len() as u32, spec.total_cpus());
    assert_eq!(
        topo.packages.len() as u32,
        spec.sockets,
        "packages: {:?}",
        topo.packages
    );
    assert_eq!(
        topo.cores.len() as u32,
        spec.cpu_nodes() * spec.cores_per_node,
        "cores: {:?}",
        topo.cores
    );
    for core in &topo.cores {
        assert_eq!(core.cpus.len() as u32, spec.threads_per_core, "core {core:?}");
    }
    for (i, node) in topo.numa_nodes.iter().enumerate() {
        assert_eq!(node.os_index, i as u32);
        let expected: CpuSet = spec.cpus_of_node(node.os_index).into_iter().collect();
        assert_eq!(node.cpus, expected, "CPUs of node {}", node.os_index);
        assert_eq!(node.is_memory_only(), node.os_index >= spec.cpu_nodes());
        let want: Vec<u32> = (0..spec.total_nodes())
            .map(|b| spec.distance(node.os_index, b))
            .collect();
        assert_eq!(node.distances, want, "distances of node {}", node.os_index);
        // The kernel keeps some of each node for itself; MemTotal is a little below what QEMU gave.
        let given = spec.mem_per_node_mib << 20;
        assert!(
            node.memory_bytes <= given && node.memory_bytes >= given * 7 / 10,
            "node {} has {} bytes, QEMU gave {given}",
            node.os_index,
            node.memory_bytes
        );
    }
    for pkg in &topo.packages {
        let nodes_in: Vec<u32> = topo
            .numa_nodes
            .iter()
            .filter(|n| n.cpus.is_subset(&pkg.cpus) && !n.cpus.is_empty())
            .map(|n| n.os_index)
            .collect();
        assert_eq!(
            nodes_in.len() as u32,
            spec.nodes_per_socket,
            "nodes of package {pkg:?}"
        );
    }
    eprintln!("topology matches the VM spec {spec:?}");
}

fn check_every_worker(granularity: WorkerGranularity, spec: &VmSpec) {
    let topo = Topology::discover().expect("discovery");
    let options = PlanOptions {
        granularity,
        ..PlanOptions::default()
    };
    let plan = PlacementPlan::new(&topo, &options).expect("plan");
    assert_eq!(plan.nodes.len() as u32, spec.cpu_nodes());
    let per_node = match granularity {
        WorkerGranularity::PerCore => spec.cores_per_node,
        WorkerGranularity::PerPu => spec.cpus_per_node(),
    };
    let mut handles = Vec::new();
    for slot in plan.workers() {
        assert_eq!(plan.node(slot.node).expect("node").workers.len() as u32, per_node);
        let slot = slot.clone();
        let h = spawn_pinned(format!("w{}", slot.index), slot.cpus.clone(), move |pinned| {
            // Check more than once: a pinned thread must stay where it was put.
            let mut seen = Vec::new();
            for _ in 0..3 {
                seen.push(locus::topology::current_location());
                std::thread::yield_now();
            }
            (pinned, seen)
        })
        .expect("spawn");
        handles.push((slot, h));
    }
    for (slot, h) in handles {
        let (pinned, seen) = h.join().expect("worker thread panicked");
        let loc = pinned.unwrap_or_else(|e| panic!("worker {} not pinned: {e}", slot.index));
        assert_eq!(loc.cpu, slot.cpu, "worker {} runs on the wrong CPU", slot.index);
        assert_eq!(
            loc.node, slot.node,
            "worker {} runs on the wrong node",
            slot.index
        );
        for s in seen {
            let s = s.expect("getcpu");
            assert_eq!((s.cpu, s.node), (slot.cpu, slot.node));
        }
    }
    eprintln!(
        "{} workers ({granularity:?}) each found by getcpu on its CPU and node",
        plan.worker_count()
    );
}

#[test]
fn every_worker_runs_on_its_cpu_and_node_per_core() {
    let Some(spec) = spec_or_skip("every_worker_runs_on_its_cpu_and_node_per_core") else {
        return;
    };
    check_every_worker(WorkerGranularity::PerCore, &spec);
}

#[test]
fn every_worker_runs_on_its_cpu_and_node_per_pu() {
    let Some(spec) = spec_or_skip("every_worker_runs_on_its_cpu_and_node_per_pu") else {
        return;
    };
    check_every_worker(WorkerGranularity::PerPu, &spec);
}

#[test]
fn memory_only_node_is_an_overflow_target_ranked_by_distance() {
    let Some(spec) = require_cpuless_node("memory_only_node_is_an_overflow_target_ranked_by_distance") else {
        return;
    };
    let topo = Topology::discover().expect("discovery");
    let plan = PlacementPlan::new(&topo, &PlanOptions::default()).expect("plan");
    let expected: Vec<u32> = (spec.cpu_nodes()..spec.total_nodes()).collect();
    assert_eq!(plan.memory_only_nodes, expected);
    for node in &plan.nodes {
        assert_eq!(node.overflow_nodes, expected, "overflow of node {}", node.node);
        assert_eq!(node.memory_node, node.node);
    }
    assert!(
        plan.workers().all(|w| w.node < spec.cpu_nodes()),
        "no worker on a memory-only node"
    );
}

#[test]
fn pinning_outside_the_allowed_cpus_is_a_typed_error() {
    // Runs everywhere: CPU 4000 exists on no machine this runs on.
    let err = pin_current_thread(&CpuSet::single(4000)).expect_err("pinning to CPU 4000 must fail");
    assert!(matches!(err, TopologyError::InvalidCpuSet { .. }), "got {err:?}");
    let err = pin_current_thread(&CpuSet::new()).expect_err("empty set");
    assert!(matches!(err, TopologyError::InvalidCpuSet { .. }), "got {err:?}");
}
