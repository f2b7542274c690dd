//! One perf event group: a leader and up to [`MAX_GROUP_EVENTS`]` - 1` members, scheduled on
//! the PMU together, enabled, disabled and reset together, and read with one `read` call.

use std::sync::{Mutex, PoisonError};

use super::error::CounterError;
use super::event::Event;
use super::sys::{self, CounterFd, GroupOp, SysError};

/// The most events Locus puts in one group. Intel and AMD cores have 4–6 general-purpose
/// counters per hardware thread (fewer with SMT on some parts, and the NMI watchdog may hold
/// one), so 4 is what fits everywhere; larger sets are split into several groups.
pub const MAX_GROUP_EVENTS: usize = 4;

/// An open group. Member 0 is the leader.
pub(crate) struct CounterGroup {
    members: Vec<Member>,
    /// The clocks at the last [`reset`](Self::reset) (zero before any).
    base: Mutex<TimeBase>,
}

struct Member {
    event: Event,
    fd: CounterFd,
    id: u64,
}

/// The group's enabled/running clocks at its last reset. `PERF_EVENT_IOC_RESET` zeroes the
/// counts but not `time_enabled`/`time_running`, so a count read after a reset must be scaled
/// by the time that passed *since* the reset, not by the group's whole life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TimeBase {
    pub enabled_ns: u64,
    pub running_ns: u64,
}

/// One group read, after matching ids to events.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroupRead {
    pub enabled_ns: u64,
    pub running_ns: u64,
    /// Values in member order.
    pub values: Vec<u64>,
}

impl CounterGroup {
    /// A group led by `leader` (opened disabled, as a new group).
    pub(crate) fn new(event: Event, fd: CounterFd) -> Result<Self, SysError> {
        let id = sys::event_id(&fd)?;
        Ok(Self {
            members: vec![Member { event, fd, id }],
            base: Mutex::new(TimeBase::default()),
        })
    }

    /// Adds a member opened with this group's leader as `group_fd`.
    pub(crate) fn push(&mut self, event: Event, fd: CounterFd) -> Result<(), SysError> {
        let id = sys::event_id(&fd)?;
        self.members.push(Member { event, fd, id });
        Ok(())
    }

    /// The leader's descriptor, for opening members.
    pub(crate) fn leader(&self) -> &CounterFd {
        &self.members[0].fd
    }

    /// The events, leader first.
    pub(crate) fn events(&self) -> Vec<Event> {
        self.members.iter().map(|m| m.event).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// Enables, disables or resets every member at once.
    pub(crate) fn control(&self, op: GroupOp) -> Result<(), CounterError> {
        sys::group_ioctl(self.leader(), op).map_err(os_error)
    }

    /// Zeroes every member's count and records the clocks at that moment, so later reads
    /// scale by the time since this reset.
    pub(crate) fn reset(&self) -> Result<(), CounterError> {
        self.control(GroupOp::Reset)?;
        let raw = self.read_raw()?;
        *self.base.lock().unwrap_or_else(PoisonError::into_inner) = TimeBase {
            enabled_ns: raw.enabled_ns,
            running_ns: raw.running_ns,
        };
        Ok(())
    }

    /// Reads all members; the times are those since the last reset.
    pub(crate) fn read(&self) -> Result<GroupRead, CounterError> {
        let base = *self.base.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(self.read_raw()?.since(base))
    }

    /// Reads all members, with the kernel's clocks as they are (since the group opened).
    fn read_raw(&self) -> Result<GroupRead, CounterError> {
        let mut buf = vec![0u64; 3 + 2 * self.members.len()];
        let words = sys::read_group(self.leader(), &mut buf).map_err(os_error)?;
        let ids: Vec<u64> = self.members.iter().map(|m| m.id).collect();
        parse_group_read(&buf[..words.min(buf.len())], &ids)
    }
}

impl GroupRead {
    /// This read with its clocks measured from `base` (the clocks at the last reset). The
    /// kernel's clocks only grow, so a clock below its base cannot come from the kernel; it
    /// saturates to 0 (then the reading is "not counted" rather than a wrong factor).
    pub(crate) fn since(self, base: TimeBase) -> Self {
        Self {
            enabled_ns: self.enabled_ns.saturating_sub(base.enabled_ns),
            running_ns: self.running_ns.saturating_sub(base.running_ns),
            values: self.values,
        }
    }
}

pub(crate) fn os_error(e: SysError) -> CounterError {
    CounterError::from(e)
}

/// Parses a `PERF_FORMAT_GROUP | TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING | ID` read:
/// `nr, time_enabled, time_running, (value, id) × nr`, and returns the values in the order of
/// `ids`. Every id must appear exactly once.
pub(crate) fn parse_group_read(words: &[u64], ids: &[u64]) -> Result<GroupRead, CounterError> {
    let malformed = |detail: String| CounterError::MalformedRead { detail };
    let [nr, enabled_ns, running_ns, rest @ ..] = words else {
        return Err(malformed(format!("{} words, need at least 3", words.len())));
    };
    let nr = usize::try_from(*nr).unwrap_or(usize::MAX);
    if nr != ids.len() {
        return Err(malformed(format!("nr = {nr}, group has {} members", ids.len())));
    }
    if rest.len() < 2 * nr {
        return Err(malformed(format!("{} value words for {nr} members", rest.len())));
    }
    let mut values = vec![None; nr];
    for pair in rest[..2 * nr].chunks_exact(2) {
        let (value, id) = (pair[0], pair[1]);
        let slot = ids
            .iter()
            .position(|&i| i == id)
            .ok_or_else(|| malformed(format!("unknown event id {id}")))?;
        if values[slot].replace(value).is_some() {
            return Err(malformed(format!("event id {id} twice")));
        }
    }
    Ok(GroupRead {
        enabled_ns: *enabled_ns,
        running_ns: *running_ns,
        values: values.into_iter().map(|v| v.unwrap_or(0)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_by_id_in_any_order() {
        let words = [2, 1000, 500, 77, 12, 55, 11];
        let r = parse_group_read(&words, &[11, 12]).expect("valid");
        assert_eq!(
            r,
            GroupRead {
                enabled_ns: 1000,
                running_ns: 500,
                values: vec![55, 77]
            }
        );
    }

    #[test]
    fn reads_after_a_reset_scale_by_the_time_since_the_reset() {
        use crate::counters::{Scaled, scale};
        // Before the reset the group ran the whole time (1000 of 1000 ns); after it, half the
        // time (500 of 1000 ns) and counted 100: the estimate is 200, not 100 × 2000 / 1500.
        let base = TimeBase {
            enabled_ns: 1000,
            running_ns: 1000,
        };
        let read = parse_group_read(&[1, 2000, 1500, 100, 7], &[7])
            .expect("valid")
            .since(base);
        assert_eq!((read.enabled_ns, read.running_ns), (1000, 500));
        match scale(read.values[0], read.enabled_ns, read.running_ns) {
            Scaled::Counted(c) => assert_eq!((c.value, c.scale, c.multiplexed), (200, 2.0, true)),
            other => panic!("{other:?}"),
        }
        // No time on the PMU since the reset: nothing to scale, whatever came before.
        let idle = parse_group_read(&[1, 2000, 1000, 0, 7], &[7])
            .expect("valid")
            .since(base);
        assert_eq!(
            scale(idle.values[0], idle.enabled_ns, idle.running_ns),
            Scaled::NotCounted { enabled_ns: 1000 }
        );
    }

    #[test]
    fn rejects_layouts_the_kernel_does_not_produce() {
        assert!(parse_group_read(&[1, 2], &[1]).is_err(), "short header");
        assert!(parse_group_read(&[2, 1, 1, 5, 1], &[1, 2]).is_err(), "short body");
        assert!(parse_group_read(&[1, 1, 1, 5, 9], &[1]).is_err(), "unknown id");
        assert!(
            parse_group_read(&[2, 1, 1, 5, 1, 6, 1], &[1, 2]).is_err(),
            "duplicate id"
        );
        assert!(parse_group_read(&[3, 1, 1, 5, 1], &[1]).is_err(), "nr mismatch");
    }
}
