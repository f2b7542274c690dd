//! How much memory this machine can give an index: the bound a capacity (from a caller or a
//! snapshot header) is checked against *before* anything is allocated for it.

/// Bytes of memory this machine has for an index: physical memory plus swap (`MemTotal` +
/// `SwapTotal` of `/proc/meminfo`) on Linux, capped by the address space (`isize::MAX`); the
/// address space alone where memory cannot be read.
pub(crate) fn machine_memory_bytes() -> usize {
    read_meminfo().map_or(isize::MAX as usize, |b| b.min(isize::MAX as usize))
}

#[cfg(all(target_os = "linux", not(miri)))]
fn read_meminfo() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<usize> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kib: usize = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        kib.checked_mul(1024)
    };
    let total = field("MemTotal:")?;
    Some(total.saturating_add(field("SwapTotal:").unwrap_or(0)))
}

/// Elsewhere (and under Miri, whose isolation forbids reading files) the address space alone.
#[cfg(any(miri, not(target_os = "linux")))]
fn read_meminfo() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_machine_has_some_memory_and_less_than_the_address_space() {
        let bytes = super::machine_memory_bytes();
        assert!(bytes >= 1 << 20 && bytes <= isize::MAX as usize, "{bytes}");
    }
}
