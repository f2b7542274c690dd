//! CPU caches from `cpuN/cache/indexM/`: level, type, size, line size, ways and the CPUs that
//! share each one.
//!
//! Every online CPU lists every cache it uses, so a shared cache appears once per sharer. A
//! cache is identified by (level, kind, sharing set), where the sharing set is taken from
//! `shared_cpu_list` (or `shared_cpu_map`), restricted to online CPUs, and always includes the
//! CPU that lists it. Without either file the cache is taken as private to that CPU (recorded).

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
    cpus.insert(cpu);
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
}
