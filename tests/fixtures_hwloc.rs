//! Acceptance: `locus topology --sysfs-root DIR --json` agrees with hwloc on real machines.
//!
//! For every `NAME.tar.bz2` snapshot in the fixtures folder that has a `NAME.console` (hwloc's
//! own rendering of that machine), the snapshot is unpacked (in-process) into a temporary directory, the CLI
//! is run on it, and its JSON is compared with the console on: the set of PUs, the partition of
//! PUs into packages and into cores, each CPU-bearing NUMA node's PUs, and the multiset of
//! (level, kind, size, PUs) of data and unified caches (see `hwloc_console`).
//!
//! The folder is `$LOCUS_FIXTURES_DIR`, else the first `shared/fixtures/sysfs` found in the
//! crate's folder or one of its ancestors. Without it the test prints `skipped: <reason>`.

mod hwloc_console;

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("LOCUS_FIXTURES_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_dir() {
            Ok(dir)
        } else {
            Err(format!("LOCUS_FIXTURES_DIR={} is not a directory", dir.display()))
        };
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|a| a.join("shared/fixtures/sysfs"))
        .find(|d| d.is_dir())
        .ok_or_else(|| {
            format!(
                "no shared/fixtures/sysfs in {} or its ancestors, and LOCUS_FIXTURES_DIR is unset",
                manifest.display()
            )
        })
}

fn check_one(tarball: &Path, console_path: &Path) -> Result<String, Vec<String>> {
    check_with(tarball, console_path, |_| Ok(())).map(|(summary, _)| summary)
}

/// Unpacks `tarball`, lets `mutate` damage the snapshot, runs the CLI and compares. Returns a
/// summary and the JSON.
fn check_with(
    tarball: &Path,
    console_path: &Path,
    mutate: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(String, serde_json::Value), Vec<String>> {
    let console_text = std::fs::read_to_string(console_path).map_err(|e| vec![format!("console: {e}")])?;
    let console = hwloc_console::parse(&console_text).map_err(|e| vec![format!("console: {e}")])?;
    let (_tmp, root) = hwloc_console::unpack_snapshot(tarball).map_err(|e| vec![e])?;
    mutate(&root).map_err(|e| vec![format!("cannot alter the snapshot: {e}")])?;
    let out = Command::new(env!("CARGO_BIN_EXE_locus"))
        .args(["topology", "--json", "--sysfs-root"])
        .arg(&root)
        .output()
        .map_err(|e| vec![format!("cannot run locus: {e}")])?;
    if !out.status.success() {
        return Err(vec![format!(
            "locus failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )]);
    }
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| vec![format!("bad JSON from locus: {e}")])?;
    let errors = hwloc_console::compare(&json, &console);
    if !errors.is_empty() {
        return Err(errors);
    }
    let count = |key: &str| json[key].as_array().map_or(0, Vec::len);
    let summary = format!(
        "{} PUs, {} packages, {} cores, {} CPU-bearing NUMA nodes, {} data/unified caches, {} node distances; {} fallback(s)",
        console.pus.len(),
        console.packages.len(),
        console.cores.len(),
        console
            .node_groups
            .iter()
            .filter(|(p, _)| !p.is_empty())
            .map(|(_, n)| n.len())
            .sum::<usize>(),
        console.caches.len(),
        console.distances.len(),
        count("fallbacks"),
    );
    Ok((summary, json))
}

#[test]
fn every_snapshot_agrees_with_hwloc() {
    let dir = match fixtures_dir() {
        Ok(d) => d,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let mut tarballs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures dir readable")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.bz2"))
        .collect();
    tarballs.sort();
    if tarballs.is_empty() {
        println!("skipped: no *.tar.bz2 snapshot in {}", dir.display());
        return;
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for tarball in &tarballs {
        let file = tarball.file_name().unwrap().to_string_lossy().to_string();
        let name = file.trim_end_matches(".tar.bz2");
        let console = dir.join(format!("{name}.console"));
        if !console.is_file() {
            println!("{name}: skipped: no {name}.console");
            continue;
        }
        checked += 1;
        match check_one(tarball, &console) {
            Ok(summary) => println!("{name}: agrees with hwloc ({summary})"),
            Err(errors) => {
                println!("{name}: DISAGREES with hwloc:");
                for e in &errors {
                    println!("  {e}");
                }
                failures.push(name.to_string());
            }
        }
    }
    println!(
        "{} of {checked} snapshots agree with hwloc",
        checked - failures.len()
    );
    assert!(checked > 0, "no snapshot had a console file");
    assert!(
        failures.is_empty(),
        "snapshots disagreeing with hwloc: {failures:?}"
    );
}

/// Removes every file or directory named `name` under `dir`.
fn remove_named(dir: &Path, name: &str) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_dir = path.is_dir() && !path.is_symlink();
        if path.file_name().is_some_and(|n| n == name) {
            if is_dir {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        } else if is_dir {
            remove_named(&path, name)?;
        }
    }
    Ok(())
}

/// The fallbacks hwloc takes must give hwloc's answer too: a snapshot stripped of every
/// `cpu*/topology/` (an old kernel: packages and cores come from /proc/cpuinfo), and one stripped
/// of every mask file (only the `*_list` forms left).
#[test]
fn damaged_snapshots_still_agree_through_fallbacks() {
    let dir = match fixtures_dir() {
        Ok(d) => d,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    type Damage = fn(&Path) -> std::io::Result<()>;
    let cases: [(&str, &str, Damage, &str); 2] = [
        (
            "16amd64-8n2c",
            "no cpu*/topology",
            |root| remove_named(&root.join("sys/devices/system/cpu"), "topology"),
            "/proc/cpuinfo",
        ),
        (
            "8em64t-2s2ca2c",
            "no mask files",
            |root| {
                for mask in ["shared_cpu_map", "thread_siblings", "core_siblings", "cpumap"] {
                    remove_named(&root.join("sys/devices/system"), mask)?;
                }
                Ok(())
            },
            "",
        ),
    ];
    let mut ran = 0;
    for (name, damage, mutate, expected_fallback) in cases {
        let tarball = dir.join(format!("{name}.tar.bz2"));
        let console = dir.join(format!("{name}.console"));
        if !tarball.is_file() || !console.is_file() {
            println!("{name}: skipped: fixture not in {}", dir.display());
            continue;
        }
        ran += 1;
        match check_with(&tarball, &console, mutate) {
            Ok((summary, json)) => {
                println!("{name} ({damage}): agrees with hwloc ({summary})");
                let fallbacks = json["fallbacks"].to_string();
                assert!(
                    fallbacks.contains(expected_fallback),
                    "{name}: expected a fallback mentioning {expected_fallback:?}, got {fallbacks}"
                );
            }
            Err(errors) => panic!("{name} ({damage}) disagrees with hwloc: {errors:#?}"),
        }
    }
    if ran == 0 {
        println!("skipped: none of the damaged-snapshot fixtures is present");
    }
}

/// Writes `text` to `rel` under `root`, creating its folders.
fn put(root: &Path, rel: &str, text: &str) -> std::io::Result<()> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}

/// Removes `rel` under `root` if it exists.
fn drop_file(root: &Path, rel: &str) -> std::io::Result<()> {
    match std::fs::remove_file(root.join(rel)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Moves the snapshot's legacy cpuset (`dev/cpuset/dummy/{cpus,mems}`) to `dir/{cpus,mems}`
/// renamed `cpus_name`/`mems_name`.
fn move_cpuset(root: &Path, dir: &str, cpus_name: &str, mems_name: &str) -> std::io::Result<()> {
    let cpus = std::fs::read_to_string(root.join("dev/cpuset/dummy/cpus"))?;
    let mems = std::fs::read_to_string(root.join("dev/cpuset/dummy/mems"))?;
    std::fs::remove_dir_all(root.join("dev/cpuset"))?;
    put(root, &format!("{dir}/{cpus_name}"), &cpus)?;
    put(root, &format!("{dir}/{mems_name}"), &mems)
}

/// The cpuset of `16amd64-8n2c-cpusets` (hwloc's console shows the machine restricted to it),
/// moved into each layout hwloc's Linux backend finds (`hwloc_find_linux_cgroup_mntpnt`,
/// `hwloc_read_linux_cgroup_name`, `hwloc_admin_disable_set_from_cgroup`): every one must still
/// give hwloc's restricted answer, with no fallback about the cpuset.
#[test]
fn cpuset_layouts_hwloc_finds_agree_with_hwloc() {
    let dir = match fixtures_dir() {
        Ok(d) => d,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let name = "16amd64-8n2c-cpusets";
    let tarball = dir.join(format!("{name}.tar.bz2"));
    let console = dir.join(format!("{name}.console"));
    if !tarball.is_file() || !console.is_file() {
        println!("skipped: {name} not in {}", dir.display());
        return;
    }
    type Layout = fn(&Path) -> std::io::Result<()>;
    let layouts: [(&str, Layout); 5] = [
        (
            "legacy cpuset: a cgroup v1 mount with `noprefix` at an odd place, path from proc/self/cpuset only",
            |root| {
                move_cpuset(root, "srv/cpu sets/dummy", "cpus", "mems")?;
                drop_file(root, "proc/self/cgroup")?;
                put(
                    root,
                    "proc/mounts",
                    "proc /proc proc rw 0 0\ncgroup /srv/cpu\\040sets cgroup rw,nosuid,cpuset,noprefix 0 0\n",
                )
            },
        ),
        ("legacy cpuset filesystem at an odd place", |root| {
            move_cpuset(root, "cpusets/dummy", "cpus", "mems")?;
            put(root, "proc/mounts", "cpuset /cpusets cpuset rw 0 0\n")
        }),
        (
            "cgroup v1 at an odd place, path from proc/self/cgroup: cpuset.cpus, not effective_cpus",
            |root| {
                move_cpuset(root, "opt/cg/cpuset/dummy", "cpuset.cpus", "cpuset.mems")?;
                // hwloc reads cpuset.cpus/mems under v1; effective_* would unrestrict here.
                put(root, "opt/cg/cpuset/dummy/cpuset.effective_cpus", "0-15\n")?;
                put(root, "opt/cg/cpuset/dummy/cpuset.effective_mems", "0-7\n")?;
                drop_file(root, "proc/self/cpuset")?;
                put(
                    root,
                    "proc/self/cgroup",
                    "4:memory:/elsewhere\n2:cpuset:/dummy\n0::/unified\n",
                )?;
                put(
                    root,
                    "proc/mounts",
                    "cgroup /opt/cg/memory cgroup rw,memory 0 0\ncgroup /opt/cg/cpuset cgroup rw,cpuset 0 0\n",
                )
            },
        ),
        (
            "cgroup v2 at the standard mount point, absent from the mount table",
            |root| {
                move_cpuset(
                    root,
                    "sys/fs/cgroup/dummy",
                    "cpuset.cpus.effective",
                    "cpuset.mems.effective",
                )?;
                // v2's cpuset.cpus is only the request (empty: inherit); effective is the set.
                put(root, "sys/fs/cgroup/dummy/cpuset.cpus", "\n")?;
                put(root, "sys/fs/cgroup/dummy/cpuset.mems", "\n")?;
                put(root, "sys/fs/cgroup/cpuset.cpus.effective", "0-15\n")?;
                put(root, "sys/fs/cgroup/cpuset.mems.effective", "0-7\n")?;
                drop_file(root, "proc/self/cpuset")?;
                put(root, "proc/self/cgroup", "0::/dummy\n")?;
                put(root, "proc/mounts", "proc /proc proc rw 0 0\n")
            },
        ),
        (
            "cgroup v2 in the mount table: the first cgroup2 mount lacks the cpuset controller",
            |root| {
                move_cpuset(
                    root,
                    "run/b/dummy",
                    "cpuset.cpus.effective",
                    "cpuset.mems.effective",
                )?;
                put(root, "run/a/cgroup.controllers", "memory pids\n")?;
                put(root, "run/a/dummy/cpuset.cpus.effective", "0-15\n")?;
                put(root, "run/a/dummy/cpuset.mems.effective", "0-7\n")?;
                put(root, "run/b/cgroup.controllers", "cpuset cpu io memory\n")?;
                drop_file(root, "proc/self/cgroup")?;
                put(
                    root,
                    "proc/mounts",
                    "cgroup2 /run/a cgroup2 rw 0 0\ncgroup2 /run/b cgroup2 rw 0 0\n",
                )
            },
        ),
    ];
    let mut failures = Vec::new();
    for (layout, mutate) in layouts {
        match check_with(&tarball, &console, mutate) {
            Ok((summary, json)) => {
                let fallbacks = json["fallbacks"].to_string();
                if fallbacks.contains("cpuset") {
                    failures.push(format!("{layout}: unexpected cpuset fallback {fallbacks}"));
                } else {
                    println!("{layout}: agrees with hwloc ({summary})");
                }
            }
            Err(errors) => failures.push(format!("{layout}: {}", errors.join("; "))),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Package ids of the JSON's packages, and of the package each PU names.
fn package_ids(json: &serde_json::Value) -> (Vec<u64>, Vec<(u64, Option<u64>)>) {
    let ids = json["packages"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["os_index"].as_u64()).collect())
        .unwrap_or_default();
    let pus = json["pus"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p["os_index"].as_u64()?, p["package"].as_u64())))
                .collect()
        })
        .unwrap_or_default();
    (ids, pus)
}

/// Sibling masks and package ids that contradict each other, on `16em64t-4s2c2t` (packages
/// `{0,4,8,12}`, `{1,5,9,13}`, …). hwloc's rule (`look_sysfscpu`): a package is the mask read by
/// its first CPU, named by that CPU's `physical_package_id`; a mask conflicting with a package
/// already made is dropped, and a CPU left out of every package belongs to none: hwloc does not
/// make one up. The expected answers were checked with `lstopo-no-graphics --input` (hwloc 2.9).
#[test]
fn contradicting_package_siblings_follow_hwloc() {
    let dir = match fixtures_dir() {
        Ok(d) => d,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let name = "16em64t-4s2c2t";
    let tarball = dir.join(format!("{name}.tar.bz2"));
    let console = dir.join(format!("{name}.console"));
    if !tarball.is_file() || !console.is_file() {
        println!("skipped: {name} not in {}", dir.display());
        return;
    }
    let topo = |cpu: u32, file: &str| format!("sys/devices/system/cpu/cpu{cpu}/topology/{file}");
    let unique = |ids: &[u64]| {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        sorted.len() == ids.len()
    };

    // 1. cpu4 claims a package {4,5} that overlaps two others: dropped; hwloc's console holds.
    let (_, json) = check_with(&tarball, &console, |root| {
        put(root, &topo(4, "core_siblings"), "00000000,00000030\n")
    })
    .unwrap_or_else(|e| panic!("cpu4 claiming {{4,5}}: {e:#?}"));
    let fallbacks = json["fallbacks"].to_string();
    assert!(fallbacks.contains("package"), "no fallback recorded: {fallbacks}");

    // 2. Two packages report the same physical_package_id: the masks still make four packages,
    //    and each keeps an id of its own (hwloc would print P#0 twice; here PUs name their
    //    package by id, so the later one is renumbered, and that is recorded).
    let (_, json) = check_with(&tarball, &console, |root| {
        put(root, &topo(1, "physical_package_id"), "0\n")
    })
    .unwrap_or_else(|e| panic!("duplicate package id: {e:#?}"));
    let (ids, _) = package_ids(&json);
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert!(unique(&ids), "package ids repeat: {ids:?}");
    let fallbacks = json["fallbacks"].to_string();
    assert!(fallbacks.contains("physical_package_id"), "{fallbacks}");

    // 3. cpu0's mask leaves cpu4 out while cpu4, cpu8, cpu12 all name {0,4,8,12}: the package is
    //    cpu0's {0,8,12}, and cpu4 is in no package (hwloc: "PU P#4" straight under the machine).
    let (_tmp, root) = hwloc_console::unpack_snapshot(&tarball).expect("unpack");
    put(&root, &topo(0, "core_siblings"), "00000000,00001101\n").expect("edit");
    let out = Command::new(env!("CARGO_BIN_EXE_locus"))
        .args(["topology", "--json", "--sysfs-root"])
        .arg(&root)
        .output()
        .expect("run locus");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let sets: Vec<String> = json["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| p["pus"].to_string())
        .collect();
    assert_eq!(sets, ["[0,8,12]", "[1,5,9,13]", "[2,6,10,14]", "[3,7,11,15]"]);
    let (ids, pus) = package_ids(&json);
    assert!(unique(&ids), "package ids repeat: {ids:?}");
    assert_eq!(pus.iter().find(|(pu, _)| *pu == 4), Some(&(4, None)), "{pus:?}");
    assert_eq!(pus.iter().find(|(pu, _)| *pu == 12), Some(&(12, Some(0))));
    let fallbacks = json["fallbacks"].to_string();
    assert!(fallbacks.contains("in no package"), "{fallbacks}");
}
