//! The regression gate on seeded synthetic samples of known distributions: per-op latencies
//! drawn from a log-normal, summarised into per-second P99s as a run does, and judged by
//! `compare`. Identical distributions must pass at least 19 of 20 comparisons; a 1.5× P99
//! regression must fail at least 19 of 20. Short results still fall back to the fixed limit.

use locus::loadtest::compare::{Comparison, Limits, compare};
use locus::loadtest::driver::{RunOptions, run};
use locus::loadtest::result::{OpSecond, RunResult, SecondPoint};
use locus::loadtest::scenario;
use locus::loadtest::target::NoopTarget;

/// SplitMix64 with Box–Muller normals: enough for seeded test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.unit().ln()).sqrt() * (2.0 * std::f64::consts::PI * self.unit()).cos()
    }
}

/// P99 of one second of `ops` latencies (µs) from a log-normal with median 200 µs, σ 0.6,
/// scaled by `scale`.
fn second_p99(rng: &mut Rng, ops: usize, scale: f64) -> f64 {
    let mut v: Vec<f64> = (0..ops)
        .map(|_| scale * 200.0 * (0.6 * rng.normal()).exp())
        .collect();
    v.sort_by(f64::total_cmp);
    v[(ops * 99 / 100).min(ops - 1)]
}

fn base() -> RunResult {
    let s = scenario::parse(
        "name = \"gate\"\nduration = \"300ms\"\n[arrival]\nkind = \"constant\"\nrate = 1000\n\
         [operations]\nobserve = 1\nrecall = 0\nrecall_spread = 0\ncomplete = 0\n[data]\npreload = 0\n",
        "gate.toml",
    )
    .unwrap();
    let mut r = run(&s, &NoopTarget, &RunOptions::default()).unwrap();
    for o in r.ops.values_mut().chain(std::iter::once(&mut r.overall)) {
        o.errors.clear();
        o.rejected = 0;
        o.throughput_ops_s = 1000.0;
    }
    r
}

/// A result of `seconds` whole seconds of 1000 observes each, latencies scaled by `scale`.
fn synthetic(template: &RunResult, seed: u64, seconds: u64, scale: f64) -> RunResult {
    let mut rng = Rng(seed);
    let mut r = template.clone();
    let p99s: Vec<f64> = (0..seconds).map(|_| second_p99(&mut rng, 1000, scale)).collect();
    r.timeseries = p99s
        .iter()
        .enumerate()
        .map(|(t, &p99)| SecondPoint {
            t_s: t as u64,
            ops: 1000,
            failed: 0,
            p50_us: 200.0 * scale,
            p99_us: p99,
            rss_bytes: 0,
            partial: false,
        })
        .collect();
    r.op_timeseries = [(
        "observe".to_string(),
        p99s.iter()
            .enumerate()
            .map(|(t, &p99)| OpSecond {
                t_s: t as u64,
                ops: 1000,
                p50_us: 200.0 * scale,
                p99_us: p99,
                partial: false,
            })
            .collect(),
    )]
    .into();
    let whole_p99 = p99s.iter().sum::<f64>() / p99s.len() as f64;
    for o in r.ops.values_mut().chain(std::iter::once(&mut r.overall)) {
        o.latency_us.p99 = whole_p99;
    }
    r
}

fn verdict(before: &RunResult, after: &RunResult) -> Comparison {
    compare(before, after, None, Limits::default()).unwrap()
}

#[test]
fn identical_distributions_pass_and_a_1_5x_regression_fails() {
    let template = base();
    assert!(template.ops.contains_key("observe"));
    let (mut passed, mut caught) = (0, 0);
    for trial in 0..20u64 {
        let before = synthetic(&template, 1000 + trial, 20, 1.0);
        let same = synthetic(&template, 2000 + trial, 20, 1.0);
        let slow = synthetic(&template, 3000 + trial, 20, 1.5);
        let c = verdict(&before, &same);
        assert!(c.fixed_limits_because.is_none(), "{}", c.text());
        assert_eq!(c.tests.len(), 2, "{}", c.text());
        if c.exit_code() == 0 {
            passed += 1;
        }
        let c = verdict(&before, &slow);
        if c.exit_code() == 1 {
            caught += 1;
            // The effect is reported with its interval, and the interval holds the true 1.5.
            let t = c.tests.iter().find(|t| t.op == "observe").unwrap();
            assert!(t.ratio_ci.0 < 1.5 && 1.5 < t.ratio_ci.1 * 1.05, "{}", c.text());
        }
    }
    eprintln!("gate on synthetic samples: identical passed {passed}/20, 1.5× caught {caught}/20");
    assert!(passed >= 19, "identical distributions passed only {passed}/20");
    assert!(caught >= 19, "a 1.5× P99 regression was caught only {caught}/20");
}

#[test]
fn repeats_add_samples_and_short_results_use_the_fixed_limit() {
    let template = base();
    // Two runs of 5 s each side: 10 samples, enough together, not alone.
    let mut before = synthetic(&template, 1, 5, 1.0);
    let mut after = synthetic(&template, 2, 5, 1.5);
    let c = verdict(&before, &after);
    assert!(c.fixed_limits_because.is_some(), "{}", c.text());
    assert_eq!(c.exit_code(), 1, "{}", c.text());
    before.repeats.push(synthetic(&template, 3, 5, 1.0).as_repeat());
    after.repeats.push(synthetic(&template, 4, 5, 1.5).as_repeat());
    assert_eq!(before.gate_samples("observe").len(), 10);
    let c = verdict(&before, &after);
    assert!(c.fixed_limits_because.is_none(), "{}", c.text());
    assert_eq!(c.exit_code(), 1, "{}", c.text());
    assert!(c.text().contains("Mann–Whitney"), "{}", c.text());
}

#[test]
fn repeat_keeps_every_run_for_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let run_into = |name: &str| {
        let out_dir = dir.path().join(name);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_locus"))
            .args([
                "loadtest",
                "--target",
                "noop",
                "--repeat",
                "3",
                "--duration",
                "3s",
                "--warmup",
                "0s",
                "--rate",
                "2000",
                "--preload",
                "0",
                "--progress",
                "quiet",
                "--out",
            ])
            .arg(&out_dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("(run 3 of 3)"), "{stderr}");
        out_dir.join("result.json")
    };
    // Side by side, to halve the test's time.
    let (before, after) = std::thread::scope(|s| {
        let b = s.spawn(|| run_into("before"));
        let a = run_into("after");
        (b.join().unwrap(), a)
    });
    let r = locus::loadtest::output::read_result(&before).unwrap();
    assert_eq!(r.repeats.len(), 2);
    assert_eq!(r.runs(), 3);
    // Three runs of three whole seconds: nine per-second P99s, enough for the test.
    assert_eq!(r.gate_samples("all").len(), 9);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_locus"))
        .arg("compare")
        .args([&before, &after])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Mann–Whitney") && text.contains("n 9/9"), "{text}");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{text}");
}
