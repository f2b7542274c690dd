//! The open-loop driver: latency counts from the intended start (a stall shows in every op it
//! delayed), the op sequence does not depend on the thread count, outcomes are counted apart,
//! and validation fails a run that misses its target.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use locus::loadtest::driver::{RunOptions, run};
use locus::loadtest::scenario::{self, OpKind};
use locus::loadtest::target::{LoadTarget, Outcome};
use locus::loadtest::workload::{Op, Workload};

/// Records every op it sees; optionally stalls once; answers by op index.
#[derive(Default)]
struct Probe {
    seen: Mutex<Vec<(u64, OpKind, u32)>>,
    stall_at: Option<u64>,
    stalled: AtomicBool,
}

impl Probe {
    fn hit(&self, op: &Op) -> Outcome {
        self.seen.lock().unwrap().push((op.index, op.kind, op.space));
        if Some(op.index) == self.stall_at && !self.stalled.swap(true, Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
        }
        match op.index % 10 {
            7 => Outcome::Rejected,
            9 => Outcome::Err("synthetic"),
            _ => Outcome::Ok,
        }
    }
}

impl LoadTarget for Probe {
    fn name(&self) -> String {
        "probe".into()
    }
    fn preload(&self, _w: &Workload, _p: &dyn Fn(u64)) -> Result<(), String> {
        Ok(())
    }
    fn observe(&self, op: &Op, e: &[f32]) -> Outcome {
        assert_eq!(e.len(), 8);
        self.hit(op)
    }
    fn recall(&self, op: &Op, _: &[f32]) -> Outcome {
        self.hit(op)
    }
    fn recall_spread(&self, op: &Op, _: &[f32]) -> Outcome {
        self.hit(op)
    }
    fn complete(&self, op: &Op, _: &[f32]) -> Outcome {
        self.hit(op)
    }
    fn associate(&self, op: &Op) -> Outcome {
        self.hit(op)
    }
}

fn scenario(threads: usize, extra: &str) -> scenario::Scenario {
    scenario::parse(
        &format!(
            "name = \"t\"\nduration = \"1s\"\nthreads = {threads}\n[arrival]\nkind = \"constant\"\nrate = 1000\n\
             [data]\npreload = 10\ndimension = 8\nspaces = 4\n{extra}"
        ),
        "t.toml",
    )
    .unwrap()
}

#[test]
fn a_stall_is_charged_to_every_op_it_delayed() {
    // One thread, 1000 ops/s: a 200 ms stall at op 100 delays ~200 ops behind it. Measured from
    // the intended start, ~20 % of ops see > 100 ms; service time sees the stall once.
    let probe = Probe {
        stall_at: Some(100),
        ..Probe::default()
    };
    let r = run(&scenario(1, ""), &probe, &RunOptions::default()).unwrap();
    let all = &r.overall;
    assert_eq!(all.count, 1000);
    assert!(all.latency_us.p90 > 50_000.0, "p90 {} µs", all.latency_us.p90);
    assert!(all.latency_us.max >= 200_000.0);
    assert!(
        all.service_us.p99 < 50_000.0,
        "service p99 {} µs",
        all.service_us.p99
    );
    assert!(all.service_us.max >= 200_000.0);
    assert!(r.driver.start_lag_us.p90 > 50_000.0);
}

#[test]
fn the_sequence_does_not_depend_on_threads() {
    let one = Probe::default();
    let three = Probe::default();
    run(&scenario(1, ""), &one, &RunOptions::default()).unwrap();
    run(&scenario(3, ""), &three, &RunOptions::default()).unwrap();
    let mut a = one.seen.into_inner().unwrap();
    let mut b = three.seen.into_inner().unwrap();
    a.sort();
    b.sort();
    assert_eq!(a.len(), 1000);
    assert_eq!(a, b);
}

#[test]
fn outcomes_and_validation() {
    let probe = Probe::default();
    let r = run(
        &scenario(2, "[validation]\nmax_error_rate = 0.05\n"),
        &probe,
        &RunOptions::default(),
    )
    .unwrap();
    assert_eq!(r.overall.rejected, 100);
    assert_eq!(r.overall.errors.get("synthetic"), Some(&100));
    assert_eq!(r.driver.dropped_samples, 0);
    assert!(!r.validation.passed);
    assert!(
        r.validation.failures[0].contains("error rate"),
        "{:?}",
        r.validation.failures
    );
    let total: u64 = r.timeseries.iter().map(|p| p.ops).sum();
    assert_eq!(total, 1000);
}
