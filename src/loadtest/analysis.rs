//! Figures derived from a run's per-second series, by arrival kind:
//!
//! - **ramp** — the *breaking point*: the throughput of the last second before the per-second
//!   P99 passes the target for [`SUSTAIN`] seconds in a row (`validation.p99`, or 10 × the first second's P99 without one).
//! - **burst** — per spike, the *recovery time*: seconds from the end of the peak until the
//!   per-second P99 is back within 10 % (or 50 µs) of the baseline, the median P99 of the base-rate
//!   seconds before the first spike.
//! - any run of 20 minutes or more — *drift*: P99 and RSS per 10-minute window (the soak figures).

use serde::{Deserialize, Serialize};

use super::result::SecondPoint;
use super::scenario::{Arrival, Scenario};

/// Seconds the P99 must stay over the target to mark the breaking point.
pub const SUSTAIN: usize = 3;

/// Recovery after one spike.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// Second (since measurement started) at which the spike ended.
    pub spike_end_s: u64,
    /// Seconds until the P99 was back at the baseline; `None` if it never was before the next spike or the end.
    pub recovered_after_s: Option<u64>,
}

/// One 10-minute window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DriftWindow {
    /// Window start (s).
    pub start_s: u64,
    /// Largest per-second P99 in the window (µs).
    pub max_p99_us: f64,
    /// Median per-second P99 (µs).
    pub median_p99_us: f64,
    /// RSS at the window's end (bytes).
    pub rss_end_bytes: u64,
}

/// The derived figures (absent parts do not apply to the run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Ramp: the rate (ops/s) of the last second under the P99 target.
    pub breaking_point_ops_s: Option<f64>,
    /// Ramp: the P99 target used (µs).
    pub breaking_point_p99_target_us: Option<f64>,
    /// Burst: the baseline P99 (µs).
    pub burst_baseline_p99_us: Option<f64>,
    /// Burst: recovery per spike.
    pub burst_recovery: Vec<Recovery>,
    /// Runs ≥ 20 min: 10-minute windows.
    pub drift: Vec<DriftWindow>,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Derives the figures of `s` from its series `ts`.
pub fn analyse(s: &Scenario, ts: &[SecondPoint]) -> Analysis {
    let mut a = Analysis::default();
    // The last point is usually a partial second: leave it out.
    let full = &ts[..ts.len().saturating_sub(1)];
    match &s.arrival {
        Arrival::Ramp { .. } => {
            let target = s
                .validation
                .p99
                .map(|d| d.as_secs_f64() * 1e6)
                .or_else(|| full.first().map(|p| p.p99_us * 10.0));
            if let Some(target) = target {
                a.breaking_point_p99_target_us = Some(target);
                // The first second that opens a run of SUSTAIN seconds over the target (or runs
                // over it to the end): one noisy second is not a breaking point.
                let over = |p: &SecondPoint| p.ops > 0 && p.p99_us > target;
                let first_over =
                    (0..full.len()).find(|&i| full[i..(i + SUSTAIN).min(full.len())].iter().all(over));
                a.breaking_point_ops_s = match first_over {
                    Some(0) => Some(0.0),
                    Some(i) => Some(full[i - 1].ops as f64),
                    None => None,
                };
            }
        }
        Arrival::Burst { period, duty, .. } => {
            let period_s = period.as_secs_f64();
            let peak_s = period_s * duty;
            let warm = s.warmup.as_secs_f64();
            // Phase within the period at measurement second t (the schedule starts at warmup 0).
            let phase = |t: f64| (t + warm) % period_s;
            let base: Vec<f64> = full
                .iter()
                .filter(|p| {
                    let ph = phase(p.t_s as f64);
                    ph >= peak_s + 1.0 && ph + 1.0 <= period_s
                })
                .take(30)
                .map(|p| p.p99_us)
                .collect();
            if !base.is_empty() {
                let baseline = median(base);
                a.burst_baseline_p99_us = Some(baseline);
                let limit = (baseline * 1.1).max(baseline + 50.0);
                let end = full.len() as f64;
                let mut k = ((warm - peak_s) / period_s).ceil().max(0.0);
                loop {
                    let spike_end = k * period_s + peak_s - warm;
                    if spike_end >= end {
                        break;
                    }
                    if spike_end >= 0.0 {
                        let from = spike_end.ceil() as usize;
                        let next_spike = ((k + 1.0) * period_s - warm).min(end) as usize;
                        let back = full
                            .get(from..next_spike)
                            .and_then(|w| w.iter().position(|p| p.p99_us <= limit));
                        a.burst_recovery.push(Recovery {
                            spike_end_s: from as u64,
                            recovered_after_s: back.map(|b| b as u64),
                        });
                    }
                    k += 1.0;
                }
            }
        }
        _ => {}
    }
    if full.len() >= 1200 {
        a.drift = full
            .chunks(600)
            .map(|w| DriftWindow {
                start_s: w[0].t_s,
                max_p99_us: w.iter().map(|p| p.p99_us).fold(0.0, f64::max),
                median_p99_us: median(w.iter().map(|p| p.p99_us).collect()),
                rss_end_bytes: w.last().map_or(0, |p| p.rss_bytes),
            })
            .collect();
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadtest::scenario::parse;

    fn series(p99: impl Fn(u64) -> f64, ops: impl Fn(u64) -> u64, n: u64) -> Vec<SecondPoint> {
        (0..n)
            .map(|t| SecondPoint {
                t_s: t,
                ops: ops(t),
                failed: 0,
                p50_us: 1.0,
                p99_us: p99(t),
                rss_bytes: 1000 + t,
                partial: false,
            })
            .collect()
    }

    #[test]
    fn ramp_breaking_point() {
        let s = parse(
            "name=\"r\"\nduration=20\n[arrival]\nkind=\"ramp\"\nfrom=100\nto=2000\nstep=100\nstep_duration=1\n[validation]\np99=\"1ms\"\n",
            "r.toml",
        )
        .unwrap();
        // One noisy second (3) does not count; the sustained rise from second 7 does.
        let ts = series(
            |t| if t < 7 && t != 3 { 200.0 } else { 5000.0 },
            |t| 100 * (t + 1),
            21,
        );
        let a = analyse(&s, &ts);
        assert_eq!(a.breaking_point_ops_s, Some(700.0));
        assert_eq!(a.breaking_point_p99_target_us, Some(1000.0));
    }

    #[test]
    fn burst_recovery_is_measured() {
        let s = parse(
            "name=\"b\"\nduration=40\n[arrival]\nkind=\"burst\"\nbase=100\npeak=1000\nperiod=10\nduty=0.2\n",
            "b.toml",
        )
        .unwrap();
        // Spikes in seconds 0-1, 10-11, 20-21, 30-31; the P99 stays high for 3 s after each.
        let ts = series(|t| if t % 10 < 5 { 900.0 } else { 100.0 }, |_| 100, 41);
        let a = analyse(&s, &ts);
        assert_eq!(a.burst_baseline_p99_us, Some(100.0));
        assert_eq!(a.burst_recovery.len(), 4);
        assert!(
            a.burst_recovery.iter().all(|r| r.recovered_after_s == Some(3)),
            "{:?}",
            a.burst_recovery
        );
    }

    #[test]
    fn drift_windows_for_long_runs() {
        let s = parse(
            "name=\"s\"\nduration=\"1h\"\n[arrival]\nkind=\"constant\"\nrate=10\n",
            "s.toml",
        )
        .unwrap();
        let a = analyse(&s, &series(|t| t as f64, |_| 10, 3601));
        assert_eq!(a.drift.len(), 6);
        assert_eq!(a.drift[1].start_s, 600);
        assert_eq!(a.drift[1].max_p99_us, 1199.0);
        assert!(analyse(&s, &series(|_| 1.0, |_| 1, 100)).drift.is_empty());
    }
}
