//! The engine on a multi-node machine (run inside the emulated one by `scripts/vm-tests.sh`; on a
//! one-node machine the test prints `skipped: <reason>`).
//!
//! WARNING: this binary pins threads (the engine's workers). It runs as its own process so that
//! no other test's threads are affected.
//!
//! Checks placement facts (timings under TCG mean nothing): one shard per node with CPUs; at
//! least 99 % of each shard's present pages (episode rows and index regions) on its memory node,
//! read with `move_pages`; recall, spread and completion results identical to a one-shard engine;
//! and cross-node traffic only as counted messages (printed per shard and kind; every
//! observation's edges for other shards arrive as `edges` messages, and a debug build panics on
//! any graph write by a thread not running the owning shard's task).

mod engine_support;
mod vm_support;

use std::time::Duration;

use engine_support::emulated;
use locus::engine::{Cue, Engine, EngineMetrics, Episode, EpisodeId, MessageKind, ShardCount, SpreadParams};
use locus::topology::{PlacementPlan, PlanOptions, Topology};
use vm_support::require_nodes;

fn vector(state: &mut u64, dim: usize) -> Vec<f32> {
    (0..dim)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// Total messages of `kind`, all shards.
fn total(m: &EngineMetrics, kind: MessageKind) -> u64 {
    m.shards.iter().map(|s| s.messages[&kind]).sum()
}

fn engine(shards: Option<usize>) -> Engine {
    let mut b = emulated();
    if let Some(n) = shards {
        b = b.shards(ShardCount::Exactly(n));
    }
    b.open().expect("engine")
}

#[test]
fn one_shard_per_node_with_its_pages_at_home_and_one_shard_answers() {
    if !require_nodes(
        "one_shard_per_node_with_its_pages_at_home_and_one_shard_answers",
        2,
    ) {
        return;
    }
    let plan =
        PlacementPlan::new(&Topology::discover().expect("topology"), &PlanOptions::default()).expect("plan");
    let nodes = plan.nodes.iter().filter(|n| !n.workers.is_empty()).count();
    let many = engine(None);
    let one = engine(Some(1));
    assert_eq!(many.shard_count(), nodes, "one shard per node with CPUs");
    assert!(
        many.degradations().iter().all(|d| !d.starts_with("exec:")),
        "{:?}",
        many.degradations()
    );
    many.set_absorption(false);
    one.set_absorption(false);
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for i in 0..1500u64 {
        let v = vector(&mut state, 64);
        let ep = |v: Vec<f32>| {
            let mut e = Episode::new(v).with_id(i).in_stream(format!("s{}", i % 7));
            if i >= 20 && i % 4 == 0 {
                e = e.with_link(i - 20, 0.7);
            }
            e
        };
        many.observe(ep(v.clone())).expect("observe");
        one.observe(ep(v)).expect("observe");
    }
    // Exact recall (append buffers) with and without spreading: identical answers.
    let spread = SpreadParams {
        threshold: 0.0,
        ..SpreadParams::default()
    };
    for _ in 0..10 {
        let q = vector(&mut state, 64);
        for cue in [
            Cue::new(q.clone(), 10),
            Cue::new(q.clone(), 10).with_spread(spread.clone()),
        ] {
            let a = many.recall(&cue).expect("recall");
            let b = one.recall(&cue).expect("recall");
            assert!(!a.partial && !b.partial);
            assert_eq!(
                a.hits.iter().map(|h| h.id).collect::<Vec<_>>(),
                b.hits.iter().map(|h| h.id).collect::<Vec<_>>()
            );
        }
        // Completion from half the dimensions, and a spread from given seeds: the same answers.
        let mask: Vec<bool> = (0..64).map(|d| d % 2 == 0).collect();
        let (ca, cb) = (
            many.complete(&q, &mask, 3).expect("complete"),
            one.complete(&q, &mask, 3).expect("complete"),
        );
        assert_eq!(
            ca.supporting.iter().map(|s| s.0).collect::<Vec<_>>(),
            cb.supporting.iter().map(|s| s.0).collect::<Vec<_>>()
        );
        let seeds = [(ca.supporting[0].0, 1.0)];
        let (sa, sb) = (
            many.spread(&seeds, &spread).expect("spread"),
            one.spread(&seeds, &spread).expect("spread"),
        );
        assert_eq!(
            sa.hits.iter().map(|h| (h.id, h.activation)).collect::<Vec<_>>(),
            sb.hits.iter().map(|h| (h.id, h.activation)).collect::<Vec<_>>()
        );
    }
    // Cross-node traffic only as counted messages.
    many.associate(EpisodeId(3), EpisodeId(4), 0.5)
        .expect("associate");
    let m = many.metrics_snapshot();
    for s in &m.shards {
        let kinds: Vec<String> = s
            .messages
            .iter()
            .map(|(k, n)| format!("{}={n}", k.as_str()))
            .collect();
        eprintln!("shard {} node {}: messages {}", s.shard, s.node, kinds.join(" "));
        let here = (0..1500u64)
            .filter(|&i| many.shard_of(EpisodeId(i)) == s.shard)
            .count() as u64;
        assert_eq!(s.messages[&MessageKind::Observe], here, "shard {}", s.shard);
        assert_eq!(s.edges_lost, 0);
        assert_eq!(
            s.tasks_off_node, 0,
            "shard {}: tasks run on another node",
            s.shard
        );
    }
    // Streams and links cross shards: their reverse edges travelled as messages (none on the
    // one-shard engine, where every edge is local).
    assert!(total(&m, MessageKind::Edges) > 0);
    assert_eq!(total(&one.metrics_snapshot(), MessageKind::Edges), 0);
    assert_eq!(total(&m, MessageKind::Search), 30 * nodes as u64);
    assert!(
        total(&m, MessageKind::Hop) > 0
            && total(&m, MessageKind::Score) > 0
            && total(&m, MessageKind::Rows) > 0
    );
    assert_eq!(many.stats().edges, one.stats().edges + 2);
    assert!(
        many.degradations()
            .iter()
            .all(|d| !d.contains("associations lost")),
        "{:?}",
        many.degradations()
    );
    // Index everything, then check where every shard's pages are.
    many.set_absorption(true);
    assert!(many.wait_indexed(Duration::from_secs(1200)), "indexing finished");
    for p in many.placement(0) {
        let frac = p.home_fraction().expect("pages present");
        eprintln!(
            "shard {} node {} memory node {}: {} of {} pages at home {:?}",
            p.shard, p.node, p.memory_node, p.pages_on_home, p.pages_present, p.per_node
        );
        assert!(p.error.is_none(), "{:?}", p.error);
        assert!(
            frac >= 0.99,
            "shard {}: {:.4} of its pages on node {}",
            p.shard,
            frac,
            p.memory_node
        );
    }
    let st = many.stats();
    assert_eq!(st.episodes, 1500);
    assert_eq!(st.segments, nodes);
}
