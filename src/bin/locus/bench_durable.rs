//! `locus bench-durable`: what durability costs the engine, side by side in one run, through
//! the public API (`Engine::builder()…open_in(dir)`):
//!
//! 1. Observe throughput and latency (P50/P99/max) with several concurrent observers, for an
//!    engine without a directory (memory) and each sync policy (none, every batch, every 1 ms),
//!    with the group sizes and fsync latency behind them and the bytes on disk per episode.
//!    Index absorption is switched off while observing, so the figures are the store + log
//!    path, not the HNSW insertion competing for the same cores.
//! 2. A snapshot taken while observers go on: its time, and the observe latency during it
//!    against before it.
//! 3. Recovery: a directory of `--recovery-episodes` episodes (the first ones indexed, then a
//!    snapshot — which saves the index segments —, then `--recovery-tail` of them, by default
//!    half, in the log only) reopened: the time until the engine serves (every episode
//!    recallable: the loaded ones through the index, the tail by exact scan) and until the tail
//!    is absorbed too, against the time indexing the snapshot's episodes took when they were
//!    built. With `--recovery-rebuild`, the same directory is reopened once more without its
//!    index files, so recovery falls back to re-absorbing everything (the path before index
//!    files existed), measured the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use locus::durability::SyncPolicy;
use locus::engine::{AdmissionLimits, DurabilityOptions, Engine, EngineBuilder, Episode, ShardCount};

use crate::flags;

/// Embeddings generated for the recovery directory: distinct rows up to 1M, and at most this
/// many bytes of them (at 768 dimensions, 1M rows are 3 GiB).
const RECOVERY_POOL_BYTES: u64 = 4 << 30;
/// Rows of the pool the policy cases cycle through.
const CASE_POOL_ROWS: usize = 4096;

/// Arguments of `locus bench-durable`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory for the engines' data (a fresh subdirectory per case, removed afterwards);
    /// default: the system temporary directory. Put it on the disk you want to measure.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Embedding dimension.
    #[arg(long = "dimension", alias = "dim", default_value_t = 768, value_parser = flags::usize_in(1, flags::MAX_DIMENSION))]
    dim: usize,
    /// Episodes observed per policy case (all observers together).
    #[arg(long, default_value_t = 8_000, value_parser = flags::u64_in(1, flags::MAX_ITEMS))]
    episodes: u64,
    /// Concurrent observer threads.
    #[arg(long, default_value_t = 8, value_parser = flags::u64_in(1, flags::MAX_THREADS))]
    observers: u64,
    /// Episodes per call: 1 calls `Engine::observe`; more calls `Engine::observe_batch`, whose
    /// episodes share one group commit per shard (latencies are then per call).
    #[arg(long, default_value_t = 1, value_parser = flags::u64_in(1, flags::MAX_BATCH))]
    batch: u64,
    /// Shards (default: one per NUMA node).
    #[arg(long, value_parser = flags::usize_in(1, flags::MAX_SHARDS))]
    shards: Option<usize>,
    /// Episodes in the directory whose recovery is timed (0: skip).
    #[arg(long, default_value_t = 20_000, value_parser = flags::u64_in(0, flags::MAX_ITEMS))]
    recovery_episodes: u64,
    /// Of those, how many are in the log after the snapshot (default: half).
    #[arg(long, value_parser = flags::u64_in(0, flags::MAX_ITEMS))]
    recovery_tail: Option<u64>,
    /// Also reopen the recovery directory without its index files (recovery then re-absorbs
    /// every episode) and time that.
    #[arg(long)]
    recovery_rebuild: bool,
}

type BoxError = Box<dyn std::error::Error>;

fn builder(args: &Args) -> EngineBuilder {
    let b = Engine::builder().dimension(args.dim).admission(AdmissionLimits {
        max_unindexed: usize::MAX / 2,
        ..AdmissionLimits::default()
    });
    match args.shards {
        Some(n) => b.shards(ShardCount::Exactly(n)),
        None => b,
    }
}

fn options(policy: SyncPolicy) -> DurabilityOptions {
    DurabilityOptions {
        policy,
        snapshot_every: None,
        ..DurabilityOptions::default()
    }
}

/// A pool of distinct embeddings, generated once outside the timing.
fn pool(dim: usize, n: usize) -> Arc<Vec<Vec<f32>>> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    Arc::new(
        (0..n)
            .map(|_| {
                (0..dim)
                    .map(|_| {
                        s ^= s >> 12;
                        s ^= s << 25;
                        s ^= s >> 27;
                        ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32) - 0.5
                    })
                    .collect()
            })
            .collect(),
    )
}

fn hist() -> Result<Histogram<u64>, BoxError> {
    Ok(Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)?)
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// Observes `n` episodes (pool entries from `first` on) from `observers` threads, `batch` per call; returns (throughput, latency
/// histogram per call, episodes done).
fn observe_all(
    engine: &Engine,
    pool: &Arc<Vec<Vec<f32>>>,
    observers: u64,
    batch: u64,
    first: u64,
    n: u64,
    stop: Option<&AtomicBool>,
) -> Result<(f64, Histogram<u64>, u64), BoxError> {
    let per = n / observers;
    let batch = batch.max(1);
    let start = Instant::now();
    let results: Vec<Result<(Histogram<u64>, u64), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..observers)
            .map(|t| {
                s.spawn(move || -> Result<(Histogram<u64>, u64), String> {
                    let mut h = hist().map_err(|e| e.to_string())?;
                    let mut done = 0;
                    let episode = |i: u64| {
                        let v = pool[((first + t * per + i) as usize) % pool.len()].clone();
                        Episode::new(v)
                            .with_payload(vec![b'p'; 64])
                            .in_stream(format!("s{t}"))
                    };
                    let mut i = 0;
                    while i < per {
                        if stop.is_some_and(|s| s.load(Ordering::Acquire)) {
                            break;
                        }
                        let n = batch.min(per - i);
                        let t0 = Instant::now();
                        if batch <= 1 {
                            engine.observe(episode(i)).map_err(|e| e.to_string())?;
                        } else {
                            let eps = (i..i + n).map(episode).collect();
                            for r in engine.observe_batch(eps) {
                                r.map_err(|e| e.to_string())?;
                            }
                        }
                        h.saturating_record(t0.elapsed().as_nanos() as u64);
                        done += n;
                        i += n;
                    }
                    Ok((h, done))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("observer panicked".into())))
            .collect()
    });
    let mut all = hist()?;
    let mut done = 0;
    for r in results {
        let (h, d) = r?;
        all.add(&h)?;
        done += d;
    }
    Ok((done as f64 / start.elapsed().as_secs_f64(), all, done))
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the `locus bench-durable` subcommand: the policy cases, the snapshot under load, the
/// recovery, each in a scratch directory removed afterwards.
pub fn run(args: Args) -> Result<(), BoxError> {
    check_memory(&args)?;
    let base = Scratch(
        args.dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("locus-bench-durable-{}", std::process::id())),
    );
    std::fs::create_dir_all(base.path())?;
    let pool = pool(args.dim, CASE_POOL_ROWS);
    policy_cases(&args, base.path(), &pool)?;
    snapshot_under_load(&args, base.path(), &pool)?;
    if args.recovery_episodes > 0 {
        recovery_cases(&args, base.path())?;
    }
    Ok(())
}

/// Rows of the recovery directory's embedding pool.
fn recovery_pool_rows(args: &Args) -> usize {
    let row_bytes = (args.dim as u64).saturating_mul(4).max(1);
    args.recovery_episodes
        .min(1 << 20)
        .min(RECOVERY_POOL_BYTES / row_bytes)
        .max(1) as usize
}

/// Refuses flags whose pools would not fit this machine, before generating them.
fn check_memory(args: &Args) -> Result<(), BoxError> {
    let rows = CASE_POOL_ROWS as u64 + recovery_pool_rows(args) as u64;
    flags::check_fits_memory(
        "--dimension with --recovery-episodes",
        rows.saturating_mul(args.dim as u64).saturating_mul(4),
    )?;
    Ok(())
}

/// Step 1: observe throughput and latency for memory and each sync policy, a table row each.
fn policy_cases(args: &Args, base: &Path, pool: &Arc<Vec<Vec<f32>>>) -> Result<(), BoxError> {
    println!(
        "bench-durable: {} episodes of {} dims per case from {} observers, {} per call, index absorption off while observing",
        args.episodes, args.dim, args.observers, args.batch
    );
    println!(
        "{:<12} {:>6} {:>10} {:>9} {:>9} {:>10} {:>8} {:>8} {:>10} {:>10} {:>8}",
        "policy",
        "shards",
        "obs/s",
        "p50_us",
        "p99_us",
        "max_us",
        "syncs",
        "group",
        "fsync_p50",
        "fsync_p99",
        "B/ep"
    );
    let mut fsync_all = hist()?;
    let mut memory_rate = 0.0;
    let mut none_rate = 0.0;
    let mut batch_rate = 0.0;
    let cases: [(&str, Option<SyncPolicy>); 4] = [
        ("memory", None),
        ("none", Some(SyncPolicy::None)),
        ("every-batch", Some(SyncPolicy::EveryBatch)),
        ("every-1ms", Some(SyncPolicy::EveryMs(1))),
    ];
    for (name, policy) in cases {
        let dir = base.join(name);
        let engine = match policy {
            None => builder(args).open()?,
            Some(p) => builder(args).durability(options(p)).open_in(&dir)?,
        };
        engine.set_absorption(false);
        let (rate, lat, done) =
            observe_all(&engine, pool, args.observers, args.batch, 0, args.episodes, None)?;
        let stats = engine.wal_stats();
        let (mut syncs, mut records, mut batches) = (0, 0, 0);
        let mut fsync = hist()?;
        for s in &stats {
            syncs += s.syncs;
            records += s.records;
            batches += s.batches;
            fsync.add(&s.sync_micros)?;
        }
        fsync_all.add(&fsync)?;
        let shards = engine.shard_count();
        engine.shutdown();
        let bytes = if policy.is_some() {
            dir_bytes(&dir) as f64 / done as f64
        } else {
            0.0
        };
        let fq = |q: f64| {
            if fsync.is_empty() {
                0
            } else {
                fsync.value_at_quantile(q)
            }
        };
        println!(
            "{:<12} {:>6} {:>10.0} {:>9.1} {:>9.1} {:>10.1} {:>8} {:>8.1} {:>10} {:>10} {:>8.0}",
            name,
            shards,
            rate,
            us(&lat, 0.5),
            us(&lat, 0.99),
            lat.max() as f64 / 1000.0,
            syncs,
            if batches > 0 {
                records as f64 / batches as f64
            } else {
                0.0
            },
            fq(0.5),
            fq(0.99),
            bytes
        );
        match name {
            "memory" => memory_rate = rate,
            "none" => none_rate = rate,
            "every-batch" => batch_rate = rate,
            _ => {}
        }
    }
    if batch_rate > 0.0 {
        println!(
            "every-batch costs {:.2}x the throughput of none and {:.2}x that of memory (no log) with {} observers, {} episode(s) per call (goal < 2x none)",
            none_rate / batch_rate,
            memory_rate / batch_rate,
            args.observers,
            args.batch
        );
    }
    if !fsync_all.is_empty() {
        println!(
            "fsync latency over all cases (us): n={} p50={} p90={} p99={} p99.9={} max={}",
            fsync_all.len(),
            fsync_all.value_at_quantile(0.5),
            fsync_all.value_at_quantile(0.9),
            fsync_all.value_at_quantile(0.99),
            fsync_all.value_at_quantile(0.999),
            fsync_all.max()
        );
    }
    Ok(())
}

/// Step 2: a snapshot taken while observers go on (every batch): its time and the observe
/// latency during it against before it.
fn snapshot_under_load(args: &Args, base: &Path, pool: &Arc<Vec<Vec<f32>>>) -> Result<(), BoxError> {
    let dir = base.join("snapshot");
    let engine = builder(args)
        .durability(options(SyncPolicy::EveryBatch))
        .open_in(&dir)?;
    engine.set_absorption(false);
    observe_all(&engine, pool, args.observers, args.batch, 0, args.episodes, None)?;
    let (_, before, _) = observe_all(
        &engine,
        pool,
        args.observers,
        args.batch,
        0,
        args.episodes / 4,
        None,
    )?;
    let stop = AtomicBool::new(false);
    let (report, during) = std::thread::scope(|s| -> Result<_, BoxError> {
        let obs = s.spawn(|| {
            observe_all(
                &engine,
                pool,
                args.observers,
                args.batch,
                0,
                u64::MAX / 2,
                Some(&stop),
            )
            .map_err(|e| e.to_string())
        });
        std::thread::sleep(Duration::from_millis(50));
        let report = engine.snapshot();
        stop.store(true, Ordering::Release);
        let during = obs
            .join()
            .map_err(|_| "observers panicked")?
            .map_err(|e| e.to_string())?;
        Ok((report?, during))
    })?;
    println!(
        "snapshot of {} records ({:.1} MiB): {:.3} s total, of which {:.1} ms flushing the logs; {} segments deleted",
        report.records,
        report.bytes as f64 / (1 << 20) as f64,
        report.elapsed.as_secs_f64(),
        report.flush.as_secs_f64() * 1e3,
        report.segments_deleted
    );
    print_index(&report);
    println!(
        "observe during the snapshot: {} episodes, p50 {:.1} us, p99 {:.1} us, max {:.1} us (before it: p99 {:.1} us, max {:.1} us)",
        during.2,
        us(&during.1, 0.5),
        us(&during.1, 0.99),
        during.1.max() as f64 / 1000.0,
        us(&before, 0.99),
        before.max() as f64 / 1000.0
    );
    engine.shutdown();
    Ok(())
}

/// Step 3: recovery of a snapshot (with its index) and a log tail, against the index rebuild.
fn recovery_cases(args: &Args, base: &Path) -> Result<(), BoxError> {
    let dir = base.join("recovery");
    let n = args.recovery_episodes;
    let tail = args.recovery_tail.unwrap_or(n / 2).min(n);
    let len = {
        // Distinct rows (up to 1M), so the index holds realistic data, not a few repeats.
        let pool = self::pool(args.dim, recovery_pool_rows(args));
        let engine = builder(args)
            .durability(options(SyncPolicy::None))
            .open_in(&dir)?;
        engine.set_absorption(false);
        observe_all(&engine, &pool, args.observers, args.batch, 0, n - tail, None)?;
        let t = Instant::now();
        engine.set_absorption(true);
        let built = engine.wait_indexed(Duration::from_secs(3600));
        let build = t.elapsed();
        println!(
            "indexing the {} episodes before the snapshot (a full buffer absorbed, as a rebuild does): {:.2} s{}",
            n - tail,
            build.as_secs_f64(),
            if built { "" } else { " (not finished)" }
        );
        let snap = engine.snapshot()?;
        println!(
            "snapshot before the tail: {} records, {:.1} MiB, {:.2} s (flush {:.1} ms)",
            snap.records,
            snap.bytes as f64 / (1 << 20) as f64,
            snap.elapsed.as_secs_f64(),
            snap.flush.as_secs_f64() * 1e3
        );
        print_index(&snap);
        // Nothing new: the full segments' files are named again, only the partial one written.
        let again = engine.snapshot()?;
        println!(
            "a second snapshot at once: {:.2} s (records folded again; index below)",
            again.elapsed.as_secs_f64()
        );
        print_index(&again);
        engine.set_absorption(false);
        observe_all(&engine, &pool, args.observers, args.batch, n - tail, tail, None)?;
        let len = engine.len();
        engine.shutdown();
        len
    };
    let bytes = dir_bytes(&dir);
    println!(
        "recovery directory: {} episodes ({:.1} MiB on disk, {:.0} B/episode, index files included)",
        len,
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / len.max(1) as f64
    );
    recover(args, &dir, "recovery with the saved index")?;
    if args.recovery_rebuild {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|x| x == "hnsw") {
                std::fs::remove_file(path)?;
            }
        }
        recover(args, &dir, "recovery without index files (rebuild)")?;
    }
    Ok(())
}

/// Prints what a snapshot saved of the index.
fn print_index(r: &locus::engine::SnapshotReport) {
    println!(
        "  index: {} files ({} reused from the previous snapshot), {:.1} MiB, {} episodes' nodes, saved in {:.2} s; absorption paused {:.1} ms at most ({:.1} ms in all){}",
        r.index_files,
        r.index_files_reused,
        r.index_bytes as f64 / (1 << 20) as f64,
        r.indexed_episodes,
        r.index_save.as_secs_f64(),
        r.absorber_pause_max.as_secs_f64() * 1e3,
        r.absorber_pause_total.as_secs_f64() * 1e3,
        if r.index_skipped.is_empty() {
            String::new()
        } else {
            format!("; not saved: {:?}", r.index_skipped)
        }
    );
}

/// Reopens `dir`, times it until it serves and until every episode is indexed, and prints it.
fn recover(args: &Args, dir: &Path, what: &str) -> Result<(), BoxError> {
    let t0 = Instant::now();
    let engine = builder(args).durability(options(SyncPolicy::None)).open_in(dir)?;
    let open = t0.elapsed();
    let report = engine.recovery_report().cloned().ok_or("no recovery report")?;
    let t1 = Instant::now();
    let indexed = engine.wait_indexed(Duration::from_secs(3600));
    let absorb = t1.elapsed();
    println!(
        "{what}: {} episodes ({} snapshot records, {} log records): serving after {:.2} s (check {:.2} s + replay {:.2} s, \
         of which loading the index {:.2} s); {} attached to loaded index nodes, {} re-absorbed in {:.2} s after it; \
         fully indexed after {:.2} s{}{}",
        report.episodes,
        report.snapshot_records,
        report.log_records,
        open.as_secs_f64(),
        report.check.as_secs_f64(),
        report.replay.as_secs_f64(),
        report.index_load.as_secs_f64(),
        report.episodes_loaded_indexed,
        report.episodes_reabsorbed,
        absorb.as_secs_f64(),
        (open + absorb).as_secs_f64(),
        if indexed { "" } else { " (not finished)" },
        if report.index_fallbacks.is_empty() {
            String::new()
        } else {
            format!(
                "; fell back for {} space(s), first: {}",
                report.index_fallbacks.len(),
                report.index_fallbacks[0]
            )
        }
    );
    engine.shutdown();
    Ok(())
}
