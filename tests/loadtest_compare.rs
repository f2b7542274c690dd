//! `locus compare` on crafted result files: each exit status (0, 1, 2, 3) for the case it names.

use std::path::{Path, PathBuf};
use std::process::Command;

use locus::loadtest::driver::{RunOptions, run};
use locus::loadtest::result::RunResult;
use locus::loadtest::scenario;
use locus::loadtest::target::NoopTarget;

fn base() -> RunResult {
    let s = scenario::parse(
        "name = \"cmp\"\nduration = \"300ms\"\n[arrival]\nkind = \"constant\"\nrate = 1000\n[data]\npreload = 0\n",
        "cmp.toml",
    )
    .unwrap();
    let mut r = run(&s, &NoopTarget, &RunOptions::default()).unwrap();
    // Fixed figures, so the verdicts depend only on the edits below.
    for o in r.ops.values_mut().chain(std::iter::once(&mut r.overall)) {
        o.latency_us.p50 = 100.0;
        o.latency_us.p95 = 200.0;
        o.latency_us.p99 = 300.0;
        o.latency_us.p999 = 400.0;
        o.throughput_ops_s = 1000.0;
        o.errors.clear();
        o.rejected = 0;
    }
    r
}

fn write(dir: &Path, name: &str, r: &RunResult) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string(r).unwrap()).unwrap();
    p
}

fn compare(args: &[&Path]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_locus"))
        .arg("compare")
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let before = base();
    let b = write(d, "before.json", &before);

    // Same figures, and a small P99 rise (4 %): within limits.
    let mut ok = before.clone();
    ok.overall.latency_us.p99 = 312.0;
    let (code, text) = compare(&[&b, &write(d, "ok.json", &ok)]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("+4.0%"), "{text}");

    // P99 up 10 %: internal regression.
    let mut slow = before.clone();
    slow.ops.get_mut("recall").unwrap().latency_us.p99 = 330.0;
    let (code, text) = compare(&[&b, &write(d, "slow.json", &slow)]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("recall: P99"), "{text}");

    // Throughput down 6 %: internal regression.
    let mut thin = before.clone();
    thin.overall.throughput_ops_s = 940.0;
    assert_eq!(compare(&[&b, &write(d, "thin.json", &thin)]).0, 1);

    // One error more: internal regression.
    let mut err = before.clone();
    err.overall.errors.insert("timeout".into(), 1);
    assert_eq!(compare(&[&b, &write(d, "err.json", &err)]).0, 1);

    // Competitive: 300 µs is within 10 % of 280 µs, not of 250 µs.
    let comp = |p99: f64| {
        format!(
            r#"{{"schema":"locus-competitive/1","baselines":[{{"system":"peer 1.0","op":"all","p99_us":{p99},
            "throughput_ops_s":null,"source":"crafted","measured":"in this test"}}]}}"#
        )
    };
    let near = d.join("near.json");
    std::fs::write(&near, comp(280.0)).unwrap();
    let far = d.join("far.json");
    std::fs::write(&far, comp(250.0)).unwrap();
    let same = write(d, "same.json", &before);
    let flag = Path::new("--competitive");
    assert_eq!(compare(&[&b, &same, flag, &near]).0, 0);
    let (code, text) = compare(&[&b, &same, flag, &far]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("peer 1.0"), "{text}");

    // Unreadable, wrong schema, other scenario, missing op: 3.
    let garbage = d.join("garbage.json");
    std::fs::write(&garbage, "{not json").unwrap();
    assert_eq!(compare(&[&b, &garbage]).0, 3);
    assert_eq!(compare(&[&b, &d.join("absent.json")]).0, 3);
    let mut schema = before.clone();
    schema.schema = "locus-loadtest/0".into();
    assert_eq!(compare(&[&b, &write(d, "schema.json", &schema)]).0, 3);
    let mut other = before.clone();
    other.name = "other".into();
    let (code, text) = compare(&[&b, &write(d, "other.json", &other)]);
    assert_eq!(code, 3, "{text}");
    let mut fewer = before.clone();
    fewer.ops.remove("recall");
    assert_eq!(compare(&[&b, &write(d, "fewer.json", &fewer)]).0, 3);
    let bad_comp = d.join("bad_comp.json");
    std::fs::write(
        &bad_comp,
        r#"{"schema":"locus-competitive/1","baselines":[],"extra":1}"#,
    )
    .unwrap();
    assert_eq!(compare(&[&b, &same, flag, &bad_comp]).0, 3);
}
