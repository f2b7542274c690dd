//! A durable engine recovered on a multi-node machine keeps its placement (run inside the
//! emulated one by `scripts/vm-tests.sh`; on a one-node machine the test prints
//! `skipped: <reason>`).
//!
//! WARNING: this binary pins threads (the engine's workers). It runs as its own process so that
//! no other test's threads are affected.
//!
//! A child process (this binary re-executed) opens an engine with `open_in`, stores episodes,
//! snapshots (index segments included), stores a log tail and exits; this process reopens the
//! directory: recovery loads the saved segments into each shard's node-bound regions and
//! replays the tail through each shard's own pinned workers, so after recovery (and the tail's
//! absorption) at least 99 % of each shard's present pages (rows, index regions, association
//! graph) are on its memory node again, read with `move_pages`. (The first engine runs in its own
//! process as a restarted service's would: in one process, the second engine's workers reuse
//! the malloc arenas the first one's workers left, pages already placed on their nodes.)

mod engine_support;
mod vm_support;

use std::time::Duration;

use engine_support::emulated;
use locus::durability::SyncPolicy;
use locus::engine::{Cue, DurabilityOptions, EngineBuilder, Episode, EpisodeId};
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
    emulated().durability(DurabilityOptions {
        policy: SyncPolicy::EveryBatch,
        snapshot_every: None,
        ..DurabilityOptions::default()
    })
}

const CHILD_ENV: &str = "LOCUS_VM_RECOVERY_POPULATE";

/// The episodes the child stores: (id, embedding, links).
fn episodes() -> Vec<(u64, Vec<f32>)> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    (0..1700u64).map(|i| (i, vector(&mut state, 64))).collect()
}

/// Child mode: stores 1500 episodes, indexes them, snapshots (with the index segments), stores
/// a 200-episode log tail (not indexed).
fn populate(dir: &std::path::Path) {
    let e = builder().open_in(dir).expect("engine");
    assert!(e.shard_count() >= 2, "one shard per node");
    for (i, v) in episodes() {
        if i == 1500 {
            assert!(e.wait_indexed(Duration::from_secs(1200)), "indexing finished");
            e.snapshot().expect("snapshot");
            e.set_absorption(false);
        }
        let mut ep = Episode::new(v).with_id(i).in_stream(format!("s{}", i % 7));
        if (20..1500).contains(&i) && i % 4 == 0 {
            ep = ep.with_link(i - 20, 0.7);
        }
        e.observe(ep).expect("observe");
    }
    e.shutdown();
}

fn populate_kept() -> Vec<(u64, Vec<f32>)> {
    episodes().into_iter().filter(|(i, _)| i % 100 == 0).collect()
}

#[test]
fn recovered_shards_have_their_pages_at_home() {
    if std::env::var(CHILD_ENV).is_err() && !require_nodes("recovered_shards_have_their_pages_at_home", 2) {
        return;
    }
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        populate(std::path::Path::new(&dir));
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "--exact",
            "recovered_shards_have_their_pages_at_home",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .status()
        .expect("spawn the populating child");
    assert!(status.success(), "populating child: {status:?}");
    let kept = populate_kept();
    let e = builder().open_in(dir.path()).expect("recovered engine");
    let report = e.recovery_report().expect("report").clone();
    eprintln!("recovery: {report:?}");
    assert_eq!(report.episodes, 1700);
    // The snapshot's index segments were loaded into each shard's node-bound regions.
    assert_eq!(report.episodes_loaded_indexed, 1500, "{report:?}");
    assert!(report.index_fallbacks.is_empty(), "{report:?}");
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
