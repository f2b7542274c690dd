//! Cross-shard traffic only as counted messages, on a forced four-shard engine on one node:
//! association edges are written by their source shard's workers (a debug build panics on any
//! other graph write: `Shard::write_edge`, and every edge of these tests passes through it),
//! observe still returns only once its edges on other shards are visible, completion, recall and
//! spread answer as a one-shard engine does, and the message counters rise by what each
//! operation is documented to send (`src/engine/mod.rs`, "Messages").

mod engine_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use engine_support::{Rng, small};
use locus::engine::{
    AdmissionLimits, AssociationParams, Cue, Engine, EngineError, Episode, EpisodeId, MessageKind,
    ShardCount, SpreadParams,
};

fn engine(shards: usize, stream_weight: f32) -> Engine {
    small(8)
        .shards(ShardCount::Exactly(shards))
        .associations(AssociationParams {
            similar: 0,
            stream_weight,
            max_episodes_per_shard: 1 << 16,
            ..AssociationParams::default()
        })
        .open()
        .unwrap()
}

/// Messages received per shard and kind.
fn messages(e: &Engine) -> Vec<BTreeMap<MessageKind, u64>> {
    e.metrics_snapshot()
        .shards
        .into_iter()
        .map(|s| s.messages)
        .collect()
}

/// `after - before` of `kind`, per shard.
fn delta(
    before: &[BTreeMap<MessageKind, u64>],
    after: &[BTreeMap<MessageKind, u64>],
    kind: MessageKind,
) -> Vec<u64> {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| a[&kind] - b[&kind])
        .collect()
}

/// The first ids (from `from`) on each shard, `per` of them each.
fn ids_by_shard(e: &Engine, from: u64, per: usize) -> Vec<Vec<u64>> {
    let mut out = vec![Vec::new(); e.shard_count()];
    let mut id = from;
    while out.iter().any(|v| v.len() < per) {
        let s = e.shard_of(EpisodeId(id));
        if out[s].len() < per {
            out[s].push(id);
        }
        id += 1;
    }
    out
}

fn unit(i: u64) -> Vec<f32> {
    let mut v = vec![0.05f32; 8];
    v[(i % 8) as usize] = 1.0;
    v[((i / 8) % 8) as usize] += 0.5;
    v
}

fn links_of(e: &Engine, id: u64) -> Vec<(u64, f32)> {
    let mut l: Vec<(u64, f32)> = e
        .get(EpisodeId(id))
        .unwrap()
        .links
        .into_iter()
        .map(|(t, w)| (t.0, w))
        .collect();
    l.sort_by_key(|x| x.0);
    l
}

#[test]
fn association_edges_travel_to_their_source_shard_as_counted_messages() {
    let e = engine(4, 0.0);
    assert_eq!(e.shard_count(), 4);
    let ids = ids_by_shard(&e, 100, 3);
    for v in &ids {
        for &id in v {
            e.observe(Episode::new(unit(id)).with_id(id)).unwrap();
        }
    }
    let m0 = messages(&e);
    // Plain observations: one `observe` message each, no edges.
    assert!(
        m0.iter()
            .all(|m| m[&MessageKind::Observe] == 3 && m[&MessageKind::Edges] == 0),
        "{m0:?}"
    );

    // An episode on shard 0 linked two ways to shard 1, from shard 2, two ways to shard 0 and to
    // shard 1 (its own direction only): edges leave for shard 1 (1 → new) and shard 2 (2 → new),
    // one message each; the others are written by shard 0's worker itself.
    let new = ids_by_shard(&e, 10_000, 1)[0][0];
    let (b, c, x, b2) = (ids[1][0], ids[2][0], ids[0][0], ids[1][1]);
    e.observe(
        Episode::new(unit(new))
            .with_id(new)
            .with_link(b, 0.5)
            .with_link_from(c, 0.4)
            .with_link(x, 0.3)
            .with_link_to(b2, 0.2),
    )
    .unwrap();
    // Accepted means visible: the reverse edges on shards 1 and 2 are there as soon as observe
    // returned.
    assert_eq!(links_of(&e, b), vec![(new, 0.5)]);
    assert_eq!(links_of(&e, c), vec![(new, 0.4)]);
    assert_eq!(links_of(&e, x), vec![(new, 0.3)]);
    assert!(links_of(&e, b2).is_empty());
    let mut want = vec![(x, 0.3), (b, 0.5), (b2, 0.2)];
    want.sort_by_key(|l| l.0);
    assert_eq!(links_of(&e, new), want);
    assert_eq!(e.stats().edges, 6);
    let m1 = messages(&e);
    assert_eq!(delta(&m0, &m1, MessageKind::Observe), vec![1, 0, 0, 0]);
    assert_eq!(delta(&m0, &m1, MessageKind::Edges), vec![0, 1, 1, 0]);

    // `associate` across shards 0 and 3: each shard is asked where its episode is, then gets
    // its own direction.
    let (p, q) = (ids[0][1], ids[3][0]);
    e.associate(EpisodeId(p), EpisodeId(q), 0.9).unwrap();
    let m2 = messages(&e);
    assert_eq!(delta(&m1, &m2, MessageKind::Locate), vec![1, 0, 0, 1]);
    assert_eq!(delta(&m1, &m2, MessageKind::Edges), vec![1, 0, 0, 1]);
    assert_eq!(links_of(&e, p), vec![(q, 0.9)]);
    assert_eq!(links_of(&e, q), vec![(p, 0.9)]);

    // Both on shard 3: one lookup and one batch of two edges.
    let (r, s) = (ids[3][1], ids[3][2]);
    e.associate(EpisodeId(r), EpisodeId(s), 0.6).unwrap();
    let m3 = messages(&e);
    assert_eq!(delta(&m2, &m3, MessageKind::Locate), vec![0, 0, 0, 1]);
    assert_eq!(delta(&m2, &m3, MessageKind::Edges), vec![0, 0, 0, 1]);

    // Directed, 0 → 3: only the source's shard gets an edge.
    e.associate_directed(EpisodeId(ids[0][2]), EpisodeId(q), 0.7)
        .unwrap();
    let m4 = messages(&e);
    assert_eq!(delta(&m3, &m4, MessageKind::Locate), vec![1, 0, 0, 1]);
    assert_eq!(delta(&m3, &m4, MessageKind::Edges), vec![1, 0, 0, 0]);
    assert_eq!(e.stats().edges, 6 + 2 + 2 + 1);

    // Forget: one message to the episode's shard.
    e.forget(EpisodeId(s)).unwrap();
    assert!(matches!(
        e.forget(EpisodeId(s)),
        Err(EngineError::UnknownEpisode { .. })
    ));
    let m5 = messages(&e);
    assert_eq!(delta(&m4, &m5, MessageKind::Forget), vec![0, 0, 0, 2]);

    // The Prometheus text carries the same counts.
    let text = e.metrics_text();
    let line = text
        .lines()
        .find(|l| l.starts_with("locus_engine_messages_total{shard=\"3\",") && l.contains("kind=\"edges\""))
        .unwrap();
    assert!(
        line.ends_with(&format!(" {}", m5[3][&MessageKind::Edges])),
        "{line}"
    );
    assert!(
        e.degradations().iter().all(|d| !d.contains("associations lost")),
        "{:?}",
        e.degradations()
    );
    assert!(
        e.metrics_snapshot()
            .shards
            .iter()
            .all(|s| s.edges_lost == 0 && s.tasks_off_node == 0)
    );
}

/// Episodes with streams and links, the same in every engine.
fn fill(e: &Engine) -> Vec<(u64, Vec<f32>)> {
    let mut rng = Rng::new(11);
    let mut data = Vec::new();
    for i in 0..300u64 {
        let v = rng.vector(8);
        let mut ep = Episode::new(v.clone())
            .with_id(i)
            .in_stream(format!("s{}", i % 5));
        if i >= 10 && i % 3 == 0 {
            ep = ep.with_link(i - 10, 0.6);
        }
        if i >= 7 && i % 4 == 0 {
            ep = ep.with_link_from(i - 7, 0.3);
        }
        e.observe(ep).unwrap();
        data.push((i, v));
    }
    data
}

#[test]
fn complete_recall_and_spread_answer_as_one_shard_does_through_messages() {
    let one = engine(1, 1.0);
    let four = engine(4, 1.0);
    // Exact scans of the append buffers: the two engines' candidates cannot differ by index.
    one.set_absorption(false);
    four.set_absorption(false);
    let data = fill(&one);
    fill(&four);
    assert_eq!(one.stats().edges, four.stats().edges);
    let mut rng = Rng::new(5);
    let spread = SpreadParams {
        threshold: 0.0,
        ..SpreadParams::default()
    };
    for round in 0..10 {
        // Completion from half the dimensions of a stored episode.
        let (id, v) = &data[round * 29];
        let mask: Vec<bool> = (0..8).map(|d| d % 2 == round % 2).collect();
        let before = messages(&four);
        let a = one.complete(v, &mask, 3).unwrap();
        let b = four.complete(v, &mask, 3).unwrap();
        let after = messages(&four);
        assert_eq!(
            a.supporting.iter().map(|s| s.0).collect::<Vec<_>>(),
            b.supporting.iter().map(|s| s.0).collect::<Vec<_>>(),
            "episode {id}"
        );
        for (x, y) in a.embedding.iter().zip(&b.embedding) {
            assert!(
                (x - y).abs() < 1e-5,
                "episode {id}: {:?} vs {:?}",
                a.embedding,
                b.embedding
            );
        }
        // One search per shard; scoring and rows only from shards holding candidates (at least
        // one, at most all four, per scoring round: two rounds of `score`, one of `rows`).
        assert_eq!(delta(&before, &after, MessageKind::Search), vec![1, 1, 1, 1]);
        let score: u64 = delta(&before, &after, MessageKind::Score).iter().sum();
        let rows: u64 = delta(&before, &after, MessageKind::Rows).iter().sum();
        assert!((1..=8).contains(&score), "{score} score messages");
        assert!(
            (1..=3).contains(&rows),
            "{rows} rows messages for 3 supporting episodes"
        );
        assert!(delta(&before, &after, MessageKind::Hop).iter().sum::<u64>() >= 1);

        // Recall with spreading: the same hits and scores.
        let cue = Cue::new(rng.vector(8), 10).with_spread(spread.clone());
        let before = messages(&four);
        let (ra, rb) = (one.recall(&cue).unwrap(), four.recall(&cue).unwrap());
        let after = messages(&four);
        assert!(!ra.partial && !rb.partial);
        assert_eq!(ra.hits.len(), rb.hits.len());
        for (x, y) in ra.hits.iter().zip(&rb.hits) {
            assert_eq!(x.id, y.id);
            assert!((x.score - y.score).abs() < 1e-5 && (x.activation - y.activation).abs() < 1e-5);
        }
        assert_eq!(delta(&before, &after, MessageKind::Search), vec![1, 1, 1, 1]);
        assert!((1..=4).contains(&delta(&before, &after, MessageKind::Score).iter().sum::<u64>()));

        // A spread from given seeds.
        let seeds = [(EpisodeId(*id), 1.0), (EpisodeId(data[round * 17 + 3].0), 0.5)];
        let before = messages(&four);
        let (sa, sb) = (
            one.spread(&seeds, &spread).unwrap(),
            four.spread(&seeds, &spread).unwrap(),
        );
        let after = messages(&four);
        assert_eq!(
            sa.hits.iter().map(|h| (h.id, h.activation)).collect::<Vec<_>>(),
            sb.hits.iter().map(|h| (h.id, h.activation)).collect::<Vec<_>>()
        );
        let locate: u64 = delta(&before, &after, MessageKind::Locate).iter().sum();
        assert!((1..=2).contains(&locate), "{locate} locate messages for 2 seeds");
        assert!(delta(&before, &after, MessageKind::Hop).iter().sum::<u64>() >= 1);
        assert_eq!(delta(&before, &after, MessageKind::Spread).iter().sum::<u64>(), 0);
    }
    // The one-shard engine runs a spread as one task.
    assert!(messages(&one)[0][&MessageKind::Spread] >= 10);
    for e in [&one, &four] {
        assert!(
            e.degradations().iter().all(|d| !d.contains("associations lost")),
            "{:?}",
            e.degradations()
        );
    }
}

#[test]
fn concurrent_observers_linking_across_shards_see_their_edges_and_never_deadlock() {
    let e = Arc::new(engine(4, 0.5));
    for i in 0..40u64 {
        e.observe(Episode::new(unit(i)).with_id(i).in_stream("base"))
            .unwrap();
    }
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::new(t + 1);
                for n in 0..150u64 {
                    let id = 1000 + t * 1000 + n;
                    let target = rng.next_u64() % 40;
                    let ep = Episode::new(rng.vector(8))
                        .with_id(id)
                        .in_stream(format!("t{t}"))
                        .with_link(target, 0.5);
                    loop {
                        match e.observe(ep.clone()) {
                            Ok(_) => break,
                            Err(EngineError::Overloaded { retry_after, .. }) => {
                                std::thread::sleep(retry_after.min(Duration::from_millis(5)))
                            }
                            Err(err) => panic!("{err}"),
                        }
                    }
                    // Visible at once on the target's shard.
                    assert!(
                        e.get(EpisodeId(target))
                            .unwrap()
                            .links
                            .iter()
                            .any(|l| l.0 == EpisodeId(id)),
                        "{target} → {id} missing after observe returned"
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // 39 stream pairs among the base episodes, 4 × 149 among each thread's, 600 links: two
    // directions each.
    assert_eq!(e.stats().edges, 2 * (39 + 4 * 149 + 600));
    assert!(
        e.degradations().iter().all(|d| !d.contains("associations lost")),
        "{:?}",
        e.degradations()
    );
}

#[test]
fn a_missed_deadline_is_a_typed_error_and_the_edges_still_land() {
    // No time at all to answer: every wait ends at once (a worker that answers first is a race
    // the caller may still win, hence the retries below).
    let e = small(8)
        .shards(ShardCount::Exactly(4))
        .admission(AdmissionLimits {
            max_unindexed: 100_000,
            observe_deadline: Duration::ZERO,
            ..AdmissionLimits::default()
        })
        .open()
        .unwrap();
    let ids = ids_by_shard(&e, 1, 2);
    let wait_for = |what: &dyn Fn() -> bool| {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        while !what() {
            assert!(std::time::Instant::now() < end, "never happened");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let observe = |ep: Episode, id: u64| match e.observe(ep) {
        Ok(got) => assert_eq!(got, EpisodeId(id)),
        Err(EngineError::TimedOut { id: Some(got), .. }) => assert_eq!(got, id),
        Err(err) => panic!("{err}"),
    };
    let (a, b, c) = (ids[0][0], ids[1][0], ids[2][0]);
    observe(Episode::new(unit(a)).with_id(a), a);
    wait_for(&|| e.get(EpisodeId(a)).is_some());
    observe(Episode::new(unit(c)).with_id(c), c);
    wait_for(&|| e.get(EpisodeId(c)).is_some());
    // Linked to `a` on another shard: whatever observe answered, the reverse edge lands.
    observe(Episode::new(unit(b)).with_id(b).with_link(a, 0.5), b);
    wait_for(&|| {
        e.get(EpisodeId(a))
            .is_some_and(|r| r.links.contains(&(EpisodeId(b), 0.5)))
    });
    let mut timed_out = 0;
    for _ in 0..20 {
        match e.associate(EpisodeId(a), EpisodeId(c), 0.1) {
            Ok(()) => {}
            Err(EngineError::TimedOut { id: None, .. }) => timed_out += 1,
            Err(err) => panic!("{err}"),
        }
    }
    assert!(timed_out > 0, "no associate saw its deadline pass");
    assert!(
        e.degradations().iter().all(|d| !d.contains("associations lost")),
        "{:?}",
        e.degradations()
    );
}
