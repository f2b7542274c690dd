//! Hybrid CPUs: which PUs are of which core kind (Intel P-/E-cores, Arm big.LITTLE).
//!
//! The kernel says it directly on Intel hybrid parts: the `cpu_core` and `cpu_atom` PMUs list
//! their CPUs in `sys/devices/cpu_core/cpus` and `sys/devices/cpu_atom/cpus`. Elsewhere it says
//! it indirectly, and these readings are taken in order, each recorded as a fallback:
//! `cpuN/cpu_capacity` (Arm's scheduler capacity), then `cpuN/cpufreq/base_frequency`
//! (intel_pstate; the same on every core of a non-hybrid part). A machine where all CPUs agree
//! has no kinds.

use std::collections::BTreeMap;

use crate::topology::cpuset::CpuSet;

use super::reader::Reader;

/// A core kind and its CPUs.
pub(crate) type CoreKinds = Vec<(String, CpuSet)>;

/// The core kinds of the `online` CPUs, or an empty list when they are all alike or nothing says.
pub(crate) fn read_core_kinds(r: &mut Reader, online: &CpuSet) -> CoreKinds {
    let mut kinds = CoreKinds::new();
    for (pmu, name) in [("cpu_core", "intel_core"), ("cpu_atom", "intel_atom")] {
        if let Some(cpus) = r.list(&format!("sys/devices/{pmu}/cpus")) {
            if !cpus.is_empty() {
                kinds.push((name.to_string(), cpus));
            }
        }
    }
    if !kinds.is_empty() {
        return kinds;
    }
    for (file, label, unit_div, unit) in [
        ("cpu_capacity", "capacity", 1, ""),
        ("cpufreq/base_frequency", "base_frequency", 1000, "MHz"),
    ] {
        let mut by_value: BTreeMap<i64, CpuSet> = BTreeMap::new();
        for cpu in online.iter() {
            if let Some(v) = r.int(&format!("sys/devices/system/cpu/cpu{cpu}/{file}")) {
                by_value.entry(v).or_default().insert(cpu);
            }
        }
        if by_value.len() > 1 {
            r.fallback(
                format!("sys/devices/system/cpu/cpu*/{file}"),
                format!("no cpu_core/cpu_atom PMU lists: core kinds told apart by {label}"),
            );
            // Most capable kind first, as hwloc ranks them last; named by the value itself.
            return by_value
                .into_iter()
                .rev()
                .map(|(v, cpus)| (format!("{label}={}{unit}", v / unit_div), cpus))
                .collect();
        }
    }
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::topology::sysfs::write_test_file as write;

    #[test]
    fn pmu_lists_win() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "sys/devices/cpu_core/cpus", "0-11\n");
        write(dir.path(), "sys/devices/cpu_atom/cpus", "12-19\n");
        let mut r = Reader::new(dir.path());
        let k = read_core_kinds(&mut r, &CpuSet::parse_list("0-19").unwrap());
        assert_eq!(k.len(), 2);
        assert_eq!(k[1].0, "intel_atom");
        assert_eq!(k[1].1.len(), 8);
    }

    #[test]
    fn frequency_fallback_and_uniform_machines() {
        let dir = tempfile::tempdir().unwrap();
        for cpu in 0..4 {
            let f = if cpu < 2 { "1900000" } else { "1400000" };
            write(
                dir.path(),
                &format!("sys/devices/system/cpu/cpu{cpu}/cpufreq/base_frequency"),
                f,
            );
            write(
                dir.path(),
                &format!("sys/devices/system/cpu/cpu{cpu}/cpu_capacity"),
                "1024",
            );
        }
        let mut r = Reader::new(dir.path());
        let k = read_core_kinds(&mut r, &CpuSet::parse_list("0-3").unwrap());
        assert_eq!(
            k[0],
            (
                "base_frequency=1900MHz".to_string(),
                CpuSet::parse_list("0-1").unwrap()
            )
        );
        assert_eq!(r.take_fallbacks().len(), 1);
        let empty = tempfile::tempdir().unwrap();
        let mut r = Reader::new(empty.path());
        assert!(read_core_kinds(&mut r, &CpuSet::parse_list("0-3").unwrap()).is_empty());
    }
}
