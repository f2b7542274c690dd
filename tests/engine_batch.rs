//! `Engine::observe_batch`: per-episode results in order, validation per episode, visibility
//! once it returns, and admission control that refuses (never waits) past the buffer limit.

mod engine_support;

use engine_support::{Rng, small};
use locus::engine::{AdmissionLimits, Cue, EngineError, Episode, EpisodeId, ShardCount};

#[test]
fn a_batch_stores_each_valid_episode_and_fails_only_the_bad_ones() {
    let dim = 8;
    let e = small(dim).shards(ShardCount::Exactly(3)).open().unwrap();
    let mut rng = Rng::new(7);
    let mut batch: Vec<Episode> = (0..50).map(|_| Episode::new(rng.vector(dim))).collect();
    batch[10] = Episode::new(vec![1.0; dim - 1]);
    batch[20] = Episode::new(vec![0.0; dim]);
    batch[30] = Episode::new(vec![f32::NAN; dim]);
    let vectors: Vec<Vec<f32>> = batch.iter().map(|ep| ep.embedding.clone()).collect();
    let out = e.observe_batch(batch);
    assert_eq!(out.len(), 50);
    assert!(matches!(out[10], Err(EngineError::DimensionMismatch { .. })));
    assert!(matches!(out[20], Err(EngineError::ZeroVector)));
    assert!(matches!(out[30], Err(EngineError::NonFinite { .. })));
    assert_eq!(e.len(), 47);
    for (i, r) in out.iter().enumerate() {
        if [10, 20, 30].contains(&i) {
            continue;
        }
        let id = *r.as_ref().unwrap();
        // Visible to a recall that starts after the batch returned, in the buffer or indexed.
        let hits = e.recall(&Cue::new(vectors[i].clone(), 3)).unwrap().hits;
        assert!(hits.iter().any(|h| h.id == id), "episode {i} ({id}) not recalled");
    }
    // Duplicate ids in one batch: the first wins, the second is refused, nothing is lost.
    let out = e.observe_batch(vec![
        Episode::new(vec![1.0; dim]).with_id(1_000),
        Episode::new(vec![2.0; dim]).with_id(1_000),
    ]);
    assert_eq!(out[0].as_ref().unwrap(), &EpisodeId(1_000));
    assert!(matches!(out[1], Err(EngineError::DuplicateId { id: 1_000 })));
    assert_eq!(e.len(), 48);
}

#[test]
fn a_batch_past_the_buffer_limit_is_refused_at_once_and_loses_nothing() {
    let dim = 8;
    let e = small(dim)
        .admission(AdmissionLimits {
            max_unindexed: 100,
            ..AdmissionLimits::default()
        })
        .open()
        .unwrap();
    e.set_absorption(false);
    let mut rng = Rng::new(9);
    let out = e.observe_batch((0..150).map(|_| Episode::new(rng.vector(dim))).collect());
    let ok = out.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 100, "exactly the buffer limit is admitted");
    assert!(
        out[100..]
            .iter()
            .all(|r| matches!(r, Err(EngineError::Overloaded { .. }))),
        "the rest is refused as overloaded"
    );
    assert_eq!(e.len(), 100);
    e.set_absorption(true);
    assert!(e.wait_indexed(std::time::Duration::from_secs(60)));
    let out = e.observe_batch((0..10).map(|_| Episode::new(rng.vector(dim))).collect());
    assert!(out.iter().all(Result::is_ok), "accepted again once indexed");
    assert_eq!(e.len(), 110);
}
