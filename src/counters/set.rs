//! A set of counters: the requested events split into PMU-sized groups, opened for one thread
//! or one CPU, each event either counting or carrying the reason it cannot.

use std::time::Instant;

use serde::Serialize;

use super::cpu_model::CpuModel;
use super::error::{CounterError, Unavailable, errno_name};
use super::event::Event;
use super::group::{CounterGroup, MAX_GROUP_EVENTS};
use super::paranoid::{Access, Paranoid};
use super::pmu;
use super::report::{CounterReport, EventReading, Reading, Target};
use super::scale::{Scaled, scale};
use super::sys::{self, GroupOp, RawTarget, SysError};

/// How counters are opened.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CounterOptions {
    /// Count kernel-mode execution too for hardware events. Off by default: user-space
    /// counting is what `perf_event_paranoid = 2` (the upstream default) allows without
    /// privileges, and it is what a workload's own code costs. Software events include kernel
    /// mode whenever the process is allowed to (they happen there).
    pub include_kernel: bool,
}

/// Open counters for one target. Dropping it closes them.
pub struct CounterSet {
    target: Target,
    /// Events in the order asked (duplicates removed).
    order: Vec<Event>,
    groups: Vec<CounterGroup>,
    unavailable: Vec<(Event, Unavailable)>,
    notes: Vec<String>,
}

/// What to do after a failed open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Classified {
    /// The event cannot be counted here.
    Unavailable(Unavailable),
    /// EINVAL for a group member: the group may be what the PMU rejects; try it alone.
    RetryAlone,
}

/// Context for classifying an errno.
pub(crate) struct OpenContext<'a> {
    pub pmu_present: bool,
    pub paranoid: &'a Paranoid,
    pub access: Access,
}

/// Maps a `perf_event_open` errno for `event` to what it means. Pure, so each errno is tested.
pub(crate) fn classify(event: Event, errno: i32, as_member: bool, cx: &OpenContext<'_>) -> Classified {
    let u = match errno {
        libc::ENOENT if event.needs_pmu() && !cx.pmu_present => Unavailable::NoPmu,
        libc::ENOENT | libc::EOPNOTSUPP => Unavailable::NotSupported {
            errno_name: errno_name(errno),
        },
        libc::EINVAL if as_member => return Classified::RetryAlone,
        libc::EINVAL => Unavailable::NotSupported { errno_name: "EINVAL" },
        libc::ENOSPC | libc::EBUSY => Unavailable::TooManyEvents {
            errno_name: errno_name(errno),
        },
        libc::EACCES | libc::EPERM => Unavailable::Forbidden {
            paranoid: cx.paranoid.clone(),
            advice: cx.paranoid.advice(cx.access),
        },
        libc::ENOSYS => Unavailable::UnsupportedPlatform,
        _ => Unavailable::Os(SysError::new("perf_event_open", errno)),
    };
    Classified::Unavailable(u)
}

impl CounterSet {
    /// Opens `events` for `target`, disabled. Hardware events go in groups of at most
    /// [`MAX_GROUP_EVENTS`], software events in groups of their own; an event the kernel
    /// refuses is recorded with its reason and the rest still open.
    ///
    /// # Errors
    /// [`CounterError::InvalidInput`] if `events` is empty. Per-event refusals are not errors:
    /// they appear as [`Reading::Unavailable`] in every report.
    #[doc(alias = "perf_event_open")]
    pub fn open(events: &[Event], target: Target, options: &CounterOptions) -> Result<Self, CounterError> {
        if events.is_empty() {
            return Err(CounterError::InvalidInput {
                detail: "no events asked for".into(),
            });
        }
        let mut order = Vec::new();
        for &e in events {
            if !order.contains(&e) {
                order.push(e);
            }
        }
        let raw_target = match target {
            Target::CurrentThread => RawTarget { pid: 0, cpu: -1 },
            Target::Thread(tid) if tid > 0 => RawTarget { pid: tid, cpu: -1 },
            Target::Thread(tid) => {
                return Err(CounterError::InvalidInput {
                    detail: format!("thread id {tid} is not a thread id"),
                });
            }
            Target::Cpu(cpu) => RawTarget {
                pid: -1,
                cpu: i32::try_from(cpu).map_err(|_| CounterError::InvalidInput {
                    detail: format!("CPU {cpu} is out of range"),
                })?,
            },
        };
        let access = match (target, options.include_kernel) {
            (Target::Cpu(_), _) => Access::Cpu,
            (_, true) => Access::ThreadKernel,
            (_, false) => Access::ThreadUser,
        };
        let paranoid = Paranoid::read();
        let cx = OpenContext {
            pmu_present: pmu::core_pmu_present(),
            paranoid: &paranoid,
            access,
        };
        let cpu = CpuModel::detect();
        let exclude_kernel = !options.include_kernel;

        let hardware: Vec<Event> = order.iter().copied().filter(|e| e.needs_pmu()).collect();
        let software: Vec<Event> = order.iter().copied().filter(|e| e.is_software()).collect();
        let mut set = Self {
            target,
            order: order.clone(),
            groups: Vec::new(),
            unavailable: Vec::new(),
            notes: Vec::new(),
        };
        let mut retry = Vec::new();
        // Software events are kernel-side (a context switch happens in the kernel), so they
        // include kernel mode whenever the process may: otherwise context-switches and
        // cpu-migrations would always read 0.
        let kernel_allowed =
            super::paranoid::privileged() || paranoid.allows_unprivileged(Access::ThreadKernel);
        let software_exclude_kernel = exclude_kernel && !kernel_allowed;
        if software_exclude_kernel && !software.is_empty() {
            set.notes.push(format!(
                "software events count user mode only ({}): context-switches and cpu-migrations \
                 will read 0",
                paranoid.advice(Access::ThreadKernel)
            ));
        }
        for chunk in hardware.chunks(MAX_GROUP_EVENTS) {
            set.open_group(chunk, raw_target, exclude_kernel, &cpu, &cx, &mut retry);
        }
        for chunk in software.chunks(MAX_GROUP_EVENTS) {
            set.open_group(chunk, raw_target, software_exclude_kernel, &cpu, &cx, &mut retry);
        }
        for event in retry {
            let exclude = if event.is_software() {
                software_exclude_kernel
            } else {
                exclude_kernel
            };
            let mut again = Vec::new();
            set.open_group(&[event], raw_target, exclude, &cpu, &cx, &mut again);
            if again.is_empty() && set.groups.last().is_some_and(|g| g.events() == [event]) {
                set.notes.push(format!(
                    "{event} did not fit in its group (EINVAL) and is counted in a group of its own"
                ));
            }
        }
        let hw_groups = set
            .groups
            .iter()
            .filter(|g| g.events().iter().any(|e| e.needs_pmu()))
            .count();
        if hw_groups > 1 {
            set.notes.push(format!(
                "hardware events split into {hw_groups} groups of at most {MAX_GROUP_EVENTS}: \
                 ratios between events of different groups mix different time slices"
            ));
        }
        Ok(set)
    }

    fn open_group(
        &mut self,
        events: &[Event],
        target: RawTarget,
        exclude_kernel: bool,
        cpu: &CpuModel,
        cx: &OpenContext<'_>,
        retry: &mut Vec<Event>,
    ) {
        let mut group: Option<CounterGroup> = None;
        for &event in events {
            let Some(code) = event.code(cpu) else {
                self.unavailable
                    .push((event, Unavailable::NoRawCode { cpu: cpu.to_string() }));
                continue;
            };
            let opened = sys::open_counter(code, target, group.as_ref().map(|g| g.leader()), exclude_kernel);
            let added = match (opened, group.as_mut()) {
                (Ok(fd), None) => CounterGroup::new(event, fd).map(|g| group = Some(g)),
                (Ok(fd), Some(g)) => g.push(event, fd),
                (Err(e), g) => match classify(event, e.errno, g.is_some(), cx) {
                    Classified::RetryAlone => {
                        retry.push(event);
                        continue;
                    }
                    Classified::Unavailable(u) => {
                        self.unavailable.push((event, u));
                        continue;
                    }
                },
            };
            if let Err(e) = added {
                self.unavailable.push((event, Unavailable::Os(e)));
            }
        }
        if let Some(g) = group {
            self.groups.push(g);
        }
    }

    /// What is counted.
    pub fn target(&self) -> Target {
        self.target
    }

    /// How many events opened.
    pub fn open_count(&self) -> usize {
        self.groups.iter().map(CounterGroup::len).sum()
    }

    /// The events that could not be opened, with why.
    pub fn unavailable(&self) -> &[(Event, Unavailable)] {
        &self.unavailable
    }

    fn control(&self, op: GroupOp) -> Result<(), CounterError> {
        self.groups.iter().try_for_each(|g| g.control(op))
    }

    /// Starts counting (every group, `PERF_IOC_FLAG_GROUP`).
    ///
    /// # Errors
    /// [`CounterError::Os`] if the kernel refuses the ioctl.
    #[doc(alias = "PERF_EVENT_IOC_ENABLE")]
    pub fn enable(&self) -> Result<(), CounterError> {
        self.control(GroupOp::Enable)
    }

    /// Stops counting.
    ///
    /// # Errors
    /// [`CounterError::Os`] if the kernel refuses the ioctl.
    #[doc(alias = "PERF_EVENT_IOC_DISABLE")]
    pub fn disable(&self) -> Result<(), CounterError> {
        self.control(GroupOp::Disable)
    }

    /// Zeroes the counts. The kernel does not zero a group's enabled/running clocks, so the
    /// set records them here and later reads scale by the time since this reset.
    ///
    /// # Errors
    /// [`CounterError::Os`] if the kernel refuses the ioctl or the read of the clocks,
    /// [`CounterError::MalformedRead`] if that read does not have the documented layout.
    #[doc(alias = "PERF_EVENT_IOC_RESET")]
    pub fn reset(&self) -> Result<(), CounterError> {
        self.groups.iter().try_for_each(CounterGroup::reset)
    }

    /// Reads every group and scales each count by its group's enabled/running times since the
    /// last [`reset`](Self::reset).
    ///
    /// # Errors
    /// [`CounterError::Os`] if a read fails, [`CounterError::MalformedRead`] if the kernel's
    /// answer does not have the documented layout.
    pub fn read(&self) -> Result<CounterReport, CounterError> {
        let mut counted: Vec<(Event, usize, Reading)> = Vec::new();
        for (index, group) in self.groups.iter().enumerate() {
            let read = group.read()?;
            for (event, value) in group.events().into_iter().zip(read.values) {
                let reading = match scale(value, read.enabled_ns, read.running_ns) {
                    Scaled::Counted(c) => Reading::Counted(c),
                    Scaled::NotCounted { enabled_ns } => Reading::NotCounted {
                        enabled_ns,
                        reason: if enabled_ns == 0 {
                            "never enabled".into()
                        } else {
                            "the PMU never scheduled this group: too many events at once, or \
                             counters held by another user (e.g. the NMI watchdog: \
                             `sysctl kernel.nmi_watchdog=0`)"
                                .into()
                        },
                    },
                };
                counted.push((event, index, reading));
            }
        }
        let readings: Vec<EventReading> = self
            .order
            .iter()
            .map(|&event| {
                if let Some((_, g, r)) = counted.iter().find(|(e, _, _)| *e == event) {
                    EventReading {
                        event,
                        group: Some(*g),
                        reading: r.clone(),
                    }
                } else {
                    let u = self
                        .unavailable
                        .iter()
                        .find(|(e, _)| *e == event)
                        .map(|(_, u)| u.clone())
                        .unwrap_or(Unavailable::UnsupportedPlatform);
                    EventReading {
                        event,
                        group: None,
                        reading: Reading::Unavailable(u),
                    }
                }
            })
            .collect();
        let mut report = CounterReport {
            target: self.target,
            readings,
            groups: self.groups.iter().map(CounterGroup::events).collect(),
            notes: self.notes.clone(),
            wall_ns: None,
        };
        if report.any_multiplexed() {
            report
                .notes
                .push("some counts are estimates: the PMU time-shared their groups (see the scale)".into());
        }
        if report
            .readings
            .iter()
            .any(|r| matches!(&r.reading, Reading::Counted(c) if c.clock_anomaly))
        {
            report
                .notes
                .push("the kernel reported running > enabled for some group; left unscaled".into());
        }
        Ok(report)
    }
}

/// Counts `events` on the calling thread while `work` runs: opens, resets, enables, runs,
/// disables, reads. Events that cannot be counted here come back as
/// [`Reading::Unavailable`] with their reason.
///
/// # Errors
/// [`CounterError::InvalidInput`] for an empty event list; [`CounterError::Os`] or
/// [`CounterError::MalformedRead`] if controlling or reading opened counters fails.
pub fn measure<R>(events: &[Event], work: impl FnOnce() -> R) -> Result<(R, CounterReport), CounterError> {
    measure_with(events, &CounterOptions::default(), work)
}

/// [`measure`] with options.
///
/// # Errors
/// As [`measure`].
pub fn measure_with<R>(
    events: &[Event],
    options: &CounterOptions,
    work: impl FnOnce() -> R,
) -> Result<(R, CounterReport), CounterError> {
    let set = CounterSet::open(events, Target::CurrentThread, options)?;
    set.reset()?;
    set.enable()?;
    let start = Instant::now();
    let result = work();
    let wall = start.elapsed();
    set.disable()?;
    let mut report = set.read()?;
    report.wall_ns = Some(u64::try_from(wall.as_nanos()).unwrap_or(u64::MAX));
    Ok((result, report))
}

/// Whether each event can be opened for `target`: each is opened alone and closed at once.
pub fn availability(
    events: &[Event],
    target: Target,
    options: &CounterOptions,
) -> Vec<(Event, Result<(), Unavailable>)> {
    events
        .iter()
        .map(|&event| {
            let outcome = match CounterSet::open(&[event], target, options) {
                Ok(set) if set.open_count() == 1 => Ok(()),
                Ok(set) => Err(set
                    .unavailable()
                    .first()
                    .map(|(_, u)| u.clone())
                    .unwrap_or(Unavailable::UnsupportedPlatform)),
                Err(e) => Err(Unavailable::BadTarget {
                    detail: e.to_string(),
                }),
            };
            (event, outcome)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx(pmu_present: bool, paranoid: &Paranoid) -> OpenContext<'_> {
        OpenContext {
            pmu_present,
            paranoid,
            access: Access::ThreadUser,
        }
    }

    #[test]
    fn errnos_map_to_reasons() {
        let p = Paranoid::Level(3);
        let no_pmu = cx(false, &p);
        let pmu = cx(true, &p);
        let u = |c| match c {
            Classified::Unavailable(u) => u,
            Classified::RetryAlone => panic!("unexpected retry"),
        };
        assert_eq!(
            u(classify(Event::Cycles, libc::ENOENT, false, &no_pmu)),
            Unavailable::NoPmu
        );
        assert_eq!(
            u(classify(Event::Cycles, libc::ENOENT, false, &pmu)),
            Unavailable::NotSupported { errno_name: "ENOENT" }
        );
        assert_eq!(
            u(classify(Event::PageFaults, libc::ENOENT, false, &no_pmu)),
            Unavailable::NotSupported { errno_name: "ENOENT" },
            "a software event missing is not a PMU problem"
        );
        assert_eq!(
            u(classify(Event::L1dReadMisses, libc::EOPNOTSUPP, false, &pmu)),
            Unavailable::NotSupported {
                errno_name: "EOPNOTSUPP"
            }
        );
        assert_eq!(
            classify(Event::Cycles, libc::EINVAL, true, &pmu),
            Classified::RetryAlone
        );
        assert_eq!(
            u(classify(Event::Cycles, libc::EINVAL, false, &pmu)),
            Unavailable::NotSupported { errno_name: "EINVAL" }
        );
        assert_eq!(
            u(classify(Event::Cycles, libc::ENOSPC, true, &pmu)),
            Unavailable::TooManyEvents { errno_name: "ENOSPC" }
        );
        for errno in [libc::EACCES, libc::EPERM] {
            match u(classify(Event::Cycles, errno, false, &pmu)) {
                Unavailable::Forbidden { paranoid, advice } => {
                    assert_eq!(paranoid, Paranoid::Level(3));
                    assert!(advice.contains("sysctl kernel.perf_event_paranoid=2"), "{advice}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            u(classify(Event::Cycles, libc::EMFILE, false, &pmu)),
            Unavailable::Os(SysError {
                errno: libc::EMFILE,
                call: "perf_event_open"
            })
        ));
    }

    #[test]
    fn a_bad_target_is_named_not_passed_off_as_an_errno() {
        let o = CounterOptions::default();
        let answers = availability(&[Event::TaskClock], Target::Thread(-3), &o);
        match &answers[..] {
            [(Event::TaskClock, Err(Unavailable::BadTarget { detail }))] => {
                assert!(detail.contains("-3"), "{detail}")
            }
            other => panic!("expected BadTarget, got {other:?}"),
        }
        // And an errno from the kernel keeps the crate's one failed-call shape.
        let e = CounterError::from(SysError::new("read", libc::EBADF));
        assert_eq!(e.sys_error(), Some(SysError::new("read", libc::EBADF)));
        let json =
            serde_json::to_value(Unavailable::Os(SysError::new("perf_event_open", libc::EMFILE))).unwrap();
        assert_eq!(
            (json["kind"].as_str(), json["errno_name"].as_str()),
            (Some("os"), Some("EMFILE"))
        );
    }

    #[test]
    fn empty_and_bad_targets_are_invalid_input() {
        let o = CounterOptions::default();
        assert!(matches!(
            CounterSet::open(&[], Target::CurrentThread, &o),
            Err(CounterError::InvalidInput { .. })
        ));
        assert!(matches!(
            CounterSet::open(&[Event::TaskClock], Target::Thread(-3), &o),
            Err(CounterError::InvalidInput { .. })
        ));
    }
}
