//! `locus compare`: a before/after table of two results and the regression verdict.
//!
//! Internal regression (exit 1), for any op (or all ops together):
//! - **P99, by significance** when both results hold at least
//!   [`MIN_SAMPLES`] whole seconds (one run of 8 s or more, or
//!   several of `locus loadtest --repeat N`): the per-second P99s after are significantly larger
//!   (one-sided Mann–Whitney U, p < 0.01) *and* the ratio of the medians is above 1.05 with 99 %
//!   confidence (seeded bootstrap interval). Noise between identical runs is not a regression;
//!   the effect is reported with its interval either way.
//! - **P99, by a fixed limit** otherwise (shorter runs, or results written before the series
//!   were kept): up by more than 5 %.
//! - throughput down by more than 5 %;
//! - the error or rejection rate up: significantly (one-sided two-proportion z test, p < 0.01)
//!   where P99 is judged by significance, any rise otherwise.
//!
//! Competitive
//! regression (exit 2): the after-run is more than 10 % worse than a figure in the competitive
//! baselines file ([`Competitive`]) — P99 above 1.1 × the baseline's, or throughput below
//! 0.9 × it. Unreadable or mismatched inputs exit 3.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::LoadtestError;
use super::result::{OpSummary, RunResult};
use super::significance::{self, ALPHA, Judgement, MIN_SAMPLES};

/// Version tag of the competitive baselines file.
pub const COMPETITIVE_SCHEMA: &str = "locus-competitive/1";

/// Thresholds (fractions).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest allowed P99 rise (0.05 = 5 %).
    pub p99_rise: f64,
    /// Largest allowed throughput drop.
    pub throughput_drop: f64,
    /// Largest allowed margin by which the after-run may trail a competitive baseline.
    pub competitive: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            p99_rise: 0.05,
            throughput_drop: 0.05,
            competitive: 0.10,
        }
    }
}

/// Figures of other systems, measured side by side with Locus (same machine, same trace).
///
/// ```json
/// { "schema": "locus-competitive/1",
///   "baselines": [
///     { "system": "hnswlib+scipy 0.8.0", "op": "recall", "p99_us": 120.0,
///       "throughput_ops_s": null,
///       "source": "../shared/graphpeers/results/n10000_d128_o10000/baseline.json",
///       "measured": "2026-11-29, 2-core VM, side by side with locus replay" } ] }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Competitive {
    /// [`COMPETITIVE_SCHEMA`].
    pub schema: String,
    /// One entry per system and op.
    pub baselines: Vec<Baseline>,
}

/// One competitor's figure for one op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// The competing system and version.
    pub system: String,
    /// The op it is compared on (`observe`, `recall`, `recall_spread`, `complete`,
    /// `associate`, or `all`).
    pub op: String,
    /// Its P99 latency (µs), if compared on latency.
    pub p99_us: Option<f64>,
    /// Its throughput (ops/s), if compared on throughput.
    pub throughput_ops_s: Option<f64>,
    /// Where the figure comes from (a result file or a measurement log).
    pub source: String,
    /// When and how it was measured (machine, conditions).
    pub measured: String,
}

/// One line of the before/after table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Op name or `all`.
    pub op: String,
    /// `p50`, `p95`, `p99`, `p99.9` (µs) or `ops/s`.
    pub metric: &'static str,
    /// Before.
    pub before: f64,
    /// After.
    pub after: f64,
}

impl Row {
    /// Relative change in percent (positive = larger).
    pub fn change_pct(&self) -> f64 {
        if self.before == 0.0 {
            if self.after == 0.0 { 0.0 } else { f64::INFINITY }
        } else {
            (self.after - self.before) / self.before * 100.0
        }
    }
}

/// The significance test of one op's P99.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct P99Test {
    /// Op name or `all`.
    pub op: String,
    /// Samples (whole seconds) before and after.
    pub samples: (usize, usize),
    /// Median per-second P99 after / before.
    pub ratio: f64,
    /// Its 99 % interval.
    pub ratio_ci: (f64, f64),
    /// One-sided Mann–Whitney p-value.
    pub p: f64,
    /// Whether it counts as a regression.
    pub regression: bool,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Comparison {
    /// The table.
    pub rows: Vec<Row>,
    /// Per op, the significance test of P99 (empty where fixed limits decided).
    pub tests: Vec<P99Test>,
    /// Why P99 was judged by fixed limits instead of significance, if it was.
    pub fixed_limits_because: Option<String>,
    /// Internal regressions found.
    pub internal: Vec<String>,
    /// Competitive regressions found.
    pub competitive: Vec<String>,
}

impl Comparison {
    /// Exit status: 0 within limits, 1 internal regression, 2 competitive regression (takes
    /// precedence when both occur).
    pub fn exit_code(&self) -> u8 {
        if !self.competitive.is_empty() {
            2
        } else if !self.internal.is_empty() {
            1
        } else {
            0
        }
    }

    /// The table and the verdict as text.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<14} {:<7} {:>12} {:>12} {:>9}",
            "op", "metric", "before", "after", "change"
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{:<14} {:<7} {:>12.1} {:>12.1} {:>+8.1}%",
                r.op,
                r.metric,
                r.before,
                r.after,
                r.change_pct()
            );
        }
        if !self.tests.is_empty() {
            let _ = writeln!(
                s,
                "P99 by significance over per-second P99s (one-sided Mann–Whitney U, p < {ALPHA}; \
                 effect = median after / median before, 99 % bootstrap interval):"
            );
        }
        for t in &self.tests {
            let _ = writeln!(
                s,
                "  {:<14} n {}/{}  ×{:.3} [{:.3}, {:.3}]  p {:.2e}  {}",
                t.op,
                t.samples.0,
                t.samples.1,
                t.ratio,
                t.ratio_ci.0,
                t.ratio_ci.1,
                t.p,
                if t.regression { "REGRESSION" } else { "ok" }
            );
        }
        if let Some(why) = &self.fixed_limits_because {
            let _ = writeln!(s, "P99 by the fixed limit: {why}");
        }
        for m in &self.internal {
            let _ = writeln!(s, "REGRESSION: {m}");
        }
        for m in &self.competitive {
            let _ = writeln!(s, "COMPETITIVE REGRESSION: {m}");
        }
        if self.internal.is_empty() && self.competitive.is_empty() {
            let _ = writeln!(s, "within limits");
        }
        s
    }
}

/// Reads a competitive baselines file.
///
/// # Errors
/// [`LoadtestError::Io`] or [`LoadtestError::Json`] (including a wrong schema or a negative figure).
pub fn read_competitive(path: &Path) -> Result<Competitive, LoadtestError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadtestError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |message: String| LoadtestError::Json {
        path: path.to_path_buf(),
        message,
    };
    let c: Competitive = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if c.schema != COMPETITIVE_SCHEMA {
        return Err(bad(format!(
            "schema `{}` is not `{COMPETITIVE_SCHEMA}`",
            c.schema
        )));
    }
    for b in &c.baselines {
        let ok = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v > 0.0);
        if !ok(b.p99_us) || !ok(b.throughput_ops_s) {
            return Err(bad(format!("{} {}: figures must be positive", b.system, b.op)));
        }
        if b.source.trim().is_empty() {
            return Err(bad(format!("{} {}: a baseline needs its source", b.system, b.op)));
        }
    }
    Ok(c)
}

fn failure_rates(o: &OpSummary) -> (f64, f64) {
    if o.count == 0 {
        return (0.0, 0.0);
    }
    let n = o.count as f64;
    (o.error_count() as f64 / n, o.rejected as f64 / n)
}

/// The bootstrap's seed for one op: fixed, so a comparison repeats exactly.
fn seed_of(op: &str) -> u64 {
    op.bytes()
        .fold(0xC0FF_EE00_u64, |h, b| h.rotate_left(5) ^ u64::from(b))
}

/// Compares two results of the same scenario.
///
/// # Errors
/// [`LoadtestError::Mismatch`] if the scenarios differ or an op of `before` is missing after.
pub fn compare(
    before: &RunResult,
    after: &RunResult,
    competitive: Option<&Competitive>,
    limits: Limits,
) -> Result<Comparison, LoadtestError> {
    if before.name != after.name {
        return Err(LoadtestError::Mismatch(format!(
            "scenario `{}` against scenario `{}`",
            before.name, after.name
        )));
    }
    let mut c = Comparison::default();
    let mut pairs: Vec<(&str, &OpSummary, &OpSummary)> = Vec::new();
    for (op, b) in &before.ops {
        let a = after
            .ops
            .get(op)
            .ok_or_else(|| LoadtestError::Mismatch(format!("op `{op}` ran before but not after")))?;
        pairs.push((op, b, a));
    }
    pairs.push(("all", &before.overall, &after.overall));
    let short: Vec<String> = pairs
        .iter()
        .filter_map(|(op, _, _)| {
            let (nb, na) = (before.gate_samples(op).len(), after.gate_samples(op).len());
            (nb < MIN_SAMPLES || na < MIN_SAMPLES).then(|| format!("{op} {nb}/{na}"))
        })
        .collect();
    let by_significance = short.is_empty();
    if !by_significance {
        c.fixed_limits_because = Some(format!(
            "too few whole seconds for a significance test (before/after: {}; at least \
             {MIN_SAMPLES} each: run longer or `locus loadtest --repeat N`)",
            short.join(", ")
        ));
    }
    for (op, b, a) in pairs {
        let (bl, al) = (&b.latency_us, &a.latency_us);
        for (metric, x, y) in [
            ("p50", bl.p50, al.p50),
            ("p95", bl.p95, al.p95),
            ("p99", bl.p99, al.p99),
            ("p99.9", bl.p999, al.p999),
            ("ops/s", b.throughput_ops_s, a.throughput_ops_s),
        ] {
            c.rows.push(Row {
                op: op.to_string(),
                metric,
                before: x,
                after: y,
            });
        }
        if by_significance {
            let (sb, sa) = (before.gate_samples(op), after.gate_samples(op));
            let Judgement {
                test,
                effect,
                regression,
            } = significance::judge(&sb, &sa, limits.p99_rise, seed_of(op));
            if regression {
                c.internal.push(format!(
                    "{op}: per-second P99 ×{:.2} (99 % interval ×{:.2}–×{:.2}, p = {:.1e}; whole-run P99 {:.1} → {:.1} µs)",
                    effect.ratio, effect.low, effect.high, test.p, bl.p99, al.p99
                ));
            }
            c.tests.push(P99Test {
                op: op.to_string(),
                samples: test.n,
                ratio: effect.ratio,
                ratio_ci: (effect.low, effect.high),
                p: test.p,
                regression,
            });
        } else if al.p99 > bl.p99 * (1.0 + limits.p99_rise) {
            c.internal.push(format!(
                "{op}: P99 {:.1} → {:.1} µs (+{:.1} %, limit {:.0} %)",
                bl.p99,
                al.p99,
                (al.p99 / bl.p99 - 1.0) * 100.0,
                limits.p99_rise * 100.0
            ));
        }
        if a.throughput_ops_s < b.throughput_ops_s * (1.0 - limits.throughput_drop) {
            c.internal.push(format!(
                "{op}: throughput {:.1} → {:.1} ops/s (limit −{:.0} %)",
                b.throughput_ops_s,
                a.throughput_ops_s,
                limits.throughput_drop * 100.0
            ));
        }
        let ((be, br), (ae, ar)) = (failure_rates(b), failure_rates(a));
        let rose = |kb: u64, ka: u64, rb: f64, ra: f64| {
            ra > rb && (!by_significance || significance::rate_rise_p(kb, b.count, ka, a.count) < ALPHA)
        };
        if rose(b.error_count(), a.error_count(), be, ae) {
            c.internal.push(format!("{op}: error rate {be:.5} → {ae:.5}"));
        }
        if rose(b.rejected, a.rejected, br, ar) {
            c.internal.push(format!("{op}: rejection rate {br:.5} → {ar:.5}"));
        }
    }
    if let Some(comp) = competitive {
        for base in &comp.baselines {
            let ours = if base.op == "all" {
                Some(&after.overall)
            } else {
                after.ops.get(&base.op)
            };
            let Some(ours) = ours else {
                return Err(LoadtestError::Mismatch(format!(
                    "the competitive baseline {} names op `{}`, which did not run",
                    base.system, base.op
                )));
            };
            if let Some(p99) = base.p99_us {
                if ours.latency_us.p99 > p99 * (1.0 + limits.competitive) {
                    c.competitive.push(format!(
                        "{}: P99 {:.1} µs vs {} {:.1} µs ({}; {})",
                        base.op, ours.latency_us.p99, base.system, p99, base.source, base.measured
                    ));
                }
            }
            if let Some(t) = base.throughput_ops_s {
                if ours.throughput_ops_s < t * (1.0 - limits.competitive) {
                    c.competitive.push(format!(
                        "{}: {:.1} ops/s vs {} {:.1} ops/s ({}; {})",
                        base.op, ours.throughput_ops_s, base.system, t, base.source, base.measured
                    ));
                }
            }
        }
    }
    Ok(c)
}
