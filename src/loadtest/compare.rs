//! `locus compare`: a before/after table of two results and the regression verdict.
//!
//! Internal regression (exit 1): for any op (or all ops together), P99 up by more than 5 %,
//! throughput down by more than 5 %, or any rise in the error or rejection rate. Competitive
//! regression (exit 2): the after-run is more than 10 % worse than a figure in the competitive
//! baselines file ([`Competitive`]) — P99 above 1.1 × the baseline's, or throughput below
//! 0.9 × it. Unreadable or mismatched inputs exit 3.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::LoadtestError;
use super::result::{OpSummary, RunResult};

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

/// The outcome of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Comparison {
    /// The table.
    pub rows: Vec<Row>,
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
        if al.p99 > bl.p99 * (1.0 + limits.p99_rise) {
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
        if ae > be {
            c.internal.push(format!("{op}: error rate {be:.5} → {ae:.5}"));
        }
        if ar > br {
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
