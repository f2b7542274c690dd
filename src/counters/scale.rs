//! Multiplex scaling.
//!
//! When more events are open than the PMU has counters, the kernel time-slices groups: each is
//! counting (`time_running`) only part of the time it is enabled (`time_enabled`). The usual
//! estimate of the full count is `value × enabled / running`; the factor `enabled / running` is
//! reported beside every value, and a value with a factor above 1 is flagged as multiplexed
//! (an estimate, not a count).
//!
//! Edge cases, none of which panics:
//! - `running == 0`: the group never got onto the PMU; there is no estimate ([`Scaled::NotCounted`]).
//! - `running > enabled`: the kernel's two clocks disagree slightly on some kernels; the raw
//!   value is kept unscaled and the reading is flagged, never divided into a factor below 1.

use serde::Serialize;

/// A count after scaling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Count {
    /// The counter's value as read.
    pub raw: u64,
    /// The estimate of the full count: `raw × enabled / running` (saturating), or `raw`.
    pub value: u64,
    /// `enabled / running` (1.0 when the counter ran the whole time).
    pub scale: f64,
    /// Nanoseconds the counter was enabled.
    pub enabled_ns: u64,
    /// Nanoseconds it was actually on the PMU.
    pub running_ns: u64,
    /// `running < enabled`: the value is an estimate from part of the time.
    pub multiplexed: bool,
    /// `running > enabled`: the kernel's clocks disagreed; the value is not scaled.
    pub clock_anomaly: bool,
}

/// The outcome of scaling one reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scaled {
    /// A count (maybe estimated).
    Counted(Count),
    /// The counter was enabled but never running (`running == 0`): nothing to scale.
    NotCounted {
        /// Nanoseconds it was enabled.
        enabled_ns: u64,
    },
}

/// Scales `raw` by `enabled / running`. See the module docs for the edge cases.
pub fn scale(raw: u64, enabled_ns: u64, running_ns: u64) -> Scaled {
    if running_ns == 0 {
        return Scaled::NotCounted { enabled_ns };
    }
    if running_ns >= enabled_ns {
        return Scaled::Counted(Count {
            raw,
            value: raw,
            scale: 1.0,
            enabled_ns,
            running_ns,
            multiplexed: false,
            clock_anomaly: running_ns > enabled_ns,
        });
    }
    let estimate = u128::from(raw) * u128::from(enabled_ns) / u128::from(running_ns);
    Scaled::Counted(Count {
        raw,
        value: u64::try_from(estimate).unwrap_or(u64::MAX),
        scale: enabled_ns as f64 / running_ns as f64,
        enabled_ns,
        running_ns,
        multiplexed: true,
        clock_anomaly: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(s: Scaled) -> Count {
        match s {
            Scaled::Counted(c) => c,
            Scaled::NotCounted { .. } => panic!("expected a count"),
        }
    }

    #[test]
    fn full_time_is_unscaled() {
        let c = counted(scale(1000, 500, 500));
        assert_eq!(
            (c.value, c.scale, c.multiplexed, c.clock_anomaly),
            (1000, 1.0, false, false)
        );
    }

    #[test]
    fn half_time_doubles_and_is_flagged() {
        let c = counted(scale(1000, 800, 400));
        assert_eq!(c.value, 2000);
        assert_eq!(c.scale, 2.0);
        assert!(c.multiplexed);
        let c = counted(scale(7, 3, 2));
        assert_eq!(c.value, 10, "7 × 3 / 2 = 10.5, truncated");
        assert_eq!(c.scale, 1.5);
    }

    #[test]
    fn never_running_is_not_counted() {
        assert_eq!(scale(0, 1234, 0), Scaled::NotCounted { enabled_ns: 1234 });
        assert_eq!(scale(5, 0, 0), Scaled::NotCounted { enabled_ns: 0 });
    }

    #[test]
    fn running_past_enabled_is_flagged_not_scaled() {
        let c = counted(scale(1000, 400, 401));
        assert_eq!(
            (c.value, c.scale, c.multiplexed, c.clock_anomaly),
            (1000, 1.0, false, true)
        );
    }

    #[test]
    fn huge_values_saturate_instead_of_overflowing() {
        let c = counted(scale(u64::MAX, u64::MAX, 1));
        assert_eq!(c.value, u64::MAX);
        let c = counted(scale(u64::MAX / 2, 10, 5));
        assert_eq!(c.value, u64::MAX - 1);
    }
}
