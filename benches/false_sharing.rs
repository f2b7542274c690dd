//! False sharing: N pinned threads increment their own counters, packed into one cache line
//! vs each in its own `CachePadded` slot. Reports time per increment for both (criterion),
//! then a side-by-side median ratio from alternating runs in this process, then the cache-miss
//! counts per layout where the PMU allows (or why it does not).
//!
//! `cargo bench --bench false_sharing`; `LOCUS_FS_THREADS=N` sets the thread count (default:
//! the placement plan's first min(4, PUs) workers).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use locus::counters::{Event, Reading, report::describe};
use locus::diag::false_sharing::{self, CounterLayout, MAX_THREADS, Placement};
use locus::topology::CpuSet;

fn threads() -> usize {
    let pus = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::env::var("LOCUS_FS_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(pus.min(4))
        .clamp(2, MAX_THREADS)
}

fn cpus(threads: usize) -> Option<Vec<CpuSet>> {
    match false_sharing::plan_cpus(threads) {
        Ok(c) => Some(c),
        Err(reason) => {
            println!("false_sharing: running unpinned: {reason}");
            None
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(c: &mut Criterion) {
    let threads = threads();
    let cpus = cpus(threads);
    let mut group = c.benchmark_group(format!("false_sharing/{threads}_threads"));
    group.sample_size(10);
    for (name, layout) in [
        ("packed_one_line", CounterLayout::Packed),
        ("cache_padded", CounterLayout::Padded),
    ] {
        group.bench_function(name, |b| {
            // One criterion iteration = one increment by every thread concurrently; the time is
            // the slowest thread's loop (spawning is outside the timed part).
            b.iter_custom(|iters| {
                false_sharing::run(layout, threads, iters, cpus.as_deref(), &[])
                    .map(|r| r.slowest)
                    .unwrap_or(Duration::ZERO)
            })
        });
    }
    group.finish();

    // Side by side: alternate the layouts so both see the same machine load. Wall time per
    // increment, and CPU time per increment from each thread's task-clock (a software event,
    // available everywhere), which a loaded machine distorts less.
    // Under `cargo test --benches` (no `--bench` flag) one short round proves the code runs.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let (rounds, increments): (usize, u64) = if benchmarking { (7, 5_000_000) } else { (1, 50_000) };
    let (mut wall_packed, mut wall_padded) = (Vec::new(), Vec::new());
    let (mut cpu_packed, mut cpu_padded) = (Vec::new(), Vec::new());
    let mut placement = None;
    for _ in 0..rounds {
        for (layout, wall, cpu) in [
            (CounterLayout::Packed, &mut wall_packed, &mut cpu_packed),
            (CounterLayout::Padded, &mut wall_padded, &mut cpu_padded),
        ] {
            match false_sharing::run(layout, threads, increments, cpus.as_deref(), &[Event::TaskClock]) {
                Ok(r) => {
                    wall.push(r.ns_per_increment);
                    let slowest_cpu = r
                        .reports
                        .iter()
                        .filter_map(|rep| rep.value(Event::TaskClock))
                        .max();
                    if let Some(ns) = slowest_cpu {
                        cpu.push(ns as f64 / increments as f64);
                    }
                    placement = Some(r.placement);
                }
                Err(e) => println!("false_sharing: run failed: {e}"),
            }
        }
    }
    if wall_packed.is_empty() || wall_padded.is_empty() {
        return;
    }
    let (p, q) = (median(wall_packed), median(wall_padded));
    println!(
        "false_sharing side by side ({threads} threads, {increments} increments each, median of {rounds} \
         alternating runs):\n  wall: packed {p:.2} ns/increment, padded {q:.2} ns/increment, packed/padded = {:.2}x",
        p / q
    );
    if !cpu_packed.is_empty() && !cpu_padded.is_empty() {
        let (p, q) = (median(cpu_packed), median(cpu_padded));
        println!(
            "  CPU (task-clock of the slowest thread): packed {p:.2} ns/increment, padded {q:.2} ns/increment, \
             packed/padded = {:.2}x",
            p / q
        );
    }
    match placement {
        Some(Placement::Pinned { cpus }) => println!("  threads pinned to CPUs {cpus:?}"),
        Some(Placement::Unpinned { reason }) => println!("  threads unpinned: {reason}"),
        None => {}
    }

    // Miss counts per layout, per thread, where the PMU allows.
    let events = [
        Event::L1dReadMisses,
        Event::LlcMisses,
        Event::Cycles,
        Event::TaskClock,
    ];
    for layout in [CounterLayout::Packed, CounterLayout::Padded] {
        match false_sharing::run(layout, threads, increments, cpus.as_deref(), &events) {
            Ok(r) => {
                for (i, rep) in r.reports.iter().enumerate() {
                    for er in &rep.readings {
                        let text = match &er.reading {
                            Reading::Counted(c) => format!(
                                "{:.3} per increment ({})",
                                c.value as f64 / increments as f64,
                                describe(&er.reading).trim()
                            ),
                            other => describe(other),
                        };
                        println!("  {layout:?} thread {i}: {:<22} {text}", er.event.name());
                    }
                }
            }
            Err(e) => println!("  {layout:?}: counting failed: {e}"),
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
