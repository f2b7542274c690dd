//! Is there a core PMU? The kernel answers ENOENT both for "no PMU at all" and for "this PMU
//! lacks that event"; `/sys/bus/event_source/devices` tells the two apart.
//!
//! A core PMU registers there as `cpu` (x86, POWER, RISC-V), `cpu_core`/`cpu_atom` (Intel
//! hybrid parts) or `armv8_pmuv3_*`/`armv7_*` and similar (arm), which all expose a cycles
//! event under `events/`. A KVM guest without PMU pass-through has only `software`,
//! `tracepoint`, `breakpoint`, `kprobe`/`uprobe` and perhaps `msr`.

use std::path::Path;

/// Where the kernel lists its PMUs.
pub const EVENT_SOURCE_DIR: &str = "/sys/bus/event_source/devices";

/// Whether `dir` (an `event_source/devices` directory) lists a core PMU.
pub fn core_pmu_present_in(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        matches!(name.as_ref(), "cpu" | "cpu_core" | "cpu_atom")
            || entry.path().join("events/cpu-cycles").exists()
            || entry.path().join("events/cpu_cycles").exists()
    })
}

/// Whether this machine exposes a core PMU.
pub fn core_pmu_present() -> bool {
    core_pmu_present_in(Path::new(EVENT_SOURCE_DIR))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for n in names {
            std::fs::create_dir_all(dir.path().join(n)).expect("mkdir");
        }
        dir
    }

    #[test]
    fn virtual_machine_without_pmu() {
        let d = devices(&["breakpoint", "msr", "software", "tracepoint", "uprobe"]);
        assert!(!core_pmu_present_in(d.path()));
    }

    #[test]
    fn x86_hybrid_and_arm_pmus() {
        assert!(core_pmu_present_in(devices(&["cpu", "software"]).path()));
        assert!(core_pmu_present_in(devices(&["cpu_atom", "cpu_core"]).path()));
        let arm = devices(&["armv8_pmuv3_0/events/cpu_cycles", "software"]);
        assert!(core_pmu_present_in(arm.path()));
    }

    #[test]
    fn missing_directory_means_no_pmu() {
        assert!(!core_pmu_present_in(Path::new("/nonexistent/event_source")));
    }

    /// The listing agrees with the kernel: opening a hardware cycles counter fails with ENOENT
    /// exactly when no core PMU is listed. (A refusal for another reason — paranoid setting,
    /// seccomp — cannot tell, and the test says so.)
    #[cfg(target_os = "linux")]
    #[test]
    fn the_listing_agrees_with_the_kernel() {
        use crate::counters::sys::{RawTarget, open_counter};
        use crate::counters::{CpuModel, Event};

        let present = core_pmu_present();
        let code = Event::Cycles
            .code(&CpuModel::detect())
            .expect("cycles is a generic event");
        let this_thread = RawTarget { pid: 0, cpu: -1 };
        match open_counter(code, this_thread, None, true) {
            Ok(_) => assert!(
                present,
                "the kernel opened a cycles counter but no core PMU is listed"
            ),
            Err(e) if e.errno == libc::ENOENT => {
                assert!(
                    !present,
                    "a core PMU is listed but the kernel has no cycles event (ENOENT)"
                )
            }
            Err(e) => println!(
                "skipped: perf_event_open(cycles) refused with errno {} ({}): the kernel cannot confirm \
                 the listing (PMU listed: {present})",
                e.errno, e.call
            ),
        }
    }
}
