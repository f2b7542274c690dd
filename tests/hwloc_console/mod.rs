//! A small reader of hwloc's `lstopo` console text (the `NAME.console` files of the fixtures),
//! and the comparison of a `locus topology --json` document against it.
//!
//! The console is an indented tree (two spaces a level) of lines such as
//! `L2Cache L#3 (size=1024KiB linesize=64 ways=8)`, `Core L#5 (P#1)`, `PU L#10 (P#6)`, ending
//! at the first line that starts in column 0 after `Machine`. An object's PUs are the PUs of
//! its subtree. A NUMA node is a memory child of the object whose CPUs it is local to, so its PU
//! set is its parent's. hwloc prints sizes truncated to a unit (`8190MiB`), so a size matches
//! when our byte count, shifted by that unit, equals the printed number.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Unpacks a `NAME.tar.bz2` snapshot (in-process: no `tar` or `bzip2` tool needed) into a new
/// temporary directory, and returns it with the snapshot's root (the folder holding `sys/`).
pub fn unpack_snapshot(tarball: &Path) -> Result<(tempfile::TempDir, PathBuf), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = std::fs::File::open(tarball).map_err(|e| format!("{}: {e}", tarball.display()))?;
    let decoder = bzip2::read::BzDecoder::new(std::io::BufReader::new(file));
    tar::Archive::new(decoder)
        .unpack(tmp.path())
        .map_err(|e| format!("unpacking {}: {e}", tarball.display()))?;
    let root = if tmp.path().join("sys").is_dir() {
        tmp.path().to_path_buf()
    } else {
        std::fs::read_dir(tmp.path())
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("sys").is_dir())
            .ok_or_else(|| format!("no sys/ in {}", tarball.display()))?
    };
    Ok((tmp, root))
}

/// A PU set.
pub type Pus = BTreeSet<u32>;

/// A data or unified cache as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConsoleCache {
    pub level: u8,
    /// `data` or `unified`.
    pub kind: &'static str,
    /// The printed number and the unit's shift (`1024KiB` is (1024, 10)).
    pub size: (u64, u32),
    pub pus: Pus,
}

/// What the comparison needs from a console file.
#[derive(Debug, Default)]
pub struct Console {
    pub pus: Pus,
    pub packages: Vec<Pus>,
    pub cores: Vec<Pus>,
    /// NUMA nodes grouped by parent object: (the parent's PUs, the nodes' OS indexes).
    pub node_groups: Vec<(Pus, Vec<u32>)>,
    pub caches: Vec<ConsoleCache>,
    /// The NUMA latency matrix hwloc printed, by node OS indexes (empty when none).
    pub distances: BTreeMap<(u32, u32), u32>,
}

struct Obj {
    kind: String,
    logical: Option<u32>,
    os_index: Option<u32>,
    size: Option<(u64, u32)>,
    parent: Option<usize>,
    pus: Pus,
}

fn number_after(text: &str, key: &str) -> Option<(u64, String)> {
    let start = text.find(key)? + key.len();
    let rest = &text[start..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let unit: String = rest[digits.len()..]
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    Some((digits.parse().ok()?, unit))
}

fn unit_shift(unit: &str) -> Option<u32> {
    Some(match unit {
        "B" | "" => 0,
        "KiB" | "KB" => 10,
        "MiB" | "MB" => 20,
        "GiB" | "GB" => 30,
        "TiB" | "TB" => 40,
        _ => return None,
    })
}

/// Parses a console rendering.
pub fn parse(text: &str) -> Result<Console, String> {
    let mut objs: Vec<Obj> = Vec::new();
    let mut stack: Vec<(usize, usize)> = Vec::new(); // (indent, object index)
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start();
        if n == 0 {
            if !body.starts_with("Machine") {
                return Err(format!("first line is not the Machine: {line:?}"));
            }
        } else if indent == 0 || body.is_empty() {
            break;
        }
        while stack.last().is_some_and(|&(i, _)| i >= indent) {
            stack.pop();
        }
        let kind = body.split_whitespace().next().unwrap_or("").to_string();
        let os_index = number_after(body, "(P#").map(|(v, _)| v as u32);
        let size = match number_after(body, "size=") {
            Some((v, unit)) => Some((v, unit_shift(&unit).ok_or(format!("unit {unit:?} in {line:?}"))?)),
            None => None,
        };
        let parent = stack.last().map(|&(_, i)| i);
        let logical = number_after(body, "L#").map(|(v, _)| v as u32);
        objs.push(Obj {
            kind,
            logical,
            os_index,
            size,
            parent,
            pus: Pus::new(),
        });
        stack.push((indent, objs.len() - 1));
    }
    // PU sets bottom-up: every PU joins all its ancestors.
    for i in 0..objs.len() {
        if objs[i].kind == "PU" {
            let pu = objs[i].os_index.ok_or(format!("PU without P#: object {i}"))?;
            let mut at = Some(i);
            while let Some(j) = at {
                objs[j].pus.insert(pu);
                at = objs[j].parent;
            }
        }
    }
    let mut c = Console::default();
    let mut groups: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    for o in &objs {
        match o.kind.as_str() {
            "PU" => {
                c.pus.extend(&o.pus);
            }
            "Package" => c.packages.push(o.pus.clone()),
            "Core" => c.cores.push(o.pus.clone()),
            "NUMANode" => {
                let parent = o.parent.ok_or("NUMANode without a parent")?;
                groups
                    .entry(parent)
                    .or_default()
                    .push(o.os_index.ok_or("NUMANode without P#")?);
            }
            k if k.starts_with('L') && k.ends_with("Cache") => {
                let inner = &k[1..k.len() - "Cache".len()];
                let (digits, suffix) =
                    inner.split_at(inner.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(inner.len()));
                let level: u8 = digits.parse().map_err(|_| format!("cache type {k:?}"))?;
                let kind = match suffix {
                    "" | "u" => "unified",
                    "d" => "data",
                    "i" => continue,
                    _ => return Err(format!("cache type {k:?}")),
                };
                let size = o.size.ok_or(format!("{k} without size"))?;
                c.caches.push(ConsoleCache {
                    level,
                    kind,
                    size,
                    pus: o.pus.clone(),
                });
            }
            _ => {}
        }
    }
    c.node_groups = groups
        .into_iter()
        .map(|(p, nodes)| (objs[p].pus.clone(), nodes))
        .collect();
    // The latency matrix, by logical indexes: `index  0  1 …` then one row per node.
    let os_of: BTreeMap<u32, u32> = objs
        .iter()
        .filter(|o| o.kind == "NUMANode")
        .filter_map(|o| Some((o.logical?, o.os_index?)))
        .collect();
    let mut lines = text
        .lines()
        .skip_while(|l| !(l.starts_with("Relative latency matrix") && l.contains("NUMANode")));
    if lines.next().is_some() {
        let header: Vec<u32> = lines
            .next()
            .ok_or("latency matrix without header")?
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().map_err(|_| format!("latency header {v:?}")))
            .collect::<Result<_, _>>()?;
        for line in lines {
            let Ok(values) = line
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<Vec<u32>, _>>()
            else {
                break;
            };
            let Some((&row, rest)) = values.split_first() else {
                break;
            };
            if rest.len() != header.len() {
                break;
            }
            for (&col, &d) in header.iter().zip(rest) {
                let a = os_of.get(&row).ok_or("latency row of an unknown node")?;
                let b = os_of.get(&col).ok_or("latency column of an unknown node")?;
                c.distances.insert((*a, *b), d);
            }
        }
    }
    Ok(c)
}

/// The same facts taken from another `locus topology --json` document (e.g. the `--hwloc`
/// backend's), keeping only nodes whose memory is allowed, as hwloc does.
pub fn from_json(json: &serde_json::Value) -> Console {
    let list = |key: &str| json[key].as_array().cloned().unwrap_or_default();
    Console {
        pus: list("pus")
            .iter()
            .filter(|p| p["allowed"].as_bool() == Some(true) && p["online"].as_bool() == Some(true))
            .filter_map(|p| p["os_index"].as_u64())
            .map(|x| x as u32)
            .collect(),
        packages: list("packages").iter().map(pus_of).collect(),
        cores: list("cores").iter().map(pus_of).collect(),
        node_groups: list("numa_nodes")
            .iter()
            .filter(|n| n["memory_allowed"].as_bool() != Some(false))
            .filter_map(|n| Some((pus_of(n), vec![n["os_index"].as_u64()? as u32])))
            .collect(),
        caches: list("caches")
            .iter()
            .filter_map(|c| {
                let kind = match c["kind"].as_str()? {
                    "data" => "data",
                    "unified" => "unified",
                    _ => return None,
                };
                Some(ConsoleCache {
                    level: c["level"].as_u64()? as u8,
                    kind,
                    size: (c["size_bytes"].as_u64()?, 0),
                    pus: pus_of(c),
                })
            })
            .collect(),
        distances: BTreeMap::new(),
    }
}

fn pus_of(v: &serde_json::Value) -> Pus {
    v["pus"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect())
        .unwrap_or_default()
}

/// A partition in canonical form, with every PU of `all` that no set covers as a singleton
/// (hwloc omits Core objects it has no information for; so may we).
fn canonical_partition(sets: impl IntoIterator<Item = Pus>, all: &Pus) -> BTreeSet<Pus> {
    let mut out: BTreeSet<Pus> = sets.into_iter().filter(|s| !s.is_empty()).collect();
    let covered: Pus = out.iter().flatten().copied().collect();
    out.extend(all.difference(&covered).map(|&p| Pus::from([p])));
    out
}

/// Compares `json` (the output of `locus topology --json`) with the console. Returns one
/// message per disagreement, empty when they agree.
pub fn compare(json: &serde_json::Value, c: &Console) -> Vec<String> {
    let mut errors = Vec::new();
    let allowed: Pus = json["pus"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|p| p["allowed"].as_bool() == Some(true) && p["online"].as_bool() == Some(true))
                .filter_map(|p| p["os_index"].as_u64())
                .map(|x| x as u32)
                .collect()
        })
        .unwrap_or_default();
    if allowed != c.pus {
        errors.push(format!("PUs: ours {allowed:?}, hwloc {:?}", c.pus));
    }
    let list = |key: &str| json[key].as_array().cloned().unwrap_or_default();

    let ours = canonical_partition(list("packages").iter().map(pus_of), &allowed);
    let theirs = if c.packages.is_empty() {
        canonical_partition([c.pus.clone()], &c.pus)
    } else {
        canonical_partition(c.packages.clone(), &c.pus)
    };
    if ours != theirs {
        errors.push(format!("packages: ours {ours:?}, hwloc {theirs:?}"));
    }
    let ours = canonical_partition(list("cores").iter().map(pus_of), &allowed);
    let theirs = canonical_partition(c.cores.clone(), &c.pus);
    if ours != theirs {
        errors.push(format!("cores: ours {ours:?}, hwloc {theirs:?}"));
    }

    // NUMA nodes: hwloc drops nodes whose memory is not allowed; so does this comparison.
    let nodes: BTreeMap<u32, Pus> = list("numa_nodes")
        .iter()
        .filter(|n| n["memory_allowed"].as_bool() != Some(false))
        .filter_map(|n| Some((n["os_index"].as_u64()? as u32, pus_of(n))))
        .collect();
    let mut seen = BTreeSet::new();
    for (parent_pus, ids) in &c.node_groups {
        seen.extend(ids.iter().copied());
        if parent_pus.is_empty() {
            continue;
        }
        let missing: Vec<u32> = ids.iter().copied().filter(|id| !nodes.contains_key(id)).collect();
        if !missing.is_empty() {
            errors.push(format!(
                "NUMA nodes {missing:?} (PUs {parent_pus:?}) missing from ours"
            ));
            continue;
        }
        if let [id] = ids.as_slice() {
            if nodes[id] != *parent_pus {
                errors.push(format!(
                    "NUMA node {id}: ours {:?}, hwloc {parent_pus:?}",
                    nodes[id]
                ));
            }
        } else {
            // Several nodes under one object (e.g. DRAM and a CPU-less HBM node): together they
            // must cover the object, each within it.
            let union: Pus = ids.iter().flat_map(|id| nodes[id].iter().copied()).collect();
            if union != *parent_pus || ids.iter().any(|id| !nodes[id].is_subset(parent_pus)) {
                errors.push(format!(
                    "NUMA nodes {ids:?}: ours {union:?}, hwloc {parent_pus:?}"
                ));
            }
        }
    }
    for (id, pus) in &nodes {
        if !pus.is_empty() && !seen.contains(id) {
            errors.push(format!(
                "NUMA node {id} with PUs {pus:?} is not in hwloc's topology"
            ));
        }
    }

    // Distances, where hwloc printed them (it does not for a single node).
    let rows: BTreeMap<u32, Vec<u32>> = list("numa_nodes")
        .iter()
        .filter(|n| n["memory_allowed"].as_bool() != Some(false))
        .filter_map(|n| {
            let row = n["distances"]
                .as_array()?
                .iter()
                .filter_map(|d| d.as_u64())
                .map(|d| d as u32)
                .collect();
            Some((n["os_index"].as_u64()? as u32, row))
        })
        .collect();
    let order: Vec<u32> = rows.keys().copied().collect();
    for (&(a, b), &d) in &c.distances {
        let ours = order
            .iter()
            .position(|&x| x == b)
            .and_then(|j| rows.get(&a)?.get(j).copied());
        if ours != Some(d) {
            errors.push(format!("distance {a}->{b}: ours {ours:?}, hwloc {d}"));
        }
    }

    // Caches: multiset of (level, kind, size, PUs), data and unified only.
    let mut ours: Vec<(u8, String, u64, Pus)> = list("caches")
        .iter()
        .filter(|c| c["kind"] != "instruction")
        .map(|c| {
            (
                c["level"].as_u64().unwrap_or(0) as u8,
                c["kind"].as_str().unwrap_or("").to_string(),
                c["size_bytes"].as_u64().unwrap_or(0),
                pus_of(c),
            )
        })
        .collect();
    for cc in &c.caches {
        let found = ours.iter().position(|(level, kind, bytes, pus)| {
            *level == cc.level && kind == cc.kind && bytes >> cc.size.1 == cc.size.0 && *pus == cc.pus
        });
        match found {
            Some(i) => {
                ours.swap_remove(i);
            }
            None => errors.push(format!("hwloc's {cc:?} has no match in ours")),
        }
    }
    for extra in ours {
        errors.push(format!("our cache {extra:?} is not in hwloc's topology"));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Machine (P#0 total=16GiB)
  NUMANode L#0 (P#0 local=16GiB total=16GiB)
  Package L#0 (P#0 CPUModel=\"x\")
    L2Cache L#0 (size=4096KiB linesize=64 ways=16)
      L1dCache L#0 (size=32KiB linesize=64 ways=8)
        L1iCache L#0 (size=32KiB linesize=64 ways=8)
          Core L#0 (P#0)
            PU L#0 (P#0)
            PU L#1 (P#4)
depth 0:           1 Machine (type #0)
";

    #[test]
    fn parses_a_console() {
        let c = parse(SAMPLE).unwrap();
        assert_eq!(c.pus, Pus::from([0, 4]));
        assert_eq!(c.packages, vec![Pus::from([0, 4])]);
        assert_eq!(c.cores, vec![Pus::from([0, 4])]);
        assert_eq!(c.node_groups, vec![(Pus::from([0, 4]), vec![0])]);
        assert_eq!(c.caches.len(), 2);
        assert_eq!(c.caches[0].size, (4096, 10));
        assert!(parse("garbage").is_err());
    }

    #[test]
    fn compare_detects_differences() {
        let c = parse(SAMPLE).unwrap();
        let good = serde_json::json!({
            "pus": [{"os_index": 0, "online": true, "allowed": true}, {"os_index": 4, "online": true, "allowed": true}],
            "packages": [{"os_index": 0, "pus": [0, 4]}],
            "cores": [{"pus": [0, 4]}],
            "numa_nodes": [{"os_index": 0, "pus": [0, 4], "memory_allowed": true}],
            "caches": [
                {"level": 2, "kind": "unified", "size_bytes": 4194304, "pus": [0, 4]},
                {"level": 1, "kind": "data", "size_bytes": 32768, "pus": [0, 4]},
                {"level": 1, "kind": "instruction", "size_bytes": 32768, "pus": [0, 4]}
            ]
        });
        assert_eq!(compare(&good, &c), Vec::<String>::new());
        let mut bad = good.clone();
        bad["cores"] = serde_json::json!([{"pus": [0]}, {"pus": [4]}]);
        bad["caches"][0]["size_bytes"] = serde_json::json!(2097152);
        bad["numa_nodes"][0]["pus"] = serde_json::json!([0]);
        assert_eq!(compare(&bad, &c).len(), 4);
    }
}

#[cfg(test)]
mod matrix_tests {
    use super::*;

    #[test]
    fn latency_matrix_is_read_by_os_index_and_checked() {
        let text = "Machine (P#0)
  Package L#0 (P#0)
    NUMANode L#0 (P#3 local=1GiB)
    Core L#0 (P#0)
      PU L#0 (P#0)
  Package L#1 (P#1)
    NUMANode L#1 (P#5 local=1GiB)
    Core L#1 (P#0)
      PU L#1 (P#1)
Relative latency matrix (name NUMALatency kind 5) between 2 NUMANodes (depth -3) by logical indexes:
 index     0     1
     0    10    21
     1    21    10
Topology infos: Backend=Linux
";
        let c = parse(text).unwrap();
        assert_eq!(c.distances.get(&(3, 5)), Some(&21));
        assert_eq!(c.distances.len(), 4);
        let json = |d: u64| {
            serde_json::json!({
                "pus": [{"os_index": 0, "online": true, "allowed": true}, {"os_index": 1, "online": true, "allowed": true}],
                "packages": [{"pus": [0]}, {"pus": [1]}],
                "cores": [{"pus": [0]}, {"pus": [1]}],
                "numa_nodes": [
                    {"os_index": 3, "pus": [0], "distances": [10, d]},
                    {"os_index": 5, "pus": [1], "distances": [d, 10]}
                ],
                "caches": []
            })
        };
        assert!(compare(&json(21), &c).is_empty());
        assert_eq!(compare(&json(20), &c).len(), 2);
    }
}
