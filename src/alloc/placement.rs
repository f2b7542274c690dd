//! Where memory really lives: a [`PlacementReport`] built from `move_pages` (the node of each
//! page, or of a stated sample of pages) and `get_mempolicy` (the policy the kernel holds for the
//! mapping).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::error::AllocError;
use super::policy::MemPolicy;
use super::sys;
use crate::topology::NodeSet;

/// Which pages of a range to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PageSample {
    /// Every page.
    #[default]
    All,
    /// At most this many pages, evenly spaced from the first (every `ceil(pages / n)`-th page).
    AtMost(usize),
}

/// A memory-policy mode as the kernel reports it (`get_mempolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelPolicyMode {
    /// `MPOL_DEFAULT`: no policy on the mapping; the process's policy applies.
    Default,
    /// `MPOL_PREFERRED`.
    Preferred,
    /// `MPOL_BIND`.
    Bind,
    /// `MPOL_INTERLEAVE`.
    Interleave,
    /// `MPOL_LOCAL`.
    Local,
    /// `MPOL_PREFERRED_MANY`.
    PreferredMany,
    /// `MPOL_WEIGHTED_INTERLEAVE`.
    WeightedInterleave,
    /// A mode newer than this code.
    Unknown(i32),
}

impl KernelPolicyMode {
    fn from_raw(mode: i32) -> Self {
        match mode {
            0 => Self::Default,
            1 => Self::Preferred,
            2 => Self::Bind,
            3 => Self::Interleave,
            4 => Self::Local,
            5 => Self::PreferredMany,
            6 => Self::WeightedInterleave,
            m => Self::Unknown(m),
        }
    }
}

/// The policy the kernel holds for a mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelPolicy {
    /// The mode.
    pub mode: KernelPolicyMode,
    /// Its nodes (empty for `Default` and `Local`).
    pub nodes: NodeSet,
}

/// Where the pages of a memory range live. Built by
/// [`NodeArena::placement_report`](super::NodeArena::placement_report) or [`placement_of`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlacementReport {
    /// The policy that was asked for.
    pub requested: MemPolicy,
    /// The policy the kernel reports for the range's first page, or why it could not be read.
    pub kernel_policy: Result<KernelPolicy, String>,
    /// The node pages should be on (`None` for interleave).
    pub home_node: Option<u32>,
    /// Page size used to walk the range.
    pub page_size: usize,
    /// Pages in the range.
    pub pages_in_range: usize,
    /// Pages checked (all, or the sample).
    pub pages_checked: usize,
    /// Every `stride`-th page was checked (1 = every page).
    pub stride: usize,
    /// Checked pages present on the home node (0 when there is no home node).
    pub pages_on_home: usize,
    /// Checked, present pages per node.
    pub per_node: BTreeMap<u32, usize>,
    /// Checked pages not present (never touched, or swapped out: `-ENOENT`).
    pub not_present: usize,
    /// Checked pages whose status was another error, by errno.
    pub errors: BTreeMap<i32, usize>,
}

impl PlacementReport {
    /// Pages found present on some node.
    pub fn pages_present(&self) -> usize {
        self.per_node.values().sum()
    }

    /// Fraction of checked pages on the home node (0 if none was checked or there is no home).
    pub fn home_fraction(&self) -> f64 {
        if self.pages_checked == 0 {
            0.0
        } else {
            self.pages_on_home as f64 / self.pages_checked as f64
        }
    }

    /// Whether every checked page is on the home node (and at least one was checked).
    pub fn all_on_home(&self) -> bool {
        self.pages_checked > 0 && self.pages_on_home == self.pages_checked
    }
}

impl fmt::Display for PlacementReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "asked: {}; kernel: ", self.requested)?;
        match &self.kernel_policy {
            Ok(p) => write!(f, "{:?} {{{}}}", p.mode, p.nodes)?,
            Err(e) => write!(f, "unknown ({e})")?,
        }
        write!(
            f,
            "; {} of {} pages of {} KiB checked",
            self.pages_checked,
            self.pages_in_range,
            self.page_size / 1024
        )?;
        if self.stride > 1 {
            write!(f, " (every {}th)", self.stride)?;
        }
        if let Some(home) = self.home_node {
            write!(
                f,
                "; on home node {home}: {} ({:.1} %)",
                self.pages_on_home,
                100.0 * self.home_fraction()
            )?;
        }
        write!(f, "; per node:")?;
        if self.per_node.is_empty() {
            write!(f, " none")?;
        }
        for (node, count) in &self.per_node {
            write!(f, " {node}:{count}")?;
        }
        write!(f, "; not present: {}", self.not_present)?;
        for (errno, count) in &self.errors {
            write!(f, "; errno {errno}: {count}")?;
        }
        Ok(())
    }
}

/// The placement of `[addr, addr + len)`, walked in pages of `page_size`, checked against
/// `requested`.
///
/// The kernel only reads page tables: the memory is neither read nor written, and an unmapped
/// address shows as an error status (`EFAULT`), so any address is safe to pass.
///
/// # Errors
/// [`AllocError::InvalidInput`] for a zero page size or a range that wraps past the end of the
/// address space; [`AllocError::Unsupported`] where
/// `move_pages` is unavailable; [`AllocError::Os`] on other failures.
pub fn placement_of(
    addr: *const u8,
    len: usize,
    page_size: usize,
    requested: &MemPolicy,
    sample: PageSample,
) -> Result<PlacementReport, AllocError> {
    report(addr, len, page_size, requested, sample)
}

pub(crate) fn report(
    addr: *const u8,
    len: usize,
    page_size: usize,
    requested: &MemPolicy,
    sample: PageSample,
) -> Result<PlacementReport, AllocError> {
    if page_size == 0 {
        return Err(AllocError::InvalidInput {
            what: "page size must be > 0".into(),
        });
    }
    let first = (addr as usize) / page_size * page_size;
    let end = (addr as usize)
        .checked_add(len)
        .and_then(|end| end.checked_next_multiple_of(page_size))
        .ok_or_else(|| AllocError::InvalidInput {
            what: format!("range {addr:p} + {len} bytes runs past the end of the address space"),
        })?;
    let pages_in_range = (end - first) / page_size;
    let stride = match sample {
        PageSample::All => 1,
        PageSample::AtMost(0) => pages_in_range.max(1),
        PageSample::AtMost(n) => pages_in_range.div_ceil(n).max(1),
    };
    let pages: Vec<*const u8> = (0..pages_in_range)
        .step_by(stride)
        .map(|i| (first + i * page_size) as *const u8)
        .collect();
    let status = sys::page_nodes(&pages)?;
    let kernel_policy = sys::policy_at(addr)
        .map(|(mode, nodes)| KernelPolicy {
            mode: KernelPolicyMode::from_raw(mode),
            nodes,
        })
        .map_err(|e| e.to_string());
    let home_node = requested.home_node();
    let mut report = PlacementReport {
        requested: requested.clone(),
        kernel_policy,
        home_node,
        page_size,
        pages_in_range,
        pages_checked: pages.len(),
        stride,
        pages_on_home: 0,
        per_node: BTreeMap::new(),
        not_present: 0,
        errors: BTreeMap::new(),
    };
    for s in status {
        if let Ok(node) = u32::try_from(s) {
            *report.per_node.entry(node).or_default() += 1;
            if home_node == Some(node) {
                report.pages_on_home += 1;
            }
        } else if s == -libc::ENOENT {
            report.not_present += 1;
        } else {
            *report.errors.entry(-s).or_default() += 1;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_past_the_end_of_the_address_space_is_refused() {
        for (addr, len) in [
            (usize::MAX - 10, 100),
            (usize::MAX - 4095, 4096),
            (4096, usize::MAX),
        ] {
            let err = placement_of(
                addr as *const u8,
                len,
                4096,
                &MemPolicy::Bind(0),
                PageSample::AtMost(4),
            )
            .unwrap_err();
            assert!(matches!(err, AllocError::InvalidInput { .. }), "{err}");
        }
    }

    #[test]
    fn untouched_memory_is_not_present_and_sampling_is_stated() {
        let map = memmap2::MmapMut::map_anon(64 * 4096).unwrap();
        let page = 4096;
        match report(
            map.as_ptr(),
            map.len(),
            page,
            &MemPolicy::Bind(0),
            PageSample::AtMost(10),
        ) {
            Ok(r) => {
                assert_eq!(r.pages_in_range, 64);
                assert_eq!(r.stride, 7);
                assert_eq!(r.pages_checked, 10);
                assert_eq!(r.not_present, 10, "{r}");
                assert_eq!(r.pages_on_home, 0);
                let k = r.kernel_policy.as_ref().unwrap();
                assert_eq!(k.mode, KernelPolicyMode::Default);
                let json = serde_json::to_string(&r).unwrap();
                assert!(json.contains("\"not_present\":10"), "{json}");
                assert!(r.to_string().contains("not present: 10"), "{r}");
            }
            Err(AllocError::Unsupported { .. }) => println!("skipped: move_pages unsupported here"),
            Err(e) => panic!("{e}"),
        }
    }
}
