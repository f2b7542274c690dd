//! Queue capacity: 1K, 10K, 100K items per worker queue, 2 workers, batch 64. Criterion times a
//! closed loop with up to 50 000 items in flight (so a small queue pushes back: refused submits
//! are retried and counted). Per capacity, `target/exec-capacity.csv` gets: the queues' memory
//! ([`locus::exec::Executor::queue_memory_bytes`], all three classes of both workers), the
//! resident memory added by starting the executor (includes ~2 MiB of histograms; after the first
//! point the allocator reuses memory the previous executor freed, so only the first and the
//! largest are meaningful), refusals in an unretried burst of 200 000 items, and P99
//! queue-to-done. Workload: a stand-in (see `exec_support`).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

mod exec_support;
use exec_support::{Rig, config, plan_with, record, rss_kib, scaled};

const ITEMS: u64 = 50_000;
const BURST: u64 = 200_000;

fn capacity(c: &mut Criterion) {
    let mut g = c.benchmark_group("exec_capacity");
    g.throughput(Throughput::Elements(scaled(ITEMS)));
    let plan = plan_with(2);
    for cap in [1_000usize, 10_000, 100_000] {
        let before = rss_kib();
        let mut burst_rig = Rig::start(&plan, config(&plan, 64, cap));
        let added = rss_kib().zip(before).map(|(a, b)| a.saturating_sub(b));
        let queue_kib = burst_rig.exec.queue_memory_bytes() / 1024;
        let burst_refused = burst_rig.burst(scaled(BURST));
        drop(burst_rig);
        let mut rig = Rig::start(&plan, config(&plan, 64, cap));
        g.bench_with_input(BenchmarkId::from_parameter(cap), &cap, |b, _| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| rig.run(scaled(ITEMS), scaled(ITEMS)))
                    .sum::<Duration>()
            })
        });
        record(
            "exec-capacity.csv",
            "capacity_per_worker,queue_kib,rss_added_kib,burst_items,burst_refused,retried_refusals,p99_queue_to_done_us",
            &format!(
                "{cap},{queue_kib},{},{},{burst_refused},{},{:.1}",
                added.map_or("n/a".into(), |k| k.to_string()),
                scaled(BURST),
                rig.rejected,
                rig.p99_ns() as f64 / 1e3
            ),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = capacity
}
criterion_main!(benches);
