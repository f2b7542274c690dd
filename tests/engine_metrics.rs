//! The engine's metrics: Prometheus text that follows the conventions (one `# TYPE` per family,
//! `locus_` names, `_total` counters, histogram buckets fixed between scrapes, labels shard /
//! node / space) and a JSON snapshot that agrees with it.

mod engine_support;

use std::collections::BTreeMap;

use engine_support::{Rng, small};
use locus::engine::{Cue, EngineError, Episode};

#[test]
fn prometheus_text_and_json_snapshot_follow_the_conventions() {
    let e = small(8).space("t", 3).open().unwrap();
    let mut rng = Rng::new(9);
    for _ in 0..20 {
        e.observe(Episode::new(rng.vector(8))).unwrap();
    }
    for _ in 0..5 {
        let r = e.observe(Episode::new(rng.vector(8)).in_space("t"));
        assert!(matches!(r, Ok(_) | Err(EngineError::QuotaExceeded { .. })));
    }
    e.recall(&Cue::new(rng.vector(8), 3)).unwrap();
    let first = e.metrics_text();
    e.recall(&Cue::new(rng.vector(8), 3)).unwrap();
    let second = e.metrics_text();
    // Every family is typed exactly once, and every sample belongs to a typed family.
    let mut types = BTreeMap::new();
    for line in first.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line[7..].split(' ');
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        assert!(
            types.insert(name.to_string(), kind.to_string()).is_none(),
            "{name} typed twice"
        );
        assert!(name.starts_with("locus_"), "{name}");
        assert_eq!(
            name.ends_with("_total"),
            kind == "counter",
            "{name}: counters and only counters end in _total"
        );
    }
    for line in first.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample of an untyped family: {line}");
    }
    // Histogram bucket boundaries are the same in both scrapes.
    let les = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("locus_engine_recall_duration_seconds_bucket"))
            .map(|l| {
                l.split("le=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(les(&first), les(&second));
    assert_eq!(les(&first).last().map(String::as_str), Some("+Inf"));
    let count = |t: &str| -> f64 {
        t.lines()
            .find(|l| l.starts_with("locus_engine_recall_duration_seconds_count"))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!((count(&first), count(&second)), (1.0, 2.0));
    assert!(first.contains("locus_engine_episodes{shard=\"0\",node=\""));
    assert!(
        first.contains("space=\"t\",reason=\"quota\"} 2"),
        "2 of 5 refused by quota"
    );
    // The JSON snapshot says the same.
    let snap = e.metrics_snapshot();
    let json = serde_json::to_value(&snap).unwrap();
    assert_eq!(json["recall"]["quantiles"]["count"], 2);
    let t = snap.shards[0].spaces.iter().find(|s| s.space == "t").unwrap();
    assert_eq!((t.episodes, t.accepted), (3, 3));
}
