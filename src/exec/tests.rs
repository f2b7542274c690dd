//! Executor tests on synthetic plans (no pinning: [`PinPolicy::Skip`]), plus one on this
//! machine's real plan with pinning.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use super::*;
use crate::topology::{CpuSet, NodePlan, PlacementPlan, PlanOptions, Topology, WorkerSlot};

/// `nodes` nodes of `per_node` workers each (all on CPU 0: pinning is skipped).
pub(crate) fn fake_plan(nodes: u32, per_node: usize) -> PlacementPlan {
    let mut index = 0;
    PlacementPlan {
        nodes: (0..nodes)
            .map(|n| NodePlan {
                node: n,
                cpus: CpuSet::single(0),
                memory_node: n,
                workers: (0..per_node)
                    .map(|l| {
                        index += 1;
                        WorkerSlot {
                            index: index - 1,
                            local_index: l,
                            node: n,
                            cpus: CpuSet::single(0),
                            cpu: 0,
                            memory_node: n,
                        }
                    })
                    .collect(),
                overflow_nodes: vec![],
            })
            .collect(),
        memory_only_nodes: vec![],
        degradations: vec![],
    }
}

fn config(plan: &PlacementPlan) -> WorkerPoolConfig {
    WorkerPoolConfig {
        pin: PinPolicy::Skip,
        ..WorkerPoolConfig::for_plan(plan)
    }
}

#[test]
fn every_accepted_item_runs_exactly_once_under_concurrent_submitters() {
    const SUBMITTERS: usize = 6;
    const PER: usize = 20_000;
    let plan = fake_plan(2, 2);
    let cfg = WorkerPoolConfig {
        capacity: [64, 64, 64],
        max_batch: 16,
        steal: StealPolicy::CrossNode { threshold: 16 },
        ..config(&plan)
    };
    let seen: Arc<Vec<AtomicU64>> = Arc::new((0..SUBMITTERS * PER).map(|_| AtomicU64::new(0)).collect());
    let s = seen.clone();
    let exec = Executor::start(
        &plan,
        cfg,
        move |_: &WorkerContext, _: Priority, b: &mut Vec<usize>| {
            for id in b.drain(..) {
                s[id].fetch_add(1, Ordering::Relaxed);
            }
        },
    )
    .unwrap();
    let accepted = AtomicUsize::new(0);
    let rejected: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for t in 0..SUBMITTERS {
            let (exec, accepted, rejected) = (&exec, &accepted, &rejected);
            sc.spawn(move || {
                let mut mine = Vec::new();
                for k in 0..PER {
                    let id = t * PER + k;
                    let class = Priority::ALL[id % 3];
                    match exec.submit((id % 2) as u32, class, id) {
                        Ok(()) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(r) => {
                            assert!(matches!(r.error, ExecError::Overloaded { .. }), "{}", r.error);
                            assert_eq!(r.item, id, "the rejected item comes back");
                            mine.push(r.item);
                        }
                    }
                }
                rejected.lock().unwrap().extend(mine);
            });
        }
    });
    let metrics_rejections = exec.metrics().rejections();
    let report = exec.shutdown();
    let rejected = rejected.into_inner().unwrap();
    let accepted = accepted.into_inner();
    assert_eq!(accepted + rejected.len(), SUBMITTERS * PER);
    assert_eq!(report.ran as usize, accepted);
    assert!(report.handed_back.is_empty());
    assert_eq!(report.dead_workers, 0);
    assert_eq!(metrics_rejections as usize, rejected.len());
    let rejected: std::collections::HashSet<usize> = rejected.into_iter().collect();
    for (id, n) in seen.iter().enumerate() {
        let want = u64::from(!rejected.contains(&id));
        assert_eq!(n.load(Ordering::Relaxed), want, "item {id}");
    }
}

#[test]
fn overloaded_exactly_when_full() {
    let plan = fake_plan(1, 2);
    let cfg = WorkerPoolConfig {
        capacity: [4, 8, 2],
        ..config(&plan)
    };
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let exec = Executor::start_paused(
        &plan,
        cfg,
        move |_: &WorkerContext, _: Priority, b: &mut Vec<u32>| {
            r.fetch_add(b.len(), Ordering::Relaxed);
        },
    )
    .unwrap();
    let mut accepted = 0;
    for (class, room) in [(Priority::High, 8), (Priority::Normal, 16), (Priority::Low, 4)] {
        for i in 0..room {
            exec.submit(0, class, i).unwrap();
            accepted += 1;
        }
        let err = exec.submit(0, class, 99).unwrap_err();
        assert_eq!(err.item, 99);
        match err.error {
            ExecError::Overloaded { class: c, depth } => {
                assert_eq!(c, class);
                assert_eq!(depth, room as usize);
            }
            e => panic!("{e}"),
        }
        assert_eq!(exec.pool(0).unwrap().rejections(class), 1);
        assert_eq!(exec.pool(0).unwrap().depth(class), room as usize);
    }
    // One worker's own queue: full at its own capacity.
    assert!(matches!(
        exec.submit_to_worker(1, Priority::High, 7).unwrap_err().error,
        ExecError::Overloaded { depth: 4, .. }
    ));
    // Unknown targets are typed errors that hand the item back.
    let e = exec.submit(5, Priority::High, 1).unwrap_err();
    assert!(matches!(
        e.error,
        ExecError::NoSuchTarget {
            what: "node",
            index: 5
        }
    ));
    assert!(exec.submit_to_worker(9, Priority::High, 1).is_err());
    exec.resume();
    let report = exec.shutdown();
    assert_eq!(report.ran, accepted);
    assert_eq!(ran.load(Ordering::Relaxed) as u64, accepted);
}

#[test]
fn high_first_and_low_not_starved() {
    let plan = fake_plan(1, 1);
    let cfg = WorkerPoolConfig {
        min_batch: 10,
        max_batch: 10,
        low_share: 4,
        ..config(&plan)
    };
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = order.clone();
    let exec = Executor::start_paused(
        &plan,
        cfg,
        move |_: &WorkerContext, c: Priority, b: &mut Vec<u32>| {
            o.lock().unwrap().push((c, b.len()));
        },
    )
    .unwrap();
    // Submitted lowest first, so FIFO alone would run them in the wrong order.
    for class in [Priority::Low, Priority::Normal, Priority::High] {
        for i in 0..50 {
            exec.submit(0, class, i).unwrap();
        }
    }
    exec.resume();
    let report = exec.shutdown();
    assert_eq!(report.ran, 150);
    let order = order.lock().unwrap().clone();
    assert!(order.iter().all(|&(_, n)| n == 10), "{order:?}");
    assert_eq!(order[0].0, Priority::High);
    let last_high = order.iter().rposition(|b| b.0 == Priority::High).unwrap();
    let first_normal = order.iter().position(|b| b.0 == Priority::Normal).unwrap();
    assert!(
        last_high < first_normal,
        "high must finish before normal: {order:?}"
    );
    // While low waits, every window of 4 batches holds a low one.
    let last_low = order.iter().rposition(|b| b.0 == Priority::Low).unwrap();
    for w in order[..=last_low].windows(4) {
        assert!(w.iter().any(|b| b.0 == Priority::Low), "low starved: {order:?}");
    }
    // And exactly its share while others wait: batches 3, 7, 11 are low; once high and normal
    // are done (5 batches each, by batch 12), the last two low batches follow.
    let lows: Vec<usize> = (0..order.len())
        .filter(|&i| order[i].0 == Priority::Low)
        .collect();
    assert_eq!(lows, [3, 7, 11, 13, 14]);
}

#[test]
fn shutdown_drains_every_accepted_item() {
    let plan = fake_plan(2, 2);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let exec = Executor::start_paused(
        &plan,
        config(&plan),
        move |_: &WorkerContext, _: Priority, b: &mut Vec<u32>| {
            r.fetch_add(b.len(), Ordering::Relaxed);
        },
    )
    .unwrap();
    for i in 0..3000u32 {
        exec.submit(i % 2, Priority::ALL[(i % 3) as usize], i).unwrap();
    }
    // Never resumed: shutdown still drains.
    let report = exec.shutdown();
    assert_eq!(report.ran, 3000);
    assert!(report.handed_back.is_empty());
    assert_eq!(ran.load(Ordering::Relaxed), 3000);
}

#[test]
fn hand_back_mode_returns_unrun_items() {
    let plan = fake_plan(1, 2);
    let cfg = WorkerPoolConfig {
        shutdown: ShutdownMode::HandBack,
        ..config(&plan)
    };
    let exec = Executor::start_paused(&plan, cfg, |_: &WorkerContext, _: Priority, _: &mut Vec<u32>| {
        panic!("nothing runs in this test")
    })
    .unwrap();
    for i in 0..500u32 {
        exec.submit(0, Priority::ALL[(i % 3) as usize], i).unwrap();
    }
    let report = exec.shutdown();
    assert_eq!(report.ran, 0);
    let mut back: Vec<u32> = report.handed_back.iter().map(|&(_, i)| i).collect();
    back.sort_unstable();
    assert_eq!(back, (0..500).collect::<Vec<_>>());
    assert!(
        report
            .handed_back
            .iter()
            .all(|&(c, i)| c == Priority::ALL[(i % 3) as usize])
    );
}

/// (item's origin node, node it ran on), per item.
type RunLog = Arc<Mutex<Vec<(u32, u32)>>>;

/// A slow handler (1 ms per batch) so the owner cannot drain its backlog before others look.
fn slow_recording_exec(plan: &PlacementPlan, cfg: WorkerPoolConfig) -> (Executor<u32>, RunLog) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let exec = Executor::start_paused(
        plan,
        cfg,
        move |ctx: &WorkerContext, _: Priority, b: &mut Vec<u32>| {
            std::thread::sleep(Duration::from_millis(1));
            let mut l = l.lock().unwrap();
            l.extend(b.drain(..).map(|origin| (origin, ctx.node)));
        },
    )
    .unwrap();
    (exec, log)
}

#[test]
fn idle_worker_steals_from_its_own_node() {
    let plan = fake_plan(1, 2);
    let cfg = WorkerPoolConfig {
        max_batch: 8,
        steal: StealPolicy::WithinNode,
        ..config(&plan)
    };
    let (exec, _log) = slow_recording_exec(&plan, cfg);
    for _ in 0..200 {
        exec.submit_to_worker(0, Priority::Normal, 0).unwrap();
    }
    exec.resume();
    std::thread::sleep(Duration::from_millis(50));
    let m = exec.metrics();
    let report = exec.shutdown();
    assert_eq!(report.ran, 200);
    let thief = &m.workers[1];
    assert!(thief.steals_local > 0, "{thief:?}");
    assert!(thief.items.iter().sum::<u64>() > 0);
    assert_eq!(m.steals().1, 0);
}

#[test]
fn within_node_policy_never_crosses_nodes() {
    let plan = fake_plan(2, 2);
    let cfg = WorkerPoolConfig {
        max_batch: 4,
        steal: StealPolicy::WithinNode,
        ..config(&plan)
    };
    let (exec, log) = slow_recording_exec(&plan, cfg);
    for _ in 0..300 {
        exec.submit(0, Priority::Normal, 0).unwrap();
    }
    exec.resume();
    let m = exec.metrics();
    let report = exec.shutdown();
    assert_eq!(report.ran, 300);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 300);
    assert!(log.iter().all(|&(origin, ran_on)| origin == ran_on));
    assert_eq!(m.steals().1, 0);
}

#[test]
fn cross_node_steals_only_past_the_threshold() {
    let plan = fake_plan(2, 1);
    let cfg = WorkerPoolConfig {
        max_batch: 4,
        steal: StealPolicy::CrossNode { threshold: 50 },
        ..config(&plan)
    };
    let (exec, log) = slow_recording_exec(&plan, cfg);
    // Below the threshold: node 1 stays idle.
    for _ in 0..40 {
        exec.submit(0, Priority::Normal, 0).unwrap();
    }
    exec.resume();
    while exec.metrics().items_run() < 40 {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(exec.metrics().steals().1, 0);
    assert!(log.lock().unwrap().iter().all(|&(o, n)| o == n));
    // Past it: node 1's worker is woken and steals.
    for _ in 0..400 {
        exec.submit(0, Priority::Normal, 0).unwrap();
    }
    while exec.metrics().items_run() < 440 {
        std::thread::sleep(Duration::from_millis(2));
    }
    let m = exec.metrics();
    let report = exec.shutdown();
    assert_eq!(report.ran, 440);
    assert!(m.workers[1].steals_remote > 0, "{:?}", m.workers[1]);
    assert_eq!(
        m.workers[1].stolen_items_remote,
        m.workers[1].items.iter().sum::<u64>()
    );
    let crossed = log.lock().unwrap().iter().filter(|&&(o, n)| o != n).count() as u64;
    assert_eq!(crossed, m.workers[1].stolen_items_remote);
}

#[test]
fn lone_items_run_at_once_without_lost_wakeups() {
    // A lost wake-up would hang: the watchdog turns that into a failure.
    within(Duration::from_secs(120), || {
        let plan = fake_plan(1, 2);
        let cfg = WorkerPoolConfig {
            min_batch: 1,
            max_batch: 512,
            ..config(&plan)
        };
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let exec = Executor::start(
            &plan,
            cfg,
            move |_: &WorkerContext, _: Priority, b: &mut Vec<u32>| {
                for i in b.drain(..) {
                    tx.lock().unwrap().send(i).unwrap();
                }
            },
        )
        .unwrap();
        // One item at a time: each must complete on its own (workers park in between).
        for i in 0..2000 {
            exec.submit(0, Priority::High, i).unwrap();
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), i);
        }
        let m = exec.metrics();
        assert!(m.workers.iter().map(|w| w.parks).sum::<u64>() > 0);
        assert_eq!(m.batch_items.quantiles().max, 1);
        exec.shutdown();
    });
}

#[test]
fn spinning_workers_serve_lone_items_and_still_park() {
    // A lost wake-up would hang: the watchdog turns that into a failure.
    within(Duration::from_secs(120), || {
        let plan = fake_plan(1, 2);
        let cfg = WorkerPoolConfig {
            spin_before_park: 10_000,
            ..config(&plan)
        };
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let exec = Executor::start(
            &plan,
            cfg,
            move |_: &WorkerContext, _: Priority, b: &mut Vec<u32>| {
                for i in b.drain(..) {
                    tx.lock().unwrap().send(i).unwrap();
                }
            },
        )
        .unwrap();
        for i in 0..500 {
            exec.submit(0, Priority::Normal, i).unwrap();
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), i);
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(2)); // long enough to end any spin
            }
        }
        assert!(exec.metrics().workers.iter().map(|w| w.parks).sum::<u64>() > 0);
        assert_eq!(exec.shutdown().ran, 500);
    });
}

#[test]
fn metrics_and_prometheus_text() {
    let plan = fake_plan(1, 1);
    let exec = Executor::start_paused(
        &plan,
        config(&plan),
        |_: &WorkerContext, _: Priority, b: &mut Vec<u32>| {
            std::hint::black_box(b.iter().sum::<u32>());
        },
    )
    .unwrap();
    for i in 0..100 {
        exec.submit(0, Priority::Normal, i).unwrap();
    }
    exec.resume();
    while exec.metrics().items_run() < 100 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let m = exec.metrics();
    let w = &m.workers[0];
    assert_eq!(w.items, [0, 100, 0]);
    assert_eq!(m.sojourn.len(), 100);
    assert_eq!(m.queue_wait.len(), 100);
    assert_eq!(m.batch_items.len(), w.batches[1]);
    assert!(w.depth[1].max >= 1 && w.depth[1].max <= 100);
    assert!(w.busy_share > 0.0 && w.busy_share <= 1.0);
    assert!(m.sojourn_quantiles().p99 >= m.queue_wait.quantiles().p50);
    assert!(matches!(w.pin, PinStatus::Skipped));
    assert_eq!(m.degradations, [ExecDegradation::PinningSkipped { workers: 1 }]);
    let text = m.to_prometheus();
    assert!(
        text.contains("locus_exec_items_total{worker=\"0\",class=\"normal\"} 100\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE locus_exec_queue_to_done_seconds summary\n"));
    assert!(text.contains("locus_exec_queue_to_done_seconds_count 100\n"));
    assert!(text.contains("locus_exec_rejections_total{node=\"0\",class=\"high\"} 0\n"));
    exec.shutdown();
}

#[test]
fn handler_panic_is_counted_and_worker_survives() {
    let plan = fake_plan(1, 1);
    let exec = Executor::start_paused(
        &plan,
        config(&plan),
        |_: &WorkerContext, _: Priority, b: &mut Vec<u32>| {
            if b.contains(&13) {
                panic!("unlucky batch");
            }
        },
    )
    .unwrap();
    exec.submit(0, Priority::High, 13).unwrap();
    exec.resume();
    while exec.metrics().items_run() < 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    exec.submit(0, Priority::High, 14).unwrap();
    let report = exec.shutdown();
    assert_eq!(report.ran, 2);
    assert_eq!(report.dead_workers, 0);
}

#[test]
fn invalid_config_and_empty_plan_are_typed_errors() {
    let plan = fake_plan(1, 1);
    let bad = WorkerPoolConfig {
        max_batch: 0,
        ..config(&plan)
    };
    let h = |_: &WorkerContext, _: Priority, _: &mut Vec<u32>| {};
    assert!(matches!(
        Executor::start(&plan, bad, h),
        Err(ExecError::InvalidConfig {
            field: "max_batch",
            ..
        })
    ));
    let empty = fake_plan(1, 0);
    assert!(matches!(
        Executor::start(&empty, config(&plan), h),
        Err(ExecError::EmptyPlan)
    ));
}

/// On this machine's own plan, with pinning: every worker is verified on its CPU and node, or
/// the failure is reported as a degradation (never a panic).
#[test]
fn real_plan_workers_are_pinned_or_reported() {
    let plan = PlacementPlan::new(&Topology::discover().unwrap(), &PlanOptions::default()).unwrap();
    let cfg = WorkerPoolConfig::for_plan(&plan);
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let exec = Executor::start(
        &plan,
        cfg,
        move |ctx: &WorkerContext, _: Priority, b: &mut Vec<u32>| {
            if let Some(loc) = ctx.pinned_at {
                assert_eq!(loc.cpu, ctx.cpu);
            }
            c.fetch_add(b.len(), Ordering::Relaxed);
        },
    )
    .unwrap();
    let degraded = exec.degradations();
    for (worker, status) in exec.pin_statuses() {
        match status {
            PinStatus::Verified { location } => {
                let slot = plan.workers().find(|s| s.index == worker).unwrap();
                assert_eq!(location.cpu, slot.cpu);
                assert_eq!(location.node, slot.node);
            }
            other => assert!(
                degraded.iter().any(|d| matches!(d,
                    ExecDegradation::NotPinned { worker: w, .. } | ExecDegradation::OffNode { worker: w, .. } if *w == worker)),
                "{other:?} not reported"
            ),
        }
    }
    for i in 0..1000 {
        exec.submit(plan.nodes[0].node, Priority::Normal, i).unwrap();
    }
    assert_eq!(exec.shutdown().ran, 1000);
    assert_eq!(count.load(Ordering::Relaxed), 1000);
}

/// Runs `f` on its own thread and fails the test if it has not finished within `limit`: a test
/// whose failure mode is a lost wake-up then fails instead of hanging the suite.
pub(crate) fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(r) => {
            let _ = t.join();
            r
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match t.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => panic!("the test body ended without a result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("watchdog: not finished within {limit:?} (hung?)"),
    }
}

#[test]
fn worker_state_is_created_on_the_worker_thread_and_owned_by_it() {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::thread::ThreadId;

    // `Rc` is neither Send nor Sync: it can only work if each worker creates and keeps it.
    /// (worker, thread that ran init, thread that ran the batch, items the worker's state saw).
    type Log = Arc<Mutex<Vec<(usize, ThreadId, ThreadId, usize)>>>;
    struct Counting {
        log: Log,
    }
    impl WorkerHandler<u32> for Counting {
        type Local = (ThreadId, Rc<RefCell<usize>>);
        fn init(&self, _: &WorkerContext) -> Self::Local {
            (std::thread::current().id(), Rc::new(RefCell::new(0)))
        }
        fn handle(&self, local: &mut Self::Local, ctx: &WorkerContext, _: Priority, b: &mut Vec<u32>) {
            *local.1.borrow_mut() += b.len();
            b.clear();
            let seen = *local.1.borrow();
            self.log
                .lock()
                .unwrap()
                .push((ctx.worker, local.0, std::thread::current().id(), seen));
        }
    }
    within(Duration::from_secs(60), || {
        let plan = fake_plan(1, 2);
        let cfg = WorkerPoolConfig {
            steal: StealPolicy::Off,
            ..config(&plan)
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let exec = Executor::start_with(&plan, cfg, Counting { log: log.clone() }).unwrap();
        for i in 0..100u32 {
            exec.submit_to_worker((i % 2) as usize, Priority::Normal, i)
                .unwrap();
        }
        assert_eq!(exec.shutdown().ran, 100);
        let log = log.lock().unwrap();
        assert!(
            log.iter()
                .all(|(_, init_thread, run_thread, _)| init_thread == run_thread)
        );
        for w in 0..2 {
            // Each worker's own counter saw exactly its 50 items.
            let last = log.iter().filter(|e| e.0 == w).map(|e| e.3).max();
            assert_eq!(last, Some(50), "worker {w}");
        }
    });
}

#[test]
fn submit_after_shutdown_is_closed_and_hands_the_item_back() {
    let plan = fake_plan(1, 1);
    let exec = Executor::start(
        &plan,
        config(&plan),
        |_: &WorkerContext, _: Priority, b: &mut Vec<u32>| b.clear(),
    )
    .unwrap();
    let sub = exec.submitter();
    sub.submit(0, Priority::Normal, 1).unwrap();
    assert!(!sub.is_closed());
    exec.shutdown();
    let r = sub.clone().submit(0, Priority::Normal, 7).unwrap_err();
    assert!(matches!(r.error, ExecError::Closed), "{}", r.error);
    assert_eq!(r.item, 7);
    assert!(sub.is_closed());
}

#[test]
fn submits_racing_shutdown_are_each_run_handed_back_or_refused() {
    within(Duration::from_secs(120), || {
        for round in 0..20 {
            let plan = fake_plan(1, 2);
            let ran = Arc::new(AtomicU64::new(0));
            let r = ran.clone();
            let exec = Executor::start(
                &plan,
                config(&plan),
                move |_: &WorkerContext, _: Priority, b: &mut Vec<u32>| {
                    r.fetch_add(b.drain(..).count() as u64, Ordering::Relaxed);
                },
            )
            .unwrap();
            let sub = exec.submitter();
            let submitters: Vec<_> = (0..3)
                .map(|_| {
                    let sub = sub.clone();
                    std::thread::spawn(move || {
                        let (mut ok, mut refused) = (0u64, 0u64);
                        for i in 0..5_000 {
                            match sub.submit(0, Priority::Normal, i) {
                                Ok(()) => ok += 1,
                                Err(_) => refused += 1,
                            }
                        }
                        (ok, refused)
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_micros(200 * round));
            let report = exec.shutdown();
            let (ok, refused) = submitters
                .into_iter()
                .map(|t| t.join().unwrap())
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            assert_eq!(ok + refused, 15_000);
            assert_eq!(
                ran.load(Ordering::Relaxed) + report.handed_back.len() as u64,
                ok,
                "round {round}: every accepted item ran or came back"
            );
        }
    });
}

#[test]
fn fan_out_to_every_worker_and_gather_the_replies() {
    use super::reply::{ReplySlot, gather};
    within(Duration::from_secs(60), || {
        let plan = fake_plan(2, 2);
        let exec = Executor::start(
            &plan,
            WorkerPoolConfig {
                steal: StealPolicy::Off,
                ..config(&plan)
            },
            |ctx: &WorkerContext, _: Priority, b: &mut Vec<(u64, ReplySlot<(usize, u64)>)>| {
                for (x, slot) in b.drain(..) {
                    slot.send((ctx.worker, x * x));
                }
            },
        )
        .unwrap();
        let (slots, replies) = gather(4);
        for (w, slot) in slots.into_iter().enumerate() {
            exec.submit_to_worker(w, Priority::High, (w as u64 + 1, slot))
                .unwrap();
        }
        let got = replies.wait_until(std::time::Instant::now() + Duration::from_secs(30));
        assert!(got.is_complete());
        let got: Vec<(usize, u64)> = got.replies.into_iter().flatten().collect();
        assert_eq!(got, [(0, 1), (1, 4), (2, 9), (3, 16)]);
    });
}

#[test]
fn malformed_plans_are_refused_before_anything_is_sized_by_them() {
    let handler = |_: &WorkerContext, _: Priority, b: &mut Vec<u32>| b.clear();
    let mut plan = fake_plan(1, 1);
    plan.nodes[0].node = u32::MAX;
    plan.nodes[0].workers[0].node = u32::MAX;
    let e = Executor::start(&plan, config(&fake_plan(1, 1)), handler).unwrap_err();
    assert!(matches!(e, ExecError::InvalidPlan { .. }), "{e}");
    let mut plan = fake_plan(1, 2);
    plan.nodes[0].workers[1].index = usize::MAX;
    let e = Executor::start(&plan, config(&fake_plan(1, 2)), handler).unwrap_err();
    assert!(matches!(e, ExecError::InvalidPlan { .. }), "{e}");
    let mut plan = fake_plan(2, 1);
    plan.nodes[1].node = 0;
    plan.nodes[1].workers[0].node = 0;
    let e = Executor::start(&plan, config(&fake_plan(2, 1)), handler).unwrap_err();
    assert!(matches!(e, ExecError::InvalidPlan { .. }), "{e}");
}

#[test]
fn a_scrape_holding_the_histograms_does_not_stall_workers() {
    within(Duration::from_secs(60), || {
        let plan = fake_plan(1, 1);
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let exec = Executor::start(
            &plan,
            config(&plan),
            move |_: &WorkerContext, _: Priority, b: &mut Vec<u32>| {
                for i in b.drain(..) {
                    tx.lock().unwrap().send(i).unwrap();
                }
            },
        )
        .unwrap();
        let exec = Arc::new(exec);
        {
            let _scrape = exec.hold_histograms(0);
            for i in 0..50 {
                exec.submit(0, Priority::Normal, i).unwrap();
                // Before samples spilled, the worker blocked on the lock after its first batch.
                assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), i);
            }
        }
        // The spilled samples reach the shared histograms without another batch: the idle
        // worker folds its spill before it parks (and retries while a scrape holds the lock).
        let settled = |want: u64| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while exec.metrics().sojourn.len() < want && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            exec.metrics().sojourn.len()
        };
        assert_eq!(settled(50), 50);
        // And a batch run while readers keep taking the lock is never lost either.
        exec.submit(0, Priority::Normal, 50).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 50);
        assert_eq!(settled(51), 51);
    });
}

/// Items of the two service-order tests below.
enum Job {
    /// Reports (its worker, `id`) on `started`, then waits for `release`.
    Block {
        id: usize,
        started: mpsc::Sender<(usize, usize)>,
        release: mpsc::Receiver<()>,
    },
    /// Logs its name.
    Mark(&'static str),
    /// Reports on `started`, then polls [`Urgency::high_waiting`] (up to 10 s) and logs whether
    /// it saw high work wait.
    PollUrgency(mpsc::Sender<usize>),
}

struct JobHandler {
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl WorkerHandler<Job> for JobHandler {
    type Local = ();

    fn init(&self, _: &WorkerContext) {}

    fn handle(&self, local: &mut (), ctx: &WorkerContext, class: Priority, batch: &mut Vec<Job>) {
        self.handle_with(local, ctx, class, batch, &Urgency::never());
    }

    fn handle_with(
        &self,
        _: &mut (),
        ctx: &WorkerContext,
        _: Priority,
        batch: &mut Vec<Job>,
        urgency: &Urgency<'_>,
    ) {
        for job in batch.drain(..) {
            match job {
                Job::Block { id, started, release } => {
                    let _ = started.send((ctx.worker, id));
                    let _ = release.recv_timeout(Duration::from_secs(30));
                }
                Job::Mark(name) => self.log.lock().unwrap().push(name),
                Job::PollUrgency(started) => {
                    let _ = started.send(ctx.worker);
                    let until = std::time::Instant::now() + Duration::from_secs(10);
                    let seen = loop {
                        if urgency.high_waiting() {
                            break "low saw high waiting";
                        }
                        if std::time::Instant::now() > until {
                            break "low never saw high waiting";
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    };
                    self.log.lock().unwrap().push(seen);
                }
            }
        }
    }
}

/// A running low task sees a high item submitted meanwhile (so it can end early), and the high
/// item runs right after it.
#[test]
fn a_running_task_sees_high_work_waiting() {
    within(Duration::from_secs(60), || {
        let plan = fake_plan(1, 1);
        let log = Arc::new(Mutex::new(Vec::new()));
        let exec = Executor::start_with(&plan, config(&plan), JobHandler { log: log.clone() }).unwrap();
        let (tx, rx) = mpsc::channel();
        exec.submit_to_worker(0, Priority::Low, Job::PollUrgency(tx))
            .map_err(|r| r.error)
            .unwrap();
        rx.recv_timeout(Duration::from_secs(30)).unwrap();
        exec.submit_to_worker(0, Priority::High, Job::Mark("high"))
            .map_err(|r| r.error)
            .unwrap();
        exec.shutdown();
        assert_eq!(*log.lock().unwrap(), ["low saw high waiting", "high"]);
    });
}

/// A worker with low work of its own takes a busy sibling's high item first.
#[test]
fn a_worker_takes_a_busy_siblings_high_item_before_its_own_low_work() {
    within(Duration::from_secs(60), || {
        let plan = fake_plan(1, 2);
        let cfg = WorkerPoolConfig {
            steal: StealPolicy::WithinNode,
            ..config(&plan)
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let exec = Executor::start_with(&plan, cfg, JobHandler { log: log.clone() }).unwrap();
        // Both workers busy, each in a block of its own (whichever worker ends up running it).
        let (started_tx, started) = mpsc::channel();
        let mut releases = Vec::new();
        for w in 0..2 {
            let (tx, release) = mpsc::channel();
            releases.push(tx);
            let job = Job::Block {
                id: w,
                started: started_tx.clone(),
                release,
            };
            exec.submit_to_worker(w, Priority::Normal, job)
                .map_err(|r| r.error)
                .unwrap();
        }
        let (a, block_a) = started.recv_timeout(Duration::from_secs(30)).unwrap();
        let (b, block_b) = started.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_ne!(a, b);
        // The high item waits on `a` (busy), the low one on `b`; then only `b` is freed: it
        // must run `a`'s high item before its own low one.
        exec.submit_to_worker(a, Priority::High, Job::Mark("high"))
            .map_err(|r| r.error)
            .unwrap();
        exec.submit_to_worker(b, Priority::Low, Job::Mark("low"))
            .map_err(|r| r.error)
            .unwrap();
        releases[block_b].send(()).unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while log.lock().unwrap().len() < 2 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(*log.lock().unwrap(), ["high", "low"]);
        releases[block_a].send(()).unwrap();
        exec.shutdown();
    });
}
