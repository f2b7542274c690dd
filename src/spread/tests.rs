//! Unit and property tests of the spread: a plain f64 reference spread, multi-shard equality,
//! racing appends, bad input.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::alloc::NodeArena;

fn graph(max_nodes: usize, edges: usize) -> AssocGraph {
    let bytes = GraphConfig::arena_bytes_for(max_nodes, edges) + SpreadScratch::bytes_for(max_nodes);
    let arena = Arc::new(NodeArena::on_node(0, bytes).expect("arena"));
    AssocGraph::new(arena, GraphConfig::with_max_nodes(max_nodes)).expect("graph")
}

/// The plain reference: f64 activation, hash maps, one thread, nothing clever.
fn reference(
    edges: &HashMap<u64, Vec<(u64, f32)>>,
    nodes: &[u64],
    seeds: &[(u64, f32)],
    p: &SpreadParams,
) -> Vec<(u64, f64, u32)> {
    let factors = p.decay.per_hop(p.max_hops).expect("decay");
    let mut total: HashMap<u64, (f64, u32)> = HashMap::new();
    let mut frontier: HashMap<u64, f64> = HashMap::new();
    for &(s, a) in seeds {
        *frontier.entry(s).or_insert(0.0) += f64::from(a);
    }
    for (&s, &a) in &frontier {
        total.insert(s, (if p.include_seeds { a } else { 0.0 }, 0));
    }
    frontier.retain(|_, a| *a >= p.threshold);
    for hop in 1..=p.max_hops {
        let mut next: HashMap<u64, f64> = HashMap::new();
        for (&u, &a) in &frontier {
            let mut out = edges.get(&u).cloned().unwrap_or_default();
            out.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            if p.fan_out > 0 {
                out.truncate(p.fan_out);
            }
            for (t, w) in out {
                if nodes.contains(&t) {
                    *next.entry(t).or_insert(0.0) += a * factors[hop as usize - 1] * f64::from(w);
                }
            }
        }
        for (&t, &a) in &next {
            let e = total.entry(t).or_insert((0.0, hop));
            e.0 += a;
        }
        next.retain(|_, a| *a >= p.threshold);
        frontier = next;
    }
    let seed_ids: Vec<u64> = seeds.iter().map(|s| s.0).collect();
    let mut out: Vec<(u64, f64, u32)> = total
        .into_iter()
        .filter(|(id, (t, _))| {
            (p.include_seeds || !seed_ids.contains(id)) && *t > 0.0 && *t >= p.result_threshold
        })
        .map(|(id, (t, h))| (id, t, h))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(p.k);
    out
}

/// Equal within 1e-6 relative, same top-k, where a swap is allowed only between near-ties.
fn assert_matches(got: &SpreadResult, want: &[(u64, f64, u32)]) {
    assert_eq!(got.hits.len(), want.len(), "got {:?}\nwant {want:?}", got.hits);
    for (h, w) in got.hits.iter().zip(want) {
        let tol = 1e-6 * w.1.abs() + 1e-15;
        assert!((h.activation - w.1).abs() <= tol, "activation {h:?} vs {w:?}");
        if h.id != w.0 {
            // Only a near-tie may reorder.
            let wv = want.iter().find(|x| x.0 == h.id).map(|x| x.1);
            assert!(
                wv.is_some_and(|v| (v - w.1).abs() <= tol),
                "top-k differs: {h:?} vs {w:?}"
            );
        } else {
            assert_eq!(h.hops, w.2, "hop distance of {}", h.id);
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    nodes: Vec<u64>,
    edges: Vec<(u64, u64, f32)>,
}

impl Case {
    fn adjacency(&self) -> HashMap<u64, Vec<(u64, f32)>> {
        let mut m: HashMap<u64, Vec<(u64, f32)>> = HashMap::new();
        for &(a, b, w) in &self.edges {
            let out = m.entry(a).or_default();
            match out.iter_mut().find(|e| e.0 == b) {
                Some(e) => e.1 += w,
                None => out.push((b, w)),
            }
        }
        m
    }

    fn build(&self, g: &AssocGraph, keep: impl Fn(u64) -> bool) {
        for &n in &self.nodes {
            if keep(n) {
                g.add_node(n).expect("add");
            }
        }
        for &(a, b, w) in &self.edges {
            if keep(a) {
                g.associate(a, b, w).expect("associate");
            }
        }
    }
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (2usize..40).prop_flat_map(|n| {
        let edges = prop::collection::vec((0..n as u64, 0..n as u64, 0.01f32..1.5), 0..n * 6);
        (Just(n), edges).prop_map(|(n, edges)| Case {
            // Sparse, unordered ids, so local indexes differ from ids.
            nodes: (0..n as u64).map(|i| i * 7 + 3).collect(),
            edges: edges
                .into_iter()
                .map(|(a, b, w)| (a * 7 + 3, b * 7 + 3, w))
                .collect(),
        })
    })
}

fn params_strategy() -> impl Strategy<Value = SpreadParams> {
    (
        1u32..5,
        prop_oneof![
            (0.1f64..1.0).prop_map(|factor| Decay::Exponential { factor }),
            (0.0f64..2.0).prop_map(|exponent| Decay::PowerLaw { exponent }),
            (0.0f64..0.3).prop_map(|step| Decay::Linear { step }),
            prop::collection::vec(0.0f64..1.0, 5).prop_map(Decay::Table),
        ],
        prop_oneof![Just(0.0), 0.0f64..0.2],
        prop_oneof![Just(0.0), 0.0f64..0.05],
        prop_oneof![Just(0usize), 1usize..4],
        1usize..12,
        any::<bool>(),
    )
        .prop_map(
            |(max_hops, decay, threshold, result_threshold, fan_out, k, include_seeds)| SpreadParams {
                max_hops,
                decay,
                threshold,
                result_threshold,
                fan_out,
                k,
                include_seeds,
                budget: None,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn production_spread_equals_the_reference(
        case in case_strategy(),
        params in params_strategy(),
        seed_picks in prop::collection::vec((any::<prop::sample::Index>(), 0.0f32..2.0), 1..4),
    ) {
        let g = graph(64, case.edges.len());
        case.build(&g, |_| true);
        let seeds: Vec<(u64, f32)> =
            seed_picks.iter().map(|(i, a)| (case.nodes[i.index(case.nodes.len())], *a)).collect();
        let mut scratch = SpreadScratch::for_graph(&g).expect("scratch");
        let got = g.spread(&seeds, &params, &mut scratch).expect("spread");
        assert_matches(&got, &reference(&case.adjacency(), &case.nodes, &seeds, &params));
        // A reused scratch gives the same bits.
        let again = g.spread(&seeds, &params, &mut scratch).expect("spread");
        prop_assert_eq!(&again.hits, &got.hits);
    }

    #[test]
    fn multi_shard_equals_single_shard_to_the_bit(
        case in case_strategy(),
        params in params_strategy(),
        shards in 2usize..5,
        seed_picks in prop::collection::vec((any::<prop::sample::Index>(), 0.0f32..2.0), 1..4),
        parallel in any::<bool>(),
    ) {
        let whole = graph(64, case.edges.len());
        case.build(&whole, |_| true);
        let parts: Vec<AssocGraph> = (0..shards).map(|_| graph(64, case.edges.len())).collect();
        let shard_of = |id: u64| (id as usize / 7) % shards;
        for (s, g) in parts.iter().enumerate() {
            case.build(g, |id| shard_of(id) == s);
        }
        let seeds: Vec<(u64, f32)> =
            seed_picks.iter().map(|(i, a)| (case.nodes[i.index(case.nodes.len())], *a)).collect();
        let mut scratch = SpreadScratch::for_graph(&whole).expect("scratch");
        let single = whole.spread(&seeds, &params, &mut scratch).expect("single");
        let runner = LocalShards::new(parts.iter().collect(), parallel).expect("runner");
        let multi = spread_across(&runner, &shard_of, shards, &seeds, &params).expect("multi");
        prop_assert_eq!(&multi.hits, &single.hits);
        prop_assert!(!multi.partial);
    }
}

#[test]
fn hop_requests_split_into_items_merge_to_the_same_reply() {
    let case = Case {
        nodes: (0..50).collect(),
        edges: (0..50u64)
            .flat_map(|i| (1..6).map(move |j| (i, (i * 3 + j * 11) % 50, 0.1 * j as f32)))
            .collect(),
    };
    let g = graph(64, case.edges.len());
    case.build(&g, |_| true);
    let mut scratch = SpreadScratch::for_graph(&g).expect("scratch");
    let req = HopRequest {
        hop: 2,
        inbox: (0..50u64)
            .map(|i| (i, fixed::to_fixed(0.01 * i as f64)))
            .collect(),
        seeds: false,
        propagate: true,
        factor: 0.5,
        threshold: fixed::to_fixed(0.05),
        fan_out: 3,
    };
    let whole = g.apply_hop(&req, &mut scratch).expect("whole");
    let items: Vec<HopReply> = req
        .split(7)
        .iter()
        .map(|r| g.apply_hop(r, &mut scratch).expect("item"))
        .collect();
    assert_eq!(items.len(), 8);
    let merged = HopReply::merge(items);
    assert_eq!(merged.outgoing, whole.outgoing);
    assert_eq!(merged.edges_scanned, whole.edges_scanned);
    let mut a = merged.received.clone();
    a.sort_unstable();
    let mut b = whole.received.clone();
    b.sort_unstable();
    assert_eq!(a, b);
}

#[test]
fn cross_shard_messages_are_one_batch_per_hop_and_destination() {
    // A chain 0 → 1 → 2 → 3 across four shards: each hop sends one batch to the next shard.
    let g: Vec<AssocGraph> = (0..4).map(|_| graph(8, 8)).collect();
    for (s, gr) in g.iter().enumerate() {
        gr.add_node(s as u64).expect("add");
        gr.associate(s as u64, (s as u64 + 1) % 4, 0.5).expect("edge");
    }
    let runner = LocalShards::new(g.iter().collect(), false).expect("runner");
    let r = spread_across(
        &runner,
        &|id| id as usize,
        4,
        &[(0, 1.0)],
        &SpreadParams::default(),
    )
    .expect("spread");
    assert_eq!(r.stats.messages, 3, "{:?}", r.stats);
    let ids: Vec<u64> = r.hits.iter().map(|h| h.id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(r.hits[0].activation, 0.25);
    assert_eq!(r.hits[2].hops, 3);
}

#[test]
fn forgotten_nodes_neither_propagate_nor_appear() {
    let g = graph(16, 16);
    for i in 0..4 {
        g.add_node(i).expect("add");
    }
    g.associate(0, 1, 1.0).expect("e");
    g.associate(1, 2, 1.0).expect("e");
    g.associate(0, 3, 1.0).expect("e");
    g.forget(1).expect("forget");
    assert!(!g.contains(1));
    assert_eq!(g.len(), 3);
    let mut s = SpreadScratch::for_graph(&g).expect("scratch");
    let r = g
        .spread(&[(0, 1.0)], &SpreadParams::default(), &mut s)
        .expect("spread");
    let ids: Vec<u64> = r.hits.iter().map(|h| h.id).collect();
    assert_eq!(ids, vec![3]);
    assert!(matches!(g.add_node(1), Err(SpreadError::Forgotten { id: 1 })));
    assert!(matches!(g.forget(1), Err(SpreadError::Forgotten { id: 1 })));
    assert!(matches!(
        g.associate(1, 0, 1.0),
        Err(SpreadError::Forgotten { id: 1 })
    ));
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let g = graph(4, 8);
    g.add_node(1).expect("add");
    g.add_node(2).expect("add");
    g.associate(1, 2, 0.5).expect("edge");
    let before = g.out_edges(1);
    for w in [f32::NAN, -1.0, 0.0, f32::INFINITY] {
        assert!(
            matches!(g.associate(1, 2, w), Err(SpreadError::InvalidWeight { .. })),
            "{w}"
        );
    }
    assert_eq!(g.out_edges(1), before);
    assert!(matches!(
        g.associate(9, 2, 0.5),
        Err(SpreadError::UnknownNode { id: 9 })
    ));
    assert!(matches!(
        g.add_node(u64::MAX),
        Err(SpreadError::ReservedId { .. })
    ));
    assert!(matches!(
        g.associate(1, u64::MAX, 0.5),
        Err(SpreadError::ReservedId { .. })
    ));
    g.add_node(3).expect("add");
    g.add_node(4).expect("add");
    assert!(matches!(
        g.add_node(5),
        Err(SpreadError::GraphFull { max_nodes: 4 })
    ));
    assert_eq!(g.len(), 4);
    assert!(!g.add_node(3).expect("present"));

    let mut s = SpreadScratch::for_graph(&g).expect("scratch");
    let ok = SpreadParams::default();
    let err = |p: &SpreadParams, seeds: &[(u64, f32)], s: &mut SpreadScratch| g.spread(seeds, p, s);
    assert!(matches!(
        err(&ok, &[(77, 1.0)], &mut s),
        Err(SpreadError::UnknownSeed { id: 77 })
    ));
    assert!(matches!(
        err(&ok, &[(1, f32::NAN)], &mut s),
        Err(SpreadError::InvalidWeight { .. })
    ));
    assert!(matches!(
        err(&ok, &[(1, -1.0)], &mut s),
        Err(SpreadError::InvalidWeight { .. })
    ));
    assert!(matches!(
        err(&ok, &[], &mut s),
        Err(SpreadError::InvalidInput { .. })
    ));
    for bad in [
        SpreadParams {
            max_hops: 0,
            ..ok.clone()
        },
        SpreadParams { k: 0, ..ok.clone() },
        SpreadParams {
            max_hops: MAX_HOPS + 1,
            ..ok.clone()
        },
        SpreadParams {
            threshold: f64::NAN,
            ..ok.clone()
        },
        SpreadParams {
            result_threshold: -1.0,
            ..ok.clone()
        },
        SpreadParams {
            decay: Decay::Exponential { factor: f64::NAN },
            ..ok.clone()
        },
        SpreadParams {
            decay: Decay::Table(vec![0.5]),
            ..ok.clone()
        },
    ] {
        assert!(
            matches!(bad.validate(), Err(SpreadError::InvalidInput { .. })),
            "{bad:?}"
        );
        assert!(matches!(
            err(&bad, &[(1, 1.0)], &mut s),
            Err(SpreadError::InvalidInput { .. })
        ));
    }
    let mut small = SpreadScratch::new(2);
    assert!(matches!(
        g.spread(&[(1, 1.0)], &ok, &mut small),
        Err(SpreadError::ScratchTooSmall { .. })
    ));
    // The multi-shard driver refuses the same inputs, and a bad route.
    let runner = LocalShards::new(vec![&g], false).expect("runner");
    assert!(matches!(
        spread_across(&runner, &|_| 0, 1, &[(77, 1.0)], &ok),
        Err(SpreadError::UnknownSeed { id: 77 })
    ));
    assert!(matches!(
        spread_across(&runner, &|_| 3, 1, &[(1, 1.0)], &ok),
        Err(SpreadError::Shard { shard: 3, .. })
    ));
    // The graph still answers as before.
    let r = g.spread(&[(1, 1.0)], &ok, &mut s).expect("spread");
    assert_eq!(r.hits.len(), 1);
    assert_eq!(r.hits[0].activation, 0.25);
}

#[test]
fn a_full_arena_is_a_typed_error_and_the_edge_is_not_half_added() {
    // Room for the id map and one node chunk, little else.
    let arena = Arc::new(NodeArena::on_node(0, 300 * 1024).expect("arena"));
    let g = AssocGraph::new(arena, GraphConfig::with_max_nodes(1000)).expect("graph");
    g.add_node(0).expect("node");
    let mut added = 0u64;
    let err = loop {
        match g.associate(0, added + 1, 1.0) {
            Ok(()) => added += 1,
            Err(e) => break e,
        }
        assert!(added < 1_000_000, "arena never filled");
    };
    assert!(matches!(err, SpreadError::Arena(_)), "{err}");
    assert_eq!(g.degree(0), Some(added as u32));
    assert_eq!(g.out_edges(0).map(|e| e.len()), Some(added as usize));
}

#[test]
fn strengthening_adds_to_the_weight() {
    let g = graph(4, 4);
    g.add_node(1).expect("add");
    g.associate(1, 2, 0.25).expect("e");
    g.associate(1, 2, 0.5).expect("e");
    assert_eq!(g.out_edges(1), Some(vec![(2, 0.75)]));
    assert_eq!(g.edge_count(), 1);
    assert_eq!(g.meta(1).map(|m| m.associations()), Some(2));
}

#[test]
fn edges_to_nodes_added_later_are_followed() {
    let g = graph(8, 8);
    g.add_node(1).expect("add");
    g.associate(1, 2, 1.0).expect("edge to a node not yet here");
    let mut s = SpreadScratch::for_graph(&g).expect("scratch");
    let p = SpreadParams::default();
    assert!(g.spread(&[(1, 1.0)], &p, &mut s).expect("spread").hits.is_empty());
    g.add_node(2).expect("add");
    let r = g.spread(&[(1, 1.0)], &p, &mut s).expect("spread");
    assert_eq!(r.hits.len(), 1);
    assert_eq!(r.hits[0].id, 2);
}

#[test]
fn appends_racing_spreads_never_tear() {
    // Every edge u → v carries weight (u + v) mod 97 + 1 (exact in f32). Readers check every
    // edge they see against the rule while writers append; a torn edge would break it.
    let n = 400u64;
    let g = graph(n as usize, 40_000);
    for i in 0..n {
        g.add_node(i).expect("add");
    }
    let weight = |u: u64, v: u64| ((u + v) % 97 + 1) as f32;
    std::thread::scope(|s| {
        for w in 0..2u64 {
            let g = &g;
            s.spawn(move || {
                for i in 0..8000u64 {
                    let u = (i * 31 + w) % n;
                    let v = (i * 17 + 5 * w + 1) % n;
                    // Strengthening would change the weight: only add new pairs.
                    if g.out_edges(u).is_some_and(|e| e.iter().any(|x| x.0 == v)) {
                        continue;
                    }
                    g.associate(u, v, weight(u, v)).expect("associate");
                }
            });
        }
        for r in 0..2u64 {
            let g = &g;
            s.spawn(move || {
                let mut scratch = SpreadScratch::for_graph(g).expect("scratch");
                let p = SpreadParams {
                    fan_out: 4,
                    ..SpreadParams::default()
                };
                for i in 0..300u64 {
                    let u = (i * 13 + r) % n;
                    for (v, w) in g.out_edges(u).unwrap_or_default() {
                        assert!(v < n, "torn target {v}");
                        assert_eq!(w, weight(u, v), "torn weight on {u} -> {v}");
                    }
                    let res = g.spread(&[(u, 1.0)], &p, &mut scratch).expect("spread");
                    assert!(res.hits.iter().all(|h| h.id < n && h.activation.is_finite()));
                }
            });
        }
    });
}

#[test]
fn scratch_pool_counts_hits_and_misses() {
    let g = graph(16, 16);
    g.add_node(1).expect("add");
    let pool = ScratchPool::new();
    for _ in 0..10 {
        let mut s = pool.take(&g).expect("scratch");
        g.spread(&[(1, 1.0)], &SpreadParams::default(), &mut s)
            .expect("spread");
        pool.give_back(s);
    }
    let m = g.metrics().snapshot();
    assert_eq!((m.scratch_hits, m.scratch_misses), (9, 1));
    assert!((m.pool_hit_rate() - 0.9).abs() < 1e-12);
    assert_eq!(m.spreads, 10);
}

#[test]
fn a_zero_budget_cuts_a_warmed_spread_and_marks_it_partial() {
    let g = graph(256, 4096);
    for i in 0..256u64 {
        g.add_node(i).expect("add");
        for j in 1..9 {
            g.associate(i, (i * 7 + j * 13) % 256, 0.5).expect("edge");
        }
    }
    let mut s = SpreadScratch::for_graph(&g).expect("scratch");
    let p = SpreadParams::default();
    for i in 0..40 {
        assert!(!g.spread(&[(i, 1.0)], &p, &mut s).expect("warm").partial);
    }
    let tight = SpreadParams {
        budget: Some(std::time::Duration::ZERO),
        ..p
    };
    let r = g.spread(&[(1, 1.0)], &tight, &mut s).expect("spread");
    assert!(r.partial);
    assert_eq!(r.stats.hops_run, 0);
    assert!(g.metrics().snapshot().truncations >= 1);
}

#[test]
fn a_forgotten_node_among_the_finalists_gives_its_place_to_the_next() {
    let g = graph(8, 8);
    for i in 0..4 {
        g.add_node(i).expect("add");
    }
    g.associate(0, 1, 1.0).expect("e");
    g.associate(0, 2, 0.5).expect("e");
    g.associate(0, 3, 0.5).expect("e");
    g.forget(1).expect("forget");
    let mut s = SpreadScratch::for_graph(&g).expect("scratch");
    let p = SpreadParams {
        k: 1,
        ..SpreadParams::default()
    };
    let r = g.spread(&[(0, 1.0)], &p, &mut s).expect("spread");
    let ids: Vec<u64> = r.hits.iter().map(|h| h.id).collect();
    assert_eq!(ids, vec![2], "tie between 2 and 3 breaks by id");
}

#[test]
fn strengthened_weights_saturate_finite_and_spreads_stay_finite() {
    let g = graph(4, 8);
    for id in [1, 2] {
        g.add_node(id).unwrap();
    }
    g.associate(1, 2, 3e38).unwrap();
    g.associate(1, 2, 3e38).unwrap();
    let w = g.out_edges(1).unwrap();
    assert_eq!(
        w,
        vec![(2, f32::MAX)],
        "the sum saturates at f32::MAX, never +inf"
    );
    for _ in 0..10 {
        g.associate(1, 2, f32::MAX).unwrap();
    }
    assert!(g.out_edges(1).unwrap()[0].1.is_finite());
    let mut scratch = SpreadScratch::for_graph(&g).unwrap();
    let r = g
        .spread(&[(1, 1.0)], &SpreadParams::default(), &mut scratch)
        .unwrap();
    assert!(r.hits.iter().all(|h| h.activation.is_finite()), "{:?}", r.hits);
}
