//! The engine's edges: association weights that stay finite however often they are summed,
//! one rule for `associate(a, a)` and `associate_directed(a, a)`, an id generator that never
//! wraps and never moves on a refused id, and a space name the log cannot store refused by the
//! builder.

mod engine_support;

use engine_support::small;
use locus::engine::{Engine, EngineError, Episode, EpisodeId, ShardCount, SpreadParams};

fn unit(i: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; 8];
    v[i % 8] = 1.0;
    v
}

fn engine() -> Engine {
    small(8).shards(ShardCount::Exactly(1)).open().unwrap()
}

#[test]
fn summed_association_weights_stay_finite() {
    let e = engine();
    let (a, b) = (EpisodeId(1), EpisodeId(2));
    e.observe(Episode::new(unit(0)).with_id(1)).unwrap();
    e.observe(Episode::new(unit(1)).with_id(2)).unwrap();
    e.associate_directed(a, b, 3e38).unwrap();
    e.associate_directed(a, b, 3e38).unwrap();
    e.associate(a, b, 3e38).unwrap();
    let r = e
        .spread(
            &[(a, 1.0)],
            &SpreadParams {
                k: 10,
                ..SpreadParams::default()
            },
        )
        .unwrap();
    assert!(!r.hits.is_empty());
    for h in &r.hits {
        assert!(h.activation.is_finite(), "{h:?}");
        // Saturated at the weight bound times the seed, never the fixed point's 2^64 ceiling.
        assert!(h.activation <= f64::from(f32::MAX), "{h:?}");
    }
}

#[test]
fn an_association_of_an_episode_with_itself_is_refused_both_ways() {
    let e = engine();
    let a = e.observe(Episode::new(unit(0))).unwrap();
    for r in [e.associate(a, a, 0.5), e.associate_directed(a, a, 0.5)] {
        assert!(matches!(r, Err(EngineError::InvalidInput { .. })), "{r:?}");
    }
}

#[test]
fn the_id_generator_never_wraps_nor_moves_on_a_refused_id() {
    let e = engine();
    // A refused given id (the reserved u64::MAX) leaves the generator where it was.
    let r = e.observe(Episode::new(unit(0)).with_id(u64::MAX));
    assert!(matches!(r, Err(EngineError::InvalidInput { .. })), "{r:?}");
    assert_eq!(e.observe(Episode::new(unit(1))).unwrap(), EpisodeId(0));
    // The last usable id given: automatic ids are then used up, said so, and never wrap to 0.
    e.observe(Episode::new(unit(2)).with_id(u64::MAX - 1)).unwrap();
    for _ in 0..3 {
        match e.observe(Episode::new(unit(3))) {
            Err(EngineError::InvalidInput { what }) => assert!(what.contains("used up"), "{what}"),
            other => panic!("expected the ids to be used up, got {other:?}"),
        }
    }
    // Given ids below the top still work.
    assert_eq!(e.observe(Episode::new(unit(4)).with_id(7)).unwrap(), EpisodeId(7));
}

#[test]
fn a_space_name_the_log_cannot_store_is_refused_by_the_builder() {
    let long = "s".repeat(300);
    match small(8).space(long, 10).open() {
        Err(EngineError::InvalidConfig { field, .. }) => assert_eq!(field, "space"),
        other => panic!("expected InvalidConfig, got {:?}", other.map(|_| ())),
    }
    let ok = "s".repeat(255);
    small(8).space(ok, 10).open().unwrap().shutdown();
}
