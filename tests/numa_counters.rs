//! Counters on a multi-node machine (run inside the emulated one by `scripts/vm-tests.sh`, a
//! different kernel from the host's; on a one-node machine it prints a skip reason).
//!
//! WARNING: this binary pins threads (one per node, each in its own spawned thread). It runs
//! as its own process so no other test's threads are affected.

mod vm_support;

use locus::counters::pmu::core_pmu_present;
use locus::counters::{Event, Reading, Unavailable, measure};
use locus::topology::{PlacementPlan, PlanOptions, Topology, spawn_pinned};
use vm_support::require_nodes;

/// One pinned worker per node counts its own busy loop: the software counters work on this
/// kernel, a pinned thread never migrates, and hardware events are either counted or carry
/// the right reason.
#[test]
fn pinned_workers_on_every_node_count_their_own_work() {
    if !require_nodes("pinned_workers_on_every_node_count_their_own_work", 2) {
        return;
    }
    let topo = Topology::discover().expect("topology");
    let plan = PlacementPlan::new(&topo, &PlanOptions::default()).expect("plan");
    let pmu = core_pmu_present();
    println!("core PMU present in this kernel: {pmu}");
    for node in &plan.nodes {
        let worker = node.workers.first().expect("every CPU node has a worker").clone();
        let handle = spawn_pinned(
            format!("count-node-{}", node.node),
            worker.cpus.clone(),
            move |pinned| {
                pinned.expect("pinned to the plan's CPU");
                measure(
                    &[
                        Event::TaskClock,
                        Event::CpuMigrations,
                        Event::PageFaults,
                        Event::Instructions,
                    ],
                    || {
                        // Fresh small pages (transparent huge pages would fault 2 MiB at a time).
                        let mut v = memmap2::MmapOptions::new().len(4 << 20).map_anon().expect("mmap");
                        let _ = v.advise(memmap2::Advice::NoHugePage);
                        for i in (0..v.len()).step_by(4096) {
                            v[i] = 1;
                        }
                        let mut x = 0u64;
                        for i in 0..2_000_000u64 {
                            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                        }
                        x ^ u64::from(v[4096])
                    },
                )
            },
        )
        .expect("spawn pinned");
        let (_, report) = handle.join().expect("worker thread").expect("measure");
        println!("node {} (CPU {}):", node.node, worker.cpu);
        for line in report.lines() {
            println!("  {line}");
        }
        assert!(
            report.value(Event::TaskClock).is_some_and(|ns| ns > 0),
            "task-clock counts"
        );
        assert_eq!(
            report.value(Event::CpuMigrations),
            Some(0),
            "a pinned thread does not migrate"
        );
        assert!(
            report
                .value(Event::PageFaults)
                .is_some_and(|f| f >= 1024 * 9 / 10),
            "touching 1024 fresh pages faults: {:?}",
            report.value(Event::PageFaults)
        );
        match report.reading(Event::Instructions) {
            Some(Reading::Counted(c)) => assert!(pmu && c.value > 2_000_000, "{c:?}"),
            Some(Reading::Unavailable(Unavailable::NoPmu)) => assert!(!pmu),
            other => assert!(pmu, "without a PMU instructions must be NoPmu: {other:?}"),
        }
    }
}
