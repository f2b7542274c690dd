//! Runs one variant of a layout workload outside criterion, for `scripts/cachegrind-layout.sh`
//! (or `perf stat`, or a quick look).
//!
//! ```text
//! layout_workloads spread <hot|naive> [NODES] [SPREADS]
//! layout_workloads false-sharing <packed|padded> [THREADS] [INCREMENTS]
//! ```

use std::process::ExitCode;
use std::time::Instant;

use locus::diag::false_sharing::{self, CounterLayout};
use locus::diag::spreading::{LayoutWorkload, hot_graph, naive_graph};

const USAGE: &str = "usage: layout_workloads spread <hot|naive> [NODES] [SPREADS]\n       \
                     layout_workloads false-sharing <packed|padded> [THREADS] [INCREMENTS]";

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> Result<T, String> {
    match args.get(i) {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| format!("argument {i} ({s:?}) is not a number")),
    }
}

fn spread(mut graph: impl LayoutWorkload, spreads: u64, label: &str) {
    let start = Instant::now();
    let mut checksum = 0.0;
    let mut visited = 0;
    for s in 0..spreads {
        let o = graph.spread(s);
        checksum += o.checksum;
        visited += o.activated;
    }
    let elapsed = start.elapsed();
    println!(
        "spread {label}: {} nodes ({} MiB of nodes), {spreads} spreads, {visited} activations, \
         checksum {checksum:.6}, {:.1} us per spread",
        graph.len(),
        graph.node_bytes() >> 20,
        elapsed.as_secs_f64() * 1e6 / spreads.max(1) as f64
    );
}

fn run(args: &[String]) -> Result<(), String> {
    match (args.first().map(String::as_str), args.get(1).map(String::as_str)) {
        (Some("spread"), Some(variant)) => {
            let nodes: usize = arg(args, 2, 1 << 17)?;
            let spreads: u64 = arg(args, 3, 200)?;
            match variant {
                "hot" => spread(hot_graph(nodes, 42).map_err(|e| e.to_string())?, spreads, "hot"),
                "naive" => spread(naive_graph(nodes, 42), spreads, "naive"),
                other => return Err(format!("unknown spread variant {other:?}")),
            }
            Ok(())
        }
        (Some("false-sharing"), Some(variant)) => {
            let layout = match variant {
                "packed" => CounterLayout::Packed,
                "padded" => CounterLayout::Padded,
                other => return Err(format!("unknown false-sharing variant {other:?}")),
            };
            let threads: usize = arg(args, 2, 2)?;
            let increments: u64 = arg(args, 3, 10_000_000)?;
            let cpus = false_sharing::plan_cpus(threads).ok();
            let r = false_sharing::run(layout, threads, increments, cpus.as_deref(), &[])
                .map_err(|e| e.to_string())?;
            println!(
                "false-sharing {variant}: {threads} threads x {increments} increments, {:.2} ns per increment, {:?}",
                r.ns_per_increment, r.placement
            );
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
