//! The executor on a multi-node machine (run inside the emulated one by `scripts/vm-tests.sh`;
//! on a one-node machine each test prints `skipped: <reason>`).
//!
//! WARNING: this binary pins threads (the executor's workers). It runs as its own process so
//! that no other test's threads are affected.
//!
//! Under TCG emulation timings mean nothing; these tests check placement facts only: where each
//! worker runs (`getcpu`), which node each item ran on, and the steal counters.

mod vm_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use locus::exec::{
    BatchSource, ExecDegradation, Executor, PinStatus, Priority, StealPolicy, WorkerContext, WorkerPoolConfig,
};
use locus::topology::{PlacementPlan, PlanOptions, Topology, current_location};
use vm_support::require_nodes;

/// What the handler saw for each item: (origin node, plan node of the worker, node `getcpu`
/// reported inside the handler, CPU `getcpu` reported, plan CPU, batch source).
type Seen = Arc<Mutex<Vec<(u32, u32, u32, u32, u32, BatchSource)>>>;

fn plan() -> PlacementPlan {
    PlacementPlan::new(&Topology::discover().expect("discovery"), &PlanOptions::default()).expect("plan")
}

/// Starts a paused executor whose handler sleeps `per_batch` and records where each item ran.
fn recording_exec(plan: &PlacementPlan, cfg: WorkerPoolConfig, per_batch: Duration) -> (Executor<u32>, Seen) {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let exec = Executor::start_paused(
        plan,
        cfg,
        move |ctx: &WorkerContext, _: Priority, b: &mut Vec<u32>| {
            std::thread::sleep(per_batch);
            let loc = current_location().expect("getcpu");
            let mut s = s.lock().unwrap();
            s.extend(
                b.drain(..)
                    .map(|origin| (origin, ctx.node, loc.node, loc.cpu, ctx.cpu, ctx.source)),
            );
        },
    )
    .expect("start");
    assert_eq!(
        exec.degradations(),
        Vec::<ExecDegradation>::new(),
        "every worker pinned"
    );
    (exec, seen)
}

#[test]
fn workers_run_on_their_plan_cpu_and_node() {
    if !require_nodes("workers_run_on_their_plan_cpu_and_node", 2) {
        return;
    }
    let plan = plan();
    let cfg = WorkerPoolConfig {
        steal: StealPolicy::Off,
        ..WorkerPoolConfig::for_plan(&plan)
    };
    let (exec, seen) = recording_exec(&plan, cfg, Duration::ZERO);
    let statuses = exec.pin_statuses();
    assert_eq!(statuses.len(), plan.worker_count());
    for (worker, status) in &statuses {
        let slot = plan.workers().find(|s| s.index == *worker).unwrap();
        match status {
            PinStatus::Verified { location } => {
                assert_eq!(
                    (location.cpu, location.node),
                    (slot.cpu, slot.node),
                    "worker {worker}"
                );
            }
            other => panic!("worker {worker}: {other:?}"),
        }
    }
    // Every worker runs items; getcpu inside the handler agrees with the plan each time.
    for slot in plan.workers() {
        for _ in 0..20 {
            exec.submit_to_worker(slot.index, Priority::Normal, slot.node)
                .unwrap();
        }
    }
    exec.resume();
    let report = exec.shutdown();
    assert_eq!(report.ran as usize, 20 * plan.worker_count());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 20 * plan.worker_count());
    for &(origin, plan_node, node, cpu, plan_cpu, _) in seen.iter() {
        assert_eq!((node, cpu), (plan_node, plan_cpu));
        assert_eq!(origin, node);
    }
    println!(
        "{} workers on {} nodes, each verified on its plan CPU and node",
        plan.worker_count(),
        plan.nodes.len()
    );
}

#[test]
fn within_node_stealing_never_crosses_nodes() {
    if !require_nodes("within_node_stealing_never_crosses_nodes", 2) {
        return;
    }
    let plan = plan();
    let cfg = WorkerPoolConfig {
        steal: StealPolicy::WithinNode,
        max_batch: 4,
        ..WorkerPoolConfig::for_plan(&plan)
    };
    let (exec, seen) = recording_exec(&plan, cfg, Duration::from_millis(1));
    // A backlog on the first worker of the first node only: its siblings steal, nobody else.
    let first = &plan.nodes[0];
    for _ in 0..400 {
        exec.submit_to_worker(first.workers[0].index, Priority::Normal, first.node)
            .unwrap();
    }
    exec.resume();
    while exec.metrics().items_run() < 400 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let m = exec.metrics();
    exec.shutdown();
    let seen = seen.lock().unwrap();
    let crossed = seen.iter().filter(|s| s.0 != s.2).count();
    assert_eq!(crossed, 0, "items ran off their node");
    assert_eq!(m.steals().1, 0);
    if first.workers.len() > 1 {
        assert!(m.steals().0 > 0, "siblings on node {} never stole", first.node);
    }
    println!(
        "400 items from node {}: {} local steals, 0 remote, 0 items off-node",
        first.node,
        m.steals().0
    );
}

#[test]
fn backlog_past_threshold_is_stolen_across_nodes_and_counted() {
    if !require_nodes("backlog_past_threshold_is_stolen_across_nodes_and_counted", 2) {
        return;
    }
    let plan = plan();
    const THRESHOLD: usize = 32;
    let cfg = WorkerPoolConfig {
        steal: StealPolicy::CrossNode { threshold: THRESHOLD },
        max_batch: 4,
        ..WorkerPoolConfig::for_plan(&plan)
    };
    let (exec, seen) = recording_exec(&plan, cfg, Duration::from_millis(2));
    let first = &plan.nodes[0];
    // Every worker of the first node gets a backlog well past the threshold.
    let per_worker = 10 * THRESHOLD;
    for w in &first.workers {
        for _ in 0..per_worker {
            exec.submit_to_worker(w.index, Priority::Normal, first.node)
                .unwrap();
        }
    }
    let total = per_worker * first.workers.len();
    exec.resume();
    while (exec.metrics().items_run() as usize) < total {
        std::thread::sleep(Duration::from_millis(5));
    }
    let m = exec.metrics();
    exec.shutdown();
    let (_, remote) = m.steals();
    assert!(
        remote > 0,
        "no remote steal with a backlog of {per_worker} > {THRESHOLD}"
    );
    let stolen_remote: u64 = m.workers.iter().map(|w| w.stolen_items_remote).sum();
    let seen = seen.lock().unwrap();
    // Every item that ran on another node got there by a counted remote steal, and getcpu
    // confirms it ran on the thief's node.
    let off_node: Vec<_> = seen.iter().filter(|s| s.0 != s.2).collect();
    assert_eq!(off_node.len() as u64, stolen_remote);
    for s in &off_node {
        assert!(
            matches!(s.5, BatchSource::StolenRemote { from_node, .. } if from_node == first.node),
            "{s:?}"
        );
        assert_eq!(s.1, s.2, "the thief ran on its own node");
    }
    // Thieves are workers of other nodes only.
    for w in &m.workers {
        if w.node == first.node {
            assert_eq!(w.steals_remote, 0);
        }
    }
    println!(
        "backlog {total} on node {} (threshold {THRESHOLD}/worker): {remote} remote steals moved {stolen_remote} items",
        first.node
    );
}
