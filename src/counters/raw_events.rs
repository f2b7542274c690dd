//! Raw L2 events per CPU model: the data the kernel's generic events lack.
//!
//! The kernel has generic ids for L1D and the last-level cache but none for L2, so L2 accesses
//! and misses need the vendor's own event codes. The table is deliberately small: only models
//! whose codes were checked against the vendors' event lists as published in Linux's
//! `tools/perf/pmu-events/arch/x86/` (Intel's perfmon JSON and AMD's PPR, as converted there).
//! A model not listed gets no L2 events — reported as unavailable, never guessed.
//!
//! | models | L2 accesses | L2 misses | source file |
//! |---|---|---|---|
//! | Intel Skylake / Kaby / Coffee Lake client, Skylake-SP / Cascade Lake (family 6: 0x4E, 0x5E, 0x55, 0x8E, 0x9E) | `L2_RQSTS.REFERENCES` 0x24/0xFF | `L2_RQSTS.MISS` 0x24/0x3F | skylake/, skylakex/ cache.json |
//! | Intel Ice Lake client and server (family 6: 0x7D, 0x7E, 0x6A, 0x6C) | `L2_RQSTS.REFERENCES` 0x24/0xFF | `L2_RQSTS.MISS` 0x24/0x3F | icelake/, icelakex/ cache.json |
//! | AMD Zen 1 / Zen 2 (family 0x17) | `l2_request_g1.all_no_prefetch` 0x60/0xF9 | `l2_cache_req_stat.ic_dc_miss_in_l2` 0x64/0x09 | amdzen1/, amdzen2/ cache.json |
//! | AMD Zen 3 (family 0x19, models 0x00–0x0F, 0x20–0x5F) | same as Zen 2 | same as Zen 2 | amdzen3/cache.json |
//!
//! Zen 4 (family 0x19, other models) and Zen 5 changed some unit masks, so they are left out
//! until checked.

use serde::Serialize;

use super::cpu_model::{CpuModel, Vendor};

/// A raw x86 core event: event select and unit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RawEvent {
    /// The vendor's name for it.
    pub name: &'static str,
    /// Event select (12 bits on AMD, 8 on Intel).
    pub event: u16,
    /// Unit mask.
    pub umask: u8,
}

impl RawEvent {
    /// The `perf_event_attr.config` for `PERF_TYPE_RAW` on x86: event select bits 0–7, unit
    /// mask bits 8–15, and (AMD) event select bits 8–11 in config bits 32–35.
    pub fn config(&self) -> u64 {
        let event = u64::from(self.event);
        (event & 0xFF) | (u64::from(self.umask) << 8) | ((event & 0xF00) << 24)
    }
}

/// The raw L2 events of one family of models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ModelEvents {
    /// Which microarchitecture the entry covers.
    pub microarchitecture: &'static str,
    /// L2 accesses.
    pub l2_accesses: RawEvent,
    /// L2 misses.
    pub l2_misses: RawEvent,
}

const INTEL_L2_REFERENCES: RawEvent = RawEvent {
    name: "L2_RQSTS.REFERENCES",
    event: 0x24,
    umask: 0xFF,
};
const INTEL_L2_MISS: RawEvent = RawEvent {
    name: "L2_RQSTS.MISS",
    event: 0x24,
    umask: 0x3F,
};
const AMD_L2_REQUESTS: RawEvent = RawEvent {
    name: "l2_request_g1.all_no_prefetch",
    event: 0x60,
    umask: 0xF9,
};
const AMD_L2_MISSES: RawEvent = RawEvent {
    name: "l2_cache_req_stat.ic_dc_miss_in_l2",
    event: 0x64,
    umask: 0x09,
};

/// One row of the table: vendor, family, inclusive model ranges, events.
struct Row {
    vendor: Vendor,
    family: u32,
    models: &'static [(u32, u32)],
    events: ModelEvents,
}

fn table() -> [Row; 4] {
    [
        Row {
            vendor: Vendor::Intel,
            family: 6,
            models: &[
                (0x4E, 0x4E),
                (0x5E, 0x5E),
                (0x55, 0x55),
                (0x8E, 0x8E),
                (0x9E, 0x9E),
            ],
            events: ModelEvents {
                microarchitecture: "Intel Skylake family",
                l2_accesses: INTEL_L2_REFERENCES,
                l2_misses: INTEL_L2_MISS,
            },
        },
        Row {
            vendor: Vendor::Intel,
            family: 6,
            models: &[(0x6A, 0x6A), (0x6C, 0x6C), (0x7D, 0x7E)],
            events: ModelEvents {
                microarchitecture: "Intel Ice Lake",
                l2_accesses: INTEL_L2_REFERENCES,
                l2_misses: INTEL_L2_MISS,
            },
        },
        Row {
            vendor: Vendor::Amd,
            family: 0x17,
            models: &[(0x00, 0xFF)],
            events: ModelEvents {
                microarchitecture: "AMD Zen 1/2",
                l2_accesses: AMD_L2_REQUESTS,
                l2_misses: AMD_L2_MISSES,
            },
        },
        Row {
            vendor: Vendor::Amd,
            family: 0x19,
            models: &[(0x00, 0x0F), (0x20, 0x5F)],
            events: ModelEvents {
                microarchitecture: "AMD Zen 3",
                l2_accesses: AMD_L2_REQUESTS,
                l2_misses: AMD_L2_MISSES,
            },
        },
    ]
}

/// The raw L2 events for `cpu`, or `None` when the table does not cover it.
pub fn lookup(cpu: &CpuModel) -> Option<ModelEvents> {
    table()
        .into_iter()
        .find(|row| {
            row.vendor == cpu.vendor
                && row.family == cpu.family
                && row.models.iter().any(|&(lo, hi)| (lo..=hi).contains(&cpu.model))
        })
        .map(|row| row.events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(vendor: Vendor, family: u32, model: u32) -> CpuModel {
        CpuModel {
            vendor,
            family,
            model,
            name: String::new(),
        }
    }

    #[test]
    fn known_models_resolve() {
        let skx = lookup(&cpu(Vendor::Intel, 6, 0x55)).expect("Skylake-SP");
        assert_eq!(skx.l2_misses.config(), 0x3F24);
        assert_eq!(skx.l2_accesses.config(), 0xFF24);
        let icx = lookup(&cpu(Vendor::Intel, 6, 0x6A)).expect("Ice Lake-SP");
        assert_eq!(icx.microarchitecture, "Intel Ice Lake");
        let milan = lookup(&cpu(Vendor::Amd, 0x19, 0x01)).expect("Zen 3");
        assert_eq!(milan.l2_misses.config(), 0x0964);
        assert_eq!(milan.l2_accesses.config(), 0xF960);
        assert!(lookup(&cpu(Vendor::Amd, 0x17, 0x31)).is_some(), "Zen 2 Rome");
    }

    #[test]
    fn unknown_models_get_nothing() {
        assert_eq!(
            lookup(&cpu(Vendor::Amd, 0x19, 0x11)),
            None,
            "Zen 4 is not checked"
        );
        assert_eq!(
            lookup(&cpu(Vendor::Intel, 6, 0x8F)),
            None,
            "Sapphire Rapids not listed"
        );
        assert_eq!(lookup(&cpu(Vendor::Intel, 0x17, 0x01)), None, "family must match");
        assert_eq!(lookup(&CpuModel::unknown()), None);
    }

    #[test]
    fn amd_extended_event_bits_go_to_config_bits_32_to_35() {
        let e = RawEvent {
            name: "ic_tag_hit_miss.all_instruction_cache_accesses",
            event: 0x18E,
            umask: 0x1F,
        };
        assert_eq!(e.config(), 0x1_0000_1F8E);
    }
}
