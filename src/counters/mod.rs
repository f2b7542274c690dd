//! Hardware and software performance counters, through Linux's `perf_event_open`.
//!
//! # The model
//!
//! A [`CounterSet`] counts a list of [`Event`]s for one [`Target`] — the calling thread,
//! another thread, or a whole CPU. The kernel schedules counters onto the PMU in *groups*: all
//! members of a group count at exactly the same times, so ratios within a group (misses per
//! access, instructions per cycle) are exact. A PMU has only a handful of counters, so the set
//! splits its hardware events into groups of at most [`MAX_GROUP_EVENTS`] and says so in the
//! report's notes. When groups outnumber the counters the kernel time-shares them
//! (*multiplexing*); every count is then scaled by `enabled / running` ([`scale()`]) and the
//! factor is reported beside it.
//!
//! Each event either counts or carries an [`Unavailable`] reason: no PMU (virtual machines),
//! an event the PMU lacks, a `perf_event_paranoid` setting that forbids it (with the `sysctl`
//! that would allow it), or no room on the PMU. A missing event never fails the others, and
//! the software events ([`Event::SOFTWARE`]: task-clock, page-faults, context-switches,
//! cpu-migrations) work on every Linux machine.
//!
//! ```no_run
//! use locus::counters::{Event, measure};
//!
//! let (sum, report) = measure(&[Event::Cycles, Event::LlcMisses, Event::TaskClock], || {
//!     (0..1_000_000u64).sum::<u64>()
//! })?;
//! for line in report.lines() {
//!     println!("{line}");
//! }
//! # let _ = sum;
//! # Ok::<(), locus::counters::CounterError>(())
//! ```
//!
//! # Files
//! - [`event`]: the events and their kernel encodings; [`raw_events`]: the per-model raw L2
//!   codes; [`cpu_model`]: vendor/family/model detection.
//! - [`paranoid`]: `perf_event_paranoid` and privileges; [`pmu`]: is there a core PMU.
//! - [`mod@scale`]: multiplex scaling; [`report`]: readings and reports.
//! - `group`, `set`: opening, controlling and reading groups; `sys_linux`: the raw calls.
//! - The calibrated workloads used by `locus counters` and the layout benches live in
//!   [`crate::diag`].

pub mod cpu_model;
pub mod error;
pub mod event;
mod group;
pub mod paranoid;
pub mod pmu;
pub mod raw_events;
pub mod report;
pub mod scale;
mod set;
#[cfg(target_os = "linux")]
#[path = "sys_linux.rs"]
mod sys;
#[cfg(not(target_os = "linux"))]
#[path = "sys_other.rs"]
mod sys;

pub use cpu_model::CpuModel;
pub use error::{CounterError, Unavailable};
pub use event::{Event, EventCode};
pub use group::MAX_GROUP_EVENTS;
pub use paranoid::Paranoid;
pub use report::{CounterReport, EventReading, Reading, Target};
pub use scale::{Count, Scaled, scale};
pub use set::{CounterOptions, CounterSet, availability, measure, measure_with};
