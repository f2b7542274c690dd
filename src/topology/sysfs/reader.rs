//! Reading files under a sysfs root, with every oddity turned into a recorded [`Fallback`].
//!
//! Discovery never trusts a file to exist or to make sense. A missing file is `None` (the
//! caller decides what that means); an unreadable or garbled one is `None` too, with a
//! [`Fallback`] saying what was wrong, so the final [`Topology`](crate::topology::Topology)
//! shows it.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::bounded_read::{BoundedReadError, read_regular};
use crate::topology::cpuset::CpuSet;
use crate::topology::model::Fallback;

/// Largest sysfs or procfs file read (bytes). A sysfs attribute is at most a page or a CPU
/// list; `/proc/cpuinfo` of a machine with thousands of CPUs is a few MiB.
pub(crate) const MAX_FILE_BYTES: u64 = 16 << 20;
use crate::topology::size::parse_size;

/// A sysfs/procfs root and the fallbacks recorded while reading it.
pub(crate) struct Reader {
    root: PathBuf,
    fallbacks: Vec<Fallback>,
}

impl Reader {
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            fallbacks: Vec::new(),
        }
    }

    /// The absolute path of `rel` (a path written as if from `/`) under the root.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// Records a fallback.
    pub(crate) fn fallback(&mut self, what: impl Into<String>, action: impl Into<String>) {
        let fallback = Fallback {
            what: what.into(),
            action: action.into(),
        };
        if !self.fallbacks.contains(&fallback) {
            self.fallbacks.push(fallback);
        }
    }

    /// The fallbacks recorded so far, leaving none behind.
    pub(crate) fn take_fallbacks(&mut self) -> Vec<Fallback> {
        std::mem::take(&mut self.fallbacks)
    }

    /// Whether `rel` is a directory.
    pub(crate) fn is_dir(&self, rel: &str) -> bool {
        self.path(rel).is_dir()
    }

    /// Whether `rel` exists.
    pub(crate) fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// The file's text (invalid UTF-8 replaced, NUL bytes dropped), `None` if it does not exist
    /// or cannot be read (the latter recorded). Only a regular file of at most
    /// [`MAX_FILE_BYTES`] is read: a link to a device, a FIFO or a huge file is recorded and
    /// treated as missing, never read without end.
    pub(crate) fn text(&mut self, rel: &str) -> Option<String> {
        match read_regular(&self.path(rel), MAX_FILE_BYTES) {
            Ok(bytes) => Some(String::from_utf8_lossy(&bytes).replace('\0', "")),
            Err(e) if e.is_not_found() => None,
            Err(BoundedReadError::NotRegular { kind: "directory" }) => {
                self.fallback(rel, "is a directory, not a file: treated as missing");
                None
            }
            Err(e @ (BoundedReadError::NotRegular { .. } | BoundedReadError::TooLarge { .. })) => {
                self.fallback(rel, format!("{e}: treated as missing"));
                None
            }
            Err(e) => {
                self.fallback(rel, format!("unreadable ({e}): treated as missing"));
                None
            }
        }
    }

    /// Names of the entries of directory `rel` (sorted), empty if it is missing (an unreadable
    /// one recorded).
    pub(crate) fn entry_names(&mut self, rel: &str) -> Vec<String> {
        match fs::read_dir(self.path(rel)) {
            Ok(entries) => {
                let mut names: Vec<String> = entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect();
                names.sort();
                names
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                self.fallback(rel, format!("directory unreadable ({e}): treated as empty"));
                Vec::new()
            }
        }
    }

    /// Names of the entries of directory `rel` that are `prefix` followed by a number, as
    /// numbers, sorted. Empty if the directory is missing.
    pub(crate) fn numbered_entries(&mut self, rel: &str, prefix: &str) -> Vec<u32> {
        let entries = match fs::read_dir(self.path(rel)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                self.fallback(rel, format!("directory unreadable ({e}): treated as empty"));
                return Vec::new();
            }
        };
        let mut ids: Vec<u32> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let digits = name.to_str()?.strip_prefix(prefix)?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                digits.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// A set in list form (`0-3,8`), `None` if missing or garbled (recorded).
    pub(crate) fn list(&mut self, rel: &str) -> Option<CpuSet> {
        let text = self.text(rel)?;
        match CpuSet::parse_list(&text) {
            Ok(set) => Some(set),
            Err(e) => {
                self.fallback(rel, format!("garbled CPU/node list ({e}): ignored"));
                None
            }
        }
    }

    /// A set in mask form (`0000ff0f`), `None` if missing or garbled (recorded).
    pub(crate) fn mask(&mut self, rel: &str) -> Option<CpuSet> {
        let text = self.text(rel)?;
        match CpuSet::parse_mask(&text) {
            Ok(set) => Some(set),
            Err(e) => {
                self.fallback(rel, format!("garbled CPU/node mask ({e}): ignored"));
                None
            }
        }
    }

    /// A set from `dir/mask_name` (mask form) or else `dir/list_name` (list form). The mask is
    /// preferred, as hwloc does: some old kernels wrote wrong `shared_cpu_list` files next to
    /// right `shared_cpu_map` ones.
    pub(crate) fn mask_or_list(&mut self, dir: &str, mask_name: &str, list_name: &str) -> Option<CpuSet> {
        self.mask(&format!("{dir}/{mask_name}"))
            .or_else(|| self.list(&format!("{dir}/{list_name}")))
    }

    /// A signed integer file, `None` if missing or garbled (recorded).
    pub(crate) fn int(&mut self, rel: &str) -> Option<i64> {
        let text = self.text(rel)?;
        match text.trim().parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.fallback(rel, format!("not an integer ({:?}): ignored", cut(&text)));
                None
            }
        }
    }

    /// A non-negative id that fits `u32`; negative values (the kernel's `-1`, "unknown") give
    /// `None` without a record, anything else odd is recorded.
    pub(crate) fn id(&mut self, rel: &str) -> Option<u32> {
        let v = self.int(rel)?;
        if v < 0 {
            return None;
        }
        match u32::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                self.fallback(rel, format!("id {v} out of range: ignored"));
                None
            }
        }
    }

    /// A size file (`32K`), `None` if missing or garbled (recorded).
    pub(crate) fn size(&mut self, rel: &str) -> Option<u64> {
        let text = self.text(rel)?;
        match parse_size(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fallback(rel, format!("garbled size ({e}): ignored"));
                None
            }
        }
    }
}

/// The first 64 characters of `text`, trimmed, for messages.
pub(crate) fn cut(text: &str) -> String {
    text.trim().chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_is_silent_odd_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a_dir")).unwrap();
        fs::write(root.join("nul"), b"0-1\0\n").unwrap();
        fs::write(root.join("latin1"), b"\xff7\n").unwrap();
        fs::write(root.join("neg"), "-1\n").unwrap();
        fs::write(root.join("huge"), "99999999999\n").unwrap();
        fs::write(root.join("size"), "32 K\n").unwrap();
        let mut r = Reader::new(root);
        assert_eq!(r.text("missing"), None);
        assert!(r.take_fallbacks().is_empty());
        assert_eq!(r.text("a_dir"), None);
        assert_eq!(r.take_fallbacks().len(), 1);
        assert_eq!(r.list("nul").map(|s| s.to_list_string()), Some("0-1".into()));
        assert_eq!(r.int("latin1"), None);
        assert_eq!(r.id("neg"), None);
        assert_eq!(r.id("huge"), None);
        assert_eq!(r.size("size"), Some(32 * 1024));
        assert_eq!(
            r.take_fallbacks().len(),
            2,
            "latin1 and huge are recorded, -1 is not"
        );
        fs::create_dir_all(root.join("d/cpu3")).unwrap();
        fs::create_dir_all(root.join("d/cpu10")).unwrap();
        fs::create_dir_all(root.join("d/cpufreq")).unwrap();
        fs::create_dir_all(root.join("d/cpu1x")).unwrap();
        assert_eq!(r.numbered_entries("d", "cpu"), vec![3, 10]);
        assert!(r.numbered_entries("nowhere", "cpu").is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn links_to_devices_and_fifos_are_recorded_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::os::unix::fs::symlink("/dev/zero", root.join("zero")).unwrap();
        let fifo = std::ffi::CString::new(root.join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: `fifo` is a NUL-terminated path that lives across the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let mut r = Reader::new(root);
        assert_eq!(r.text("zero"), None);
        assert_eq!(r.text("fifo"), None);
        let recorded = r.take_fallbacks();
        assert_eq!(recorded.len(), 2, "{recorded:?}");
        assert!(
            recorded.iter().any(|f| f.action.contains("character device")),
            "{recorded:?}"
        );
        assert!(recorded.iter().any(|f| f.action.contains("FIFO")), "{recorded:?}");
    }
}
