//! `locus bench-spread`: spreading-activation latency on scale-free graphs, or on a graphpeers
//! trace.
//!
//! Synthetic mode: for each node count, fan-out cap and thread count, builds a Barabási–Albert-like
//! graph (mean out-degree 8), runs `--spreads` spreads per thread from 1–3 random seeds (3 hops),
//! and prints P50/P95/P99/P99.9 latency and spreads/s, the cost model's prediction-error
//! distribution, and — in a second pass with a budget of the measured P90 — the share of spreads
//! cut (partial) and of spreads that overran their budget anyway.
//!
//! Trace mode (`--trace DATA --answers FILE`): loads the graphpeers dataset's base graph
//! (`edges.npy`, `weights.npy`), replays `ops.jsonl` in order — each store adds its node and edges,
//! each spread runs at its position (propagation threshold 0, no cap, the op's threshold as the
//! result threshold) — prints the spread latency percentiles and writes one `{"i", "ids"}` line per
//! spread for `score.py`.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use locus::alloc::{MemPolicy, NodeArena};
use locus::diag::spread_graph::scale_free_graph;
use locus::metrics::LatencyHistogram;
use locus::spread::{
    AssocGraph, Decay, GraphConfig, ScratchPool, SpreadMetricsSnapshot, SpreadParams, SpreadScratch,
};

use locus::loadtest::graphpeers::{Array, parse_npy};

use crate::flags;

type BoxError = Box<dyn std::error::Error>;

/// Most nodes of a synthetic graph (2^28; each costs a few hundred bytes with its edges).
const MAX_NODES: u64 = 1 << 28;
/// Mean out-degree of the synthetic graphs.
const SYNTHETIC_DEGREE: usize = 8;
/// Bytes of one generated edge before it is stored (`(u64, u64, f32)`).
const EDGE_LIST_BYTES: usize = 24;

/// Arguments of `locus bench-spread`.
#[derive(clap::Args)]
pub struct Args {
    /// Node counts of the synthetic graphs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000", value_parser = flags::usize_in(1, MAX_NODES))]
    nodes: Vec<usize>,
    /// Fan-out caps (0 = all edges), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,32", value_parser = flags::usize_in(0, MAX_NODES))]
    fan_out: Vec<usize>,
    /// Thread counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2", value_parser = flags::usize_in(1, flags::MAX_THREADS))]
    threads: Vec<usize>,
    /// Spreads per thread per configuration.
    #[arg(long, default_value_t = 2000, value_parser = flags::usize_in(1, flags::MAX_ITEMS))]
    spreads: usize,
    /// Hops per spread.
    #[arg(long, default_value_t = 3, value_parser = flags::u32_in(1, u64::from(locus::spread::MAX_HOPS)))]
    hops: u32,
    /// graphpeers dataset folder: replay its trace instead.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Where trace mode writes its answers (`{"i", "ids"}` lines).
    #[arg(long)]
    answers: Option<PathBuf>,
    /// Replay only the first N ops of the trace.
    #[arg(long)]
    limit: Option<usize>,
}

pub fn run(args: Args) -> Result<(), BoxError> {
    match &args.trace {
        Some(data) => run_trace(data, &args),
        None => run_synthetic(&args),
    }
}

/// This thread's CPU time, nanoseconds (`CLOCK_THREAD_CPUTIME_ID`): unlike wall time it excludes
/// time the thread spent preempted, which dominates tails on a loaded machine. 0 if unavailable.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn print_row(label: &str, h: &LatencyHistogram, wall_s: f64) {
    let q = h.quantiles();
    println!(
        "{label:<34} n={:<7} p50={:>8.1}us p95={:>8.1}us p99={:>8.1}us p99.9={:>8.1}us  {:>9.0} spreads/s",
        q.count,
        us(q.p50),
        us(h.quantile(0.95)),
        us(q.p99),
        us(q.p999),
        q.count as f64 / wall_s
    );
}

fn seeds_for(i: u64, nodes: u64) -> Vec<(u64, f32)> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = || {
        x ^= x >> 33;
        x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        x ^= x >> 29;
        x
    };
    let count = 1 + next() % 3;
    (0..count).map(|_| (next() % nodes, 1.0)).collect()
}

/// Runs `spreads` spreads on each of `threads` threads; returns the merged histogram, the wall
/// time, and (spreads with a budget) how many were partial and how many overran.
fn measure(
    g: &AssocGraph,
    pool: &ScratchPool,
    params: &SpreadParams,
    threads: usize,
    spreads: usize,
    salt: u64,
) -> Result<(LatencyHistogram, LatencyHistogram, f64, u64, u64), BoxError> {
    let nodes = g.len() as u64;
    let start = Instant::now();
    type PerThread = (LatencyHistogram, LatencyHistogram, u64, u64);
    let results: Vec<Result<PerThread, String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut scratch = pool.take(g).map_err(|e| e.to_string())?;
                    let mut h = LatencyHistogram::new();
                    let mut cpu = LatencyHistogram::new();
                    let (mut partial, mut over) = (0, 0);
                    for i in 0..spreads as u64 {
                        let seeds = seeds_for(salt + i * 64 + t as u64, nodes);
                        let c0 = thread_cpu_ns();
                        let t0 = Instant::now();
                        let r = g
                            .spread(&seeds, params, &mut scratch)
                            .map_err(|e| e.to_string())?;
                        let el = t0.elapsed();
                        cpu.record(thread_cpu_ns().saturating_sub(c0).max(1));
                        h.record_duration(el);
                        partial += u64::from(r.partial);
                        over += u64::from(params.budget.is_some_and(|b| el > b));
                    }
                    pool.give_back(scratch);
                    Ok((h, cpu, partial, over))
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect()
    });
    let wall = start.elapsed().as_secs_f64();
    let mut all = LatencyHistogram::new();
    let mut all_cpu = LatencyHistogram::new();
    let (mut partial, mut over) = (0, 0);
    for r in results {
        let (h, c, p, o) = r?;
        all.merge(&h)?;
        all_cpu.merge(&c)?;
        partial += p;
        over += o;
    }
    Ok((all, all_cpu, wall, partial, over))
}

fn prediction_line(before: &SpreadMetricsSnapshot, after: &SpreadMetricsSnapshot) -> String {
    let n = after.predictions - before.predictions;
    let pct = |c: u64| if n == 0 { 0.0 } else { 100.0 * c as f64 / n as f64 };
    format!(
        "predicted hops {n}: within 10% {:.1}%, 20% {:.1}%, 50% {:.1}%",
        pct(after.predicted_within_10pct - before.predicted_within_10pct),
        pct(after.predicted_within_20pct - before.predicted_within_20pct),
        pct(after.predicted_within_50pct - before.predicted_within_50pct),
    )
}

fn run_synthetic(args: &Args) -> Result<(), BoxError> {
    let max_threads = args.threads.iter().copied().max().unwrap_or(1);
    for &n in &args.nodes {
        let edges = n.saturating_mul(SYNTHETIC_DEGREE);
        let bytes = GraphConfig::arena_bytes_for(n, edges)
            .saturating_add(max_threads.saturating_mul(SpreadScratch::bytes_for(n)))
            .saturating_add(edges.saturating_mul(EDGE_LIST_BYTES));
        flags::check_fits_memory(&format!("--nodes {n}"), bytes as u64)?;
    }
    for &n in &args.nodes {
        let t0 = Instant::now();
        let g = scale_free_graph(n, SYNTHETIC_DEGREE, 42, MemPolicy::Bind(0), max_threads)?;
        println!(
            "graph: {n} nodes, {} edges, built in {:.1} s",
            g.edge_count(),
            t0.elapsed().as_secs_f64()
        );
        let pool = ScratchPool::new();
        for &fan_out in &args.fan_out {
            for &threads in &args.threads {
                let params = SpreadParams {
                    max_hops: args.hops,
                    fan_out,
                    ..SpreadParams::default()
                };
                // Warm-up (trains the cost model, faults the scratch in).
                measure(&g, &pool, &params, threads, args.spreads.min(200), 1 << 40)?;
                let before = g.metrics().snapshot();
                let (h, cpu, wall, _, _) = measure(&g, &pool, &params, threads, args.spreads, 0)?;
                let after = g.metrics().snapshot();
                print_row(&format!("{n} nodes F={fan_out} threads={threads} wall"), &h, wall);
                print_row(
                    &format!("{n} nodes F={fan_out} threads={threads} cpu"),
                    &cpu,
                    wall,
                );
                println!("    {}", prediction_line(&before, &after));
                let budget = std::time::Duration::from_nanos(h.quantile(0.90).max(1));
                let budgeted = SpreadParams {
                    budget: Some(budget),
                    ..params.clone()
                };
                let (hb, _, _, partial, over) =
                    measure(&g, &pool, &budgeted, threads, args.spreads, 1 << 30)?;
                let total = hb.len().max(1) as f64;
                println!(
                    "    budget {:.1}us (P90): partial {:.1}%, over budget {:.2}%, p99 {:.1}us",
                    us(budget.as_nanos() as u64),
                    100.0 * partial as f64 / total,
                    100.0 * over as f64 / total,
                    us(hb.quantile(0.99)),
                );
            }
        }
        let m = g.metrics().snapshot();
        println!(
            "    scratch pool: {} hits, {} misses, hit rate {:.4}",
            m.scratch_hits,
            m.scratch_misses,
            m.pool_hit_rate()
        );
    }
    Ok(())
}

// tidy: long-fn — a CLI body, one step after another
fn run_trace(data: &std::path::Path, args: &Args) -> Result<(), BoxError> {
    // The answers file is checked before the (long) load and replay.
    if let Some(p) = &args.answers {
        flags::check_out_file("--answers", p)?;
    }
    // Regular files no larger than this machine's memory (a device or FIFO is refused).
    let limit = flags::machine_memory().unwrap_or(u64::MAX);
    let read = |name: &str| -> Result<Vec<u8>, BoxError> {
        let path = data.join(name);
        locus::bounded_read::read_regular(&path, limit).map_err(|e| format!("{}: {e}", path.display()).into())
    };
    let meta: serde_json::Value = serde_json::from_slice(&read("meta.json")?)?;
    let n = meta["n"].as_u64().ok_or("meta.json: no n")? as usize;
    let final_nodes = meta["final_nodes"].as_u64().ok_or("meta.json: no final_nodes")? as usize;
    let edges: Array<i32> = parse_npy(&read("edges.npy")?).map_err(|m| format!("edges.npy: {m}"))?;
    let weights: Array<f32> = parse_npy(&read("weights.npy")?).map_err(|m| format!("weights.npy: {m}"))?;
    if edges.cols != 2 || weights.cols != 1 || weights.rows != edges.rows {
        return Err(format!(
            "edges ({}, {}) / weights ({}, {}): expected [E, 2] and [E]",
            edges.rows, edges.cols, weights.rows, weights.cols
        )
        .into());
    }
    let (ev, wv) = (edges.data, weights.data);
    let ops_text = String::from_utf8(read("ops.jsonl")?).map_err(|_| "ops.jsonl: not UTF-8")?;
    let total_edges = (ev.len() / 2).saturating_add(ops_text.lines().count().saturating_mul(8));
    let bytes = GraphConfig::arena_bytes_for(final_nodes, total_edges)
        .saturating_add(SpreadScratch::bytes_for(final_nodes));
    flags::check_fits_memory("meta.json final_nodes", bytes as u64)?;
    let t0 = Instant::now();
    let arena = Arc::new(NodeArena::on_node(locus::alloc::first_allowed_node()?, bytes)?);
    let g = AssocGraph::new(arena, GraphConfig::with_max_nodes(final_nodes))?;
    for id in 0..n as u64 {
        g.add_node(id)?;
    }
    for (pair, &w) in ev.chunks_exact(2).zip(&wv) {
        let (a, b) = (u64::try_from(pair[0])?, u64::try_from(pair[1])?);
        g.associate(a, b, w)?;
    }
    let load_s = t0.elapsed().as_secs_f64();
    let mut scratch = SpreadScratch::for_graph(&g)?;
    let mut out = match &args.answers {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    let mut h = LatencyHistogram::new();
    let mut cpu = LatencyHistogram::new();
    let mut lat_us: Vec<f64> = Vec::new();
    let (mut stores, mut spreads) = (0u64, 0u64);
    let reader = std::io::BufReader::new(ops_text.as_bytes());
    for (line_no, line) in reader.lines().enumerate() {
        if args.limit.is_some_and(|l| line_no >= l) {
            break;
        }
        let op: serde_json::Value = serde_json::from_str(&line?)?;
        match op["op"].as_str() {
            Some("store") => {
                let id = op["id"].as_u64().ok_or("store without id")?;
                g.add_node(id)?;
                for e in op["edges"].as_array().ok_or("store without edges")? {
                    let (a, b, w) = (e[0].as_u64(), e[1].as_u64(), e[2].as_f64());
                    let (Some(a), Some(b), Some(w)) = (a, b, w) else {
                        return Err(format!("bad edge {e} in op {line_no}").into());
                    };
                    g.associate(a, b, w as f32)?;
                }
                stores += 1;
            }
            Some("spread") => {
                let seeds: Vec<(u64, f32)> = op["seeds"]
                    .as_array()
                    .ok_or("spread without seeds")?
                    .iter()
                    .filter_map(|s| s.as_u64().map(|s| (s, 1.0)))
                    .collect();
                let params = SpreadParams {
                    max_hops: op["hops"].as_u64().unwrap_or(3) as u32,
                    decay: Decay::Exponential {
                        factor: op["decay"].as_f64().unwrap_or(0.5),
                    },
                    threshold: 0.0,
                    result_threshold: op["threshold"].as_f64().unwrap_or(0.0),
                    fan_out: 0,
                    k: op["k"].as_u64().unwrap_or(10) as usize,
                    include_seeds: false,
                    budget: None,
                };
                let c0 = thread_cpu_ns();
                let t = Instant::now();
                let r = g.spread(&seeds, &params, &mut scratch)?;
                let el = t.elapsed();
                cpu.record(thread_cpu_ns().saturating_sub(c0).max(1));
                h.record_duration(el);
                lat_us.push(el.as_secs_f64() * 1e6);
                spreads += 1;
                if let Some(o) = out.as_mut() {
                    let ids: Vec<u64> = r.hits.iter().map(|x| x.id).collect();
                    writeln!(o, "{}", serde_json::json!({"i": op["i"], "ids": ids}))?;
                }
            }
            _ => {}
        }
    }
    if let Some(mut o) = out {
        o.flush()?;
    }
    lat_us.sort_by(f64::total_cmp);
    // numpy-style linear interpolation, as graphpeers reports.
    let pct = |p: f64| -> f64 {
        if lat_us.is_empty() {
            return 0.0;
        }
        let x = p / 100.0 * (lat_us.len() - 1) as f64;
        let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
        lat_us[lo] + (lat_us[hi] - lat_us[lo]) * (x - lo as f64)
    };
    println!(
        "trace {}: load {load_s:.2} s ({} nodes, {} edges), {stores} stores, {spreads} spreads",
        data.display(),
        g.len(),
        g.edge_count()
    );
    println!(
        "spread p50={:.1}us p95={:.1}us p99={:.1}us p99.9={:.1}us max={:.1}us (hdr p99 {:.1}us)",
        pct(50.0),
        pct(95.0),
        pct(99.0),
        pct(99.9),
        lat_us.last().copied().unwrap_or(0.0),
        us(h.quantile(0.99))
    );
    println!(
        "spread cpu time p50={:.1}us p95={:.1}us p99={:.1}us p99.9={:.1}us; loadavg {}",
        us(cpu.quantile(0.5)),
        us(cpu.quantile(0.95)),
        us(cpu.quantile(0.99)),
        us(cpu.quantile(0.999)),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    Ok(())
}
