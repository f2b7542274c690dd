//! `locus bench-wal`: the write-ahead log's costs on this machine's disk, side by side in one
//! run: append throughput and latency (P50/P99/max) for each sync policy (none, every batch,
//! every 1 ms) with 1 and 4 appending threads, the group sizes and fsync latency distribution
//! behind them, bytes on disk per episode, the time to recover a 100K-record log, and the time
//! to write and load a snapshot.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use locus::durability::{
    EpisodeRecord, LinkKind, LinkRecord, Record, Recovery, ShardWal, SnapshotWriter, SyncPolicy, WalOptions,
    load_current_snapshot,
};

use crate::flags;

/// Arguments of `locus bench-wal`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory for the logs (a fresh subdirectory per case, removed afterwards); default: the
    /// system temporary directory. Put it on the disk you want to measure.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Embedding dimension of the records.
    #[arg(long = "dimension", alias = "dim", default_value_t = 768, value_parser = flags::u32_in(1, flags::MAX_DIMENSION))]
    dim: u32,
    /// Appends per case (all threads together).
    #[arg(long, default_value_t = 5_000, value_parser = flags::u64_in(0, flags::MAX_ITEMS))]
    records: u64,
    /// Appending thread counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4", value_parser = flags::u64_in(1, flags::MAX_THREADS))]
    threads: Vec<u64>,
    /// Records in the log whose recovery is timed (0: skip).
    #[arg(long, default_value_t = 100_000, value_parser = flags::u64_in(0, flags::MAX_ITEMS))]
    recovery_records: u64,
    /// Size of the snapshot whose write (temp, fsync, rename, manifest) and verified load are
    /// timed, in MiB (0: skip). 293 MiB is the raw f32 vectors of 100K episodes at 768 dims.
    #[arg(long, default_value_t = 293, value_parser = flags::u64_in(0, flags::MAX_MIB))]
    snapshot_mib: u64,
}

type BoxError = Box<dyn std::error::Error>;

/// A pool of distinct 768-dim-style episodes to append (generated once, outside the timing).
fn record_pool(dim: u32, n: u64) -> Vec<Record> {
    (0..n)
        .map(|id| {
            Record::Episode(EpisodeRecord {
                seq: id,
                id,
                space: "default".into(),
                stream: Some(format!("s{}", id / 16)),
                timestamp: id,
                embedding: (0..dim)
                    .map(|i| ((id * 31 + u64::from(i)) % 1000) as f32 / 1000.0)
                    .collect(),
                payload: vec![b'p'; 64],
                links: (0..4)
                    .map(|k| LinkRecord {
                        target: id.wrapping_sub(k + 1),
                        weight: 0.5,
                        direction: LinkKind::Both,
                    })
                    .collect(),
            })
        })
        .collect()
}

fn policy_name(p: SyncPolicy) -> String {
    match p {
        SyncPolicy::None => "none".into(),
        SyncPolicy::EveryBatch => "every-batch".into(),
        SyncPolicy::EveryMs(n) => format!("every-{n}ms"),
    }
}

fn dir_bytes(dir: &Path) -> Result<u64, BoxError> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        total += e?.metadata()?.len();
    }
    Ok(total)
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

struct Case {
    throughput: f64,
    latency: Histogram<u64>,
    drain: Duration,
    stats: locus::durability::WalStats,
    bytes_per_record: f64,
}

fn run_case(
    dir: &Path,
    dim: u32,
    policy: SyncPolicy,
    threads: u64,
    records: u64,
    pool: &Arc<Vec<Record>>,
) -> Result<Case, BoxError> {
    std::fs::create_dir_all(dir)?;
    let wal = Arc::new(ShardWal::open(dir, 0, WalOptions::new(dim, policy))?);
    let per_thread = records / threads;
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let wal = Arc::clone(&wal);
            let pool = Arc::clone(pool);
            std::thread::spawn(move || -> Result<Histogram<u64>, String> {
                let mut h =
                    Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).map_err(|e| e.to_string())?;
                for i in 0..per_thread {
                    let rec = &pool[((t * per_thread + i) % pool.len() as u64) as usize];
                    let t0 = Instant::now();
                    let _ = wal.append(rec).map_err(|e| e.to_string())?;
                    h.saturating_record(t0.elapsed().as_nanos() as u64);
                }
                Ok(h)
            })
        })
        .collect();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)?;
    for h in handles {
        let h = h.join().map_err(|_| "appender panicked")??;
        latency.add(&h)?;
    }
    let elapsed = start.elapsed();
    let t0 = Instant::now();
    wal.flush()?;
    let drain = t0.elapsed();
    let stats = wal.stats();
    drop(wal);
    let appended = per_thread * threads;
    Ok(Case {
        throughput: appended as f64 / elapsed.as_secs_f64(),
        latency,
        drain,
        stats,
        bytes_per_record: dir_bytes(dir)? as f64 / appended as f64,
    })
}

/// Runs the benchmark and prints its table.
pub fn run(args: Args) -> Result<(), BoxError> {
    let base = args
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("locus-bench-wal-{}", std::process::id()));
    std::fs::create_dir_all(&base)?;
    let result = run_all(&args, &base);
    let _ = std::fs::remove_dir_all(&base);
    result
}

fn run_all(args: &Args, base: &Path) -> Result<(), BoxError> {
    if args
        .threads
        .iter()
        .any(|&t| t == 0 || (args.records > 0 && t > args.records))
    {
        return Err("--threads: each count must be between 1 and --records".into());
    }
    // The snapshot case holds its bytes twice at most (written, then loaded back).
    flags::check_fits_memory("--snapshot-mib", args.snapshot_mib.saturating_mul(2 << 20))?;
    if args.records > 0 {
        append_cases(args, base)?;
    }
    if args.recovery_records > 0 {
        recovery_case(args, base, &Arc::new(record_pool(args.dim, 1024)))?;
    }
    if args.snapshot_mib > 0 {
        snapshot_case(args, base)?;
    }
    Ok(())
}

fn append_cases(args: &Args, base: &Path) -> Result<(), BoxError> {
    let pool = Arc::new(record_pool(args.dim, 1024));
    println!(
        "bench-wal: {} records of {} dims per case ({} bytes each encoded), logs in {}",
        args.records,
        args.dim,
        pool[0].encoded_len(),
        base.display()
    );
    println!(
        "{:<12} {:>3} {:>12} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>8}",
        "policy",
        "thr",
        "appends/s",
        "p50_us",
        "p99_us",
        "max_us",
        "syncs",
        "group",
        "fsync_p50",
        "fsync_p99",
        "drain_ms",
        "B/rec"
    );
    let mut none_rate = std::collections::HashMap::new();
    let mut batch_rate = std::collections::HashMap::new();
    let mut fsyncs = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)?;
    for &threads in &args.threads {
        for policy in [SyncPolicy::None, SyncPolicy::EveryBatch, SyncPolicy::EveryMs(1)] {
            let dir = base.join(format!("{}-{threads}", policy_name(policy)));
            let c = run_case(&dir, args.dim, policy, threads, args.records, &pool)?;
            std::fs::remove_dir_all(&dir)?;
            fsyncs.add(&c.stats.sync_micros)?;
            match policy {
                SyncPolicy::None => none_rate.insert(threads, c.throughput),
                SyncPolicy::EveryBatch => batch_rate.insert(threads, c.throughput),
                SyncPolicy::EveryMs(_) => None,
            };
            println!(
                "{:<12} {:>3} {:>12.0} {:>9.1} {:>9.1} {:>9.1} {:>9} {:>8.1} {:>9} {:>9} {:>9.1} {:>8.0}",
                policy_name(policy),
                threads,
                c.throughput,
                us(&c.latency, 0.5),
                us(&c.latency, 0.99),
                c.latency.max() as f64 / 1000.0,
                c.stats.syncs,
                c.stats.records as f64 / c.stats.batches.max(1) as f64,
                c.stats.sync_micros.value_at_quantile(0.5),
                c.stats.sync_micros.value_at_quantile(0.99),
                c.drain.as_secs_f64() * 1000.0,
                c.bytes_per_record,
            );
        }
    }
    for &threads in &args.threads {
        if let (Some(n), Some(b)) = (none_rate.get(&threads), batch_rate.get(&threads)) {
            println!(
                "threads {threads}: every-batch costs {:.2}x the throughput of none (goal < 2x)",
                n / b
            );
        }
    }
    println!(
        "fsync latency over all cases (us): n={} p50={} p90={} p99={} p99.9={} max={}",
        fsyncs.len(),
        fsyncs.value_at_quantile(0.5),
        fsyncs.value_at_quantile(0.9),
        fsyncs.value_at_quantile(0.99),
        fsyncs.value_at_quantile(0.999),
        fsyncs.max()
    );
    Ok(())
}

fn snapshot_case(args: &Args, base: &Path) -> Result<(), BoxError> {
    let dir = base.join("snapshot");
    std::fs::create_dir_all(&dir)?;
    let bytes: Vec<u8> = (0..args.snapshot_mib << 20).map(|i| (i % 251) as u8).collect();
    let t0 = Instant::now();
    let mut w = SnapshotWriter::create(&dir, args.dim, vec![0])?;
    w.section("index", &bytes[..bytes.len() / 2])?;
    w.section("graph", &bytes[bytes.len() / 2..])?;
    let info = w.commit()?;
    let write = t0.elapsed();
    let t1 = Instant::now();
    let loaded =
        load_current_snapshot(&dir, args.dim, 1)?.ok_or("the snapshot just written is not current")?;
    let load = t1.elapsed();
    let mib = args.snapshot_mib as f64;
    println!(
        "snapshot {}: {mib:.0} MiB in 2 sections: write+fsync+rename+manifest {:.2} s ({:.0} MiB/s), load+verify {:.2} s ({:.0} MiB/s)",
        info.id,
        write.as_secs_f64(),
        mib / write.as_secs_f64(),
        load.as_secs_f64(),
        mib / load.as_secs_f64()
    );
    drop(loaded);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn recovery_case(args: &Args, base: &Path, pool: &Arc<Vec<Record>>) -> Result<(), BoxError> {
    let dir = base.join("recovery");
    std::fs::create_dir_all(&dir)?;
    {
        let wal = ShardWal::open(&dir, 0, WalOptions::new(args.dim, SyncPolicy::EveryMs(5)))?;
        for i in 0..args.recovery_records {
            let _ = wal.append(&pool[(i % pool.len() as u64) as usize])?;
        }
        wal.close()?;
    }
    let bytes = dir_bytes(&dir)?;
    let t0 = Instant::now();
    let (state, report) = Recovery::open(&dir, args.dim, 1)?;
    let checked = t0.elapsed();
    let mut n = 0u64;
    for item in state.shards[0].records() {
        let _ = item?;
        n += 1;
    }
    let total = t0.elapsed();
    println!(
        "recovery: {n} records ({:.0} MiB in {} segments): check {:.2} s + replay {:.2} s = {:.2} s ({:.0} records/s)",
        bytes as f64 / (1 << 20) as f64,
        report.shards[0].segments,
        checked.as_secs_f64(),
        (total - checked).as_secs_f64(),
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64()
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
