//! The single-node fallback for platforms without Linux's memory-policy calls: plain anonymous
//! memory, never bound (arenas report [`Binding::Unbound`](super::Binding::Unbound) with
//! [`UnboundReason::NotLinux`](super::UnboundReason::NotLinux)), no placement reports.

use memmap2::{MmapMut, MmapOptions};

use super::error::AllocError;
use super::policy::{HugePageOutcome, HugePages, MemPolicy};
use crate::sys::SysError;
use crate::topology::NodeSet;

/// Page size assumed off Linux.
pub(crate) fn base_page_size() -> usize {
    4096
}

/// Plain anonymous memory; any huge-page ask falls back.
pub(crate) fn map_anonymous(
    len: usize,
    huge: HugePages,
    require_huge: bool,
) -> Result<(MmapMut, usize, HugePageOutcome), AllocError> {
    let outcome = match huge {
        HugePages::None => HugePageOutcome::NormalPages,
        _ if require_huge => {
            return Err(AllocError::HugePagesRefused {
                reason: "huge pages are supported on Linux only".into(),
            });
        }
        _ => HugePageOutcome::FellBack {
            requested: huge,
            reason: "huge pages are supported on Linux only".into(),
        },
    };
    let map = MmapOptions::new()
        .len(len.next_multiple_of(base_page_size()))
        .map_anon()
        .map_err(|e| AllocError::Os(SysError::new("mmap", e.raw_os_error().unwrap_or(0))))?;
    Ok((map, base_page_size(), outcome))
}

/// No memory policy off Linux.
pub(crate) fn mbind(_map: &mut MmapMut, _policy: &MemPolicy) -> Result<(), AllocError> {
    Err(AllocError::Unsupported { what: "mbind" })
}

/// One node, 0, holds all memory.
pub(crate) fn allowed_mems() -> Result<NodeSet, AllocError> {
    Ok(NodeSet::single(0))
}

/// No policy query off Linux.
pub(crate) fn policy_at(_addr: *const u8) -> Result<(i32, NodeSet), AllocError> {
    Err(AllocError::Unsupported {
        what: "get_mempolicy",
    })
}

/// No page-location query off Linux.
pub(crate) fn page_nodes(_pages: &[*const u8]) -> Result<Vec<i32>, AllocError> {
    Err(AllocError::Unsupported { what: "move_pages" })
}
