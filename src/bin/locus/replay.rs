//! `locus replay DATA --out RESULT.json --answers ANSWERS.jsonl [--limit N]`: replays a
//! `../shared/graphpeers` trace through the engine, one op at a time, closed loop, and writes
//! the result JSON and answers file of that harness's README ("Adding a runner").
//!
//! Everything goes through one [`Engine`] (automatic associations off, so the engine's graph
//! is exactly the trace's directed graph):
//!
//! - Load (timed as `load_s`): every base vector observed with its node id (threads in
//!   parallel), every base edge `src → dst` with [`Engine::associate_directed_many`] (8192 a call), then a wait until
//!   the index has absorbed the vectors.
//! - `store`: one `observe` of the new node with its edges as directed links
//!   ([`Episode::with_link_to`] for `id → dst`, [`Episode::with_link_from`] for `src → id`).
//! - `recall`: [`Engine::recall`].
//! - `spread`: [`Engine::spread`] from the seeds at activation 1 (propagation threshold 0, no
//!   fan-out cap, the op's threshold as the result threshold: the exact walk sum).
//! - `complete`: [`Engine::recall`] for H, then a one-hop [`Engine::spread`] seeded with each
//!   hit's similarity, seeds included: a node's total is then `[v ∈ H]·sim(v) + Σ_{h ∈ H, h→v}
//!   sim(h)·w(h,v)·decay`, the graphpeers README's score, and the spread's top-k (activation
//!   descending, ties by id) is the answer. A hit with similarity <= 0 cannot seed a spread; it
//!   is kept with its similarity and its out-edges are left out (counted in
//!   `replay_detail.complete_nonpositive_hits`; 0 in the generated workloads, whose top-k
//!   similarities are positive).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use locus::engine::{AssociationParams, Cue, Engine, EngineError, Episode, EpisodeId, IndexParams};
use locus::loadtest::graphpeers::{TraceOp, Workload, percentile_linear};
use locus::spread::{Decay, SpreadParams};
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
    #[arg(long, default_value_t = 0, value_parser = crate::flags::usize_in(0, crate::flags::MAX_ITEMS))]
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

fn top_k(scores: BTreeMap<u64, f64>, k: usize) -> Vec<u64> {
    let mut v: Vec<(u64, f64)> = scores.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.into_iter().take(k).map(|(id, _)| id).collect()
}

type BoxError = Box<dyn std::error::Error>;

/// Budget of one spread: generous, so that no hop is cut short (a cut spread is counted).
const SPREAD_BUDGET: Duration = Duration::from_secs(10);

/// The answer of a `complete` op (see the module docs), and how many hits had similarity <= 0.
fn complete(engine: &Engine, q: &[f32], k: usize, decay: f64) -> Result<(Vec<u64>, u64, bool), BoxError> {
    let hits = retrying(|| engine.recall(&Cue::new(q.to_vec(), k)))?.hits;
    let seeds: Vec<(EpisodeId, f32)> = hits
        .iter()
        .filter(|h| h.similarity > 0.0)
        .map(|h| (h.id, h.similarity))
        .collect();
    let mut score: BTreeMap<u64, f64> = BTreeMap::new();
    let mut partial = false;
    if !seeds.is_empty() {
        let params = SpreadParams {
            max_hops: 1,
            decay: Decay::Exponential { factor: decay },
            threshold: 0.0,
            result_threshold: 0.0,
            fan_out: 0,
            k,
            include_seeds: true,
            budget: Some(SPREAD_BUDGET),
        };
        let r = retrying(|| engine.spread(&seeds, &params))?;
        partial = r.partial;
        score.extend(r.hits.iter().map(|h| (h.id, h.activation)));
    }
    let nonpositive = hits.iter().filter(|h| h.similarity <= 0.0).count() as u64;
    for h in hits.iter().filter(|h| h.similarity <= 0.0) {
        score.insert(h.id.0, f64::from(h.similarity));
    }
    Ok((top_k(score, k), nonpositive, partial))
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

/// Runs the subcommand: checks the outputs, opens the engine, loads the base, replays the ops,
/// then writes the result and the answers.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // The outputs are checked before the (long) load and replay.
    crate::flags::check_out_file("--out", &args.out)?;
    crate::flags::check_out_file("--answers", &args.answers)?;
    let w = Workload::load(&args.data)?;
    let decay = w.meta.get("decay").and_then(|v| v.as_f64()).unwrap_or(0.5);
    let index = IndexParams {
        m: 16,
        ef_construction: 200,
        ef_search: 64,
        ..IndexParams::default()
    };
    let mut result = json!({
        "system": "locus",
        "version": env!("CARGO_PKG_VERSION"),
        "dataset": dataset(&w),
        "machine": {"nproc": std::thread::available_parallelism().map_or(0, |p| p.get())},
        "loadavg": {"before_load": loadavg()},
    });
    let t_load = Instant::now();
    let engine = open_engine(&w, &index)?;
    let load = load_base(&engine, &w)?;
    let t_index = Instant::now();
    let indexed = engine.wait_indexed(Duration::from_secs(3600));
    result["load_s"] = json!((t_load.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
    result["load_detail"] = json!({
        "observe_s": load.observe_s, "graph_s": load.edges_s,
        "index_wait_s": t_index.elapsed().as_secs_f64(), "indexed": indexed,
        "threads": load.threads,
    });
    result["loadavg"]["before_replay"] = json!(loadavg());

    let ops = if args.limit > 0 {
        &w.ops[..args.limit.min(w.ops.len())]
    } else {
        &w.ops[..]
    };
    let t_replay = Instant::now();
    let mut replayed = replay_ops(&engine, &w, ops, decay)?;
    let replay_s = t_replay.elapsed().as_secs_f64();
    result["loadavg"]["after_replay"] = json!(loadavg());
    result["replayed_ops"] = json!(ops.len());
    result["replay_s"] = json!((replay_s * 1000.0).round() / 1000.0);
    result["ops_per_s"] = json!(((ops.len() as f64 / replay_s) * 10.0).round() / 10.0);
    result["per_op"] = replayed
        .lat
        .iter_mut()
        .map(|(k, v)| (k.to_string(), summary(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    if !replayed.errors.is_empty() {
        result["errors"] = replayed
            .errors
            .iter()
            .map(|(k, (c, first))| (k.to_string(), json!({"count": c, "first": first})))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    result["integrity"] = integrity(&engine, &w, ops);
    result["replay_detail"] = json!({
        "spreads_cut_by_budget": replayed.cut, "complete_nonpositive_hits": replayed.nonpositive_hits,
    });
    result["params"] = params(&engine, &index);
    write_outputs(&args, &result, &replayed.answers)?;
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

/// The workload's `meta.json` fields the result repeats.
fn dataset(w: &Workload) -> serde_json::Map<String, serde_json::Value> {
    ["n", "dim", "ops", "seed_hex", "mix", "m", "final_nodes"]
        .iter()
        .map(|k| {
            (
                k.to_string(),
                w.meta.get(*k).cloned().unwrap_or(serde_json::Value::Null),
            )
        })
        .collect()
}

/// The engine for the trace: automatic associations off, so its graph is the trace's graph
/// and nothing else.
fn open_engine(w: &Workload, index: &IndexParams) -> Result<Engine, EngineError> {
    let (dim, n) = (w.base.cols, w.base.rows);
    let final_nodes = w.meta.get("final_nodes").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
    let defaults = AssociationParams::default();
    Engine::builder()
        .dimension(dim)
        .index(index.clone())
        .associations(AssociationParams {
            stream_weight: 0.0,
            similar: 0,
            max_episodes_per_shard: defaults
                .max_episodes_per_shard
                .max(final_nodes.max(n + w.ops.len())),
            ..defaults
        })
        .open()
}

/// How the base was loaded.
struct Loaded {
    observe_s: f64,
    edges_s: f64,
    threads: usize,
}

/// Observes every base vector with its row as id (threads in parallel), then adds every base
/// edge, 8192 a call.
fn load_base(engine: &Engine, w: &Workload) -> Result<Loaded, BoxError> {
    let n = w.base.rows;
    let t_load = Instant::now();
    let threads = std::thread::available_parallelism()
        .map_or(2, |p| p.get())
        .clamp(1, 8);
    let chunk = n.div_ceil(threads).max(1);
    std::thread::scope(|s| -> Result<(), EngineError> {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (engine, w) = (engine, w);
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
    let mut batch = Vec::with_capacity(8192);
    for (e, wt) in w.edges.data.chunks_exact(2).zip(&w.weights.data) {
        let (src, dst) = (u64::try_from(e[0])?, u64::try_from(e[1])?);
        batch.push((EpisodeId(src), EpisodeId(dst), *wt));
        if batch.len() == 8192 {
            engine.associate_directed_many(&batch)?;
            batch.clear();
        }
    }
    engine.associate_directed_many(&batch)?;
    let edges_s = t_edges.elapsed().as_secs_f64();
    Ok(Loaded {
        observe_s,
        edges_s,
        threads,
    })
}

/// What the replay of the ops gave.
struct Replayed {
    lat: BTreeMap<&'static str, Vec<u64>>,
    answers: Vec<serde_json::Value>,
    errors: BTreeMap<&'static str, (u64, String)>,
    cut: u64,
    nonpositive_hits: u64,
}

/// Replays `ops` in order, one at a time, timing each.
fn replay_ops(engine: &Engine, w: &Workload, ops: &[TraceOp], decay: f64) -> Result<Replayed, BoxError> {
    let mut lat: BTreeMap<&'static str, Vec<u64>> = ["store", "recall", "spread", "complete"]
        .iter()
        .map(|k| (*k, Vec::new()))
        .collect();
    let mut answers = Vec::new();
    let mut errors: BTreeMap<&'static str, (u64, String)> = BTreeMap::new();
    let (mut cut, mut nonpositive_hits) = (0u64, 0u64);
    for op in ops {
        let t = Instant::now();
        let outcome: Result<Option<(u64, Vec<u64>)>, BoxError> = match op {
            TraceOp::Store { id, vec, edges, .. } => (|| -> Result<Option<(u64, Vec<u64>)>, BoxError> {
                let v = w
                    .store
                    .row(*vec)
                    .ok_or(format!("store vector {vec} out of range"))?;
                let mut ep = Episode::new(v.to_vec()).with_id(*id);
                for &(src, dst, wt) in edges {
                    ep = match (src == *id, dst == *id) {
                        (true, false) => ep.with_link_to(dst, wt as f32),
                        (false, true) => ep.with_link_from(src, wt as f32),
                        _ => {
                            return Err(format!(
                                "store {id}: edge {src} → {dst} does not join the new node to another"
                            )
                            .into());
                        }
                    };
                }
                retrying(|| engine.observe(ep.clone()))?;
                Ok(None)
            })(),
            TraceOp::Recall { i, q, k } => {
                let v = w.queries.row(*q).unwrap_or(&[]).to_vec();
                retrying(|| engine.recall(&Cue::new(v.clone(), *k)))
                    .map(|r| Some((*i, r.hits.iter().map(|h| h.id.0).collect())))
                    .map_err(Into::into)
            }
            TraceOp::Spread {
                i,
                seeds,
                hops,
                decay,
                threshold,
                k,
            } => {
                let params = SpreadParams {
                    max_hops: *hops,
                    decay: Decay::Exponential { factor: *decay },
                    threshold: 0.0,
                    result_threshold: *threshold,
                    fan_out: 0,
                    k: *k,
                    include_seeds: false,
                    budget: Some(SPREAD_BUDGET),
                };
                let seeds: Vec<(EpisodeId, f32)> = seeds.iter().map(|&s| (EpisodeId(s), 1.0)).collect();
                retrying(|| engine.spread(&seeds, &params))
                    .map(|r| {
                        cut += u64::from(r.partial);
                        Some((*i, r.hits.iter().map(|h| h.id).collect()))
                    })
                    .map_err(Into::into)
            }
            TraceOp::Complete { i, q, k } => complete(engine, w.queries.row(*q).unwrap_or(&[]), *k, decay)
                .map(|(ids, nonpositive, partial)| {
                    nonpositive_hits += nonpositive;
                    cut += u64::from(partial);
                    Some((*i, ids))
                }),
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
                if entry.0 >= 50 {
                    return Err(format!("more than 50 {} ops failed; first: {}", op.kind(), entry.1).into());
                }
                entry.0 += 1;
            }
        }
    }
    Ok(Replayed {
        lat,
        answers,
        errors,
        cut,
        nonpositive_hits,
    })
}

/// The engine's node and edge counts against the trace's.
fn integrity(engine: &Engine, w: &Workload, ops: &[TraceOp]) -> serde_json::Value {
    let n = w.base.rows;
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
    let stats = engine.stats();
    json!({
        "nodes": stats.episodes, "edges": stats.edges,
        "expected_nodes": exp_nodes, "expected_edges": exp_edges,
        "ok": stats.episodes == exp_nodes && stats.edges == exp_edges,
        "degradations": engine.degradations(),
    })
}

/// The parameters the result records.
fn params(engine: &Engine, index: &IndexParams) -> serde_json::Value {
    json!({
        "m": index.m, "ef_construction": index.ef_construction, "ef_search": index.ef_search,
        "quantization": format!("{:?}", index.quantization),
        "shards": engine.shard_count(), "kernels": engine.kernels(),
        "vectors": "locus::engine::Engine::observe (id = row), Engine::recall",
        "graph": "in the engine: base edges by Engine::associate_directed_many, store edges as directed links of the observe (with_link_to / with_link_from); automatic associations off",
        "spread": "Engine::spread from the seeds at 1.0 on the shards' workers, propagation threshold 0, no fan-out cap, result threshold = the op's",
        "complete": "Engine::recall top-k, then a one-hop Engine::spread seeded with the hits' similarities, seeds included (= the README's score)",
    })
}

/// Writes the result JSON and the answers (one JSON line each).
fn write_outputs(
    args: &Args,
    result: &serde_json::Value,
    answers: &[serde_json::Value],
) -> Result<(), BoxError> {
    std::fs::write(&args.out, serde_json::to_string_pretty(result)?)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(&args.answers)?);
    for a in answers {
        writeln!(f, "{a}")?;
    }
    f.flush()?;
    Ok(())
}
