//! `locus bench-index`: builds a Locus HNSW index from texmex files and measures it the way the
//! peer benchmark (`peer_bench.py --extra`) measures hnswlib, usearch and faiss: build time on
//! `--threads` threads, batch QPS (all queries in one call on `--threads` threads, repeated until
//! ≥ 3 runs and ≥ `--min-batch-s`, or 50 runs; median), single-thread latency (one call per
//! query), peak RSS (VmHWM). It writes the ids found per ef to `DATA/NAME.ef<EF>.ivecs` and
//! prints the result as one JSON object on the last stdout line.

use std::path::{Path, PathBuf};
use std::time::Instant;

use locus::index::{HnswConfig, HnswIndex, Kernels, Metric, Quantization};

use crate::flags;

/// Most neighbours per query.
const MAX_K: u64 = 10_000;

/// Arguments of `locus bench-index` (the `--extra` protocol of the peer benchmark).
#[derive(clap::Args)]
pub struct Args {
    /// Folder holding base.fvecs, query.fvecs and groundtruth.ivecs.
    #[arg(long)]
    data: PathBuf,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10, value_parser = flags::usize_in(1, MAX_K))]
    k: usize,
    /// ef_search values, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256", value_parser = flags::usize_in(1, locus::loadtest::scenario::MAX_EF as u64))]
    efs: Vec<usize>,
    /// HNSW M (links per node on upper levels; 2·M on level 0).
    #[arg(long, default_value_t = 16, value_parser = flags::usize_in(2, 255))]
    m: usize,
    /// ef of the construction walk.
    #[arg(long, default_value_t = 200, value_parser = flags::usize_in(1, locus::loadtest::scenario::MAX_EF as u64))]
    ef_construction: usize,
    /// Threads for the build and the batch searches.
    #[arg(long, default_value_t = 2, value_parser = flags::usize_in(1, flags::MAX_THREADS))]
    threads: usize,
    /// Name of the result files (`NAME.ef<EF>.ivecs`).
    #[arg(long, default_value = "locus")]
    name: String,
    /// `int8` (walk on int8 vectors, re-rank in f32) or `none` (f32 throughout).
    #[arg(long, default_value = "int8")]
    quantization: String,
    /// Distance kernels to use (`scalar`, `avx2`, `avx512`, `neon`); default: the best detected.
    #[arg(long)]
    kernels: Option<String>,
    /// Minimum seconds of batch repetitions per ef.
    #[arg(long, default_value_t = 1.0, value_parser = flags::parse_seconds)]
    min_batch_s: f64,
    /// Seed of the level draw (decimal or hex, `0x2A`).
    #[arg(long, default_value = "42", value_parser = flags::parse_seed)]
    seed: u64,
    /// Development aid: load the index from this snapshot if it exists (build time is then
    /// the load time and is reported as such), else build and save it there.
    #[arg(long)]
    snapshot: Option<PathBuf>,
}

type BoxError = Box<dyn std::error::Error>;

/// Reads a texmex `.fvecs`/`.ivecs` file: rows of an i32 LE dimension then that many 4-byte
/// LE values. Returns the raw 4-byte words, row after row, and the dimension.
fn read_vecs(path: &Path) -> Result<(Vec<[u8; 4]>, usize), BoxError> {
    // A regular file no larger than this machine's memory: a device or a FIFO is refused,
    // not read without end.
    let limit = flags::machine_memory().unwrap_or(u64::MAX);
    let bytes =
        locus::bounded_read::read_regular(path, limit).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut words = Vec::with_capacity(bytes.len() / 4);
    let mut dim = None;
    let mut pos = 0;
    while pos < bytes.len() {
        let head = bytes
            .get(pos..pos + 4)
            .ok_or_else(|| format!("{}: truncated row header", path.display()))?;
        let d = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let d = usize::try_from(d).map_err(|_| format!("{}: negative dimension {d}", path.display()))?;
        if *dim.get_or_insert(d) != d {
            return Err(format!(
                "{}: rows of dimension {} and {d}",
                path.display(),
                dim.unwrap_or(0)
            )
            .into());
        }
        let row = bytes
            .get(pos + 4..pos + 4 + 4 * d)
            .ok_or_else(|| format!("{}: truncated row", path.display()))?;
        words.extend(row.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]));
        pos += 4 + 4 * d;
    }
    Ok((words, dim.unwrap_or(0)))
}

pub(crate) fn read_fvecs(path: &Path) -> Result<(Vec<f32>, usize), BoxError> {
    let (w, d) = read_vecs(path)?;
    Ok((w.into_iter().map(f32::from_le_bytes).collect(), d))
}

fn read_ivecs(path: &Path) -> Result<(Vec<i32>, usize), BoxError> {
    let (w, d) = read_vecs(path)?;
    Ok((w.into_iter().map(i32::from_le_bytes).collect(), d))
}

fn write_ivecs(path: &Path, rows: &[Vec<u32>], k: usize) -> Result<(), BoxError> {
    let mut out = Vec::with_capacity(rows.len() * (k + 1) * 4);
    for r in rows {
        out.extend_from_slice(&(k as i32).to_le_bytes());
        for j in 0..k {
            // Fewer than k results (cannot happen with k ≤ n): pad with -1, as faiss does.
            let id = r.get(j).map_or(-1, |&x| x as i32);
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// Reads `VmRSS` or `VmHWM` of this process in MB (Linux `/proc`); `None` elsewhere.
fn proc_status_mb(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Percentile with linear interpolation between closest ranks (numpy's default).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(v, 50.0)
}

fn recall(found: &[Vec<u32>], gt: &[i32], gt_k: usize, k: usize) -> f64 {
    let mut hits = 0usize;
    for (i, f) in found.iter().enumerate() {
        let truth = &gt[i * gt_k..i * gt_k + k.min(gt_k)];
        hits += f
            .iter()
            .take(k)
            .filter(|&&id| truth.contains(&(id as i32)))
            .count();
    }
    hits as f64 / (found.len() * k).max(1) as f64
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Runs the subcommand.
// tidy: long-fn — a CLI body, one step after another
pub fn run(args: Args) -> Result<(), BoxError> {
    let quantization = match args.quantization.as_str() {
        "int8" => Quantization::Int8,
        "none" => Quantization::None,
        q => return Err(format!("--quantization {q}: expected int8 or none").into()),
    };
    let kernels = match &args.kernels {
        Some(name) => Kernels::by_name(name)?,
        None => *Kernels::detect(),
    };
    let (base, dim) = read_fvecs(&args.data.join("base.fvecs"))?;
    let (queries, qdim) = read_fvecs(&args.data.join("query.fvecs"))?;
    let (gt, gt_k) = read_ivecs(&args.data.join("groundtruth.ivecs"))?;
    if dim == 0 || qdim != dim {
        return Err(format!("base dimension {dim}, query dimension {qdim}").into());
    }
    let (n, nq) = (base.len() / dim, queries.len() / dim);
    if gt_k == 0 || gt.len() / gt_k != nq {
        return Err(format!("groundtruth has {} rows, {nq} queries", gt.len() / gt_k.max(1)).into());
    }
    if gt_k < args.k {
        return Err(format!(
            "--k {}: groundtruth.ivecs holds only {gt_k} neighbours per query (use --k {gt_k} or less)",
            args.k
        )
        .into());
    }
    if let Some(pos) = gt
        .iter()
        .position(|&id| usize::try_from(id).map_or(true, |id| id >= n))
    {
        return Err(format!(
            "groundtruth.ivecs: query {} names id {}, not in the base's 0..{n}",
            pos / gt_k,
            gt[pos]
        )
        .into());
    }
    let rss_loaded = proc_status_mb("VmRSS:").unwrap_or(0.0);

    let config = HnswConfig {
        m: args.m,
        ef_construction: args.ef_construction,
        seed: args.seed,
        quantization,
        ..HnswConfig::new(dim, n, Metric::InnerProduct)
    };
    let t0 = Instant::now();
    let index = match &args.snapshot {
        Some(path) if path.exists() => {
            eprintln!("loading {} (build figures below are the load)", path.display());
            HnswIndex::load(path)?
        }
        _ => {
            let index = HnswIndex::with_kernels(config, kernels)?;
            index.insert_batch(&base, args.threads)?;
            index
        }
    };
    let build_s = t0.elapsed().as_secs_f64();
    if let Some(path) = args.snapshot.as_ref().filter(|p| !p.exists()) {
        index.save(path)?;
    }
    let rss_built = proc_status_mb("VmRSS:").unwrap_or(0.0);
    eprintln!(
        "build {build_s:.2}s, {:.0} inserts/s, kernels {}",
        n as f64 / build_s,
        index.kernel_name()
    );

    let max_ef = args.efs.iter().copied().max().unwrap_or(args.k);
    let warm = &queries[..nq.min(200) * dim];
    index.search_batch(warm, args.k, max_ef, args.threads)?;

    let mut rows = Vec::new();
    for &ef in &args.efs {
        let mut times = Vec::new();
        let start = Instant::now();
        let found = loop {
            let t = Instant::now();
            let found = index.search_batch(&queries, args.k, ef, args.threads)?;
            times.push(t.elapsed().as_secs_f64());
            if (times.len() >= 3 && start.elapsed().as_secs_f64() >= args.min_batch_s) || times.len() >= 50 {
                break found;
            }
        };
        let reps = times.len();
        let best = times.iter().copied().fold(f64::INFINITY, f64::min);
        let med = median(&mut times);
        let ids: Vec<Vec<u32>> = found.iter().map(|r| r.iter().map(|nb| nb.id).collect()).collect();
        write_ivecs(
            &args.data.join(format!("{}.ef{ef}.ivecs", args.name)),
            &ids,
            args.k,
        )?;
        let rec = recall(&ids, &gt, gt_k, args.k);

        let mut lat_us = Vec::with_capacity(nq);
        let mut single = Vec::with_capacity(nq);
        for q in queries.chunks_exact(dim) {
            let t = Instant::now();
            let r = index.search(q, args.k, ef)?;
            lat_us.push(t.elapsed().as_nanos() as f64 / 1000.0);
            single.push(r.iter().map(|nb| nb.id).collect::<Vec<u32>>());
        }
        let mean = lat_us.iter().sum::<f64>() / nq.max(1) as f64;
        lat_us.sort_by(f64::total_cmp);
        let row = serde_json::json!({
            "ef": ef,
            "recall_at_k": round(rec, 4),
            "recall_at_k_single": round(recall(&single, &gt, gt_k, args.k), 4),
            "batch_qps": round(nq as f64 / med, 1),
            "batch_reps": reps,
            "batch_best_qps": round(nq as f64 / best, 1),
            "p50_us": round(percentile(&lat_us, 50.0), 1),
            "p99_us": round(percentile(&lat_us, 99.0), 1),
            "mean_us": round(mean, 1),
            "single_thread_qps": round(1e6 / mean, 1),
        });
        eprintln!(
            "ef={ef:<4} recall={rec:.4} qps={:.0} p50={:.1}us p99={:.1}us",
            nq as f64 / med,
            percentile(&lat_us, 50.0),
            percentile(&lat_us, 99.0)
        );
        rows.push(row);
    }
    let peak = proc_status_mb("VmHWM:");
    if peak.is_none() {
        eprintln!("warning: no /proc/self/status here; peak_rss_mb reported as 0");
    }
    let out = serde_json::json!({
        "build_s": round(build_s, 3),
        "inserts_per_s": round(n as f64 / build_s, 1),
        "peak_rss_mb": round(peak.unwrap_or(0.0), 1),
        "index_rss_delta_mb": round(rss_built - rss_loaded, 1),
        "index_memory_mb": round(index.memory_bytes() as f64 / (1 << 20) as f64, 1),
        "search": rows,
        "params": {
            "M": args.m, "M0": 2 * args.m, "ef_construction": args.ef_construction,
            "threads": args.threads, "quantization": args.quantization, "kernels": index.kernel_name(),
            "metric": "ip",
        },
    });
    println!("{out}");
    Ok(())
}
