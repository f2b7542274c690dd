//! The engine's API contracts on small data: validation stores nothing, recall matches brute
//! force, completion restores an episode, spaces are isolated, admission refuses at once, and a
//! 4-shard engine answers as a 1-shard engine does.

mod engine_support;

use std::time::{Duration, Instant};

use engine_support::{Rng, brute_force, cosine, normalized, small};
use locus::engine::{
    AdmissionLimits, Cue, Engine, EngineError, Episode, EpisodeId, ShardCount, SpreadParams,
};

#[test]
fn invalid_observations_are_typed_errors_and_store_nothing() {
    let e = small(4).space("other", 10).open().unwrap();
    let a = e
        .observe(Episode::new(vec![1.0, 0.0, 0.0, 0.0]).with_id(1))
        .unwrap();
    let b = e
        .observe(Episode::new(vec![0.0, 0.0, 1.0, 0.0]).in_space("other"))
        .unwrap();
    let before = e.len();
    type Expect = fn(&EngineError) -> bool;
    let cases: Vec<(Episode, Expect)> = vec![
        (Episode::new(vec![1.0, 0.0, 0.0]).with_id(10), |e| {
            matches!(e, EngineError::DimensionMismatch { expected: 4, got: 3 })
        }),
        (Episode::new(vec![1.0, f32::NAN, 0.0, 0.0]).with_id(11), |e| {
            matches!(e, EngineError::NonFinite { position: 1, .. })
        }),
        (
            Episode::new(vec![f32::INFINITY, 0.0, 0.0, 0.0]).with_id(12),
            |e| matches!(e, EngineError::NonFinite { position: 0, .. }),
        ),
        (Episode::new(vec![0.0; 4]).with_id(13), |e| {
            matches!(e, EngineError::ZeroVector)
        }),
        (
            Episode::new(vec![0.0, 1.0, 0.0, 0.0])
                .with_id(14)
                .with_link(999, 1.0),
            |e| matches!(e, EngineError::UnknownEpisode { id: 999 }),
        ),
        // A link into another space is unknown in this one.
        (
            Episode::new(vec![0.0, 1.0, 0.0, 0.0])
                .with_id(15)
                .with_link(b.0, 1.0),
            |e| matches!(e, EngineError::UnknownEpisode { .. }),
        ),
        (
            Episode::new(vec![0.0, 1.0, 0.0, 0.0])
                .with_id(16)
                .with_link(a.0, f32::NAN),
            |e| matches!(e, EngineError::InvalidInput { .. }),
        ),
        (Episode::new(vec![0.0, 1.0, 0.0, 0.0]).with_id(1), |e| {
            matches!(e, EngineError::DuplicateId { id: 1 })
        }),
        (
            Episode::new(vec![0.0, 1.0, 0.0, 0.0])
                .with_id(17)
                .in_space("nope"),
            |e| matches!(e, EngineError::UnknownSpace { .. }),
        ),
        (
            Episode::new(vec![0.0, 1.0, 0.0, 0.0])
                .with_id(18)
                .with_payload(vec![0u8; (1 << 20) + 1]),
            |e| matches!(e, EngineError::InvalidInput { .. }),
        ),
    ];
    for (ep, expect) in cases {
        let id = ep.id;
        let err = e.observe(ep).unwrap_err();
        assert!(expect(&err), "{id:?}: {err}");
        if let Some(id) = id.filter(|&i| i != 1) {
            assert!(e.get(EpisodeId(id)).is_none(), "{id} must not be stored");
        }
    }
    assert_eq!(e.len(), before);
    let r = e.recall(&Cue::new(vec![0.0, 1.0, 0.0, 0.0], 10)).unwrap();
    assert_eq!(r.hits.iter().map(|h| h.id).collect::<Vec<_>>(), [a]);
    // The stored episode is untouched by the refused duplicate.
    assert_eq!(e.get(a).unwrap().embedding, vec![1.0, 0.0, 0.0, 0.0]);
}

#[test]
fn recall_equals_brute_force_in_the_buffer_and_after_indexing() {
    let dim = 16;
    let e = small(dim).open().unwrap();
    e.set_absorption(false);
    let mut rng = Rng::new(1);
    let data: Vec<(u64, Vec<f32>)> = (0..400).map(|i| (i, rng.vector(dim))).collect();
    for (id, v) in &data {
        e.observe(Episode::new(v.clone()).with_id(*id)).unwrap();
    }
    let queries: Vec<Vec<f32>> = (0..30).map(|_| rng.vector(dim)).collect();
    // Append buffer only: an exact scan, so exactly brute force.
    for q in &queries {
        let r = e.recall(&Cue::new(q.clone(), 10)).unwrap();
        assert!(r.shards.iter().all(|s| s.scanned == 400 && s.segments == 0));
        let got: Vec<u64> = r.hits.iter().map(|h| h.id.0).collect();
        assert_eq!(got, brute_force(&data, q, 10));
        for h in &r.hits {
            let v = &data[h.id.0 as usize].1;
            assert!((h.similarity - cosine(q, v)).abs() < 1e-5);
        }
    }
    // Indexed (400 episodes in one segment, ef 256): HNSW at this size finds the true top 10.
    e.set_absorption(true);
    assert!(e.wait_indexed(Duration::from_secs(120)));
    let mut same = 0;
    for q in &queries {
        let r = e.recall(&Cue::new(q.clone(), 10)).unwrap();
        assert!(r.shards.iter().all(|s| s.scanned == 0 && s.segments == 1));
        let got: Vec<u64> = r.hits.iter().map(|h| h.id.0).collect();
        let want = brute_force(&data, q, 10);
        same += got.iter().filter(|id| want.contains(id)).count();
    }
    assert!(same >= 297, "{same} of 300 true neighbours");
}

#[test]
fn index_grows_by_segments_and_recall_searches_them_all() {
    let dim = 8;
    let e = small(dim).open().unwrap();
    let mut rng = Rng::new(2);
    let data: Vec<(u64, Vec<f32>)> = (0..1300).map(|i| (i, rng.vector(dim))).collect();
    for (id, v) in &data {
        e.observe(Episode::new(v.clone()).with_id(*id)).unwrap();
    }
    assert!(e.wait_indexed(Duration::from_secs(120)));
    assert_eq!(e.stats().segments, 3, "512 per segment");
    for (id, v) in data.iter().step_by(97) {
        let r = e.recall(&Cue::new(v.clone(), 3)).unwrap();
        assert_eq!(r.hits[0].id.0, *id);
    }
}

#[test]
fn completion_restores_an_episode_from_half_its_dimensions() {
    let dim = 64;
    let e = small(dim).open().unwrap();
    let mut rng = Rng::new(3);
    let data: Vec<(u64, Vec<f32>)> = (0..300).map(|i| (i, rng.vector(dim))).collect();
    for (id, v) in &data {
        e.observe(Episode::new(v.clone()).with_id(*id)).unwrap();
    }
    let mask: Vec<bool> = (0..dim).map(|i| i < dim / 2).collect();
    for (half_indexed, target) in [(false, 17usize), (true, 123)] {
        if half_indexed {
            assert!(e.wait_indexed(Duration::from_secs(120)));
        }
        let (id, v) = &data[target];
        let partial: Vec<f32> = v
            .iter()
            .zip(&mask)
            .map(|(x, &m)| if m { *x } else { 0.0 })
            .collect();
        let c = e.complete(&partial, &mask, 5).unwrap();
        assert_eq!(c.supporting[0].0.0, *id);
        let restored = cosine(&c.embedding, v);
        assert!(restored > 0.99, "restored cosine {restored}");
        // The hidden half specifically.
        let hidden = |x: &[f32]| x[dim / 2..].to_vec();
        assert!(cosine(&hidden(&c.embedding), &hidden(&normalized(v))) > 0.98);
        assert!(c.confidence > 0.9, "confidence {}", c.confidence);
    }
    let err = e.complete(&[0.0; 64], &mask, 5).unwrap_err();
    assert!(matches!(err, EngineError::ZeroVector));
    let err = e.complete(&vec![1.0; 64], &[true; 3], 5).unwrap_err();
    assert!(matches!(err, EngineError::DimensionMismatch { .. }));
}

#[test]
fn a_flooding_space_gets_only_its_own_observations_refused() {
    let dim = 8;
    let e = small(dim).space("noisy", 10).space("quiet", 1000).open().unwrap();
    let mut rng = Rng::new(4);
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..50 {
        match e.observe(Episode::new(rng.vector(dim)).in_space("noisy")) {
            Ok(_) => ok += 1,
            Err(EngineError::QuotaExceeded { space, quota: 10 }) if space == "noisy" => refused += 1,
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!((ok, refused), (10, 40));
    let quiet: Vec<EpisodeId> = (0..20)
        .map(|_| {
            e.observe(Episode::new(rng.vector(dim)).in_space("quiet"))
                .unwrap()
        })
        .collect();
    assert_eq!(e.space_len("quiet").unwrap(), 20);
    let r = e
        .recall(&Cue::new(rng.vector(dim), 100).in_space("quiet"))
        .unwrap();
    assert_eq!(r.hits.len(), 20);
    assert!(r.hits.iter().all(|h| quiet.contains(&h.id)));
    let r = e
        .recall(&Cue::new(rng.vector(dim), 100).in_space("noisy"))
        .unwrap();
    assert_eq!(r.hits.len(), 10);
    assert!(r.hits.iter().all(|h| !quiet.contains(&h.id)));
    // Forgetting frees quota.
    e.forget(r.hits[0].id).unwrap();
    e.observe(Episode::new(rng.vector(dim)).in_space("noisy"))
        .unwrap();
    let m = e.metrics_snapshot();
    let noisy_refused: u64 = m
        .shards
        .iter()
        .flat_map(|s| s.spaces.iter())
        .filter(|s| s.space == "noisy")
        .map(|s| s.rejected.values().sum::<u64>())
        .sum();
    assert_eq!(noisy_refused, 40);
}

#[test]
fn a_full_append_buffer_refuses_at_once_and_accepts_again_once_indexed() {
    let dim = 8;
    let e = small(dim)
        .admission(AdmissionLimits {
            max_unindexed: 32,
            recall_deadline: Duration::from_secs(60),
            ..AdmissionLimits::default()
        })
        .open()
        .unwrap();
    e.set_absorption(false);
    let mut rng = Rng::new(5);
    let mut accepted = Vec::new();
    for i in 0..32u64 {
        accepted.push((i, rng.vector(dim)));
        e.observe(Episode::new(accepted[i as usize].1.clone()).with_id(i))
            .unwrap();
    }
    let t = Instant::now();
    match e.observe(Episode::new(rng.vector(dim)).with_id(99)) {
        Err(EngineError::Overloaded {
            shard: 0,
            depth: 32,
            retry_after,
        }) => assert!(retry_after > Duration::ZERO),
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(1), "refused at once");
    assert!(e.get(EpisodeId(99)).is_none());
    // Nothing accepted was dropped: each is found.
    for (id, v) in &accepted {
        assert_eq!(e.recall(&Cue::new(v.clone(), 1)).unwrap().hits[0].id.0, *id);
    }
    e.set_absorption(true);
    assert!(e.wait_indexed(Duration::from_secs(60)));
    e.observe(Episode::new(rng.vector(dim)).with_id(99)).unwrap();
    assert!(
        e.metrics_text()
            .contains("locus_engine_observations_rejected_total{shard=\"0\",node=\"")
    );
}

/// Builds the same content in two engines: explicit ids, links and streams.
fn fill(e: &Engine, dim: usize) -> Vec<(u64, Vec<f32>)> {
    let mut rng = Rng::new(6);
    let mut data = Vec::new();
    for i in 0..300u64 {
        let v = rng.vector(dim);
        let mut ep = Episode::new(v.clone())
            .with_id(i * 7 + 3)
            .in_stream(format!("s{}", i % 5));
        if i >= 10 && i % 3 == 0 {
            ep = ep.with_link((i - 10) * 7 + 3, 0.8);
        }
        e.observe(ep).unwrap();
        data.push((i * 7 + 3, v));
    }
    data
}

#[test]
fn four_shards_answer_exactly_as_one_shard_does() {
    let dim = 16;
    let one = small(dim).shards(ShardCount::Exactly(1)).open().unwrap();
    let four = small(dim).shards(ShardCount::Exactly(4)).open().unwrap();
    assert_eq!(four.shard_count(), 4);
    one.set_absorption(false);
    four.set_absorption(false);
    let data = fill(&one, dim);
    fill(&four, dim);
    let mut rng = Rng::new(7);
    let spread = SpreadParams {
        threshold: 0.0,
        ..SpreadParams::default()
    };
    for _ in 0..20 {
        let q = rng.vector(dim);
        for cue in [
            Cue::new(q.clone(), 10),
            Cue::new(q.clone(), 10).with_spread(spread.clone()),
        ] {
            let a = one.recall(&cue).unwrap();
            let b = four.recall(&cue).unwrap();
            assert!(!a.partial && !b.partial);
            assert_eq!(a.hits.len(), 10);
            for (x, y) in a.hits.iter().zip(&b.hits) {
                assert_eq!(x.id, y.id);
                assert!((x.score - y.score).abs() < 1e-5 && (x.activation - y.activation).abs() < 1e-5);
            }
        }
        assert_eq!(four.recall(&Cue::new(q.clone(), 10)).unwrap().shards.len(), 4);
    }
    // Episodes really are spread over the four shards.
    let mut per = [0; 4];
    for (id, _) in &data {
        per[four.shard_of(EpisodeId(*id))] += 1;
    }
    assert!(per.iter().all(|&n| n > 40), "{per:?}");
    assert_eq!(one.stats().edges, four.stats().edges);
}

#[test]
fn streams_links_associate_get_and_forget() {
    let dim = 4;
    let e = small(dim).open().unwrap();
    let a = e
        .observe(
            Episode::new(vec![1.0, 0.0, 0.0, 0.0])
                .in_stream("x")
                .with_payload("a")
                .with_timestamp(5),
        )
        .unwrap();
    let b = e
        .observe(Episode::new(vec![0.0, 1.0, 0.0, 0.0]).in_stream("x"))
        .unwrap();
    let c = e
        .observe(Episode::new(vec![0.0, 0.0, 1.0, 0.0]).with_link(a.0, 0.7))
        .unwrap();
    let d = e.observe(Episode::new(vec![0.0, 0.0, 0.0, 1.0])).unwrap();
    let ra = e.get(a).unwrap();
    assert_eq!(
        (ra.payload.as_slice(), ra.timestamp, ra.stream.as_deref()),
        (&b"a"[..], 5, Some("x"))
    );
    let mut links = ra.links.clone();
    links.sort_by_key(|l| l.0);
    assert_eq!(links, vec![(b, 1.0), (c, 0.7)]);
    e.associate(d, a, 0.9).unwrap();
    assert!(e.get(d).unwrap().links.contains(&(a, 0.9)));
    assert!(matches!(
        e.associate(d, EpisodeId(12345), 1.0),
        Err(EngineError::UnknownEpisode { .. })
    ));
    // Spreading from d reaches a through the association.
    let r = e
        .recall(&Cue::new(vec![0.0, 0.0, 0.0, 1.0], 4).with_spread(SpreadParams::default()))
        .unwrap();
    let ha = r.hits.iter().find(|h| h.id == a).unwrap();
    assert!(ha.activation > 0.0);
    e.forget(a).unwrap();
    assert!(e.get(a).is_none());
    assert!(matches!(e.forget(a), Err(EngineError::UnknownEpisode { .. })));
    assert!(e.wait_indexed(Duration::from_secs(30)));
    for cue in [
        Cue::new(vec![1.0, 0.0, 0.0, 0.0], 4),
        Cue::new(vec![0.0, 0.0, 0.0, 1.0], 4).with_spread(SpreadParams::default()),
    ] {
        assert!(e.recall(&cue).unwrap().hits.iter().all(|h| h.id != a));
    }
    assert_eq!(e.len(), 3);
}
