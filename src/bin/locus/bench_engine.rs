//! `locus bench-engine`: streaming ingestion and recall against the engine.
//!
//! **Ramp** (the default). For each offered observation rate, `--observers` threads observe on
//! an open-loop schedule: every episode has an *intended* time, each thread hands all episodes
//! that are due to [`Engine::observe_batch`] at once (at most `--batch`; 1 uses
//! [`Engine::observe`]), and latency is measured from each episode's intended time, so a stall
//! counts against every episode it delayed. A refusal ([`EngineError::Overloaded`]) comes back
//! at once and is counted, never retried. Meanwhile `--recallers` threads recall at
//! `--recall-rate` in all, on an open-loop schedule too (recall `i` is due at `i / rate` and
//! timed from then, so a late recaller counts its lateness), each recall with the vector of the
//! last episode accepted before it started, and count the recalls that miss it
//! (read-your-writes, measured, not asserted). Each recall's latency is split into the
//! recaller's own lateness (client lag), the shard search task's queue wait, and the search
//! itself (the engine's per-shard timings); the rest is the hand-off back to the caller. Then a one-second burst at
//! `--burst-rate`, then `--sustain-seconds` at `--sustain-rate`. Per step: accepted rate,
//! refusals, index lag (max sampled every 20 ms, and at the end), observe and recall P50 / P99 /
//! P99.9, and the machine's load average. Finally memory: RSS growth since the vectors were
//! generated, against the raw f32 bytes of the episodes.
//!
//! **Load** (`--load`): closed-loop ingestion of `--episodes` episodes (or every vector of
//! `--fvecs`) as fast as the engine admits them (a refused batch part is retried after the
//! refusal's `retry_after`, within 1..=50 ms),
//! until the index holds them all: episodes per second from the first observe to the last
//! episode indexed, and memory as above. `scripts/ingest-vs-hnswlib.sh` runs this next to
//! hnswlib on the same `base.fvecs`.
//!
//! Vectors: `--fvecs FILE`, or 16384 generated pseudo-random ones. Past the end of the pool an
//! episode reuses a pool vector with two coordinates shifted (by round), so no two episodes
//! are identical. The last stdout line is the whole result as JSON.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use locus::engine::{AdmissionLimits, AssociationParams, Cue, Engine, EngineError, Episode, IndexParams};
use locus::index::Quantization;
use locus::metrics::{LatencyHistogram, Quantiles};
use serde::Serialize;

/// `--quantization`: the index's walk vectors.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum WalkQuantization {
    /// Int8 codes beside the f32 rows.
    Int8,
    /// F32 rows only.
    None,
}

/// Arguments of `locus bench-engine`.
#[derive(clap::Args)]
pub struct Args {
    /// Embedding dimension (ignored with --fvecs, which gives its own).
    #[arg(long, alias = "dim", default_value_t = 768, value_parser = crate::flags::usize_in(1, crate::flags::MAX_DIMENSION))]
    dimension: usize,
    /// Offered observation rates (per second), one ramp step each (0: no ramp).
    #[arg(long, value_delimiter = ',', default_value = "10000,50000,100000,200000", value_parser = crate::flags::u64_in(0, crate::flags::MAX_RATE))]
    rates: Vec<u64>,
    /// Seconds per ramp step.
    #[arg(long, default_value_t = 3.0, value_parser = crate::flags::parse_seconds)]
    seconds: f64,
    /// Recalls per second during each step (0: none).
    #[arg(long, default_value_t = 1000, value_parser = crate::flags::u64_in(0, crate::flags::MAX_RATE))]
    recall_rate: u64,
    /// Offered rate of the one-second burst after the ramp (0: no burst).
    #[arg(long, default_value_t = 100_000, value_parser = crate::flags::u64_in(0, crate::flags::MAX_RATE))]
    burst_rate: u64,
    /// Offered rate of the sustained step after the burst.
    #[arg(long, default_value_t = 20_000, value_parser = crate::flags::u64_in(0, crate::flags::MAX_RATE))]
    sustain_rate: u64,
    /// Seconds of the sustained step (0: none).
    #[arg(long, default_value_t = 0.0, value_parser = crate::flags::parse_seconds)]
    sustain_seconds: f64,
    /// Observing threads.
    #[arg(long, default_value_t = 2, value_parser = crate::flags::usize_in(1, crate::flags::MAX_THREADS))]
    observers: usize,
    /// Most episodes per `observe_batch` call (1: one `observe` per episode).
    #[arg(long, default_value_t = 256, value_parser = crate::flags::usize_in(1, crate::flags::MAX_BATCH))]
    batch: usize,
    /// Append-buffer limit per shard (admission control).
    #[arg(long, default_value_t = 20_000, value_parser = crate::flags::usize_in(1, crate::flags::MAX_ITEMS))]
    max_unindexed: usize,
    /// HNSW M.
    #[arg(long, default_value_t = 16, value_parser = crate::flags::usize_in(2, 255))]
    m: usize,
    /// HNSW ef of construction.
    #[arg(long, default_value_t = 100, value_parser = crate::flags::usize_in(1, locus::loadtest::scenario::MAX_EF as u64))]
    ef_construction: usize,
    /// Similar episodes each new one is associated with when indexed (0: off).
    #[arg(long, default_value_t = 4, value_parser = crate::flags::usize_in(0, 1024))]
    similar: usize,
    /// Absorbers per shard and space (0: one per worker).
    #[arg(long, default_value_t = 0, value_parser = crate::flags::usize_in(0, crate::flags::MAX_THREADS))]
    absorbers: usize,
    /// Recalling threads: recall `i` of the schedule is sent by thread `i mod recallers`, each
    /// synchronously (1: one recall in flight at a time, so a recall slower than the schedule
    /// delays the next ones, and that wait counts in their latency).
    #[arg(long, default_value_t = 1, value_parser = crate::flags::usize_in(1, crate::flags::MAX_THREADS))]
    recallers: usize,
    /// Absorption does not stop early for a waiting recall (`IndexParams::absorb_yields` off:
    /// the behaviour before it existed, for before/after comparisons in one binary).
    #[arg(long)]
    no_absorb_yield: bool,
    /// The index walk's vectors: `int8` (the default: an int8 copy of every row beside the f32
    /// one, a quarter of the memory traffic) or `none` (f32 only: less memory, slower walks).
    #[arg(long, value_enum, default_value = "int8")]
    quantization: WalkQuantization,
    /// Vectors from this texmex .fvecs file instead of generated ones.
    #[arg(long)]
    fvecs: Option<PathBuf>,
    /// Closed-loop ingestion of `--episodes` (or the whole --fvecs file) instead of the ramp.
    #[arg(long)]
    load: bool,
    /// Episodes for --load without --fvecs.
    #[arg(long, default_value_t = 100_000, value_parser = crate::flags::usize_in(1, crate::flags::MAX_ITEMS))]
    episodes: usize,
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
    /// Of `recall_ns`: from the intended start to the actual call (the recaller thread was late:
    /// its previous recall ran past this one's time, or it was not scheduled).
    recall_client_lag_ns: Quantiles,
    /// Of `recall_ns`: the shard's search task waiting in a worker queue.
    recall_queued_ns: Quantiles,
    /// Of `recall_ns`: the shard's search itself (index segments + append-buffer scan).
    recall_search_ns: Quantiles,
    /// Of `recall_ns`: the rest of the call (validation, submit, and waking the caller with the
    /// answer): the recall's wall time minus its slowest shard's submit-to-answer time.
    recall_handoff_ns: Quantiles,
    /// Rows of the append buffer a recall scanned (mean).
    recall_scanned_mean: f64,
    /// Absorption tasks that stopped early for a waiting recall during the step.
    absorb_yields: u64,
    recalls_partial: u64,
    /// Recalls that did not return the last episode accepted before they started.
    recall_misses_of_last_accepted: u64,
    loadavg_1m: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Load {
    episodes: usize,
    observers: usize,
    batch: usize,
    refusals_retried: u64,
    accepted_after_s: f64,
    indexed_after_s: Option<f64>,
    indexed_per_s: Option<f64>,
    loadavg_1m: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Memory {
    episodes: usize,
    raw_f32_bytes: usize,
    rss_growth_bytes: Option<usize>,
    rss_growth_over_raw: Option<f64>,
    index_reserved_bytes: usize,
    association_edges: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    dimension: usize,
    shards: usize,
    kernels: String,
    m: usize,
    ef_construction: usize,
    similar: usize,
    batch: usize,
    steps: Vec<Step>,
    burst: Option<Step>,
    sustained: Option<Step>,
    load: Option<Load>,
    indexed_after_s: Option<f64>,
    memory: Memory,
}

fn rss_bytes() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The episodes' vectors: a pool, reused with shifted coordinates past its end.
struct Vectors {
    dim: usize,
    pool: Vec<f32>,
    n: usize,
}

impl Vectors {
    fn generated(dim: usize, n: usize) -> Self {
        let mut s = 0x9E37_79B9_7F4A_7C15_u64;
        let pool = (0..n * dim)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        Self { dim, pool, n }
    }

    fn get(&self, i: u64) -> Vec<f32> {
        let (j, round) = ((i % self.n as u64) as usize, (i / self.n as u64) as usize);
        let mut v = self.pool[j * self.dim..(j + 1) * self.dim].to_vec();
        if round > 0 {
            v[round % self.dim] += 0.25;
            v[(round * 7 + 3) % self.dim] -= 0.25;
        }
        v
    }
}

/// What each recaller thread of a step measured.
#[derive(Default)]
struct RecallTally {
    /// Intended start → answer.
    total: LatencyHistogram,
    /// Intended start → call.
    lag: LatencyHistogram,
    /// Per shard: the search task's queue wait.
    queued: LatencyHistogram,
    /// Per shard: the search itself.
    search: LatencyHistogram,
    /// The call minus its slowest shard.
    handoff: LatencyHistogram,
    n: u64,
    partial: u64,
    misses: u64,
    scanned: u64,
}

impl RecallTally {
    fn merge(&mut self, o: &RecallTally) {
        let _ = self.total.merge(&o.total);
        let _ = self.lag.merge(&o.lag);
        let _ = self.queued.merge(&o.queued);
        let _ = self.search.merge(&o.search);
        let _ = self.handoff.merge(&o.handoff);
        self.n += o.n;
        self.partial += o.partial;
        self.misses += o.misses;
        self.scanned += o.scanned;
    }
}

/// Absorption tasks that stopped early for a recall, all shards.
fn absorb_yields(engine: &Engine) -> u64 {
    engine
        .metrics_snapshot()
        .shards
        .iter()
        .map(|s| s.absorb_yields_total)
        .sum()
}

/// What each observer thread of a step returns.
type ObserverTally = (LatencyHistogram, u64, u64, u64);

// tidy: long-fn — one load step of the benchmark: offered load, recallers and the figures of the step, in order
fn step(engine: &Arc<Engine>, vectors: &Arc<Vectors>, args: &Args, rate: u64, seconds: f64) -> Step {
    let dur = Duration::from_secs_f64(seconds);
    let start = Instant::now() + Duration::from_millis(5);
    let stop = Arc::new(AtomicBool::new(false));
    let max_lag = Arc::new(AtomicUsize::new(0));
    // The last accepted (episode id, vector index), for the recaller's read-your-writes check.
    let last: Arc<Mutex<Option<(u64, u64)>>> = Arc::new(Mutex::new(None));
    let next_vector = Arc::new(AtomicU64::new(0));
    let base = engine.len() as u64;
    let observers: Vec<_> = (0..args.observers)
        .map(|_| {
            let (engine, vectors, last) = (engine.clone(), vectors.clone(), last.clone());
            let per_thread = rate as f64 / args.observers as f64;
            let batch = args.batch.max(1);
            let next_vector = next_vector.clone();
            std::thread::spawn(move || -> ObserverTally {
                let mut h = LatencyHistogram::new();
                let (mut ok, mut over, mut other) = (0u64, 0u64, 0u64);
                let total = (per_thread * dur.as_secs_f64()) as u64;
                let intended = |i: u64| start + Duration::from_secs_f64(i as f64 / per_thread);
                let mut i = 0u64;
                while i < total {
                    let now = Instant::now();
                    let first = intended(i);
                    if first > now {
                        std::thread::sleep(first - now);
                        continue;
                    }
                    let due = ((now - start).as_secs_f64() * per_thread) as u64 + 1;
                    let n = due.min(total).saturating_sub(i).clamp(1, batch as u64);
                    let idx: Vec<u64> = (0..n)
                        .map(|_| base + next_vector.fetch_add(1, Ordering::Relaxed))
                        .collect();
                    let eps: Vec<Episode> = idx.iter().map(|&k| Episode::new(vectors.get(k))).collect();
                    let results = if batch == 1 {
                        eps.into_iter().map(|e| engine.observe(e)).collect()
                    } else {
                        engine.observe_batch(eps)
                    };
                    let done = Instant::now();
                    let mut newest = None;
                    for (k, r) in results.into_iter().enumerate() {
                        match r {
                            Ok(id) => {
                                ok += 1;
                                h.record_duration(done.saturating_duration_since(intended(i + k as u64)));
                                newest = Some((id.0, idx[k]));
                            }
                            Err(EngineError::Overloaded { .. }) => over += 1,
                            Err(_) => other += 1,
                        }
                    }
                    if newest.is_some() {
                        *last.lock().unwrap_or_else(|p| p.into_inner()) = newest;
                    }
                    i += n;
                }
                (h, ok, over, other)
            })
        })
        .collect();
    let yields_before = absorb_yields(engine);
    let recallers: Vec<_> = (0..args.recallers.max(1) as u64)
        .map(|thread| {
            let (engine, vectors, stop, last) = (engine.clone(), vectors.clone(), stop.clone(), last.clone());
            let (rate, threads) = (args.recall_rate, args.recallers.max(1) as u64);
            std::thread::spawn(move || {
                let mut t = RecallTally::default();
                if rate == 0 {
                    return t;
                }
                let mut i = thread;
                while !stop.load(Ordering::Acquire) {
                    let intended = start + Duration::from_secs_f64(i as f64 / rate as f64);
                    i += threads;
                    let now = Instant::now();
                    if intended > now {
                        std::thread::sleep(intended - now);
                    }
                    let target = *last.lock().unwrap_or_else(|p| p.into_inner());
                    let q = match target {
                        Some((_, k)) => vectors.get(k),
                        None => vectors.get(i.wrapping_mul(7919)),
                    };
                    let called = Instant::now();
                    if let Ok(r) = engine.recall(&Cue::new(q, 10)) {
                        t.total.record_duration(intended.elapsed());
                        t.lag.record_duration(called.saturating_duration_since(intended));
                        let slowest = r.shards.iter().filter_map(|s| s.elapsed).max();
                        t.handoff
                            .record_duration(r.elapsed.saturating_sub(slowest.unwrap_or_default()));
                        for sh in &r.shards {
                            if let (Some(e), Some(w)) = (sh.elapsed, sh.queued) {
                                t.queued.record_duration(w);
                                t.search.record_duration(e.saturating_sub(w));
                            }
                            t.scanned += sh.scanned as u64;
                        }
                        t.n += 1;
                        t.partial += u64::from(r.partial);
                        if let Some((id, _)) = target
                            && !r.hits.iter().any(|x| x.id.0 == id)
                        {
                            t.misses += 1;
                        }
                    }
                }
                t
            })
        })
        .collect();
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
    let mut rt = RecallTally::default();
    for r in recallers {
        if let Ok(t) = r.join() {
            rt.merge(&t);
        }
    }
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
        recalls: rt.n,
        recall_ns: rt.total.quantiles(),
        recall_client_lag_ns: rt.lag.quantiles(),
        recall_queued_ns: rt.queued.quantiles(),
        recall_search_ns: rt.search.quantiles(),
        recall_handoff_ns: rt.handoff.quantiles(),
        recall_scanned_mean: rt.scanned as f64 / rt.n.max(1) as f64,
        absorb_yields: absorb_yields(engine).saturating_sub(yields_before),
        recalls_partial: rt.partial,
        recall_misses_of_last_accepted: rt.misses,
        loadavg_1m: loadavg(),
    }
}

/// Closed-loop ingestion of episodes `0..n` until the index holds them all.
fn load(engine: &Arc<Engine>, vectors: &Arc<Vectors>, args: &Args, n: usize) -> Load {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let batch = args.batch.max(1);
    let threads: Vec<_> = (0..args.observers)
        .map(|_| {
            let (engine, vectors, next) = (engine.clone(), vectors.clone(), next.clone());
            std::thread::spawn(move || {
                let mut retried = 0u64;
                loop {
                    let from = next.fetch_add(batch, Ordering::Relaxed);
                    if from >= n {
                        return retried;
                    }
                    let mut todo: Vec<u64> = (from as u64..(from + batch).min(n) as u64).collect();
                    while !todo.is_empty() {
                        let eps = todo.iter().map(|&k| Episode::new(vectors.get(k))).collect();
                        let results = engine.observe_batch(eps);
                        let mut wait = Duration::ZERO;
                        let refused: Vec<u64> = todo
                            .iter()
                            .zip(&results)
                            .filter_map(|(&k, r)| match r {
                                Err(EngineError::Overloaded { retry_after, .. }) => {
                                    wait = wait.max(*retry_after);
                                    Some(k)
                                }
                                _ => None,
                            })
                            .collect();
                        if !refused.is_empty() {
                            retried += refused.len() as u64;
                            // As the refusal advises, within 1..=50 ms.
                            std::thread::sleep(
                                wait.clamp(Duration::from_millis(1), Duration::from_millis(50)),
                            );
                        }
                        todo = refused;
                    }
                }
            })
        })
        .collect();
    let retried = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    let accepted_after_s = started.elapsed().as_secs_f64();
    let indexed = engine.wait_indexed(Duration::from_secs(3600));
    let indexed_after_s = indexed.then(|| started.elapsed().as_secs_f64());
    Load {
        episodes: n,
        observers: args.observers,
        batch,
        refusals_retried: retried,
        accepted_after_s,
        indexed_after_s,
        indexed_per_s: indexed_after_s.map(|s| n as f64 / s),
        loadavg_1m: loadavg(),
    }
}

fn print_step(name: &str, s: &Step) {
    let ms = |ns: u64| ns as f64 / 1e6;
    println!(
        "{name:>10} offered {:>7}/s accepted {:>8.0}/s refused {:>7} (+{} other)  lag max {:>6} end {:>6}  observe p50 {:.3} p99 {:.3} p99.9 {:.3} ms  recall({}, {} missed last accepted) p50 {:.3} p99 {:.3} p99.9 {:.3} ms [client lag p50 {:.3} p99 {:.3}; queued p50 {:.3} p99 {:.3}; search p50 {:.3} p99 {:.3}; hand-off p50 {:.3} p99 {:.3} ms; scanned {:.0}; absorb yields {}]  load {}",
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
        s.recall_misses_of_last_accepted,
        ms(s.recall_ns.p50),
        ms(s.recall_ns.p99),
        ms(s.recall_ns.p999),
        ms(s.recall_client_lag_ns.p50),
        ms(s.recall_client_lag_ns.p99),
        ms(s.recall_queued_ns.p50),
        ms(s.recall_queued_ns.p99),
        ms(s.recall_search_ns.p50),
        ms(s.recall_search_ns.p99),
        ms(s.recall_handoff_ns.p50),
        ms(s.recall_handoff_ns.p99),
        s.recall_scanned_mean,
        s.absorb_yields,
        s.loadavg_1m.map_or("?".into(), |l| format!("{l:.2}")),
    );
}

/// Runs the subcommand.
// tidy: long-fn — a CLI body, one step after another
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.observers == 0 || args.recallers == 0 || args.seconds <= 0.0 || args.dimension == 0 {
        return Err("observers, recallers, seconds and dimension must be > 0".into());
    }
    let vectors = Arc::new(match &args.fvecs {
        Some(path) => {
            let (pool, dim) = crate::bench_index::read_fvecs(path)?;
            if dim == 0 || pool.is_empty() {
                return Err(format!("{}: no vectors", path.display()).into());
            }
            let n = pool.len() / dim;
            Vectors { dim, pool, n }
        }
        None => Vectors::generated(args.dimension, 16_384),
    });
    let dim = vectors.dim;
    let rss_base = rss_bytes();
    let engine = Arc::new(
        Engine::builder()
            .dimension(dim)
            .index(IndexParams {
                m: args.m,
                ef_construction: args.ef_construction,
                absorbers: args.absorbers,
                absorb_yields: !args.no_absorb_yield,
                quantization: match args.quantization {
                    WalkQuantization::Int8 => Quantization::Int8,
                    WalkQuantization::None => Quantization::None,
                },
                ..IndexParams::default()
            })
            .admission(AdmissionLimits {
                max_unindexed: args.max_unindexed,
                ..AdmissionLimits::default()
            })
            .associations(AssociationParams {
                similar: args.similar,
                max_episodes_per_shard: (1 << 20).max(args.episodes.saturating_add(1 << 16)),
                ..AssociationParams::default()
            })
            .open()?,
    );
    println!(
        "bench-engine: {} shard(s), dimension {dim}, kernels {}, {} observer thread(s), batch {}, M {}, ef_construction {}, similar {}, recalls at {}/s by {} thread(s), absorption yields to recall: {}, load {}",
        engine.shard_count(),
        engine.kernels(),
        args.observers,
        args.batch,
        args.m,
        args.ef_construction,
        args.similar,
        args.recall_rate,
        args.recallers,
        !args.no_absorb_yield,
        loadavg().map_or("?".into(), |l| format!("{l:.2}")),
    );
    let mut steps = Vec::new();
    let (mut burst, mut sustained, mut loaded) = (None, None, None);
    if args.load {
        let n = if args.fvecs.is_some() {
            vectors.n
        } else {
            args.episodes
        };
        let l = load(&engine, &vectors, &args, n);
        println!(
            "load: {} episodes accepted in {:.2} s, indexed after {} s: {} episodes/s ({} refusals retried, load {})",
            l.episodes,
            l.accepted_after_s,
            l.indexed_after_s.map_or("never".into(), |s| format!("{s:.2}")),
            l.indexed_per_s.map_or("-".into(), |r| format!("{r:.0}")),
            l.refusals_retried,
            l.loadavg_1m.map_or("?".into(), |l| format!("{l:.2}")),
        );
        loaded = Some(l);
    } else {
        for &rate in args.rates.iter().filter(|&&r| r > 0) {
            let s = step(&engine, &vectors, &args, rate, args.seconds);
            print_step("ramp", &s);
            steps.push(s);
        }
        if args.burst_rate > 0 {
            let s = step(&engine, &vectors, &args, args.burst_rate, 1.0);
            print_step("burst 1 s", &s);
            burst = Some(s);
        }
        if args.sustain_seconds > 0.0 {
            let s = step(&engine, &vectors, &args, args.sustain_rate, args.sustain_seconds);
            print_step("sustained", &s);
            sustained = Some(s);
        }
    }
    let t = Instant::now();
    let indexed_after_s = engine
        .wait_indexed(Duration::from_secs(3600))
        .then(|| t.elapsed().as_secs_f64());
    let stats = engine.stats();
    let episodes = stats.episodes;
    let raw = episodes * dim * 4;
    let growth = rss_bytes().zip(rss_base).map(|(r, b)| r.saturating_sub(b));
    let memory = Memory {
        episodes,
        raw_f32_bytes: raw,
        rss_growth_bytes: growth,
        rss_growth_over_raw: growth.map(|g| g as f64 / raw.max(1) as f64),
        index_reserved_bytes: stats.index_bytes,
        association_edges: stats.edges,
    };
    println!(
        "memory: {episodes} episodes, raw f32 {:.1} MiB, RSS growth {} ({}), index caught up {} s after the last step",
        raw as f64 / (1 << 20) as f64,
        growth.map_or("unknown".into(), |r| format!(
            "{:.1} MiB",
            r as f64 / (1 << 20) as f64
        )),
        memory
            .rss_growth_over_raw
            .map_or("-".into(), |r| format!("{r:.2}x raw")),
        indexed_after_s.map_or("never (3600 s)".into(), |s| format!("{s:.1}")),
    );
    let report = Report {
        dimension: dim,
        shards: engine.shard_count(),
        kernels: engine.kernels().into(),
        m: args.m,
        ef_construction: args.ef_construction,
        similar: args.similar,
        batch: args.batch,
        steps,
        burst,
        sustained,
        load: loaded,
        indexed_after_s,
        memory,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
