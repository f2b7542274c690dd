//! What the process may use: the cpuset (cgroup v2, cgroup v1, or the legacy cpuset
//! filesystem) and, for the live process, `/proc/self/status`.
//!
//! The cpuset is found by hwloc's rule (`hwloc/topology-linux.c`:
//! `hwloc_find_linux_cgroup_mntpnt`, `hwloc_read_linux_cgroup_name`,
//! `hwloc_admin_disable_set_from_cgroup`), paths taken under the reader's root:
//!
//! 1. **The mount.** The standard mount points first: `/sys/fs/cgroup` if it holds
//!    `cpuset.cpus.effective` (cgroup v2), `/sys/fs/cgroup/cpuset` if it holds `cpuset.cpus`
//!    (cgroup v1), `/dev/cpuset` if it holds `cpus` (legacy). Otherwise the first entry of the
//!    mount table that is a `cgroup2` mount whose `cgroup.controllers` lists `cpuset`, a `cpuset`
//!    mount (legacy), or a `cgroup` mount with the `cpuset` option — legacy file names if it also
//!    has `noprefix`, cgroup v1 names otherwise.
//! 2. **The process's cpuset path.** `proc/self/cpuset` if present (the kernel names the cpuset
//!    that actually applies), else the `proc/self/cgroup` line of that hierarchy (`N:cpuset:PATH`
//!    for v1 and legacy, `0::PATH` for v2).
//! 3. **The files.** cgroup v2: `cpuset.cpus.effective` / `cpuset.mems.effective` (the request
//!    files `cpuset.cpus`/`.mems` may be empty, meaning "inherit"); cgroup v1: `cpuset.cpus` /
//!    `cpuset.mems` (offline CPUs are removed elsewhere, so `effective_*` is not needed);
//!    legacy: `cpus` / `mems`.
//!
//! Two additions to hwloc's rule, neither changing a case hwloc handles: the mount table is
//! `proc/self/mountinfo` when present (its root field maps paths inside a cgroup namespace or
//! bind mount), else `proc/mounts`; and a v2 cgroup without the cpuset controller takes its
//! nearest ancestor's effective sets (hwloc leaves it unrestricted). No cpuset found means no
//! restriction.

use crate::topology::cpuset::CpuSet;

use super::reader::Reader;

/// CPUs and memory nodes the process may use; `None` when nothing restricts them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Restriction {
    pub cpus: Option<CpuSet>,
    pub mems: Option<CpuSet>,
}

impl Restriction {
    /// Narrows this restriction by another (intersection; `None` is "everything").
    pub(crate) fn narrow(&mut self, other: Restriction) {
        fn meet(a: Option<CpuSet>, b: Option<CpuSet>) -> Option<CpuSet> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.intersection(&b)),
                (a, b) => a.or(b),
            }
        }
        self.cpus = meet(self.cpus.take(), other.cpus);
        self.mems = meet(self.mems.take(), other.mems);
    }
}

/// One mounted filesystem: where, what type, and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The mount's root within its filesystem (mountinfo's 4th field; `/` from `proc/mounts`).
    pub fs_root: String,
    pub mount_point: String,
    pub fs_type: String,
    pub options: Vec<String>,
}

impl Mount {
    fn has_option(&self, option: &str) -> bool {
        self.options.iter().any(|o| o == option)
    }
}

/// The interface a cpuset mount offers, which names its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CpusetKind {
    /// cgroup v2 with the cpuset controller.
    CgroupV2,
    /// A cgroup v1 hierarchy with the cpuset controller (files `cpuset.*`).
    CgroupV1,
    /// The legacy cpuset filesystem, or a v1 cpuset hierarchy mounted with `noprefix` (files
    /// `cpus`, `mems`).
    Legacy,
}

impl CpusetKind {
    /// The files holding the allowed CPUs and memory nodes.
    fn files(self) -> (&'static str, &'static str) {
        match self {
            Self::CgroupV2 => ("cpuset.cpus.effective", "cpuset.mems.effective"),
            Self::CgroupV1 => ("cpuset.cpus", "cpuset.mems"),
            Self::Legacy => ("cpus", "mems"),
        }
    }
}

/// The mount point hwloc tries before reading the mount table, the file that must exist in
/// it, and the kind it is then taken to be.
const STANDARD_MOUNTS: [(&str, &str, CpusetKind); 3] = [
    ("/sys/fs/cgroup", "cpuset.cpus.effective", CpusetKind::CgroupV2),
    ("/sys/fs/cgroup/cpuset", "cpuset.cpus", CpusetKind::CgroupV1),
    ("/dev/cpuset", "cpus", CpusetKind::Legacy),
];

/// The mount holding the cpuset hierarchy and its kind (rule 1 of the module docs).
pub(crate) fn find_cpuset_mount(r: &mut Reader, mounts: &[Mount]) -> Option<(Mount, CpusetKind)> {
    for (point, probe, kind) in STANDARD_MOUNTS {
        if r.exists(&format!("{point}/{probe}")) {
            // The table's entry, if listed, for its root field; else a plain mount.
            let mount = mounts
                .iter()
                .rev()
                .find(|m| m.mount_point.trim_end_matches('/') == point)
                .cloned()
                .unwrap_or_else(|| Mount {
                    fs_root: "/".into(),
                    mount_point: point.into(),
                    fs_type: String::new(),
                    options: Vec::new(),
                });
            return Some((mount, kind));
        }
    }
    for m in mounts {
        let kind = match m.fs_type.as_str() {
            "cgroup2" => {
                let controllers = format!("{}/cgroup.controllers", m.mount_point.trim_end_matches('/'));
                match r.text(&controllers) {
                    Some(text) if text.split_whitespace().any(|c| c == "cpuset") => CpusetKind::CgroupV2,
                    Some(_) => continue,
                    None => {
                        r.fallback(
                            controllers,
                            "missing: this cgroup2 mount is not used for the cpuset",
                        );
                        continue;
                    }
                }
            }
            "cpuset" => CpusetKind::Legacy,
            "cgroup" if m.has_option("cpuset") && m.has_option("noprefix") => CpusetKind::Legacy,
            "cgroup" if m.has_option("cpuset") => CpusetKind::CgroupV1,
            _ => continue,
        };
        return Some((m.clone(), kind));
    }
    None
}

/// The process's path in the cpuset hierarchy of `kind` (rule 2 of the module docs).
fn cpuset_path(r: &mut Reader, kind: CpusetKind) -> Option<String> {
    if let Some(text) = r.text("proc/self/cpuset") {
        let path = text.lines().next().unwrap_or("").trim();
        if !path.is_empty() {
            return Some(path.to_string());
        }
    }
    let cgroups = parse_proc_cgroup(&r.text("proc/self/cgroup")?);
    cgroups
        .into_iter()
        .find(|(controllers, _)| match kind {
            CpusetKind::CgroupV2 => controllers.is_empty(),
            CpusetKind::CgroupV1 | CpusetKind::Legacy => controllers.iter().any(|c| c == "cpuset"),
        })
        .map(|(_, path)| path)
}

/// The cpuset restriction of the process whose `proc/self` lies under the reader's root.
pub(crate) fn cgroup_cpuset(r: &mut Reader) -> Restriction {
    let mounts = match r.text("proc/self/mountinfo") {
        Some(text) => parse_mountinfo(&text),
        None => r
            .text("proc/mounts")
            .map(|t| parse_mounts(&t))
            .unwrap_or_default(),
    };
    let Some((mount, kind)) = find_cpuset_mount(r, &mounts) else {
        return Restriction::default();
    };
    let Some(path) = cpuset_path(r, kind) else {
        return Restriction::default();
    };
    let (cpus_file, mems_file) = kind.files();
    let mut dir = cgroup_dir(&mount, &path);
    if kind == CpusetKind::CgroupV2 {
        // A cgroup without the cpuset controller has no cpuset files; its nearest ancestor's
        // effective sets are the ones that apply.
        let top = mount.mount_point.trim_end_matches('/').len();
        while !r.exists(&format!("{dir}/{cpus_file}")) {
            match dir.rsplit_once('/') {
                Some((parent, _)) if parent.len() >= top => dir = parent.to_string(),
                _ => {
                    r.fallback(
                        format!("{}/{cpus_file}", cgroup_dir(&mount, &path)),
                        "cgroup v2 cpuset files absent (here and in every ancestor): no cpuset restriction",
                    );
                    return Restriction::default();
                }
            }
        }
    }
    read_cpuset_dir(r, &dir, cpus_file, mems_file)
}

fn read_cpuset_dir(r: &mut Reader, dir: &str, cpus_file: &str, mems_file: &str) -> Restriction {
    let read = |r: &mut Reader, name: &str| {
        let rel = format!("{dir}/{name}");
        let set = if r.exists(&rel) { r.list(&rel) } else { None };
        if set.is_none() {
            r.fallback(rel, "cpuset file missing or unreadable: not restricted by it");
        }
        set
    };
    let cpus = read(r, cpus_file);
    let mems = read(r, mems_file);
    Restriction { cpus, mems }
}

/// The directory of cgroup `path` in mount `m` (as a path from `/`).
fn cgroup_dir(m: &Mount, path: &str) -> String {
    // Inside a cgroup namespace or a bind mount, the mount shows only the subtree at `fs_root`.
    let fs_root = m.fs_root.trim_end_matches('/');
    let rel = if !fs_root.is_empty() && (path == fs_root || path.starts_with(&format!("{fs_root}/"))) {
        &path[fs_root.len()..]
    } else {
        path
    };
    let base = m.mount_point.trim_end_matches('/');
    let rel = rel.trim_matches('/');
    if rel.is_empty() {
        base.to_string()
    } else {
        format!("{base}/{rel}")
    }
}

/// `proc/self/cgroup` lines `ID:CONTROLLERS:PATH` as (controllers, path); v2 has no
/// controllers. Malformed lines are skipped.
pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let controllers = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some((controllers, path.to_string()))
        })
        .collect()
}

/// Undoes the octal escapes (`\040` for a space) of mount tables.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') as u32 * 64
                + (bytes[i + 2] - b'0') as u32 * 8
                + (bytes[i + 3] - b'0') as u32;
            if let Ok(b) = u8::try_from(v) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `proc/self/mountinfo`: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS…] - TYPE SOURCE SUPEROPTS`.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split_whitespace().collect();
            let right: Vec<&str> = right.split_whitespace().collect();
            let fs_root = unescape(left.get(3)?);
            let mount_point = unescape(left.get(4)?);
            let fs_type = right.first()?.to_string();
            let mut options: Vec<String> = left
                .get(5)
                .map(|o| o.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            if let Some(superopts) = right.get(2) {
                options.extend(superopts.split(',').map(str::to_string));
            }
            Some(Mount {
                fs_root,
                mount_point,
                fs_type,
                options,
            })
        })
        .collect()
}

/// `proc/mounts`: `SOURCE MOUNTPOINT TYPE OPTIONS DUMP PASS`.
pub(crate) fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some(Mount {
                fs_root: "/".to_string(),
                mount_point: unescape(fields.get(1)?),
                fs_type: fields.get(2)?.to_string(),
                options: fields
                    .get(3)
                    .map(|o| o.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// `Cpus_allowed_list` and `Mems_allowed_list` (or the mask forms) of a `proc/PID/status`.
pub(crate) fn parse_status(text: &str) -> Restriction {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
            .map(str::trim)
    };
    let cpus = field("Cpus_allowed_list")
        .and_then(|v| CpuSet::parse_list(v).ok())
        .or_else(|| field("Cpus_allowed").and_then(|v| CpuSet::parse_mask(v).ok()));
    let mems = field("Mems_allowed_list")
        .and_then(|v| CpuSet::parse_list(v).ok())
        .or_else(|| field("Mems_allowed").and_then(|v| CpuSet::parse_mask(v).ok()));
    Restriction { cpus, mems }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    use crate::topology::sysfs::write_test_file as write;

    #[test]
    fn v1_cpuset() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "proc/self/cgroup",
            "3:memory:/x\n2:cpuset:/job\n0::/\n",
        );
        write(
            dir.path(),
            "proc/mounts",
            "cgroup /sys/fs/cgroup/cpuset cgroup rw,cpuset 0 0\n",
        );
        write(dir.path(), "sys/fs/cgroup/cpuset/job/cpuset.cpus", "2-5\n");
        write(dir.path(), "sys/fs/cgroup/cpuset/job/cpuset.mems", "1\n");
        // hwloc's rule under v1: the configured sets, not `effective_*`.
        write(
            dir.path(),
            "sys/fs/cgroup/cpuset/job/cpuset.effective_cpus",
            "0-7\n",
        );
        let mut r = Reader::new(dir.path());
        let res = cgroup_cpuset(&mut r);
        assert_eq!(res.cpus.unwrap().to_list_string(), "2-5");
        assert_eq!(res.mems.unwrap().to_list_string(), "1");
    }

    #[test]
    fn v2_walks_up_and_handles_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "proc/self/cgroup", "0::/ns/a/b\n");
        write(
            dir.path(),
            "proc/self/mountinfo",
            "30 1 0:26 /ns /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        write(dir.path(), "sys/fs/cgroup/cgroup.controllers", "cpuset memory\n");
        write(dir.path(), "sys/fs/cgroup/a/cpuset.cpus.effective", "0-1\n");
        write(dir.path(), "sys/fs/cgroup/a/cpuset.mems.effective", "0\n");
        fs::create_dir_all(dir.path().join("sys/fs/cgroup/a/b")).unwrap();
        let mut r = Reader::new(dir.path());
        let res = cgroup_cpuset(&mut r);
        assert_eq!(res.cpus.unwrap().to_list_string(), "0-1");
        assert!(r.take_fallbacks().is_empty());
    }

    #[test]
    fn legacy_dev_cpuset_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "proc/self/cpuset", "/dummy\n");
        write(
            dir.path(),
            "proc/mounts",
            "none /dev/cpuset cpuset rw 0 0\ngarbage\n",
        );
        write(dir.path(), "dev/cpuset/dummy/cpus", "0-6,12-15\n");
        write(dir.path(), "dev/cpuset/dummy/mems", "1-x\n");
        let mut r = Reader::new(dir.path());
        let res = cgroup_cpuset(&mut r);
        assert_eq!(res.cpus.unwrap().to_list_string(), "0-6,12-15");
        assert_eq!(res.mems, None);
        assert_eq!(r.take_fallbacks().len(), 2);
    }

    #[test]
    fn nothing_means_unrestricted() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Reader::new(dir.path());
        assert_eq!(cgroup_cpuset(&mut r), Restriction::default());
    }

    #[test]
    fn status_and_escapes() {
        let s =
            parse_status("Name:\tx\nCpus_allowed:\tff\nCpus_allowed_list:\t0-7\nMems_allowed:\t00000001\n");
        assert_eq!(s.cpus.unwrap().len(), 8);
        assert_eq!(s.mems.unwrap().to_vec(), vec![0]);
        assert_eq!(parse_status("garbage"), Restriction::default());
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("\\04"), "\\04");
        let mut a = Restriction {
            cpus: Some(CpuSet::parse_list("0-3").unwrap()),
            mems: None,
        };
        a.narrow(Restriction {
            cpus: Some(CpuSet::parse_list("2-9").unwrap()),
            mems: Some(CpuSet::single(1)),
        });
        assert_eq!(a.cpus.unwrap().to_list_string(), "2-3");
        assert_eq!(a.mems.unwrap().to_vec(), vec![1]);
    }
}
