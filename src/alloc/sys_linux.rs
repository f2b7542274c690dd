//! The raw Linux calls of the alloc module (`mbind`, `get_mempolicy`, `move_pages`, and the
//! anonymous mapping with its huge-page variants), each wrapped once: a failed call's errno is
//! captured at once as the crate's one failed-call shape ([`SysError`]), then mapped to an
//! [`AllocError`] (an errno with no typed variant passes on inside [`AllocError::Os`]). Nothing
//! else in the module calls libc for these.
//!
//! ## The nodemask ABI
//! `mbind` and `get_mempolicy` take a node mask as an array of native `unsigned long`s (here
//! `u64`: this file is built for 64-bit Linux only) plus `maxnode`. The kernel's `get_nodes()`
//! decrements `maxnode` before use, so it reads `maxnode - 1` bits; `copy_nodes_to_user()` writes
//! `ALIGN(maxnode - 1, 64) / 8` bytes. Passing `maxnode = MASK_BITS + 1` therefore makes the
//! kernel read and write exactly our `MASK_BITS`-bit buffer (libnuma passes `size + 1` for the
//! same reason). `get_mempolicy` refuses (EINVAL) a `maxnode` below the kernel's `nr_node_ids`,
//! which is at most `MAX_NUMNODES` = 1024 in distribution kernels (`CONFIG_NODES_SHIFT=10`).

use memmap2::{Advice, MmapMut, MmapOptions};

use super::error::AllocError;
use super::policy::{HugePageOutcome, HugePages, MemPolicy};
use crate::sys::SysError;
use crate::topology::NodeSet;

#[cfg(not(target_pointer_width = "64"))]
compile_error!("alloc::sys_linux assumes 64-bit `unsigned long` node masks");

/// Node masks are sized for `MAX_NUMNODES` = 1024, the largest node count Linux supports.
pub(crate) const MASK_BITS: usize = 1024;
const MASK_WORDS: usize = MASK_BITS / 64;
/// `maxnode` for a `MASK_BITS`-bit mask (see the module docs: the kernel reads `maxnode - 1`).
const MAXNODE: libc::c_ulong = MASK_BITS as libc::c_ulong + 1;

// From <linux/mempolicy.h>; libc does not export these.
/// `get_mempolicy` flag: return the policy of the VMA holding `addr`.
const MPOL_F_ADDR: libc::c_ulong = 1 << 1;
/// `get_mempolicy` flag: return the nodes this process may allocate on.
const MPOL_F_MEMS_ALLOWED: libc::c_ulong = 1 << 2;
/// `mbind` flag: fail with EIO if pages already in the range do not follow the policy.
const MPOL_MF_STRICT: libc::c_uint = 1 << 0;
/// The mode-flag bits `get_mempolicy` may OR into the mode (static/relative nodes, balancing).
const MPOL_MODE_FLAGS: libc::c_int = (1 << 15) | (1 << 14) | (1 << 13);

type NodeMask = [u64; MASK_WORDS];

fn to_mask(nodes: &NodeSet) -> Result<NodeMask, AllocError> {
    let mut mask = [0u64; MASK_WORDS];
    for node in nodes.iter() {
        let n = node as usize;
        if n >= MASK_BITS {
            return Err(AllocError::InvalidInput {
                what: format!("node {node} is beyond Linux's maximum of {MASK_BITS} nodes"),
            });
        }
        mask[n / 64] |= 1u64 << (n % 64);
    }
    Ok(mask)
}

/// The failed-call shape of an error memmap2 returned for `call` (it reports the OS's errno as an
/// [`std::io::Error`]).
fn io_sys_error(call: &'static str, e: &std::io::Error) -> SysError {
    SysError::new(call, e.raw_os_error().unwrap_or(0))
}

fn from_mask(mask: &NodeMask) -> NodeSet {
    let mut set = NodeSet::new();
    for (w, word) in mask.iter().enumerate() {
        let mut v = *word;
        while v != 0 {
            set.insert(w as u32 * 64 + v.trailing_zeros());
            v &= v - 1;
        }
    }
    set
}

/// Maps an errno common to the memory-policy calls to its typed error.
fn policy_error(err: SysError, nodes: &NodeSet, bytes: usize) -> AllocError {
    let call = err.call;
    match err.errno {
        libc::ENOSYS => AllocError::Unsupported { what: call },
        libc::EPERM => AllocError::PermissionDenied { call },
        libc::ENOMEM => AllocError::OutOfMemory { call, bytes },
        libc::EINVAL if !nodes.is_empty() => AllocError::NodeNotAllowed {
            nodes: nodes.to_list_string(),
            allowed: allowed_mems().map_or_else(|_| "unknown".into(), |m| m.to_list_string()),
        },
        _ => AllocError::Os(err),
    }
}

/// The base page size (`sysconf(_SC_PAGESIZE)`).
pub(crate) fn base_page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let rc = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(rc).ok().filter(|&p| p > 0).unwrap_or(4096)
}

/// The default explicit huge page size, from `Hugepagesize:` in `/proc/meminfo` (2 MiB if
/// unreadable, the x86_64 default).
pub(crate) fn default_huge_page_size() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Hugepagesize:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map_or(2 << 20, |kib| kib * 1024)
}

/// The THP mode in force: the bracketed word of `/sys/kernel/mm/transparent_hugepage/enabled`.
fn thp_mode() -> Option<String> {
    let s = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
    let start = s.find('[')? + 1;
    let end = start + s[start..].find(']')?;
    Some(s[start..end].to_string())
}

/// Maps `len` bytes of anonymous, private, untouched memory, with the huge pages asked for or a
/// reported fallback. Returns the mapping, its page size and what became of the huge-page ask.
///
/// # Errors
/// [`AllocError::OutOfMemory`] if even a base-page mapping is refused (ENOMEM);
/// [`AllocError::HugePagesRefused`] if `require_huge` and huge pages were refused;
/// [`AllocError::Os`] otherwise.
pub(crate) fn map_anonymous(
    len: usize,
    huge: HugePages,
    require_huge: bool,
) -> Result<(MmapMut, usize, HugePageOutcome), AllocError> {
    let fell_back = |reason: String| -> Result<HugePageOutcome, AllocError> {
        if require_huge {
            Err(AllocError::HugePagesRefused { reason })
        } else {
            Ok(HugePageOutcome::FellBack {
                requested: huge,
                reason,
            })
        }
    };
    let plain = |len: usize| {
        MmapOptions::new()
            .len(len)
            .map_anon()
            .map_err(|e| match io_sys_error("mmap", &e) {
                SysError {
                    errno: libc::ENOMEM, ..
                } => AllocError::OutOfMemory {
                    call: "mmap",
                    bytes: len,
                },
                e => AllocError::Os(e),
            })
    };
    match huge {
        HugePages::None => {
            let map = plain(len)?;
            // With THP in `always` mode the kernel would back aligned 2 MiB stretches with huge
            // pages unasked; opt out so the arena really has the base pages it reports. EINVAL
            // means a kernel without THP, where base pages are all there is.
            if let Err(e) = map.advise(Advice::NoHugePage)
                && e.raw_os_error() != Some(libc::EINVAL)
            {
                return Err(AllocError::Os(io_sys_error("madvise", &e)));
            }
            Ok((map, base_page_size(), HugePageOutcome::NormalPages))
        }
        HugePages::Explicit => {
            let page = default_huge_page_size();
            let rounded = len.div_ceil(page) * page;
            match MmapOptions::new().len(rounded).huge(None).map_anon() {
                Ok(m) => Ok((m, page, HugePageOutcome::Explicit { page_size: page })),
                Err(e) => {
                    let outcome = fell_back(format!("mmap(MAP_HUGETLB) of {rounded} bytes: {e}"))?;
                    Ok((plain(len)?, base_page_size(), outcome))
                }
            }
        }
        HugePages::Transparent => {
            let map = plain(len)?;
            let mode = thp_mode();
            let outcome = match map.advise(Advice::HugePage) {
                Err(e) => fell_back(format!("madvise(MADV_HUGEPAGE): {e}"))?,
                Ok(()) if mode.as_deref() == Some("never") => {
                    fell_back("transparent_hugepage/enabled is [never]".into())?
                }
                Ok(()) => HugePageOutcome::Transparent { thp_mode: mode },
            };
            Ok((map, base_page_size(), outcome))
        }
    }
}

/// Applies `policy` to the whole of `map` with `mbind(2)` (flag `MPOL_MF_STRICT`).
///
/// It takes the mapping itself, not an address and a length, so what the call's soundness
/// rests on is checked by the type system instead of promised by a caller: the range is one
/// live mapping of this process, page-aligned (mmap's), that nothing else uses during the call
/// (it is borrowed mutably).
///
/// # Errors
/// - [`AllocError::Unsupported`] — no NUMA support in the kernel (ENOSYS);
/// - [`AllocError::PermissionDenied`] — EPERM;
/// - [`AllocError::NodeNotAllowed`] — EINVAL for a node outside the allowed mems;
/// - [`AllocError::OutOfMemory`] — ENOMEM;
/// - [`AllocError::InvalidInput`] — a node at or beyond [`MASK_BITS`];
/// - [`AllocError::Os`] — anything else (EIO: pages already placed against the policy).
pub(crate) fn mbind(map: &mut MmapMut, policy: &MemPolicy) -> Result<(), AllocError> {
    let (addr, len) = (map.as_mut_ptr(), map.len());
    let (mode, nodes) = match policy {
        MemPolicy::Bind(n) => (libc::MPOL_BIND, NodeSet::single(*n)),
        MemPolicy::Preferred(n) => (libc::MPOL_PREFERRED, NodeSet::single(*n)),
        MemPolicy::Interleave(set) => (libc::MPOL_INTERLEAVE, set.clone()),
    };
    let mask = to_mask(&nodes)?;
    // SAFETY:
    // - `addr..addr + len` is exactly the mapping `map`, which this process owns and which is
    //   mutably borrowed for the call (so not unmapped or used meanwhile); mmap returned it
    //   page-aligned; mbind changes only its policy, never its contents or its mapping;
    // - `mask` is a live buffer of MASK_BITS bits and `MAXNODE - 1 == MASK_BITS`, so the kernel
    //   reads exactly that buffer (module docs).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mbind,
            addr as *mut libc::c_void,
            len as libc::c_ulong,
            mode as libc::c_ulong,
            mask.as_ptr(),
            MAXNODE,
            MPOL_MF_STRICT as libc::c_ulong,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    Err(policy_error(SysError::last("mbind"), &nodes, len))
}

/// `get_mempolicy(&mode, mask, MAXNODE, addr, flags)`, the one wrapper of that call: the raw
/// mode word and the node mask the kernel wrote.
///
/// # Safety
/// `flags` must be `MPOL_F_MEMS_ALLOWED` (then `addr` is ignored and may be null) or
/// `MPOL_F_ADDR` (then the kernel only looks up the VMA holding `addr` and never touches the
/// memory; an unmapped address gives EFAULT, not undefined behaviour).
unsafe fn get_mempolicy(addr: *const u8, flags: libc::c_ulong) -> Result<(libc::c_int, NodeSet), AllocError> {
    let mut mode: libc::c_int = 0;
    let mut mask = [0u64; MASK_WORDS];
    // SAFETY:
    // - `mode` and `mask` are live, writable; the kernel writes one int to `mode` and
    //   `ALIGN(MAXNODE - 1, 64) / 8 == size_of_val(&mask)` bytes to `mask` (module docs);
    // - `addr` and `flags` are as the caller promised (see `# Safety`).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode as *mut libc::c_int,
            mask.as_mut_ptr(),
            MAXNODE,
            addr as *const libc::c_void,
            flags,
        )
    };
    if rc != 0 {
        return Err(policy_error(SysError::last("get_mempolicy"), &NodeSet::new(), 0));
    }
    Ok((mode, from_mask(&mask)))
}

/// The nodes this process may allocate on (`get_mempolicy(MPOL_F_MEMS_ALLOWED)`, i.e. the
/// cpuset's `mems` intersected with the nodes that have memory).
///
/// # Errors
/// [`AllocError::Unsupported`] without kernel NUMA support (ENOSYS); [`AllocError::Os`] otherwise.
pub(crate) fn allowed_mems() -> Result<NodeSet, AllocError> {
    // SAFETY: MPOL_F_MEMS_ALLOWED with a null address, as `get_mempolicy` requires.
    unsafe { get_mempolicy(std::ptr::null(), MPOL_F_MEMS_ALLOWED) }.map(|(_, nodes)| nodes)
}

/// The policy of the mapping that holds `addr` (`get_mempolicy(MPOL_F_ADDR)`): the raw mode
/// (without mode flags) and its nodes.
///
/// # Errors
/// [`AllocError::Unsupported`] (ENOSYS); [`AllocError::Os`] otherwise (EFAULT: `addr` unmapped).
pub(crate) fn policy_at(addr: *const u8) -> Result<(i32, NodeSet), AllocError> {
    // SAFETY: MPOL_F_ADDR only looks `addr` up, as `get_mempolicy` requires.
    unsafe { get_mempolicy(addr, MPOL_F_ADDR) }.map(|(mode, nodes)| (mode & !MPOL_MODE_FLAGS, nodes))
}

/// For each page address, the node it lives on (`>= 0`) or a negative errno (`-ENOENT`: not
/// present, i.e. never touched), from `move_pages(0, n, pages, NULL, status, 0)`, which moves
/// nothing and only reports.
///
/// # Errors
/// [`AllocError::Unsupported`] (ENOSYS); [`AllocError::PermissionDenied`] (EPERM);
/// [`AllocError::Os`] otherwise.
pub(crate) fn page_nodes(pages: &[*const u8]) -> Result<Vec<i32>, AllocError> {
    let mut status = vec![i32::MIN; pages.len()];
    if pages.is_empty() {
        return Ok(status);
    }
    // SAFETY:
    // - pid 0 is this process; `pages` holds `pages.len()` pointers and `status` has room for as
    //   many ints; `nodes` is null, which asks the kernel only to report each page's node;
    // - the kernel only reads the page tables for these addresses, never their contents; an
    //   unmapped address gives a negative status for that entry, not undefined behaviour.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_pages,
            0 as libc::pid_t,
            pages.len() as libc::c_ulong,
            pages.as_ptr() as *mut *mut libc::c_void,
            std::ptr::null::<libc::c_int>(),
            status.as_mut_ptr(),
            0 as libc::c_int,
        )
    };
    if rc < 0 {
        let err = SysError::last("move_pages");
        return Err(match err.errno {
            libc::ENOSYS => AllocError::Unsupported { what: "move_pages" },
            libc::EPERM => AllocError::PermissionDenied { call: "move_pages" },
            _ => AllocError::Os(err),
        });
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_mask_round_trips_and_rejects_out_of_range() {
        let set: NodeSet = [0, 3, 63, 64, 1023].into_iter().collect();
        let mask = to_mask(&set).unwrap();
        assert_eq!(mask[0], 1 | (1 << 3) | (1 << 63));
        assert_eq!(mask[1], 1);
        assert_eq!(mask[15], 1 << 63);
        assert_eq!(from_mask(&mask), set);
        assert!(matches!(
            to_mask(&NodeSet::single(1024)),
            Err(AllocError::InvalidInput { .. })
        ));
    }

    #[test]
    fn a_failed_call_keeps_its_one_shape_or_becomes_a_typed_variant() {
        let none = NodeSet::new();
        assert!(matches!(
            policy_error(SysError::new("mbind", libc::EIO), &none, 0),
            AllocError::Os(SysError {
                call: "mbind",
                errno: libc::EIO
            })
        ));
        assert!(matches!(
            policy_error(SysError::new("mbind", libc::EPERM), &none, 0),
            AllocError::PermissionDenied { call: "mbind" }
        ));
        assert!(matches!(
            policy_error(SysError::new("get_mempolicy", libc::ENOMEM), &none, 4096),
            AllocError::OutOfMemory {
                call: "get_mempolicy",
                bytes: 4096
            }
        ));
        let e = AllocError::Os(SysError::new("move_pages", libc::EIO));
        assert!(e.to_string().starts_with("move_pages failed: EIO"), "{e}");
    }

    #[test]
    fn allowed_mems_is_non_empty_where_numa_is_supported() {
        match allowed_mems() {
            Ok(m) => assert!(!m.is_empty()),
            Err(AllocError::Unsupported { .. }) => println!("skipped: kernel without NUMA support"),
            Err(e) => panic!("{e}"),
        }
    }
}
