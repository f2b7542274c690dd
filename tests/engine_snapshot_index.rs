//! A snapshot saves the index segments' linked prefix beside its records, and recovery loads
//! them instead of re-inserting the episodes: the recovered engine answers recalls exactly as
//! before, with the same associations (the absorbers' `similar` ones included); a damaged or
//! missing index file makes recovery fall back to re-absorbing that space's episodes, reported.

mod engine_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use engine_support::{Rng, small};
use locus::durability::SyncPolicy;
use locus::engine::{
    AssociationParams, Cue, DurabilityOptions, Engine, EngineBuilder, Episode, EpisodeId, EpisodeRecord,
    IndexParams, ShardCount,
};

const DIM: usize = 16;

/// Two shards, 64-slot segments (so a space spans full segments and a partial one), and three
/// `similar` associations per absorbed episode.
fn builder() -> EngineBuilder {
    small(DIM)
        .shards(ShardCount::Exactly(2))
        .space("t", usize::MAX)
        .index(IndexParams {
            segment_capacity: 64,
            ef_search: 256,
            ef_construction: 100,
            absorb_batch: 8,
            ..IndexParams::default()
        })
        .associations(AssociationParams {
            similar: 3,
            min_similarity: -1.0,
            max_episodes_per_shard: 1 << 16,
            ..AssociationParams::default()
        })
        .durability(DurabilityOptions {
            policy: SyncPolicy::EveryBatch,
            snapshot_every: None,
            snapshot_interval: None,
            segment_bytes: 1 << 16,
            faults: None,
        })
}

fn open(dir: &Path) -> Engine {
    builder().open_in(dir).expect("open")
}

/// Observes `n` episodes (both spaces, streams, links); appends their ids, vectors and spaces
/// to `ids`.
fn fill(e: &Engine, rng: &mut Rng, n: usize, ids: &mut Vec<(EpisodeId, Vec<f32>, &'static str)>) {
    let base = ids.len();
    for i in 0..n {
        let v = rng.vector(DIM);
        let mut ep = Episode::new(v.clone()).with_payload(format!("p{i}"));
        if i % 3 == 0 {
            ep = ep.in_space("t").in_stream("s");
        }
        // Links stay within a space: to the episode three before (same `i % 3`).
        if i % 5 == 4 && i >= 3 {
            ep = ep.with_link(ids[base + i - 3].0.0, 0.5);
        }
        let id = e.observe(ep).expect("observe");
        ids.push((id, v, if i % 3 == 0 { "t" } else { "default" }));
    }
}

fn state(e: &Engine, id: EpisodeId) -> Option<EpisodeRecord> {
    let mut r = e.get(id)?;
    r.links.sort_by_key(|l| l.0);
    Some(r)
}

/// The recall answer (ids and similarities) for each query, in both spaces.
fn answers(e: &Engine, queries: &[Vec<f32>]) -> Vec<Vec<(u64, f32)>> {
    let mut out = Vec::new();
    for q in queries {
        for space in ["default", "t"] {
            let r = e.recall(&Cue::new(q.clone(), 5).in_space(space)).expect("recall");
            out.push(r.hits.iter().map(|h| (h.id.0, h.similarity)).collect());
        }
    }
    out
}

fn index_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hnsw"))
        .collect();
    v.sort();
    v
}

#[test]
fn the_index_is_loaded_not_rebuilt_and_answers_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(7);
    let e = open(dir.path());
    let mut ids = Vec::new();
    fill(&e, &mut rng, 300, &mut ids);
    assert!(e.wait_indexed(Duration::from_secs(60)));
    e.forget(ids[10].0).unwrap();
    e.associate(ids[20].0, ids[23].0, 0.5).unwrap();
    let snap = e.snapshot().unwrap();
    assert_eq!(snap.indexed_episodes, 300, "{snap:?}");
    assert!(snap.index_files >= 4, "2 shards × 2 spaces: {snap:?}");
    assert!(snap.index_bytes > 300 * DIM as u64 * 4, "{snap:?}");
    assert!(snap.index_skipped.is_empty(), "{snap:?}");
    let queries: Vec<Vec<f32>> = (0..20).map(|_| rng.vector(DIM)).collect();
    let before: Vec<_> = ids.iter().map(|(id, ..)| state(&e, *id)).collect();
    let recalled = answers(&e, &queries);
    let edges = e.stats().edges;
    assert!(
        before.iter().flatten().any(|r| r.links.len() > 2),
        "the absorbers made similar associations"
    );
    e.shutdown();

    let e = open(dir.path());
    let report = e.recovery_report().unwrap().clone();
    assert_eq!(report.episodes_loaded_indexed, 300, "{report:?}");
    assert_eq!(report.episodes_reabsorbed, 0, "{report:?}");
    assert!(report.index_fallbacks.is_empty(), "{report:?}");
    // Indexed at once, before any absorber ran: nothing is in the append buffer.
    for (id, ..) in ids.iter().skip(11) {
        assert!(e.get(*id).unwrap().indexed, "{id:?} not indexed after loading");
    }
    let after: Vec<_> = ids.iter().map(|(id, ..)| state(&e, *id)).collect();
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(a, b, "episode (links included) differs after recovery");
    }
    assert_eq!(after[10], None, "the forgotten episode stays forgotten");
    assert_eq!(answers(&e, &queries), recalled, "recall differs after recovery");
    assert_eq!(e.stats().edges, edges);
    for r in e.recall(&Cue::new(ids[10].1.clone(), 3)).unwrap().hits {
        assert_ne!(r.id, ids[10].0, "a forgotten episode came back");
    }

    // A second snapshot after the load saves the loaded nodes again: the full segments' files
    // are named again, the partial ones written anew, and the files no longer named removed.
    let old = index_files(dir.path());
    let snap2 = e.snapshot().unwrap();
    assert_eq!(snap2.indexed_episodes, 300, "{snap2:?}");
    assert!(snap2.index_files_reused > 0, "{snap2:?}");
    assert!(snap2.index_files_reused < snap2.index_files, "{snap2:?}");
    let new = index_files(dir.path());
    assert_eq!(
        new.len(),
        snap2.index_files,
        "only the named files are left: {new:?}"
    );
    assert_eq!(
        old.iter().filter(|f| new.contains(f)).count(),
        snap2.index_files_reused,
        "old files kept are the reused ones: {old:?} {new:?}"
    );
    e.shutdown();
    let e = open(dir.path());
    assert_eq!(e.recovery_report().unwrap().episodes_loaded_indexed, 300);
    assert_eq!(answers(&e, &queries), recalled);
    let again: Vec<_> = ids.iter().map(|(id, ..)| state(&e, *id)).collect();
    assert!(
        again == before,
        "episodes (links included) differ after the second load"
    );
    assert_eq!(e.stats().edges, edges);
    e.shutdown();
}

#[test]
fn the_episodes_after_the_saved_index_are_reabsorbed() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(8);
    let e = open(dir.path());
    let mut ids = Vec::new();
    fill(&e, &mut rng, 200, &mut ids);
    assert!(e.wait_indexed(Duration::from_secs(60)));
    // 50 more stay in the append buffer while the snapshot saves the index: they are in its
    // records but not in its index files.
    e.set_absorption(false);
    fill(&e, &mut rng, 50, &mut ids);
    let snap = e.snapshot().unwrap();
    assert_eq!(snap.indexed_episodes, 200, "{snap:?}");
    assert_eq!(snap.records, 250, "{snap:?}");
    e.set_absorption(true);
    fill(&e, &mut rng, 40, &mut ids);
    assert!(e.wait_indexed(Duration::from_secs(60)));
    // A forget in the log tail of an episode whose node is in the saved index.
    let gone = ids.remove(7);
    e.forget(gone.0).unwrap();
    e.shutdown();

    let e = open(dir.path());
    let report = e.recovery_report().unwrap().clone();
    assert_eq!(report.episodes_loaded_indexed, 200, "{report:?}");
    assert_eq!(report.episodes_reabsorbed, 90, "{report:?}");
    assert_eq!(report.forgets, 1, "{report:?}");
    assert!(e.wait_indexed(Duration::from_secs(60)));
    assert!(e.get(gone.0).is_none(), "the forgotten episode came back");
    let hits = e
        .recall(&Cue::new(gone.1.clone(), 3).in_space(gone.2))
        .unwrap()
        .hits;
    assert!(
        hits.iter().all(|h| h.id != gone.0),
        "the forgotten episode is recalled"
    );
    for (i, (id, v, space)) in ids.iter().enumerate() {
        let r = e.get(*id).unwrap_or_else(|| panic!("episode {i} lost"));
        assert!(r.payload.starts_with(b"p"), "episode {i}'s payload");
        let hits = e.recall(&Cue::new(v.clone(), 1).in_space(*space)).unwrap().hits;
        assert_eq!(
            hits.first().map(|h| h.id),
            Some(*id),
            "episode {i} not recalled by its vector"
        );
    }
    e.shutdown();
}

/// Runs `damage` on a directory holding a snapshot with index files, reopens it: the damaged
/// space falls back to re-absorption (reported), and nothing is lost.
fn falls_back(damage: impl Fn(&[PathBuf]), expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(9);
    let e = open(dir.path());
    let mut ids = Vec::new();
    fill(&e, &mut rng, 200, &mut ids);
    assert!(e.wait_indexed(Duration::from_secs(60)));
    e.snapshot().unwrap();
    e.shutdown();
    damage(&index_files(dir.path()));

    let e = open(dir.path());
    let report = e.recovery_report().unwrap().clone();
    assert_eq!(
        report.index_fallbacks.len(),
        1,
        "one space falls back: {report:?}"
    );
    assert!(
        report.index_fallbacks[0].contains(expect),
        "{expect:?} not in {:?}",
        report.index_fallbacks
    );
    assert!(report.episodes_reabsorbed > 0, "{report:?}");
    assert!(
        report.episodes_loaded_indexed > 0,
        "the other spaces still load: {report:?}"
    );
    assert_eq!(report.episodes_reabsorbed + report.episodes_loaded_indexed, 200);
    assert!(e.wait_indexed(Duration::from_secs(60)));
    for (i, (id, v, space)) in ids.iter().enumerate() {
        assert!(e.get(*id).is_some(), "episode {i} lost");
        let hits = e.recall(&Cue::new(v.clone(), 1).in_space(*space)).unwrap().hits;
        assert_eq!(hits.first().map(|h| h.id), Some(*id), "episode {i} not recalled");
    }
    e.shutdown();
}

#[test]
fn a_missing_index_file_falls_back_to_reabsorbing_its_space() {
    falls_back(|files| std::fs::remove_file(&files[0]).unwrap(), "No such file");
}

#[test]
fn a_corrupt_index_file_falls_back_to_reabsorbing_its_space() {
    // A flipped bit in a vector: same length, same trailing CRC, so only the full check finds it.
    falls_back(
        |files| {
            let mut b = std::fs::read(&files[0]).unwrap();
            let at = b.len() / 2;
            b[at] ^= 0x10;
            std::fs::write(&files[0], b).unwrap();
        },
        "checksum",
    );
}

#[test]
fn a_truncated_index_file_falls_back_to_reabsorbing_its_space() {
    falls_back(
        |files| {
            let b = std::fs::read(&files[0]).unwrap();
            std::fs::write(&files[0], &b[..b.len() - 100]).unwrap();
        },
        "bytes, the snapshot recorded",
    );
}

#[test]
fn a_snapshot_taken_while_observing_and_absorbing_recovers_everything() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut ids = Vec::new();
    let mut rng = Rng::new(10);
    fill(&e, &mut rng, 100, &mut ids);
    let snaps = std::thread::scope(|s| {
        let t = s.spawn(|| {
            let mut rng = Rng::new(11);
            let mut more = Vec::new();
            fill(&e, &mut rng, 400, &mut more);
            more
        });
        let mut snaps = Vec::new();
        while !t.is_finished() {
            snaps.push(e.snapshot().unwrap());
        }
        ids.extend(t.join().unwrap());
        snaps
    });
    assert!(!snaps.is_empty());
    let last = snaps.last().unwrap().clone();
    e.shutdown();
    let e = open(dir.path());
    let report = e.recovery_report().unwrap().clone();
    assert_eq!(
        report.episodes_loaded_indexed, last.indexed_episodes,
        "{report:?}"
    );
    assert!(report.index_fallbacks.is_empty(), "{report:?}");
    assert_eq!(report.episodes, 500);
    assert!(e.wait_indexed(Duration::from_secs(60)));
    for (i, (id, v, space)) in ids.iter().enumerate() {
        let hits = e.recall(&Cue::new(v.clone(), 1).in_space(*space)).unwrap().hits;
        assert_eq!(hits.first().map(|h| h.id), Some(*id), "episode {i} not recalled");
    }
    e.shutdown();
}
