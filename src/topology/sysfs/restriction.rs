//! What the process may use: the cgroup cpuset (v1, v2, or the legacy `/dev/cpuset`) and, for
//! the live process, `/proc/self/status`.
//!
//! The cpuset is found as hwloc finds it: `proc/self/cgroup` names the process's cgroup (a v1
//! line whose controllers include `cpuset`, or the v2 line `0::PATH`), `proc/self/mountinfo` (or
//! `proc/mounts`) says where that hierarchy is mounted, and the cgroup directory holds
//! `cpuset.effective_cpus` (v1), `cpuset.cpus.effective` (v2; a cgroup without the controller
//! inherits its nearest ancestor's) or `cpus` (legacy, named by `proc/self/cpuset`). For a
//! snapshot the mount points are looked up under its root. No cpuset information means no
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

/// The cgroup cpuset restriction of the process whose `proc/self` lies under the reader's root.
pub(crate) fn cgroup_cpuset(r: &mut Reader) -> Restriction {
    let mounts = match r.text("proc/self/mountinfo") {
        Some(text) => parse_mountinfo(&text),
        None => r
            .text("proc/mounts")
            .map(|t| parse_mounts(&t))
            .unwrap_or_default(),
    };
    let cgroups = r
        .text("proc/self/cgroup")
        .map(|t| parse_proc_cgroup(&t))
        .unwrap_or_default();

    // cgroup v1 with a cpuset hierarchy.
    if let Some((_, path)) = cgroups
        .iter()
        .find(|(controllers, _)| controllers.iter().any(|c| c == "cpuset"))
    {
        if let Some(m) = mounts
            .iter()
            .find(|m| m.fs_type == "cgroup" && m.options.iter().any(|o| o == "cpuset"))
        {
            let dir = cgroup_dir(m, path);
            return read_cpuset_dir(
                r,
                &dir,
                &["cpuset.effective_cpus", "cpuset.cpus", "cpus"],
                &["cpuset.effective_mems", "cpuset.mems", "mems"],
            );
        }
    }
    // The legacy cpuset filesystem (`/dev/cpuset`), named by proc/self/cpuset.
    if let Some(m) = mounts.iter().find(|m| m.fs_type == "cpuset") {
        if let Some(path) = r.text("proc/self/cpuset") {
            let dir = cgroup_dir(m, path.trim());
            return read_cpuset_dir(r, &dir, &["cpus", "cpuset.cpus"], &["mems", "cpuset.mems"]);
        }
    }
    // cgroup v2: the nearest ancestor (or self) that has the effective files.
    if let Some((_, path)) = cgroups.iter().find(|(controllers, _)| controllers.is_empty()) {
        if let Some(m) = mounts.iter().find(|m| m.fs_type == "cgroup2") {
            let mut dir = cgroup_dir(m, path);
            loop {
                if r.exists(&format!("{dir}/cpuset.cpus.effective")) {
                    return read_cpuset_dir(r, &dir, &["cpuset.cpus.effective"], &["cpuset.mems.effective"]);
                }
                match dir.rsplit_once('/') {
                    Some((parent, _)) if parent.len() >= m.mount_point.trim_end_matches('/').len() => {
                        dir = parent.to_string();
                    }
                    _ => break,
                }
            }
            r.fallback(
                format!("{}/cpuset.cpus.effective", cgroup_dir(m, path)),
                "cgroup v2 cpuset files absent (here and in every ancestor): no cpuset restriction",
            );
        }
    }
    Restriction::default()
}

fn read_cpuset_dir(r: &mut Reader, dir: &str, cpu_files: &[&str], mem_files: &[&str]) -> Restriction {
    let first = |r: &mut Reader, names: &[&str]| {
        names.iter().find_map(|name| {
            let rel = format!("{dir}/{name}");
            if r.exists(&rel) { r.list(&rel) } else { None }
        })
    };
    let cpus = first(r, cpu_files);
    let mems = first(r, mem_files);
    if cpus.is_none() {
        r.fallback(
            format!("{dir}/{}", cpu_files[0]),
            "cpuset CPUs unreadable: CPUs not restricted",
        );
    }
    if mems.is_none() {
        r.fallback(
            format!("{dir}/{}", mem_files[0]),
            "cpuset memory nodes unreadable: not restricted",
        );
    }
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
        write(
            dir.path(),
            "sys/fs/cgroup/cpuset/job/cpuset.effective_cpus",
            "2-5\n",
        );
        write(
            dir.path(),
            "sys/fs/cgroup/cpuset/job/cpuset.effective_mems",
            "1\n",
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
