//! A durable engine recovered on a multi-node machine keeps its placement (run inside the
//! emulated one by `scripts/vm-tests.sh`; on a one-node machine the test prints
//! `skipped: <reason>`).
//!
//! WARNING: this binary pins threads (the engine's workers). It runs as its own process so that
//! no other test's threads are affected.
//!
//! An engine opened with `open_in` stores episodes, is shut down, and is reopened from its
//! directory: recovery replays every episode through each shard's own pinned workers, so after
//! recovery (and the index rebuild) at least 99 % of each shard's present pages (rows, index
//! regions, association graph) are on its memory node again, read with `move_pages`.

mod vm_support;

use std::time::Duration;

use locus::durability::SyncPolicy;
use locus::engine::{
    AdmissionLimits, AssociationParams, Cue, DurabilityOptions, Engine, EngineBuilder, Episode, EpisodeId,
    IndexParams,
};
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

fn builder() -> EngineBuilder {
    Engine::builder()
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
        // Software emulation is slow: these checks are about placement, not latency.
        .admission(AdmissionLimits {
            recall_deadline: Duration::from_secs(300),
            observe_deadline: Duration::from_secs(300),
            ..AdmissionLimits::default()
        })
        .durability(DurabilityOptions {
            policy: SyncPolicy::EveryBatch,
            snapshot_every: None,
            ..DurabilityOptions::default()
        })
}

#[test]
fn recovered_shards_have_their_pages_at_home() {
    if !require_nodes("recovered_shards_have_their_pages_at_home", 2) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut kept = Vec::new();
    {
        let e = builder().open_in(dir.path()).expect("engine");
        assert!(e.shard_count() >= 2, "one shard per node");
        e.set_absorption(false);
        for i in 0..1500u64 {
            let v = vector(&mut state, 64);
            let mut ep = Episode::new(v.clone())
                .with_id(i)
                .in_stream(format!("s{}", i % 7));
            if i >= 20 && i % 4 == 0 {
                ep = ep.with_link(i - 20, 0.7);
            }
            e.observe(ep).expect("observe");
            if i % 100 == 0 {
                kept.push((i, v));
            }
        }
        e.snapshot().expect("snapshot");
        // A log tail after the snapshot too.
        for i in 1500..1700u64 {
            e.observe(Episode::new(vector(&mut state, 64)).with_id(i))
                .expect("observe");
        }
        e.shutdown();
    }
    let e = builder().open_in(dir.path()).expect("recovered engine");
    let report = e.recovery_report().expect("report").clone();
    eprintln!("recovery: {report:?}");
    assert_eq!(report.episodes, 1700);
    assert_eq!(e.len(), 1700);
    assert!(
        e.degradations().iter().all(|d| !d.starts_with("exec:")),
        "{:?}",
        e.degradations()
    );
    for (id, v) in &kept {
        let r = e.recall(&Cue::new(v.clone(), 1)).expect("recall");
        assert_eq!(r.hits[0].id, EpisodeId(*id));
    }
    assert!(e.wait_indexed(Duration::from_secs(1200)), "indexing finished");
    for p in e.placement(0) {
        let frac = p.home_fraction().expect("pages present");
        eprintln!(
            "recovered shard {} node {} memory node {}: {} of {} pages at home {:?}",
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
    e.shutdown();
}
