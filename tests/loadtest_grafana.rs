//! `docs/grafana/locus.json` queries only metrics that exist: every `locus_*` name in its
//! expressions is a family (or a histogram's `_bucket`/`_sum`/`_count` series) that the engine
//! or the load test exports.

use std::collections::BTreeSet;

use locus::engine::{Cue, Engine, Episode, SpreadParams};
use locus::loadtest::live::LiveStats;

/// Names of series in a Prometheus exposition (families and their histogram series).
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                names.insert(name.to_string());
                if kind == "histogram" || kind == "summary" {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// Every `locus_*` identifier in a PromQL expression.
fn queried(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("locus_") {
        let start = i + at;
        let preceded = start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if !preceded {
            out.push(expr[start..end].to_string());
        }
        i = end;
    }
    out
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "expr" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_string());
                    }
                } else {
                    exprs(x, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| exprs(x, out)),
        _ => {}
    }
}

#[test]
fn dashboard_queries_only_exported_metrics() {
    let engine = Engine::builder().dimension(4).pin_workers(false).open().unwrap();
    engine.observe(Episode::new(vec![1.0, 0.0, 0.0, 0.0])).unwrap();
    engine.observe(Episode::new(vec![0.0, 1.0, 0.0, 0.0])).unwrap();
    engine
        .recall(&Cue::new(vec![1.0, 0.1, 0.0, 0.0], 1).with_spread(SpreadParams::default()))
        .unwrap();
    engine
        .complete(&[1.0, 0.0, 0.0, 0.0], &[true, true, false, false], 1)
        .unwrap();
    let mut names = exported(&engine.metrics_text());
    names.extend(exported(&LiveStats::new().prometheus_text()));
    assert!(
        names.contains("locus_engine_recall_duration_seconds_bucket"),
        "{names:?}"
    );

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/grafana/locus.json");
    let dash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut all = Vec::new();
    exprs(&dash, &mut all);
    assert!(all.len() >= 10, "only {} queries", all.len());
    let mut checked = 0;
    for e in &all {
        for name in queried(e) {
            assert!(
                names.contains(&name),
                "the dashboard queries `{name}` ({e}), which nothing exports"
            );
            checked += 1;
        }
    }
    assert!(checked >= all.len());
}

#[test]
fn the_check_catches_a_wrong_name() {
    assert_eq!(
        queried("rate(locus_engine_nope_total[1m]) + xlocus_y"),
        vec!["locus_engine_nope_total"]
    );
    assert!(!exported("# TYPE locus_a counter\nlocus_a 1\n").contains("locus_engine_nope_total"));
}
