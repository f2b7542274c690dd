//! The result of a run: what `result.json` holds (schema [`SCHEMA`], documented in
//! `docs/loadtest.md`), the summary table, and the [`Validation`] verdict.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::analysis::Analysis;
use super::procstat::ProcSample;
use super::recorder::{Hist, OpRecord};
use super::scenario::{OpKind, Validation};

/// Version tag of `result.json`. Bumped when a field changes meaning or is removed.
pub const SCHEMA: &str = "locus-loadtest/1";

/// Latency quantiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// 99.99th percentile.
    pub p9999: f64,
    /// Exact maximum.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    /// Reads a histogram of nanoseconds.
    pub fn of(h: &Hist) -> Self {
        let us = |ns: u64| ns as f64 / 1000.0;
        Percentiles {
            p50: us(h.quantile(0.5)),
            p90: us(h.quantile(0.9)),
            p95: us(h.quantile(0.95)),
            p99: us(h.quantile(0.99)),
            p999: us(h.quantile(0.999)),
            p9999: us(h.quantile(0.9999)),
            max: us(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// The figures of one op kind (or of all together).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpSummary {
    /// Ops issued in the measured time.
    pub count: u64,
    /// Served.
    pub ok: u64,
    /// Refused by admission control.
    pub rejected: u64,
    /// Failed, by error kind.
    pub errors: BTreeMap<String, u64>,
    /// Issued ops per second of measured time.
    pub throughput_ops_s: f64,
    /// Latency from the intended start (µs): the figure that counts.
    pub latency_us: Percentiles,
    /// Service time from the actual start (µs).
    pub service_us: Percentiles,
}

impl OpSummary {
    /// Summarises a record over `seconds` of measured time.
    pub fn of(r: &OpRecord, seconds: f64) -> Self {
        let count = r.count();
        OpSummary {
            count,
            ok: r.ok,
            rejected: r.rejected,
            errors: r.errors.clone(),
            throughput_ops_s: if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            },
            latency_us: Percentiles::of(&r.latency),
            service_us: Percentiles::of(&r.service),
        }
    }

    /// Errors of every kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The driver's health: whether the harness kept to its schedule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DriverReport {
    /// Client threads (or closed-loop clients).
    pub threads: usize,
    /// Scheduled rate (mean over the run), ops/s; `None` for a closed loop.
    pub offered_ops_s: Option<f64>,
    /// The driver's own lag (µs): actual start − max(intended start, previous op's end).
    pub own_lag_us: Percentiles,
    /// Sum of the driver's own lag over all measured ops (ms): time the harness itself (its
    /// threads descheduled, its sleeps overshooting) held ops back. Every op queued behind such
    /// a delay carries it in its latency, so compare this with the measured time.
    pub own_lag_total_ms: f64,
    /// Start lag (µs): actual start − intended start, whoever caused it (target or driver).
    pub start_lag_us: Percentiles,
    /// Whether the driver itself fell behind: own lag P99 > 1 ms, own lag summing to more than
    /// 1 % of the measured time per thread, or ops never issued.
    pub late: bool,
    /// Scheduled ops never issued (the drain deadline passed): each is also an error `not_issued`.
    pub not_issued: u64,
    /// Samples the histograms refused (always 0 with auto-resize; reported to prove it).
    pub dropped_samples: u64,
}

/// One second of the time series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondPoint {
    /// Seconds since measurement started.
    pub t_s: u64,
    /// Ops completed in that second.
    pub ops: u64,
    /// Of which errors or rejections.
    pub failed: u64,
    /// Median latency (µs).
    pub p50_us: f64,
    /// 99th percentile latency (µs).
    pub p99_us: f64,
    /// Resident memory at the end of that second (bytes; 0 if unknown).
    pub rss_bytes: u64,
    /// Whether the second is not a whole second of the measured time (the last one, holding the
    /// ops that completed after the measured time ended): plots leave it out, the gate too.
    #[serde(default)]
    pub partial: bool,
}

/// One second of one op kind's time series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct OpSecond {
    /// Seconds since measurement started.
    pub t_s: u64,
    /// Ops of this kind completed in that second.
    pub ops: u64,
    /// Median latency (µs).
    pub p50_us: f64,
    /// 99th percentile latency (µs).
    pub p99_us: f64,
    /// As [`SecondPoint::partial`].
    pub partial: bool,
}

/// The per-second P99s of one earlier run of a `--repeat`: what the gate compares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepeatRun {
    /// P99 of the whole run (µs), per op kind and `all`.
    pub p99_us: BTreeMap<String, f64>,
    /// P99 (µs) of each whole second, per op kind and `all`.
    pub second_p99_us: BTreeMap<String, Vec<f64>>,
}

/// One point of the percentile spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpectrumPoint {
    /// Percentile (0..=100).
    pub percentile: f64,
    /// Latency there (µs).
    pub latency_us: f64,
}

/// This process's resources over the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessReport {
    /// RSS before preload (bytes).
    pub rss_start_bytes: u64,
    /// RSS when measurement started (after preload).
    pub rss_after_preload_bytes: u64,
    /// Largest RSS sampled during the run.
    pub rss_peak_bytes: u64,
    /// RSS at the end.
    pub rss_end_bytes: u64,
    /// CPU seconds (user + system) during warmup and measurement.
    pub cpu_s: f64,
    /// `cpu_s` / wall seconds: cores kept busy on average.
    pub cpu_cores_busy: f64,
}

/// The verdict of the scenario's `[validation]` targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// Whether every target was met (true when none was set).
    pub passed: bool,
    /// One line per missed target.
    pub failures: Vec<String>,
    /// Every target that was checked, in words (`P99 (all ops) ≤ 5.0 ms`).
    #[serde(default)]
    pub checked: Vec<String>,
}

/// The whole result (`result.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// [`SCHEMA`].
    pub schema: String,
    /// The scenario as run (after command-line overrides).
    pub scenario: serde_json::Value,
    /// Scenario name (what `compare` matches on).
    pub name: String,
    /// The target's name.
    pub target: String,
    /// Unix time (s) when measurement started.
    pub started_unix_s: u64,
    /// Seconds spent in preload.
    pub preload_s: f64,
    /// Measured seconds (the scenario's duration; a closed loop's actual span).
    pub measured_s: f64,
    /// All ops together.
    pub overall: OpSummary,
    /// Per op kind that ran (by name).
    pub ops: BTreeMap<String, OpSummary>,
    /// The driver's health.
    pub driver: DriverReport,
    /// Memory and CPU.
    pub process: ProcessReport,
    /// Per-second points.
    pub timeseries: Vec<SecondPoint>,
    /// Latency at percentiles 0 … 99.9999 (all ops).
    pub spectrum: Vec<SpectrumPoint>,
    /// The target's metrics snapshot at the end, if it has one.
    pub target_metrics: Option<serde_json::Value>,
    /// The `[validation]` verdict.
    pub validation: ValidationReport,
    /// Figures derived from the series (breaking point, burst recovery, drift).
    #[serde(default)]
    pub analysis: Analysis,
    /// Per-second series of each op kind that ran (by name).
    #[serde(default)]
    pub op_timeseries: BTreeMap<String, Vec<OpSecond>>,
    /// Latency spectrum of each op kind that ran (by name).
    #[serde(default)]
    pub op_spectrum: BTreeMap<String, Vec<SpectrumPoint>>,
    /// The earlier runs of `locus loadtest --repeat N` (this result is the last run); empty for
    /// a single run.
    #[serde(default)]
    pub repeats: Vec<RepeatRun>,
}

/// Percentiles of the spectrum: 0, 10, …, 90, then 99, 99.9, … up to 99.9999, and 100.
pub fn spectrum(h: &Hist) -> Vec<SpectrumPoint> {
    let mut ps: Vec<f64> = (0..10).map(|i| i as f64 * 10.0).collect();
    ps.extend([95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 99.9999, 100.0]);
    ps.into_iter()
        .map(|p| SpectrumPoint {
            percentile: p,
            latency_us: h.quantile(p / 100.0) as f64 / 1000.0,
        })
        .collect()
}

impl RunResult {
    /// This run's figures in the form [`RunResult::repeats`] keeps.
    pub fn as_repeat(&self) -> RepeatRun {
        let mut p99_us: BTreeMap<String, f64> = self
            .ops
            .iter()
            .map(|(k, o)| (k.clone(), o.latency_us.p99))
            .collect();
        p99_us.insert("all".into(), self.overall.latency_us.p99);
        let mut second_p99_us: BTreeMap<String, Vec<f64>> = self
            .op_timeseries
            .iter()
            .map(|(k, ts)| {
                let v = ts.iter().filter(|p| !p.partial && p.ops > 0).map(|p| p.p99_us);
                (k.clone(), v.collect())
            })
            .collect();
        second_p99_us.insert(
            "all".into(),
            self.timeseries
                .iter()
                .filter(|p| !p.partial && p.ops > 0)
                .map(|p| p.p99_us)
                .collect(),
        );
        RepeatRun {
            p99_us,
            second_p99_us,
        }
    }

    /// The samples the gate compares for `op` (an op kind or `all`): the P99 of every whole
    /// second of this run and of its earlier repeats.
    pub fn gate_samples(&self, op: &str) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .repeats
            .iter()
            .filter_map(|r| r.second_p99_us.get(op))
            .flatten()
            .copied()
            .collect();
        if let Some(mine) = self.as_repeat().second_p99_us.get(op) {
            v.extend(mine);
        }
        v
    }

    /// The runs this result stands for (1 + its earlier repeats).
    pub fn runs(&self) -> usize {
        1 + self.repeats.len()
    }
}

impl ProcessReport {
    /// From samples at start, after preload, at the end, the peak, and the CPU used while timed.
    pub fn from_samples(
        start: Option<ProcSample>,
        after_preload: Option<ProcSample>,
        end: Option<ProcSample>,
        peak_rss: u64,
        wall_s: f64,
    ) -> Self {
        let cpu = |s: Option<ProcSample>| s.map(|s| s.user_s + s.system_s).unwrap_or(0.0);
        let cpu_s = (cpu(end) - cpu(after_preload)).max(0.0);
        let rss_end = end.map(|s| s.rss_bytes).unwrap_or(0);
        ProcessReport {
            rss_start_bytes: start.map(|s| s.rss_bytes).unwrap_or(0),
            rss_after_preload_bytes: after_preload.map(|s| s.rss_bytes).unwrap_or(0),
            rss_peak_bytes: peak_rss.max(rss_end),
            rss_end_bytes: rss_end,
            cpu_s,
            cpu_cores_busy: if wall_s > 0.0 { cpu_s / wall_s } else { 0.0 },
        }
    }
}

/// Checks the targets against a result's figures.
pub fn validate(v: &Validation, overall: &OpSummary, ops: &BTreeMap<String, OpSummary>) -> ValidationReport {
    let mut failures = Vec::new();
    let mut checked = Vec::new();
    if let Some(p99) = v.p99 {
        checked.push(format!("P99 (all ops) ≤ {}", fmt_us(p99.as_secs_f64() * 1e6)));
    }
    for (kind, secs) in &v.p99_per_op {
        checked.push(format!("{} P99 ≤ {}", kind.name(), fmt_us(secs * 1e6)));
    }
    if let Some(t) = v.min_throughput {
        checked.push(format!("throughput ≥ {t} ops/s"));
    }
    if let Some(e) = v.max_error_rate {
        checked.push(format!("errors and rejections ≤ {} %", e * 100.0));
    }
    if let Some(p99) = v.p99 {
        let limit = p99.as_secs_f64() * 1e6;
        if overall.latency_us.p99 > limit {
            failures.push(format!(
                "overall P99 {:.1} µs is over the target {:.1} µs",
                overall.latency_us.p99, limit
            ));
        }
    }
    for (kind, secs) in &v.p99_per_op {
        let limit = secs * 1e6;
        match ops.get(kind.name()) {
            Some(s) if s.latency_us.p99 > limit => failures.push(format!(
                "{} P99 {:.1} µs is over the target {:.1} µs",
                kind.name(),
                s.latency_us.p99,
                limit
            )),
            Some(_) => {}
            None => failures.push(format!(
                "{} has a P99 target but no {} op ran",
                kind.name(),
                kind.name()
            )),
        }
    }
    if let Some(t) = v.min_throughput {
        if overall.throughput_ops_s < t {
            failures.push(format!(
                "throughput {:.1} ops/s is under the target {t} ops/s",
                overall.throughput_ops_s
            ));
        }
    }
    if let Some(e) = v.max_error_rate {
        let failed = overall.error_count() + overall.rejected;
        let rate = if overall.count > 0 {
            failed as f64 / overall.count as f64
        } else {
            0.0
        };
        if rate > e {
            failures.push(format!(
                "error rate {:.4} ({failed} of {} ops) is over the target {e}",
                rate, overall.count
            ));
        }
    }
    ValidationReport {
        passed: failures.is_empty(),
        failures,
        checked,
    }
}

fn fmt_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2}s", us / 1e6)
    } else if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{us:.1}µs")
    }
}

fn fmt_bytes(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

impl RunResult {
    /// The summary table and the lines around it, as printed at the end of a run.
    // tidy: long-fn — a text report, one line after another
    pub fn summary_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "scenario {} · target {} · {:.1} s measured · preload {:.2} s",
            self.name, self.target, self.measured_s, self.preload_s
        );
        let _ = writeln!(
            s,
            "{:<14} {:>9} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11}",
            "op", "count", "err", "rej", "p50", "p90", "p95", "p99", "p99.9", "p99.99", "max", "ops/s"
        );
        let mut row = |name: &str, o: &OpSummary| {
            let l = &o.latency_us;
            let _ = writeln!(
                s,
                "{:<14} {:>9} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11.1}",
                name,
                o.count,
                o.error_count(),
                o.rejected,
                fmt_us(l.p50),
                fmt_us(l.p90),
                fmt_us(l.p95),
                fmt_us(l.p99),
                fmt_us(l.p999),
                fmt_us(l.p9999),
                fmt_us(l.max),
                o.throughput_ops_s
            );
        };
        for kind in OpKind::ALL {
            if let Some(o) = self.ops.get(kind.name()) {
                row(kind.name(), o);
            }
        }
        row("all", &self.overall);
        let all = "all".to_string();
        for (name, o) in self.ops.iter().chain(std::iter::once((&all, &self.overall))) {
            if !o.errors.is_empty() {
                let kinds: Vec<String> = o.errors.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(s, "errors {name}: {}", kinds.join(", "));
            }
        }
        let o = &self.overall.service_us;
        let _ = writeln!(
            s,
            "service time (all ops, from actual start): p50 {} p99 {} p99.9 {} max {}",
            fmt_us(o.p50),
            fmt_us(o.p99),
            fmt_us(o.p999),
            fmt_us(o.max)
        );
        let d = &self.driver;
        let _ = writeln!(
            s,
            "driver: {} threads, offered {}, start lag p99 {}, own lag p99 {} max {} total {:.1} ms{}{}",
            d.threads,
            d.offered_ops_s
                .map(|r| format!("{r:.0} ops/s"))
                .unwrap_or_else(|| "closed loop".to_string()),
            fmt_us(d.start_lag_us.p99),
            fmt_us(d.own_lag_us.p99),
            fmt_us(d.own_lag_us.max),
            d.own_lag_total_ms,
            if d.not_issued > 0 {
                format!(", {} ops never issued", d.not_issued)
            } else {
                String::new()
            },
            if d.late {
                " — DRIVER LATE: the harness fell behind its schedule; figures include its delay"
            } else {
                ""
            }
        );
        let p = &self.process;
        let _ = writeln!(
            s,
            "process: RSS {} after preload, peak {}, end {}; CPU {:.2} s ({:.2} cores busy)",
            fmt_bytes(p.rss_after_preload_bytes),
            fmt_bytes(p.rss_peak_bytes),
            fmt_bytes(p.rss_end_bytes),
            p.cpu_s,
            p.cpu_cores_busy
        );
        if let Some(m) = &self.target_metrics {
            engine_lines(&mut s, m);
        }
        let a = &self.analysis;
        if let (Some(rate), Some(target)) = (a.breaking_point_ops_s, a.breaking_point_p99_target_us) {
            let _ = writeln!(
                s,
                "breaking point: {rate:.0} ops/s (last second with P99 under {})",
                fmt_us(target)
            );
        } else if let Some(target) = a.breaking_point_p99_target_us {
            let _ = writeln!(
                s,
                "breaking point: not reached (P99 stayed under {})",
                fmt_us(target)
            );
        }
        if let Some(base) = a.burst_baseline_p99_us {
            let rec: Vec<String> = a
                .burst_recovery
                .iter()
                .map(|r| match r.recovered_after_s {
                    Some(x) => format!("{x} s"),
                    None => "not recovered".into(),
                })
                .collect();
            let _ = writeln!(
                s,
                "burst: baseline P99 {}, recovery after each spike: {}",
                fmt_us(base),
                rec.join(", ")
            );
        }
        for w in &a.drift {
            let _ = writeln!(
                s,
                "window {:>6} s: P99 median {} max {}, RSS {}",
                w.start_s,
                fmt_us(w.median_p99_us),
                fmt_us(w.max_p99_us),
                fmt_bytes(w.rss_end_bytes)
            );
        }
        if !self.repeats.is_empty() {
            let mut p99s: Vec<String> = self
                .repeats
                .iter()
                .filter_map(|r| r.p99_us.get("all"))
                .map(|&p| fmt_us(p))
                .collect();
            p99s.push(fmt_us(self.overall.latency_us.p99));
            let _ = writeln!(
                s,
                "{} runs (figures above: the last): P99 (all ops) per run {}",
                self.runs(),
                p99s.join(", ")
            );
        }
        let checked = if self.validation.checked.is_empty() {
            "no target set".to_string()
        } else {
            let latency = self.validation.checked.iter().any(|c| c.contains("P99"));
            format!(
                "checked {}{}",
                self.validation.checked.join(", "),
                if latency { "" } else { "; no latency target" }
            )
        };
        if self.validation.passed {
            let _ = writeln!(s, "validation: passed ({checked})");
        } else {
            for f in &self.validation.failures {
                let _ = writeln!(s, "validation FAILED: {f}");
            }
            let _ = writeln!(s, "validation {checked}");
        }
        s
    }
}

/// One line per shard of an engine metrics snapshot (node, workers, placement, index lag,
/// rejections), and its degradations. Fields it does not find are left out.
fn engine_lines(s: &mut String, m: &serde_json::Value) {
    let Some(shards) = m.get("shards").and_then(|v| v.as_array()) else {
        return;
    };
    for sh in shards {
        let num = |k: &str| sh.get(k).and_then(|v| v.as_f64());
        let spaces = sh.get("spaces").and_then(|v| v.as_array());
        let sum = |f: &dyn Fn(&serde_json::Value) -> f64| -> f64 {
            spaces.map_or(0.0, |sp| sp.iter().map(f).sum())
        };
        let lag = sum(&|sp| {
            sp.get("index_lag_episodes")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0)
        });
        let rejected = sum(&|sp| {
            sp.get("rejected")
                .and_then(|r| r.as_object())
                .map_or(0.0, |r| r.values().filter_map(|v| v.as_f64()).sum())
        });
        let _ = writeln!(
            s,
            "engine shard {}: node {}, {} workers, {} of pages on the home node, index lag {} episodes, {} observations refused since it opened (preload retries included)",
            num("shard").unwrap_or(-1.0),
            num("node").unwrap_or(-1.0),
            num("workers").unwrap_or(0.0),
            num("placement_home_fraction").map_or("unknown".to_string(), |f| format!("{:.1} %", f * 100.0)),
            lag,
            rejected
        );
    }
    if let Some(d) = m.get("degradations").and_then(|v| v.as_array()) {
        let list: Vec<&str> = d.iter().filter_map(|x| x.as_str()).collect();
        let _ = writeln!(
            s,
            "engine degradations: {}",
            if list.is_empty() {
                "none".to_string()
            } else {
                list.join("; ")
            }
        );
    }
}
