//! `locus replay DATA --out RESULT.json --answers ANSWERS.jsonl [--limit N]`: replays a
//! `../shared/graphpeers` trace through the engine, one op at a time, closed loop, and writes
//! the result JSON and answers file of that harness's README ("Adding a runner").
//!
//! - Load (timed as `load_s`): every base vector observed with its node id, then every base
//!   edge as an association; then wait until the index has absorbed everything.
//! - `store`: one `observe` carrying the new node's edges as links.
//! - `recall`: `Engine::recall` (k nearest).
//! - `spread` and `complete`: the engine has no spread-from-given-seeds call and stores its
//!   associations undirected (`associate` links both ways), while the trace's graph is directed.
//!   So these two are computed here from the engine's own data — `Engine::get` for each node's
//!   links, `Engine::recall` for complete's hits — and their answers differ from the directed
//!   exact answers wherever an edge's reverse direction contributes (score.py shows by how much).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use locus::engine::{AssociationParams, Cue, Engine, EngineError, Episode, EpisodeId, IndexParams};
use locus::loadtest::graphpeers::{TraceOp, Workload, percentile_linear};
use serde_json::json;

/// Arguments of `locus replay`.
#[derive(clap::Args)]
pub struct Args {
    /// The workload directory written by `gen_workload.py`.
    data: PathBuf,
    /// Result JSON to write.
    #[arg(long)]
    out: PathBuf,
    /// Answers file (JSON lines `{"i", "op", "ids"}`) to write.
    #[arg(long)]
    answers: PathBuf,
    /// Replay only the first N ops (0 = all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn retrying<T>(mut f: impl FnMut() -> Result<T, EngineError>) -> Result<T, EngineError> {
    loop {
        match f() {
            Err(EngineError::Overloaded { retry_after, .. }) => {
                std::thread::sleep(retry_after.clamp(Duration::from_micros(50), Duration::from_millis(50)));
            }
            other => return other,
        }
    }
}

/// Links of `id` as the engine stores them (memoised for one op).
fn links<'a>(engine: &Engine, memo: &'a mut HashMap<u64, Vec<(u64, f32)>>, id: u64) -> &'a [(u64, f32)] {
    memo.entry(id).or_insert_with(|| {
        engine
            .get(EpisodeId(id))
            .map(|r| r.links.iter().map(|(t, w)| (t.0, *w)).collect())
            .unwrap_or_default()
    })
}

fn top_k(scores: BTreeMap<u64, f64>, k: usize, keep: impl Fn(u64, f64) -> bool) -> Vec<u64> {
    let mut v: Vec<(u64, f64)> = scores.into_iter().filter(|&(id, s)| keep(id, s)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.into_iter().take(k).map(|(id, _)| id).collect()
}

fn spread(engine: &Engine, seeds: &[u64], hops: u32, decay: f64, threshold: f64, k: usize) -> Vec<u64> {
    let mut memo = HashMap::new();
    let mut frontier: BTreeMap<u64, f64> = seeds.iter().map(|&s| (s, 1.0)).collect();
    let mut total: BTreeMap<u64, f64> = BTreeMap::new();
    for _ in 0..hops {
        let mut next: BTreeMap<u64, f64> = BTreeMap::new();
        for (&id, &a) in &frontier {
            for &(t, w) in links(engine, &mut memo, id) {
                *next.entry(t).or_insert(0.0) += a * f64::from(w) * decay;
            }
        }
        for (&id, &a) in &next {
            *total.entry(id).or_insert(0.0) += a;
        }
        frontier = next;
    }
    top_k(total, k, |id, s| s >= threshold && !seeds.contains(&id))
}

fn complete(engine: &Engine, q: &[f32], k: usize, decay: f64) -> Result<Vec<u64>, EngineError> {
    let hits = retrying(|| engine.recall(&Cue::new(q.to_vec(), k)))?.hits;
    let mut memo = HashMap::new();
    let mut score: BTreeMap<u64, f64> = BTreeMap::new();
    for h in &hits {
        *score.entry(h.id.0).or_insert(0.0) += f64::from(h.similarity);
        for &(t, w) in links(engine, &mut memo, h.id.0) {
            *score.entry(t).or_insert(0.0) += f64::from(h.similarity) * f64::from(w) * decay;
        }
    }
    Ok(top_k(score, k, |_, _| true))
}

fn summary(ns: &mut [u64]) -> serde_json::Value {
    if ns.is_empty() {
        return json!({"count": 0});
    }
    ns.sort_unstable();
    let us: Vec<f64> = ns.iter().map(|&n| n as f64 / 1000.0).collect();
    let r = |x: f64| (x * 10.0).round() / 10.0;
    json!({
        "count": us.len(),
        "p50_us": r(percentile_linear(&us, 0.50)),
        "p95_us": r(percentile_linear(&us, 0.95)),
        "p99_us": r(percentile_linear(&us, 0.99)),
        "p999_us": r(percentile_linear(&us, 0.999)),
        "mean_us": r(us.iter().sum::<f64>() / us.len() as f64),
        "max_us": r(us[us.len() - 1]),
    })
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let w = Workload::load(&args.data)?;
    let dim = w.base.cols;
    let n = w.base.rows;
    let decay = w.meta.get("decay").and_then(|v| v.as_f64()).unwrap_or(0.5);
    let index = IndexParams {
        m: 16,
        ef_construction: 200,
        ef_search: 64,
        ..IndexParams::default()
    };
    let dataset: serde_json::Map<String, serde_json::Value> =
        ["n", "dim", "ops", "seed_hex", "mix", "m", "final_nodes"]
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    w.meta.get(*k).cloned().unwrap_or(serde_json::Value::Null),
                )
            })
            .collect();
    let mut result = json!({
        "system": "locus",
        "version": env!("CARGO_PKG_VERSION"),
        "dataset": dataset,
        "machine": {"nproc": std::thread::available_parallelism().map_or(0, |p| p.get())},
        "loadavg": {"before_load": loadavg()},
    });

    let t_load = Instant::now();
    let engine = Engine::builder()
        .dimension(dim)
        .index(index.clone())
        .associations(AssociationParams {
            stream_weight: 0.0,
            similar: 0,
            ..AssociationParams::default()
        })
        .open()?;
    let threads = std::thread::available_parallelism()
        .map_or(2, |p| p.get())
        .clamp(1, 8);
    let chunk = n.div_ceil(threads).max(1);
    std::thread::scope(|s| -> Result<(), EngineError> {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (engine, w) = (&engine, &w);
                s.spawn(move || -> Result<(), EngineError> {
                    for i in t * chunk..((t + 1) * chunk).min(n) {
                        let v = w.base.row(i).unwrap_or(&[]).to_vec();
                        retrying(|| engine.observe(Episode::new(v.clone()).with_id(i as u64)))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in hs {
            h.join().map_err(|_| EngineError::Closed)??;
        }
        Ok(())
    })?;
    let observe_s = t_load.elapsed().as_secs_f64();
    let t_edges = Instant::now();
    for (e, wt) in w.edges.data.chunks_exact(2).zip(&w.weights.data) {
        let (a, b) = (EpisodeId(e[0] as u64), EpisodeId(e[1] as u64));
        engine.associate(a, b, *wt)?;
    }
    let edges_s = t_edges.elapsed().as_secs_f64();
    let t_index = Instant::now();
    let indexed = engine.wait_indexed(Duration::from_secs(3600));
    result["load_s"] = json!((t_load.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
    result["load_detail"] = json!({
        "observe_s": observe_s, "edges_s": edges_s,
        "index_wait_s": t_index.elapsed().as_secs_f64(), "indexed": indexed,
        "threads": threads,
    });
    result["loadavg"]["before_replay"] = json!(loadavg());

    let ops = if args.limit > 0 {
        &w.ops[..args.limit.min(w.ops.len())]
    } else {
        &w.ops[..]
    };
    let mut lat: BTreeMap<&str, Vec<u64>> = ["store", "recall", "spread", "complete"]
        .iter()
        .map(|k| (*k, Vec::new()))
        .collect();
    let mut answers = Vec::new();
    let mut errors: BTreeMap<&str, (u64, String)> = BTreeMap::new();
    let t_replay = Instant::now();
    for op in ops {
        let t = Instant::now();
        let outcome: Result<Option<(u64, Vec<u64>)>, EngineError> = match op {
            TraceOp::Store { id, vec, edges, .. } => {
                let v = w.store.row(*vec).ok_or(EngineError::InvalidInput {
                    what: format!("store vector {vec} out of range"),
                })?;
                let mut ep = Episode::new(v.to_vec()).with_id(*id);
                for &(src, dst, wt) in edges {
                    ep = ep.with_link(if src == *id { dst } else { src }, wt as f32);
                }
                retrying(|| engine.observe(ep.clone())).map(|_| None)
            }
            TraceOp::Recall { i, q, k } => {
                let v = w.queries.row(*q).unwrap_or(&[]).to_vec();
                retrying(|| engine.recall(&Cue::new(v.clone(), *k)))
                    .map(|r| Some((*i, r.hits.iter().map(|h| h.id.0).collect())))
            }
            TraceOp::Spread {
                i,
                seeds,
                hops,
                decay,
                threshold,
                k,
            } => Ok(Some((*i, spread(&engine, seeds, *hops, *decay, *threshold, *k)))),
            TraceOp::Complete { i, q, k } => {
                complete(&engine, w.queries.row(*q).unwrap_or(&[]), *k, decay).map(|ids| Some((*i, ids)))
            }
        };
        let elapsed = t.elapsed().as_nanos() as u64;
        match outcome {
            Ok(ans) => {
                if let Some(v) = lat.get_mut(op.kind()) {
                    v.push(elapsed);
                }
                if let Some((i, ids)) = ans {
                    answers.push(json!({"i": i, "op": op.kind(), "ids": ids}));
                }
            }
            Err(e) => {
                let entry = errors.entry(op.kind()).or_insert((0, e.to_string()));
                entry.0 += 1;
            }
        }
    }
    let replay_s = t_replay.elapsed().as_secs_f64();
    result["loadavg"]["after_replay"] = json!(loadavg());
    result["replayed_ops"] = json!(ops.len());
    result["replay_s"] = json!((replay_s * 1000.0).round() / 1000.0);
    result["ops_per_s"] = json!(((ops.len() as f64 / replay_s) * 10.0).round() / 10.0);
    result["per_op"] = lat
        .iter_mut()
        .map(|(k, v)| (k.to_string(), summary(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    if !errors.is_empty() {
        result["errors"] = errors
            .iter()
            .map(|(k, (c, first))| (k.to_string(), json!({"count": c, "first": first})))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    let stores: Vec<&TraceOp> = ops
        .iter()
        .filter(|o| matches!(o, TraceOp::Store { .. }))
        .collect();
    let exp_nodes = n + stores.len();
    let exp_edges = w.edges.rows
        + stores
            .iter()
            .map(|o| match o {
                TraceOp::Store { edges, .. } => edges.len(),
                _ => 0,
            })
            .sum::<usize>();
    let directed: usize = engine.metrics_snapshot().shards.iter().map(|s| s.edges).sum();
    result["integrity"] = json!({
        "nodes": engine.len(), "edges": directed / 2,
        "expected_nodes": exp_nodes, "expected_edges": exp_edges,
        "ok": engine.len() == exp_nodes && directed / 2 == exp_edges,
        "note": "the engine's associations are undirected: edges = its directed link count / 2",
    });
    result["params"] = json!({
        "m": index.m, "ef_construction": index.ef_construction, "ef_search": index.ef_search,
        "quantization": format!("{:?}", index.quantization),
        "shards": engine.shard_count(), "kernels": engine.kernels(),
        "spread": "computed by the runner from Engine::get links (the engine has no seed spread and stores links undirected)",
        "complete": "Engine::recall top-k, then one hop over Engine::get links, score per the README",
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&result)?)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(&args.answers)?);
    for a in &answers {
        writeln!(f, "{a}")?;
    }
    f.flush()?;
    eprintln!(
        "locus replay: {} ops in {:.2} s ({:.0} ops/s), load {:.2} s; wrote {} and {}",
        ops.len(),
        replay_s,
        ops.len() as f64 / replay_s,
        result["load_s"].as_f64().unwrap_or(0.0),
        args.out.display(),
        args.answers.display()
    );
    Ok(())
}
