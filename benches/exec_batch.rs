//! Batch size: 10, 50, 100, 500, 1000 items per drain (fixed: min = max), 2 workers, with up to
//! 16 384 items in flight so queues run deep enough for the cap to matter. Throughput
//! from criterion; P99 queue-to-done per size in `target/exec-batch.csv` — the latency /
//! throughput trade-off. Workload: a stand-in (see `exec_support`).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

mod exec_support;
use exec_support::{Rig, config, plan_with, record, scaled};

const ITEMS: u64 = 50_000;

fn batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("exec_batch");
    g.throughput(Throughput::Elements(scaled(ITEMS)));
    let plan = plan_with(2);
    for size in [10usize, 50, 100, 500, 1000] {
        let mut rig = Rig::start(&plan, config(&plan, size, 16_384));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| rig.run(scaled(ITEMS), 16_384))
                    .sum::<Duration>()
            })
        });
        let m = rig.exec.metrics();
        record(
            "exec-batch.csv",
            "batch,items,mean_items_per_batch,p50_queue_to_done_us,p99_queue_to_done_us",
            &format!(
                "{size},{},{:.1},{:.1},{:.1}",
                rig.submitted,
                m.batch_items.quantiles().mean,
                m.sojourn.quantile(0.5) as f64 / 1e3,
                m.sojourn.quantile(0.99) as f64 / 1e3
            ),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = batch
}
criterion_main!(benches);
