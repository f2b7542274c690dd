//! Transparent huge pages for the index's memory: on Linux, `madvise(MADV_HUGEPAGE)` on each
//! region (effective when THP is in `madvise` or `always` mode); elsewhere nothing.

/// Asks for huge pages on `map`; returns whether the OS accepted the advice. Refusal (THP off,
/// old kernel) is harmless: the region keeps working on small pages.
#[cfg(target_os = "linux")]
pub(crate) fn advise(map: &memmap2::MmapMut) -> bool {
    map.advise(memmap2::Advice::HugePage).is_ok()
}

/// Huge pages are not requested on this platform.
#[cfg(not(target_os = "linux"))]
pub(crate) fn advise(_map: &memmap2::MmapMut) -> bool {
    false
}
