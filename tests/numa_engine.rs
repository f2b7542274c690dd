//! The engine on a multi-node machine (run inside the emulated one by `scripts/vm-tests.sh`; on a
//! one-node machine the test prints `skipped: <reason>`).
//!
//! WARNING: this binary pins threads (the engine's workers). It runs as its own process so that
//! no other test's threads are affected.
//!
//! Checks placement facts (timings under TCG mean nothing): one shard per node with CPUs; at
//! least 99 % of each shard's present pages (episode rows and index regions) on its memory node,
//! read with `move_pages`; and recall results identical to a one-shard engine.

mod vm_support;

use std::time::Duration;

use locus::engine::{
    AdmissionLimits, AssociationParams, Cue, Engine, Episode, IndexParams, ShardCount, SpreadParams,
};
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

fn engine(shards: Option<usize>) -> Engine {
    let mut b = Engine::builder()
        .dimension(64)
        .index(IndexParams {
            segment_capacity: 2048,
            ef_construction: 40,
            ..IndexParams::default()
        })
        .associations(AssociationParams {
            similar: 0,
            max_episodes_per_shard: 1 << 16,
            ..AssociationParams::default()
        })
        // Software emulation is slow: these checks are about answers and placement, not latency.
        .admission(AdmissionLimits {
            recall_deadline: Duration::from_secs(300),
            observe_deadline: Duration::from_secs(300),
            ..AdmissionLimits::default()
        });
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
    }
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
