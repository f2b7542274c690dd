//! With feature `hwloc`: hwloc (through `hwlocality`) and the pure-Rust reader must agree, on
//! the live machine and, with `HWLOC_FSROOT`, on every sysfs fixture, on the same facts as the
//! fixture test (PUs, package and core partitions, NUMA nodes' PUs, data/unified caches).
//!
//! Without the feature this binary holds one test that says so on stderr (which the test
//! harness does not capture), instead of running 0 tests silently.

#[cfg(not(feature = "hwloc"))]
#[test]
fn needs_the_hwloc_feature() {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "hwloc_backend: SKIPPED: built without feature `hwloc` (needs libhwloc-dev, libudev-dev; \
         `cargo test --features hwloc --test hwloc_backend` runs it, as .ci/run does)"
    );
}

#[cfg(feature = "hwloc")]
mod hwloc_console;

#[cfg(feature = "hwloc")]
mod with_hwloc {
    use super::hwloc_console;

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};
    use std::process::Command;

    fn locus_json(args: &[&str], env: &[(&str, &Path)]) -> Result<serde_json::Value, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_locus"));
        cmd.arg("topology").arg("--json").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    type Partition = BTreeSet<BTreeSet<u64>>;

    /// The allowed PUs grouped by core kind (names ignored: each backend names kinds its own way).
    fn kind_partition(json: &serde_json::Value) -> Partition {
        let mut by_kind: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        for pu in json["pus"].as_array().into_iter().flatten() {
            if let (Some(kind), Some(cpu)) = (pu["core_kind"].as_str(), pu["os_index"].as_u64()) {
                by_kind.entry(kind.to_string()).or_default().insert(cpu);
            }
        }
        by_kind.into_values().collect()
    }

    /// Dies that differ from their package.
    fn die_sets(json: &serde_json::Value) -> Partition {
        let sets = |key: &str| -> Partition {
            json[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| {
                    g["pus"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_u64())
                        .collect()
                })
                .collect()
        };
        let packages = sets("packages");
        sets("dies")
            .into_iter()
            .filter(|d| !packages.contains(d))
            .collect()
    }

    /// The checks beyond the console comparison: core kinds (where hwloc sees several) and dies.
    fn compare_extra(ours: &serde_json::Value, theirs: &serde_json::Value) -> Vec<String> {
        let mut errors = Vec::new();
        let (k_ours, k_theirs) = (kind_partition(ours), kind_partition(theirs));
        if k_theirs.len() > 1 && k_ours != k_theirs {
            errors.push(format!("core kinds: ours {k_ours:?}, hwloc {k_theirs:?}"));
        }
        let (d_ours, d_theirs) = (die_sets(ours), die_sets(theirs));
        if d_ours != d_theirs {
            errors.push(format!("dies: ours {d_ours:?}, hwloc {d_theirs:?}"));
        }
        errors
    }

    #[test]
    fn hwloc_and_pure_rust_agree_live() {
        let ours = locus_json(&[], &[]).expect("pure-Rust discovery");
        let theirs = locus_json(&["--hwloc"], &[]).expect("hwloc discovery");
        let mut errors = hwloc_console::compare(&ours, &hwloc_console::from_json(&theirs));
        errors.extend(compare_extra(&ours, &theirs));
        assert!(errors.is_empty(), "live machine: {errors:#?}");
        println!("live machine: hwloc and pure-Rust discovery agree");
    }

    #[test]
    fn hwloc_and_pure_rust_agree_on_fixtures() {
        let dir = match std::env::var_os("LOCUS_FIXTURES_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .ancestors()
                    .map(|a| a.join("shared/fixtures/sysfs"))
                    .find(|d| d.is_dir())
            }) {
            Some(d) => d,
            None => {
                println!("skipped: no fixtures folder (set LOCUS_FIXTURES_DIR)");
                return;
            }
        };
        let mut tarballs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("fixtures readable")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".tar.bz2"))
            .collect();
        tarballs.sort();
        let mut failures = Vec::new();
        for tarball in &tarballs {
            let (_tmp, root) = hwloc_console::unpack_snapshot(tarball).expect("snapshot unpacks");
            let name = tarball.file_name().unwrap().to_string_lossy().to_string();
            let ours =
                locus_json(&["--sysfs-root", root.to_str().unwrap()], &[]).expect("pure-Rust discovery");
            // hwloc's x86 backend would add this machine's cpuid caches to the snapshot: off.
            let env = [
                ("HWLOC_FSROOT", root.as_path()),
                ("HWLOC_COMPONENTS", Path::new("-x86")),
            ];
            let theirs = match locus_json(&["--hwloc"], &env) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("{name}: hwloc failed: {e}"));
                    continue;
                }
            };
            let mut errors = hwloc_console::compare(&ours, &hwloc_console::from_json(&theirs));
            errors.extend(compare_extra(&ours, &theirs));
            if errors.is_empty() {
                println!(
                    "{name}: hwloc and pure-Rust discovery agree ({} core kinds per hwloc, {} dies)",
                    kind_partition(&theirs).len(),
                    die_sets(&theirs).len()
                );
            } else {
                failures.push(format!("{name}: {errors:#?}"));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
