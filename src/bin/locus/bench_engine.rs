//! `locus bench-engine`: a streaming ramp against the engine. For each offered observation
//! rate, `--observers` threads observe on an open-loop schedule (latency measured from each
//! operation's *intended* start, so a stall counts against every operation it delayed) while one
//! thread recalls at `--recall-rate`; then a one-second burst. Prints per step the accepted
//! rate, refusals, the index lag, and observe / recall P50, P99, P99.9; then memory (RSS) against
//! the raw f32 bytes of the episodes. The last stdout line is the whole result as JSON.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use locus::engine::{AdmissionLimits, AssociationParams, Cue, Engine, EngineError, Episode, IndexParams};
use locus::metrics::{LatencyHistogram, Quantiles};
use serde::Serialize;

/// Arguments of `locus bench-engine`.
#[derive(clap::Args)]
pub struct Args {
    /// Embedding dimension.
    #[arg(long, default_value_t = 768)]
    dimension: usize,
    /// Offered observation rates (per second), one step each.
    #[arg(long, value_delimiter = ',', default_value = "10000,50000,100000,200000")]
    rates: Vec<u64>,
    /// Seconds per step.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Recalls per second during each step (0: none).
    #[arg(long, default_value_t = 1000)]
    recall_rate: u64,
    /// Offered rate of the final one-second burst (0: no burst).
    #[arg(long, default_value_t = 100_000)]
    burst_rate: u64,
    /// Observing threads.
    #[arg(long, default_value_t = 2)]
    observers: usize,
    /// Append-buffer limit per shard (admission control).
    #[arg(long, default_value_t = 20_000)]
    max_unindexed: usize,
    /// HNSW ef of construction.
    #[arg(long, default_value_t = 64)]
    ef_construction: usize,
    /// Similar episodes each new one is associated with when indexed (0: off).
    #[arg(long, default_value_t = 4)]
    similar: usize,
}

#[derive(Debug, Clone, Serialize)]
struct Step {
    offered_per_s: u64,
    seconds: f64,
    accepted: u64,
    accepted_per_s: f64,
    refused_overloaded: u64,
    refused_other: u64,
    max_index_lag: usize,
    index_lag_at_end: usize,
    observe_ns: Quantiles,
    recalls: u64,
    recall_ns: Quantiles,
    recalls_partial: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    dimension: usize,
    shards: usize,
    kernels: String,
    steps: Vec<Step>,
    burst: Option<Step>,
    episodes: usize,
    raw_f32_bytes: usize,
    rss_bytes: Option<usize>,
    rss_over_raw: Option<f64>,
    indexed_after_s: Option<f64>,
}

fn rss_bytes() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// A pool of pseudo-random unit-ish vectors, reused round-robin (generating 768 floats per
/// observation would measure the generator).
fn pool(dim: usize, n: usize) -> Arc<Vec<Vec<f32>>> {
    let mut s = 0x9E37_79B9_7F4A_7C15_u64;
    Arc::new(
        (0..n)
            .map(|_| {
                (0..dim)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                    })
                    .collect()
            })
            .collect(),
    )
}

fn step(engine: &Arc<Engine>, vectors: &Arc<Vec<Vec<f32>>>, args: &Args, rate: u64, seconds: f64) -> Step {
    let dur = Duration::from_secs_f64(seconds);
    let start = Instant::now() + Duration::from_millis(5);
    let stop = Arc::new(AtomicBool::new(false));
    let max_lag = Arc::new(AtomicUsize::new(0));
    let observers: Vec<_> = (0..args.observers)
        .map(|t| {
            let (engine, vectors) = (engine.clone(), vectors.clone());
            let per_thread = rate as f64 / args.observers as f64;
            std::thread::spawn(move || {
                let mut h = LatencyHistogram::new();
                let (mut ok, mut over, mut other) = (0u64, 0u64, 0u64);
                let total = (per_thread * dur.as_secs_f64()) as u64;
                for i in 0..total {
                    let intended = start + Duration::from_secs_f64(i as f64 / per_thread);
                    let now = Instant::now();
                    if intended > now {
                        std::thread::sleep(intended - now);
                    }
                    let v = vectors[(i as usize * args_threads_stride(t)) % vectors.len()].clone();
                    match engine.observe(Episode::new(v)) {
                        Ok(_) => {
                            ok += 1;
                            h.record_duration(intended.elapsed());
                        }
                        Err(EngineError::Overloaded { .. }) => over += 1,
                        Err(_) => other += 1,
                    }
                }
                (h, ok, over, other)
            })
        })
        .collect();
    let recaller = {
        let (engine, vectors, stop) = (engine.clone(), vectors.clone(), stop.clone());
        let rate = args.recall_rate;
        std::thread::spawn(move || {
            let mut h = LatencyHistogram::new();
            let (mut n, mut partial) = (0u64, 0u64);
            if rate == 0 {
                return (h, n, partial);
            }
            let mut i = 0u64;
            while !stop.load(Ordering::Acquire) {
                let intended = start + Duration::from_secs_f64(i as f64 / rate as f64);
                i += 1;
                let now = Instant::now();
                if intended > now {
                    std::thread::sleep(intended - now);
                }
                let q = vectors[(i as usize * 7919) % vectors.len()].clone();
                if let Ok(r) = engine.recall(&Cue::new(q, 10)) {
                    h.record_duration(intended.elapsed());
                    n += 1;
                    partial += u64::from(r.partial);
                }
            }
            (h, n, partial)
        })
    };
    let sampler = {
        let (engine, stop, max_lag) = (engine.clone(), stop.clone(), max_lag.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                max_lag.fetch_max(engine.stats().unindexed, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let mut observe = LatencyHistogram::new();
    let (mut ok, mut over, mut other) = (0, 0, 0);
    for o in observers {
        if let Ok((h, a, b, c)) = o.join() {
            let _ = observe.merge(&h);
            ok += a;
            over += b;
            other += c;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Release);
    let (recall, recalls, partial) = recaller.join().unwrap_or_default();
    let _ = sampler.join();
    Step {
        offered_per_s: rate,
        seconds: elapsed,
        accepted: ok,
        accepted_per_s: ok as f64 / elapsed,
        refused_overloaded: over,
        refused_other: other,
        max_index_lag: max_lag.load(Ordering::Relaxed),
        index_lag_at_end: engine.stats().unindexed,
        observe_ns: observe.quantiles(),
        recalls,
        recall_ns: recall.quantiles(),
        recalls_partial: partial,
    }
}

/// Stride through the vector pool per observer thread (co-prime with the pool size).
fn args_threads_stride(t: usize) -> usize {
    [1, 3, 5, 7, 11, 13, 17, 19][t % 8]
}

fn print_step(name: &str, s: &Step) {
    let ms = |ns: u64| ns as f64 / 1e6;
    println!(
        "{name:>10} offered {:>7}/s accepted {:>9.0}/s refused {:>7} (+{} other)  lag max {:>6} end {:>6}  observe p50 {:.3} p99 {:.3} p99.9 {:.3} ms  recall({}) p50 {:.3} p99 {:.3} p99.9 {:.3} ms",
        s.offered_per_s,
        s.accepted_per_s,
        s.refused_overloaded,
        s.refused_other,
        s.max_index_lag,
        s.index_lag_at_end,
        ms(s.observe_ns.p50),
        ms(s.observe_ns.p99),
        ms(s.observe_ns.p999),
        s.recalls,
        ms(s.recall_ns.p50),
        ms(s.recall_ns.p99),
        ms(s.recall_ns.p999),
    );
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.observers == 0 || args.seconds <= 0.0 || args.dimension == 0 {
        return Err("observers, seconds and dimension must be > 0".into());
    }
    let engine = Arc::new(
        Engine::builder()
            .dimension(args.dimension)
            .index(IndexParams {
                ef_construction: args.ef_construction,
                ..IndexParams::default()
            })
            .admission(AdmissionLimits {
                max_unindexed: args.max_unindexed,
                ..AdmissionLimits::default()
            })
            .associations(AssociationParams {
                similar: args.similar,
                ..AssociationParams::default()
            })
            .open()?,
    );
    let vectors = pool(args.dimension, 4096);
    println!(
        "bench-engine: {} shard(s), dimension {}, kernels {}, {} observer thread(s), recalls at {}/s",
        engine.shard_count(),
        args.dimension,
        engine.kernels(),
        args.observers,
        args.recall_rate
    );
    let mut steps = Vec::new();
    for &rate in &args.rates {
        let s = step(&engine, &vectors, &args, rate, args.seconds);
        print_step("ramp", &s);
        steps.push(s);
    }
    let burst = (args.burst_rate > 0).then(|| {
        let s = step(&engine, &vectors, &args, args.burst_rate, 1.0);
        print_step("burst 1 s", &s);
        s
    });
    let t = Instant::now();
    let indexed = engine.wait_indexed(Duration::from_secs(600));
    let indexed_after_s = indexed.then(|| t.elapsed().as_secs_f64());
    let episodes = engine.len();
    let raw = episodes * args.dimension * 4;
    let rss = rss_bytes();
    println!(
        "memory: {episodes} episodes, raw f32 {:.1} MiB, RSS {} ({}), index caught up {} s after the last step",
        raw as f64 / (1 << 20) as f64,
        rss.map_or("unknown".into(), |r| format!(
            "{:.1} MiB",
            r as f64 / (1 << 20) as f64
        )),
        rss.map_or("-".into(), |r| format!(
            "{:.2}x raw",
            r as f64 / raw.max(1) as f64
        )),
        indexed_after_s.map_or("never (600 s)".into(), |s| format!("{s:.1}")),
    );
    let report = Report {
        dimension: args.dimension,
        shards: engine.shard_count(),
        kernels: engine.kernels().into(),
        steps,
        burst,
        episodes,
        raw_f32_bytes: raw,
        rss_bytes: rss,
        rss_over_raw: rss.map(|r| r as f64 / raw.max(1) as f64),
        indexed_after_s,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
