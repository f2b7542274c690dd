//! The events Locus counts, and how each is encoded for `perf_event_open`.
//!
//! Most hardware events use the kernel's *generic* encodings (`PERF_TYPE_HARDWARE` and
//! `PERF_TYPE_HW_CACHE`), which every core PMU driver maps to its own event codes. The kernel
//! has no generic id for the L2 cache, so [`Event::L2Accesses`] and [`Event::L2Misses`] come
//! from the per-model table in [`super::raw_events`] and are unavailable on models it lacks.
//! Software events are counted by the kernel itself and work on every Linux machine, PMU or not.

use serde::Serialize;

use super::cpu_model::CpuModel;
use super::raw_events;

/// `perf_event_attr.type` values (include/uapi/linux/perf_event.h, `enum perf_type_id`).
mod perf_type {
    pub const HARDWARE: u32 = 0;
    pub const SOFTWARE: u32 = 1;
    pub const HW_CACHE: u32 = 3;
    pub const RAW: u32 = 4;
}

/// `PERF_COUNT_HW_*` (enum perf_hw_id).
mod hw {
    pub const CPU_CYCLES: u64 = 0;
    pub const INSTRUCTIONS: u64 = 1;
    pub const CACHE_REFERENCES: u64 = 2;
    pub const CACHE_MISSES: u64 = 3;
    pub const BRANCH_MISSES: u64 = 5;
}

/// `PERF_COUNT_HW_CACHE_*` ids, ops and results; config = id | op << 8 | result << 16.
mod hw_cache {
    pub const L1D: u64 = 0;
    pub const OP_READ: u64 = 0;
    pub const RESULT_ACCESS: u64 = 0;
    pub const RESULT_MISS: u64 = 1;
    pub const fn config(id: u64, op: u64, result: u64) -> u64 {
        id | (op << 8) | (result << 16)
    }
}

/// `PERF_COUNT_SW_*` (enum perf_sw_ids).
mod sw {
    pub const TASK_CLOCK: u64 = 1;
    pub const PAGE_FAULTS: u64 = 2;
    pub const CONTEXT_SWITCHES: u64 = 3;
    pub const CPU_MIGRATIONS: u64 = 4;
}

/// One countable event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// Core clock cycles (`PERF_COUNT_HW_CPU_CYCLES`).
    Cycles,
    /// Retired instructions.
    Instructions,
    /// Mispredicted branches.
    BranchMisses,
    /// L1 data cache read accesses (generic cache event L1D/read/access).
    L1dReadAccesses,
    /// L1 data cache read misses (L1D/read/miss).
    L1dReadMisses,
    /// Last-level cache references (`PERF_COUNT_HW_CACHE_REFERENCES`).
    LlcReferences,
    /// Last-level cache misses (`PERF_COUNT_HW_CACHE_MISSES`).
    LlcMisses,
    /// L2 cache accesses (raw event, per CPU model).
    L2Accesses,
    /// L2 cache misses (raw event, per CPU model).
    L2Misses,
    /// CPU time of the counted task, in nanoseconds (software).
    TaskClock,
    /// Page faults (software).
    PageFaults,
    /// Context switches (software).
    ContextSwitches,
    /// Migrations of the task to another CPU (software).
    CpuMigrations,
}

/// What `perf_event_open` needs to know about an event: its type and config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EventCode {
    /// `perf_event_attr.type`.
    pub type_: u32,
    /// `perf_event_attr.config`.
    pub config: u64,
}

impl Event {
    /// Every event, hardware first.
    pub const ALL: [Event; 13] = [
        Event::Cycles,
        Event::Instructions,
        Event::BranchMisses,
        Event::L1dReadAccesses,
        Event::L1dReadMisses,
        Event::LlcReferences,
        Event::LlcMisses,
        Event::L2Accesses,
        Event::L2Misses,
        Event::TaskClock,
        Event::PageFaults,
        Event::ContextSwitches,
        Event::CpuMigrations,
    ];

    /// The software events, which work without a PMU.
    pub const SOFTWARE: [Event; 4] = [
        Event::TaskClock,
        Event::PageFaults,
        Event::ContextSwitches,
        Event::CpuMigrations,
    ];

    /// The short name used in reports (as `perf` spells the generic ones).
    pub fn name(self) -> &'static str {
        match self {
            Event::Cycles => "cycles",
            Event::Instructions => "instructions",
            Event::BranchMisses => "branch-misses",
            Event::L1dReadAccesses => "L1-dcache-loads",
            Event::L1dReadMisses => "L1-dcache-load-misses",
            Event::LlcReferences => "cache-references",
            Event::LlcMisses => "cache-misses",
            Event::L2Accesses => "l2-accesses",
            Event::L2Misses => "l2-misses",
            Event::TaskClock => "task-clock",
            Event::PageFaults => "page-faults",
            Event::ContextSwitches => "context-switches",
            Event::CpuMigrations => "cpu-migrations",
        }
    }

    /// Whether the kernel counts this event itself (no PMU needed).
    pub fn is_software(self) -> bool {
        Event::SOFTWARE.contains(&self)
    }

    /// The encoding for `perf_event_open` on a CPU of model `cpu`, or `None` when the event
    /// needs a raw code that the table in [`raw_events`] does not have for that model.
    pub fn code(self, cpu: &CpuModel) -> Option<EventCode> {
        let hw = |config| EventCode {
            type_: perf_type::HARDWARE,
            config,
        };
        let cache = |id, result| EventCode {
            type_: perf_type::HW_CACHE,
            config: hw_cache::config(id, hw_cache::OP_READ, result),
        };
        let soft = |config| EventCode {
            type_: perf_type::SOFTWARE,
            config,
        };
        let raw = |config| EventCode {
            type_: perf_type::RAW,
            config,
        };
        Some(match self {
            Event::Cycles => hw(hw::CPU_CYCLES),
            Event::Instructions => hw(hw::INSTRUCTIONS),
            Event::BranchMisses => hw(hw::BRANCH_MISSES),
            Event::LlcReferences => hw(hw::CACHE_REFERENCES),
            Event::LlcMisses => hw(hw::CACHE_MISSES),
            Event::L1dReadAccesses => cache(hw_cache::L1D, hw_cache::RESULT_ACCESS),
            Event::L1dReadMisses => cache(hw_cache::L1D, hw_cache::RESULT_MISS),
            Event::L2Accesses => raw(raw_events::lookup(cpu)?.l2_accesses.config()),
            Event::L2Misses => raw(raw_events::lookup(cpu)?.l2_misses.config()),
            Event::TaskClock => soft(sw::TASK_CLOCK),
            Event::PageFaults => soft(sw::PAGE_FAULTS),
            Event::ContextSwitches => soft(sw::CONTEXT_SWITCHES),
            Event::CpuMigrations => soft(sw::CPU_MIGRATIONS),
        })
    }

    /// Whether this event's code goes to the core PMU (hardware, cache or raw type).
    pub(crate) fn needs_pmu(self) -> bool {
        !self.is_software()
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::cpu_model::Vendor;

    #[test]
    fn generic_encodings_follow_the_uapi_header() {
        let cpu = CpuModel::unknown();
        assert_eq!(Event::Cycles.code(&cpu), Some(EventCode { type_: 0, config: 0 }));
        assert_eq!(
            Event::LlcMisses.code(&cpu),
            Some(EventCode { type_: 0, config: 3 })
        );
        // L1D (0) | OP_READ (0) << 8 | RESULT_MISS (1) << 16
        assert_eq!(
            Event::L1dReadMisses.code(&cpu),
            Some(EventCode {
                type_: 3,
                config: 0x1_00_00
            })
        );
        assert_eq!(
            Event::PageFaults.code(&cpu),
            Some(EventCode { type_: 1, config: 2 })
        );
    }

    #[test]
    fn l2_events_need_a_known_model() {
        assert_eq!(Event::L2Misses.code(&CpuModel::unknown()), None);
        let zen3 = CpuModel {
            vendor: Vendor::Amd,
            family: 0x19,
            model: 0x01,
            name: String::new(),
        };
        let code = Event::L2Misses.code(&zen3).expect("zen 3 is in the table");
        assert_eq!(code.type_, 4);
        assert_eq!(code.config, 0x0964);
    }

    #[test]
    fn software_set_is_the_software_events() {
        for e in Event::ALL {
            assert_eq!(e.is_software(), Event::SOFTWARE.contains(&e));
            assert_eq!(e.needs_pmu(), !e.is_software());
        }
    }
}
