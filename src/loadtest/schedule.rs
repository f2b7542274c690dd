//! Intended start times: the arrival process turned into a sequence of offsets.
//!
//! A [`Schedule`] yields, for op 0, 1, 2, …, the nanosecond offset from the run's start at which
//! the op is *meant* to begin. The driver measures latency from that instant, so a stall in the
//! target (or the driver) shows up in every op it delayed. The schedule is a pure function of
//! the arrival process and the seed.

use crate::rng::SplitMix64;

use super::scenario::Arrival;

/// Offsets (ns) of the ops' intended starts, from 0 up to (excluding) `end_ns`.
#[derive(Debug, Clone)]
pub struct Schedule {
    arrival: Arrival,
    next_ns: f64,
    end_ns: f64,
    rng: SplitMix64,
}

impl Schedule {
    /// The schedule of an open-loop arrival process over `end_ns` nanoseconds.
    /// A closed loop has no schedule: it yields nothing.
    pub fn new(arrival: &Arrival, seed: u64, end_ns: u64) -> Self {
        let end_ns = if matches!(arrival, Arrival::Closed { .. }) {
            0.0
        } else {
            end_ns as f64
        };
        Schedule {
            arrival: arrival.clone(),
            next_ns: 0.0,
            end_ns,
            rng: SplitMix64::new(seed ^ 0x5C4E_D01E),
        }
    }

    /// The number of ops the schedule holds (walks it; for tests and sizing reports).
    pub fn count(self) -> u64 {
        Iterator::count(self) as u64
    }
}

impl Iterator for Schedule {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.next_ns >= self.end_ns {
            return None;
        }
        let now = self.next_ns;
        let rate = self
            .arrival
            .rate_at(std::time::Duration::from_nanos(now as u64))?;
        let mean_gap = 1e9 / rate;
        let gap = match self.arrival {
            Arrival::Poisson { .. } => -self.rng.next_open01().ln() * mean_gap,
            _ => mean_gap,
        };
        self.next_ns = now + gap;
        Some(now as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn constant_is_evenly_spaced() {
        let s: Vec<u64> = Schedule::new(&Arrival::Constant { rate: 1000.0 }, 1, 10_000_000).collect();
        assert_eq!(s, (0..10).map(|i| i * 1_000_000).collect::<Vec<_>>());
    }

    #[test]
    fn poisson_has_the_right_mean_and_repeats() {
        let a = Arrival::Poisson { rate: 10_000.0 };
        let n = Schedule::new(&a, 3, 10_000_000_000).count();
        assert!((95_000..105_000).contains(&n), "{n}");
        let x: Vec<u64> = Schedule::new(&a, 3, 1_000_000).collect();
        let y: Vec<u64> = Schedule::new(&a, 3, 1_000_000).collect();
        assert_eq!(x, y);
    }

    #[test]
    fn burst_and_ramp_follow_their_rates() {
        let burst = Arrival::Burst {
            base: 100.0,
            peak: 1000.0,
            period: Duration::from_secs(1),
            duty: 0.5,
        };
        // Half a second at 1000/s + half a second at 100/s per period.
        let n = Schedule::new(&burst, 0, 2_000_000_000).count();
        assert!((1095..=1105).contains(&n), "{n}");
        let ramp = Arrival::Ramp {
            from: 100.0,
            to: 300.0,
            step: 100.0,
            step_duration: Duration::from_secs(1),
        };
        // 100 + 200 + 300 + 300.
        let n = Schedule::new(&ramp, 0, 4_000_000_000).count();
        assert!((898..=902).contains(&n), "{n}");
    }

    #[test]
    fn closed_loop_has_no_schedule() {
        assert_eq!(
            Schedule::new(&Arrival::Closed { clients: 2 }, 0, 1_000_000_000).count(),
            0
        );
    }
}
