//! Directed associations and `Engine::spread` from given seeds: the answer equals the walk sums
//! worked out by hand below, on one shard (the whole spread as one task) and on three (one
//! round per hop across shards), and bad seeds are typed errors.

mod engine_support;

use engine_support::small;
use locus::engine::{Engine, EngineError, Episode, EpisodeId, ShardCount, SpreadParams};
use locus::spread::Decay;

/// Episodes 0..=5 with distinct embeddings and the directed graph
/// `0→1 (0.5)`, `1→2 (0.8)`, `0→2 (0.4)`, `2→3 (0.9)`, `3→0 (0.7)` from `associate_directed`,
/// `2→4 (0.6)` from `with_link_from` and `5→1 (0.3)` from `with_link_to`.
fn engine(shards: usize) -> Engine {
    let e = small(8).shards(ShardCount::Exactly(shards)).open().unwrap();
    let unit = |i: usize| {
        let mut v = vec![0.0f32; 8];
        v[i] = 1.0;
        v
    };
    for i in 0..4u64 {
        e.observe(Episode::new(unit(i as usize)).with_id(i)).unwrap();
    }
    for (a, b, w) in [(0, 1, 0.5), (1, 2, 0.8), (0, 2, 0.4), (2, 3, 0.9), (3, 0, 0.7)] {
        e.associate_directed(EpisodeId(a), EpisodeId(b), w).unwrap();
    }
    e.observe(Episode::new(unit(4)).with_id(4).with_link_from(2, 0.6))
        .unwrap();
    e.observe(Episode::new(unit(5)).with_id(5).with_link_to(1, 0.3))
        .unwrap();
    e
}

fn params(hops: u32, include_seeds: bool) -> SpreadParams {
    SpreadParams {
        max_hops: hops,
        decay: Decay::Exponential { factor: 0.5 },
        k: 10,
        include_seeds,
        ..SpreadParams::default()
    }
}

fn ids_and_activations(e: &Engine, seeds: &[(u64, f32)], p: &SpreadParams) -> Vec<(u64, f64)> {
    let seeds: Vec<(EpisodeId, f32)> = seeds.iter().map(|&(i, a)| (EpisodeId(i), a)).collect();
    let r = e.spread(&seeds, p).unwrap();
    assert!(!r.partial);
    r.hits.iter().map(|h| (h.id, h.activation)).collect()
}

fn assert_close(got: &[(u64, f64)], want: &[(u64, f64)]) {
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        want.iter().map(|w| w.0).collect::<Vec<_>>(),
        "got {got:?}, want {want:?}"
    );
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g.1 - w.1).abs() < 1e-6,
            "node {}: got {}, want {}",
            g.0,
            g.1,
            w.1
        );
    }
}

#[test]
fn three_hop_spread_is_the_directed_walk_sum() {
    // Seed 0 at 1.0, decay 0.5 per hop:
    //   1: 0→1                      = .5·.5                  = .25
    //   2: 0→2, 0→1→2               = .4·.5 + .5·.8·.25      = .2 + .1 = .3
    //   3: 0→2→3, 0→1→2→3           = .4·.9·.25 + .5·.8·.9·.125 = .09 + .045 = .135
    //   4: 0→2→4, 0→1→2→4           = .4·.6·.25 + .5·.8·.6·.125 = .06 + .03 = .09
    //   5: no walk reaches it (its link points away from it); 0 is a seed (excluded).
    let want = [(2, 0.3), (1, 0.25), (3, 0.135), (4, 0.09)];
    for shards in [1, 3] {
        let e = engine(shards);
        assert_eq!(e.stats().edges, 7, "{shards} shards");
        assert_close(&ids_and_activations(&e, &[(0, 1.0)], &params(3, false)), &want);
        e.shutdown();
    }
}

#[test]
fn associations_do_not_flow_backwards() {
    let e = engine(2);
    // From 4 (only an in-edge) nothing is reached; from 2 only 3, 4 and on to 0, 1, 2.
    let r = e.spread(&[(EpisodeId(4), 1.0)], &params(3, false)).unwrap();
    assert!(r.hits.is_empty(), "{:?}", r.hits);
    // 2: 2→3 .45, 2→4 .3; 3→0 .45·.7·.5 = .1575; 0→1 .1575·.5·.5 = .039375;
    // 0→2 (seed, excluded).
    let want = [(3, 0.45), (4, 0.3), (0, 0.1575), (1, 0.039375)];
    assert_close(&ids_and_activations(&e, &[(2, 1.0)], &params(3, false)), &want);
    e.shutdown();
}

#[test]
fn one_hop_with_seeds_is_the_completion_score() {
    // graphpeers' "complete": score(v) = [v∈H]·sim(v) + Σ_{h∈H, h→v} sim(h)·w(h,v)·decay
    // with H = {0: .9, 1: .8}: 0 = .9; 1 = .8 + .9·.5·.5 = 1.025; 2 = .9·.4·.5 + .8·.8·.5 = .5.
    let want = [(1, 1.025), (0, 0.9), (2, 0.5)];
    for shards in [1, 3] {
        let e = engine(shards);
        assert_close(
            &ids_and_activations(&e, &[(0, 0.9), (1, 0.8)], &params(1, true)),
            &want,
        );
        e.shutdown();
    }
}

#[test]
fn bad_seeds_and_associations_are_typed_errors() {
    let e = engine(2);
    let p = params(2, false);
    assert!(matches!(
        e.spread(&[(EpisodeId(99), 1.0)], &p),
        Err(EngineError::UnknownEpisode { id: 99 })
    ));
    assert!(matches!(e.spread(&[], &p), Err(EngineError::InvalidInput { .. })));
    assert!(matches!(
        e.spread(&[(EpisodeId(0), f32::NAN)], &p),
        Err(EngineError::InvalidInput { .. })
    ));
    assert!(matches!(
        e.spread(&[(EpisodeId(0), 1.0)], &params(0, false)),
        Err(EngineError::InvalidInput { .. })
    ));
    assert!(matches!(
        e.associate_directed(EpisodeId(0), EpisodeId(99), 1.0),
        Err(EngineError::UnknownEpisode { id: 99 })
    ));
    assert!(matches!(
        e.associate_directed(EpisodeId(1), EpisodeId(1), 1.0),
        Err(EngineError::InvalidInput { .. })
    ));
    assert!(matches!(
        e.observe(Episode::new(vec![1.0; 8]).with_id(7).with_link_from(99, 0.5)),
        Err(EngineError::UnknownEpisode { id: 99 })
    ));
    assert_eq!(e.stats().edges, 7);
    assert!(e.get(EpisodeId(7)).is_none());
    e.shutdown();
}

#[test]
fn a_batch_of_directed_associations_equals_one_call_each_and_a_bad_one_stores_none() {
    let unit = |i: usize| {
        let mut v = vec![0.0f32; 8];
        v[i] = 1.0;
        v
    };
    let edges = [
        (0, 1, 0.5),
        (1, 2, 0.8),
        (0, 2, 0.4),
        (2, 3, 0.9),
        (3, 0, 0.7),
        (0, 1, 0.25),
    ];
    let seeds = [(0u64, 1.0f32)];
    for shards in [1, 3] {
        let one = small(8).shards(ShardCount::Exactly(shards)).open().unwrap();
        let many = small(8).shards(ShardCount::Exactly(shards)).open().unwrap();
        for e in [&one, &many] {
            for i in 0..4u64 {
                e.observe(Episode::new(unit(i as usize)).with_id(i)).unwrap();
            }
        }
        for &(a, b, w) in &edges {
            one.associate_directed(EpisodeId(a), EpisodeId(b), w).unwrap();
        }
        let batch: Vec<_> = edges
            .iter()
            .map(|&(a, b, w)| (EpisodeId(a), EpisodeId(b), w))
            .collect();
        many.associate_directed_many(&batch).unwrap();
        let p = params(3, false);
        assert_eq!(
            ids_and_activations(&one, &seeds, &p),
            ids_and_activations(&many, &seeds, &p),
            "{shards} shard(s)"
        );
        // One unknown episode, one self-loop, one bad weight: each refuses the whole batch.
        for bad in [(1, 99, 0.5), (2, 2, 0.5), (1, 3, f32::NAN)] {
            let mut b = vec![(EpisodeId(1), EpisodeId(3), 0.5)];
            b.push((EpisodeId(bad.0), EpisodeId(bad.1), bad.2));
            assert!(many.associate_directed_many(&b).is_err(), "{bad:?}");
        }
        // Nothing of the refused batches was stored: 1 → 3 is still absent.
        assert_eq!(
            ids_and_activations(&one, &seeds, &p),
            ids_and_activations(&many, &seeds, &p),
            "{shards} shard(s), after the refused batches"
        );
        assert!(
            many.get(EpisodeId(1))
                .unwrap()
                .links
                .iter()
                .all(|&(t, _)| t != EpisodeId(3))
        );
    }
}
