//! Software prefetch: ask the CPU to start loading a vector's cache lines before the distance
//! kernel reads them (the graph walk knows the next neighbours a few hundred cycles early).

/// Hints the CPU to load up to `lines` 64-byte cache lines starting at `ptr` into L1.
///
/// A hint only: it never faults, even for an address outside any mapping, and does nothing on
/// architectures without a prefetch instruction here.
#[inline(always)]
pub fn prefetch_lines(ptr: *const u8, lines: usize) {
    for l in 0..lines {
        let p = ptr.wrapping_add(l * 64);
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        // SAFETY: PREFETCHT0 is a hint; it does not access memory architecturally and cannot
        // fault, whatever the address. SSE is part of the x86_64 baseline.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
        }
        #[cfg(all(target_arch = "aarch64", not(miri)))]
        // SAFETY: PRFM is a hint; it never faults and writes no register or memory.
        unsafe {
            std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
        }
        // No hint elsewhere, nor under Miri (which interprets no prefetch instruction).
        #[cfg(any(miri, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
        let _ = p;
    }
}
