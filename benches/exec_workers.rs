//! Worker scaling: 1, 2, 4, 8 workers on one node (beyond this machine's CPUs the figure shows
//! oversubscription). Throughput from criterion (items/s); P99 queue-to-done per point is
//! appended to `target/exec-workers.csv`. Workload: a stand-in (see `exec_support`).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

mod exec_support;
use exec_support::{Rig, config, plan_with, record, scaled};

const ITEMS: u64 = 20_000;

fn workers(c: &mut Criterion) {
    let mut g = c.benchmark_group("exec_workers");
    g.throughput(Throughput::Elements(scaled(ITEMS)));
    for n in [1usize, 2, 4, 8] {
        let plan = plan_with(n);
        let mut rig = Rig::start(&plan, config(&plan, 64, 4096));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| (0..iters).map(|_| rig.run(scaled(ITEMS), 1024)).sum::<Duration>())
        });
        record(
            "exec-workers.csv",
            "workers,items,p99_queue_to_done_us,rejected",
            &format!(
                "{n},{},{:.1},{}",
                rig.submitted,
                rig.p99_ns() as f64 / 1e3,
                rig.rejected
            ),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = workers
}
criterion_main!(benches);
