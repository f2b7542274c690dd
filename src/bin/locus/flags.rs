//! What every subcommand's flags share: the bounds each size is checked against while the
//! command line is parsed (so a bad value is refused by clap, naming its flag, before anything
//! is allocated or started), seeds in decimal or hex, and output paths checked before a run.

use std::path::Path;

use clap::builder::{RangedU64ValueParser, TypedValueParser};

/// Largest embedding dimension a benchmark takes (the scenario files' bound too).
pub const MAX_DIMENSION: u64 = locus::loadtest::scenario::MAX_DIMENSION as u64;
/// Most threads of any one kind (observers, appenders, recallers, clients).
pub const MAX_THREADS: u64 = 1024;
/// Most shards (the engine's bound).
pub const MAX_SHARDS: u64 = locus::loadtest::scenario::MAX_SHARDS as u64;
/// Most episodes, records or graph nodes a benchmark generates (each costs at least a few
/// bytes; this is past every figure in the docs and far below what overflows anything).
pub const MAX_ITEMS: u64 = 1 << 32;
/// Largest buffer a benchmark allocates from a flag, MiB (64 GiB).
pub const MAX_MIB: u64 = 64 << 10;
/// Highest offered rate (operations per second), as in scenario files.
pub const MAX_RATE: u64 = locus::loadtest::scenario::MAX_RATE as u64;
/// Most episodes in one `observe_batch` call.
pub const MAX_BATCH: u64 = 1 << 16;

/// A `usize` flag in `min..=max`.
pub fn usize_in(min: u64, max: u64) -> impl TypedValueParser<Value = usize> {
    RangedU64ValueParser::<usize>::new().range(min..=max)
}

/// A `u64` flag in `min..=max`.
pub fn u64_in(min: u64, max: u64) -> impl TypedValueParser<Value = u64> {
    RangedU64ValueParser::<u64>::new().range(min..=max)
}

/// A `u32` flag in `min..=max`.
pub fn u32_in(min: u64, max: u64) -> impl TypedValueParser<Value = u32> {
    RangedU64ValueParser::<u32>::new().range(min..=max)
}

/// A seed in decimal (`42`) or hex (`0xDEADBEEF`), `_` separators allowed, as scenario files
/// write them.
pub fn parse_seed(text: &str) -> Result<u64, String> {
    let t = text.trim().replace('_', "");
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    parsed.map_err(|_| format!("`{text}` is not a seed (a u64 in decimal, or hex as 0xDEADBEEF)"))
}

/// Creates directory `dir` if missing and checks that a file can be written in it, before a
/// run whose results go there.
pub fn check_out_dir(flag: &str, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{flag} {}: cannot create it: {e}", dir.display()))?;
    let probe = dir.join(format!(".locus-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| format!("{flag} {}: cannot write into it: {e}", dir.display()))
}

/// Checks that file `path` can be created (its directory exists and is writable; it is not a
/// directory) before a run whose result goes there. The file is created empty.
pub fn check_out_file(flag: &str, path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!("{flag} {}: is a directory, not a file", path.display()));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map(drop)
        .map_err(|e| format!("{flag} {}: cannot write it: {e}", path.display()))
}

/// Bytes of physical memory (`MemTotal`), `None` where it cannot be read.
pub fn machine_memory() -> Option<u64> {
    let text = locus::bounded_read::read_regular_text(Path::new("/proc/meminfo"), 1 << 20).ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line["MemTotal:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// Refuses a run whose flags ask for more memory (`bytes`, computed with saturating
/// arithmetic from them) than this machine has, before any of it is allocated.
pub fn check_fits_memory(flags: &str, bytes: u64) -> Result<(), String> {
    match machine_memory() {
        Some(total) if bytes > total => Err(format!(
            "{flags}: needs about {} MiB, more than this machine's {} MiB of memory",
            bytes >> 20,
            total >> 20
        )),
        _ => Ok(()),
    }
}

/// A number of seconds that is finite and in `0..=30 days`.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if v.is_finite() && (0.0..=30.0 * 86_400.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not a number of seconds in 0..=2592000 (30 days)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_in_decimal_and_hex() {
        assert_eq!(parse_seed("42"), Ok(42));
        assert_eq!(parse_seed("0xDEADBEEF"), Ok(0xDEAD_BEEF));
        assert_eq!(parse_seed("0xdead_beef"), Ok(0xDEAD_BEEF));
        assert!(parse_seed("0x").is_err());
        assert!(parse_seed("-1").is_err());
        assert!(parse_seed("0x1_0000_0000_0000_0000").is_err());
    }
}
