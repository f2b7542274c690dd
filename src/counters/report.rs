//! What a read returns: one [`Reading`] per event, the groups they were counted in, and notes.

use serde::Serialize;

use super::error::Unavailable;
use super::event::Event;
use super::scale::Count;

/// What is counted: one thread or one CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Target {
    /// The calling thread (`pid = 0, cpu = -1`).
    CurrentThread,
    /// Another thread, by its kernel thread id (`pid = tid, cpu = -1`).
    Thread(i32),
    /// Everything that runs on one CPU (`pid = -1, cpu = N`); needs `perf_event_paranoid <= 0`
    /// or `CAP_PERFMON`.
    Cpu(u32),
}

/// One event's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reading {
    /// Counted; the value may be a multiplexing estimate (see [`Count::multiplexed`]).
    Counted(Count),
    /// Opened, but the PMU never ran it (`time_running == 0`).
    NotCounted {
        /// Nanoseconds it was enabled.
        enabled_ns: u64,
        /// Why, as far as can be told.
        reason: String,
    },
    /// Could not be opened.
    Unavailable(Unavailable),
}

/// One event and its reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventReading {
    /// The event.
    pub event: Event,
    /// Index into [`CounterReport::groups`] of the group that counted it (`None` if it never
    /// opened).
    pub group: Option<usize>,
    /// The outcome.
    pub reading: Reading,
}

/// The result of reading a [`CounterSet`](super::CounterSet) (or of [`measure`](super::measure)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CounterReport {
    /// What was counted.
    pub target: Target,
    /// One entry per requested event, in the order asked.
    pub readings: Vec<EventReading>,
    /// The groups the open events were placed in (each scheduled on the PMU as a unit).
    pub groups: Vec<Vec<Event>>,
    /// Things the reader should know: groups split, multiplexing, clock anomalies.
    pub notes: Vec<String>,
    /// Wall-clock nanoseconds between enable and disable, when measured by [`measure`](super::measure).
    pub wall_ns: Option<u64>,
}

impl CounterReport {
    /// The reading of `event`, if it was asked for.
    pub fn reading(&self, event: Event) -> Option<&Reading> {
        self.readings
            .iter()
            .find(|r| r.event == event)
            .map(|r| &r.reading)
    }

    /// The (scaled) count of `event`, if it was counted.
    pub fn value(&self, event: Event) -> Option<u64> {
        match self.reading(event)? {
            Reading::Counted(c) => Some(c.value),
            _ => None,
        }
    }

    /// `numerator / denominator` when both were counted and the denominator is not zero.
    pub fn ratio(&self, numerator: Event, denominator: Event) -> Option<f64> {
        let d = self.value(denominator)?;
        let n = self.value(numerator)?;
        (d != 0).then(|| n as f64 / d as f64)
    }

    /// L1D read misses per L1D read access.
    pub fn l1d_miss_rate(&self) -> Option<f64> {
        self.ratio(Event::L1dReadMisses, Event::L1dReadAccesses)
    }

    /// LLC misses per LLC reference.
    pub fn llc_miss_rate(&self) -> Option<f64> {
        self.ratio(Event::LlcMisses, Event::LlcReferences)
    }

    /// Whether any event was counted from only part of the time.
    pub fn any_multiplexed(&self) -> bool {
        self.readings
            .iter()
            .any(|r| matches!(&r.reading, Reading::Counted(c) if c.multiplexed))
    }

    /// One line per event: `name  value  (scale)` or `name  unavailable: reason`.
    pub fn lines(&self) -> Vec<String> {
        self.readings
            .iter()
            .map(|r| format!("{:<22} {}", r.event.name(), describe(&r.reading)))
            .collect()
    }
}

/// One reading as text.
pub fn describe(reading: &Reading) -> String {
    match reading {
        Reading::Counted(c) => {
            let mut s = format!("{:>16}", c.value);
            if c.multiplexed {
                s.push_str(&format!(
                    "  (scaled x{:.2}: ran {} of {} ns)",
                    c.scale, c.running_ns, c.enabled_ns
                ));
            } else {
                s.push_str("  (x1.00)");
            }
            if c.clock_anomaly {
                s.push_str("  [running > enabled: unscaled]");
            }
            s
        }
        Reading::NotCounted { reason, .. } => format!("not counted: {reason}"),
        Reading::Unavailable(u) => format!("unavailable: {u}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::scale::{Scaled, scale};

    fn counted(raw: u64, enabled: u64, running: u64) -> Reading {
        match scale(raw, enabled, running) {
            Scaled::Counted(c) => Reading::Counted(c),
            Scaled::NotCounted { .. } => unreachable!(),
        }
    }

    fn report() -> CounterReport {
        CounterReport {
            target: Target::CurrentThread,
            readings: vec![
                EventReading {
                    event: Event::L1dReadAccesses,
                    group: Some(0),
                    reading: counted(1000, 10, 10),
                },
                EventReading {
                    event: Event::L1dReadMisses,
                    group: Some(0),
                    reading: counted(25, 10, 5),
                },
                EventReading {
                    event: Event::LlcMisses,
                    group: None,
                    reading: Reading::Unavailable(Unavailable::NoPmu),
                },
            ],
            groups: vec![vec![Event::L1dReadAccesses, Event::L1dReadMisses]],
            notes: vec![],
            wall_ns: None,
        }
    }

    #[test]
    fn rates_use_scaled_values_and_skip_missing_events() {
        let r = report();
        assert_eq!(r.value(Event::L1dReadMisses), Some(50));
        assert_eq!(r.l1d_miss_rate(), Some(0.05));
        assert_eq!(r.llc_miss_rate(), None);
        assert!(r.any_multiplexed());
    }

    #[test]
    fn lines_say_scale_and_reason() {
        let lines = report().lines();
        assert!(lines[1].contains("scaled x2.00"), "{}", lines[1]);
        assert!(
            lines[2].contains("PMU not available (virtualized?)"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn serializes_with_status_tags() {
        let json = serde_json::to_value(report()).expect("json");
        assert_eq!(json["readings"][2]["reading"]["status"], "unavailable");
        assert_eq!(json["readings"][2]["reading"]["kind"], "no_pmu");
        assert_eq!(json["readings"][1]["reading"]["scale"], 2.0);
    }
}
