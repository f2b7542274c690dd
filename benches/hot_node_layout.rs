//! Hot-node layout: spreading activation over `#[repr(C, align(64))]` `HotNode`s vs a naive
//! struct holding everything (label, timestamps, embedding) with the hot fields interleaved.
//! Reports time per spread for both (criterion), a side-by-side median ratio from alternating
//! runs, then L1D and LLC miss rates per layout where the PMU allows (or why it does not).
//!
//! `cargo bench --bench hot_node_layout`; `LOCUS_LAYOUT_NODES=N` sets the graph size (default
//! 262144 nodes: 16 MiB of hot nodes, 150 MiB of naive ones).

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use locus::counters::{Event, measure, report::describe};
use locus::diag::spreading::{LayoutWorkload, hot_graph, naive_graph};

/// Whether criterion is benchmarking (`--bench`) rather than smoke-testing under
/// `cargo test --benches`, where a small graph and one round prove the code runs.
fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn nodes() -> usize {
    std::env::var("LOCUS_LAYOUT_NODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if benchmarking() { 1 << 18 } else { 1 << 12 })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Mean wall and CPU (task-clock) microseconds per spread over `spreads` spreads starting at
/// seed `first`; CPU time is `None` where task-clock cannot be counted.
fn time_spreads(g: &mut impl LayoutWorkload, first: u64, spreads: u64) -> (f64, Option<f64>) {
    let start = Instant::now();
    let counted = measure(&[Event::TaskClock], || {
        for s in first..first + spreads {
            std::hint::black_box(g.spread(s));
        }
    });
    let wall = start.elapsed().as_secs_f64() * 1e6 / spreads as f64;
    let cpu = counted
        .ok()
        .and_then(|(_, r)| r.value(Event::TaskClock))
        .map(|ns| ns as f64 / 1e3 / spreads as f64);
    (wall, cpu)
}

fn counters(name: &str, g: &mut impl LayoutWorkload) {
    let events = [
        Event::L1dReadAccesses,
        Event::L1dReadMisses,
        Event::LlcReferences,
        Event::LlcMisses,
        Event::TaskClock,
    ];
    match measure(&events, || {
        (0..50).map(|s| g.spread(10_000 + s).activated).sum::<u64>()
    }) {
        Ok((activated, report)) => {
            let rate =
                |r: Option<f64>| r.map_or("n/a (see below)".to_string(), |v| format!("{:.2}%", v * 100.0));
            println!(
                "  {name}: L1D miss rate {}, LLC miss rate {} over {activated} activations",
                rate(report.l1d_miss_rate()),
                rate(report.llc_miss_rate())
            );
            for er in &report.readings {
                println!("    {:<22} {}", er.event.name(), describe(&er.reading));
            }
        }
        Err(e) => println!("  {name}: counting failed: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let n = nodes();
    let mut hot = hot_graph(n, 42).expect("hot-node graph");
    let mut naive = naive_graph(n, 42);
    println!(
        "hot_node_layout: {n} nodes; hot nodes {} MiB ({} B each), naive nodes {} MiB ({} B each)",
        hot.node_bytes() >> 20,
        std::mem::size_of::<locus::spread::HotNode>(),
        naive.node_bytes() >> 20,
        std::mem::size_of::<locus::diag::spreading::NaiveNode>()
    );
    let mut group = c.benchmark_group("hot_node_layout/spread");
    group.sample_size(10);
    let mut seed = 0u64;
    group.bench_function("hot_node_repr_c_align64", |b| {
        b.iter(|| {
            seed += 1;
            hot.spread(seed)
        })
    });
    let mut seed = 0u64;
    group.bench_function("naive_struct_of_everything", |b| {
        b.iter(|| {
            seed += 1;
            naive.spread(seed)
        })
    });
    group.finish();

    // Side by side, alternating, so both layouts see the same machine load.
    let (rounds, spreads): (usize, u64) = if benchmarking() { (7, 50) } else { (1, 5) };
    let (mut hw, mut nw, mut hc, mut nc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds as u64 {
        let first = 1_000 + round * spreads;
        let (w, c) = time_spreads(&mut hot, first, spreads);
        hw.push(w);
        hc.extend(c);
        let (w, c) = time_spreads(&mut naive, first, spreads);
        nw.push(w);
        nc.extend(c);
    }
    let (a, b) = (median(hw), median(nw));
    println!(
        "hot_node_layout side by side (median of {rounds} alternating rounds of {spreads} spreads):\n  \
         wall: hot {a:.1} us/spread, naive {b:.1} us/spread, naive/hot = {:.2}x",
        b / a
    );
    if hc.len() == rounds && nc.len() == rounds {
        let (a, b) = (median(hc), median(nc));
        println!(
            "  CPU (task-clock): hot {a:.1} us/spread, naive {b:.1} us/spread, naive/hot = {:.2}x",
            b / a
        );
    }
    counters("hot", &mut hot);
    counters("naive", &mut naive);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
