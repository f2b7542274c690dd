//! CPU caches from `cpuN/cache/indexM/`: level, type, size, line size, ways and the CPUs that
//! share each one.
//!
//! Every online CPU lists every cache it uses, so a shared cache appears once per sharer. As
//! hwloc does, a cache is created only from the first CPU of its sharing set: the set is read
//! from `shared_cpu_map` (or `shared_cpu_list`), restricted to online CPUs, and a CPU that is
//! not the first of the set it lists creates nothing (the first one's listing is the cache). So
//! when CPUs disagree about a cache, the set of its first CPU wins, and a set listed only by a
//! CPU that is not its first is no cache at all. A set that is empty once restricted is taken
//! as private to the CPU that lists it; without either file the cache is taken as private to
//! that CPU (recorded).

use std::collections::BTreeMap;

use crate::topology::cpuset::CpuSet;
use crate::topology::model::{Cache, CacheKind};

use super::reader::{Reader, cut};

/// The caches of all `online` CPUs, deduplicated, ordered by level, kind, then first CPU.
/// Sets hold every online sharer (not yet restricted to allowed CPUs).
pub(crate) fn read_caches(r: &mut Reader, online: &CpuSet) -> Vec<Cache> {
    let mut found: BTreeMap<(u8, CacheKind, CpuSet), Cache> = BTreeMap::new();
    let mut cpus_without_caches = CpuSet::new();
    for cpu in online.iter() {
        let dir = format!("sys/devices/system/cpu/cpu{cpu}/cache");
        let indexes = r.numbered_entries(&dir, "index");
        if indexes.is_empty() {
            cpus_without_caches.insert(cpu);
        }
        for index in indexes {
            if let Some(cache) = read_index(r, &format!("{dir}/index{index}"), cpu, online) {
                found
                    .entry((cache.level, cache.kind, cache.cpus.clone()))
                    .or_insert(cache);
            }
        }
    }
    if !cpus_without_caches.is_empty() && cpus_without_caches.len() < online.len() {
        r.fallback(
            format!("sys/devices/system/cpu/cpu{{{cpus_without_caches}}}/cache"),
            "missing for these online CPUs: their caches are unknown",
        );
    }
    let mut caches: Vec<Cache> = found.into_values().collect();
    caches.sort_by(|a, b| (a.level, a.kind, &a.cpus).cmp(&(b.level, b.kind, &b.cpus)));
    caches
}

fn read_index(r: &mut Reader, dir: &str, cpu: u32, online: &CpuSet) -> Option<Cache> {
    let level = r.int(&format!("{dir}/level"))?;
    let Ok(level) = u8::try_from(level) else {
        r.fallback(
            format!("{dir}/level"),
            format!("level {level} out of range: cache ignored"),
        );
        return None;
    };
    if level == 0 {
        r.fallback(format!("{dir}/level"), "level 0: cache ignored");
        return None;
    }
    let kind_text = r.text(&format!("{dir}/type"))?;
    let kind = match kind_text.trim() {
        "Data" => CacheKind::Data,
        "Instruction" => CacheKind::Instruction,
        "Unified" => CacheKind::Unified,
        other => {
            r.fallback(
                format!("{dir}/type"),
                format!("unknown cache type {:?}: cache ignored", cut(other)),
            );
            return None;
        }
    };
    let size_bytes = r.size(&format!("{dir}/size")).unwrap_or(0);
    let line_size = r
        .int(&format!("{dir}/coherency_line_size"))
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0);
    let ways = r
        .int(&format!("{dir}/ways_of_associativity"))
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0);
    let shared = match r.mask_or_list(dir, "shared_cpu_map", "shared_cpu_list") {
        Some(set) => set,
        None => {
            r.fallback(
                format!("{dir}/shared_cpu_map"),
                "missing: cache taken as private to its CPU",
            );
            CpuSet::new()
        }
    };
    let mut cpus = shared.intersection(online);
    if cpus.is_empty() {
        cpus.insert(cpu);
    }
    if cpus.first() != Some(cpu) {
        // Not the first CPU of the set: the first one's listing creates the cache.
        return None;
    }
    Some(Cache {
        level,
        kind,
        size_bytes,
        line_size,
        ways,
        cpus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn index(root: &std::path::Path, cpu: u32, i: u32, files: &[(&str, &str)]) {
        let d = root.join(format!("sys/devices/system/cpu/cpu{cpu}/cache/index{i}"));
        fs::create_dir_all(&d).unwrap();
        for (name, text) in files {
            fs::write(d.join(name), text).unwrap();
        }
    }

    #[test]
    fn shared_caches_are_merged() {
        let dir = tempfile::tempdir().unwrap();
        for cpu in 0..2 {
            index(
                dir.path(),
                cpu,
                0,
                &[
                    ("level", "1"),
                    ("type", "Data"),
                    ("size", "32K"),
                    ("shared_cpu_list", &cpu.to_string()),
                    ("coherency_line_size", "64"),
                    ("ways_of_associativity", "8"),
                ],
            );
            index(
                dir.path(),
                cpu,
                2,
                &[
                    ("level", "2"),
                    ("type", "Unified"),
                    ("size", "1024K"),
                    ("shared_cpu_map", "00000003"),
                ],
            );
        }
        let mut r = Reader::new(dir.path());
        let caches = read_caches(&mut r, &CpuSet::parse_list("0-1").unwrap());
        assert_eq!(caches.len(), 3);
        assert_eq!(caches[0].cpus.to_vec(), vec![0]);
        assert_eq!(caches[0].line_size, 64);
        assert_eq!(caches[2].level, 2);
        assert_eq!(caches[2].size_bytes, 1 << 20);
        assert_eq!(caches[2].cpus.to_vec(), vec![0, 1]);
        assert!(r.take_fallbacks().is_empty());
    }

    #[test]
    fn garbled_indexes_are_recorded_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        index(dir.path(), 0, 0, &[("level", "one"), ("type", "Data")]);
        index(dir.path(), 0, 1, &[("level", "1"), ("type", "Trace")]);
        index(
            dir.path(),
            0,
            2,
            &[
                ("level", "2"),
                ("type", "Unified"),
                ("size", "12Q"),
                ("shared_cpu_list", "0-"),
            ],
        );
        index(
            dir.path(),
            0,
            3,
            &[
                ("level", "3"),
                ("type", "Unified"),
                ("size", "8M"),
                ("shared_cpu_list", "2-3"),
            ],
        );
        let mut r = Reader::new(dir.path());
        let caches = read_caches(&mut r, &CpuSet::single(0));
        assert_eq!(caches.len(), 2);
        assert_eq!(caches[0].size_bytes, 0);
        assert_eq!(caches[0].cpus.to_vec(), vec![0]);
        // A sharing set that omits its own CPU still holds it.
        assert_eq!(caches[1].cpus.to_vec(), vec![0]);
        assert_eq!(r.take_fallbacks().len(), 5);
    }

    /// The rule, on sets built for it: CPUs 0-3 online; CPU 1 claims an L2 shared with CPU 0
    /// that CPU 0 does not list, CPU 3 an L2 shared with CPUs 2-3 (and offline CPU 5), CPU 2 a
    /// private L2. Only the first CPU of each listed set creates a cache.
    #[test]
    fn a_cache_is_created_only_by_the_first_cpu_of_its_set() {
        let dir = tempfile::tempdir().unwrap();
        fn l2(map: &str) -> [(&str, &str); 4] {
            [
                ("level", "2"),
                ("type", "Unified"),
                ("size", "1M"),
                ("shared_cpu_list", map),
            ]
        }
        let own: [&str; 4] = ["0", "0-1", "2", "2-3,5"];
        for (cpu, map) in own.iter().enumerate() {
            index(dir.path(), cpu as u32, 0, &l2(map));
        }
        let mut r = Reader::new(dir.path());
        let caches = read_caches(&mut r, &CpuSet::parse_list("0-3").unwrap());
        let sets: Vec<String> = caches.iter().map(|c| c.cpus.to_list_string()).collect();
        // CPU 0 creates {0}; CPU 1's {0,1} starts at 0, not 1: nothing; CPU 2 creates {2};
        // CPU 3's {2,3} (5 is offline) starts at 2: nothing.
        assert_eq!(sets, vec!["0", "2"]);
        // The same caches listed by their first CPUs are created once each.
        let dir = tempfile::tempdir().unwrap();
        for (cpu, map) in ["0-1", "0-1", "2-3", "2-3"].iter().enumerate() {
            index(dir.path(), cpu as u32, 0, &l2(map));
        }
        let mut r = Reader::new(dir.path());
        let sets: Vec<String> = read_caches(&mut r, &CpuSet::parse_list("0-3").unwrap())
            .iter()
            .map(|c| c.cpus.to_list_string())
            .collect();
        assert_eq!(sets, vec!["0-1", "2-3"]);
    }
}
