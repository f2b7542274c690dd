//! Sequential vs random reads of the same cache lines.
//!
//! The buffer is an array of 64-byte lines; line `i` holds the index of the next line of a
//! single random cycle through all lines (Sattolo's algorithm). [`MemoryWalk::random`] follows
//! that cycle, so every read depends on the previous one and the prefetcher cannot guess the
//! next address; [`MemoryWalk::sequential`] reads the same lines in address order. With a buffer
//! well beyond the last-level cache, the random walk misses the LLC on nearly every line and the
//! sequential walk rarely does — a contrast any working counter setup must show.

use crate::rng::SplitMix64;

/// One cache line of the walk.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line {
    next: u64,
    _fill: [u64; 7],
}

/// Buffer size when the topology reports no LLC: 64 MiB, above the L3 of most single-socket
/// parts (a guess, stated as such in the output).
pub const FALLBACK_BUFFER_BYTES: u64 = 64 << 20;

/// How the buffer size was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeSource {
    /// Four times the LLC size the topology reports.
    FourTimesLlc,
    /// [`FALLBACK_BUFFER_BYTES`]: the topology reported no LLC.
    Fallback,
    /// Given by the caller.
    Explicit,
}

/// The buffer size for an LLC of `llc_bytes` (4×, so neither walk can stay cached), or the
/// fallback.
pub fn buffer_bytes_for(llc_bytes: Option<u64>) -> (u64, SizeSource) {
    match llc_bytes {
        Some(b) if b > 0 => (b.saturating_mul(4), SizeSource::FourTimesLlc),
        _ => (FALLBACK_BUFFER_BYTES, SizeSource::Fallback),
    }
}

/// The walk's buffer.
pub struct MemoryWalk {
    lines: Vec<Line>,
}

impl MemoryWalk {
    /// A buffer of `bytes` (rounded down to whole lines, at least 2) with its random cycle.
    pub fn new(bytes: u64, seed: u64) -> Self {
        let n = usize::try_from(bytes / 64).unwrap_or(usize::MAX).max(2);
        let mut order: Vec<u64> = (0..n as u64).collect();
        let mut rng = SplitMix64::new(seed);
        // Sattolo: a uniformly random single cycle.
        for i in (1..n).rev() {
            let j = rng.below(i as u64) as usize;
            order.swap(i, j);
        }
        let mut lines = vec![
            Line {
                next: 0,
                _fill: [0; 7]
            };
            n
        ];
        for i in 0..n {
            lines[order[i] as usize].next = order[(i + 1) % n];
        }
        Self { lines }
    }

    /// Number of cache lines.
    pub fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        (self.lines.len() * 64) as u64
    }

    /// Reads every line once in address order; returns a checksum.
    #[inline(never)]
    pub fn sequential(&self) -> u64 {
        self.lines
            .iter()
            .fold(0u64, |acc, l| acc.wrapping_add(std::hint::black_box(l.next)))
    }

    /// Reads every line once along the random cycle; returns the index it ends on (the start,
    /// 0, after a full cycle).
    #[inline(never)]
    pub fn random(&self) -> u64 {
        let mut at = 0u64;
        for _ in 0..self.lines.len() {
            at = self.lines[at as usize].next;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_walk_is_one_cycle_through_every_line() {
        let w = MemoryWalk::new(64 * 1000, 7);
        let mut seen = vec![false; w.line_count()];
        let mut at = 0usize;
        for _ in 0..w.line_count() {
            assert!(!seen[at], "line {at} visited twice");
            seen[at] = true;
            at = w.lines[at].next as usize;
        }
        assert_eq!(at, 0);
        assert!(seen.iter().all(|&s| s));
        assert_eq!(w.random(), 0);
        let n = w.line_count() as u64;
        assert_eq!(w.sequential(), n * (n - 1) / 2, "sum of all successors");
    }

    #[test]
    fn sizes() {
        assert_eq!(
            buffer_bytes_for(Some(32 << 20)),
            (128 << 20, SizeSource::FourTimesLlc)
        );
        assert_eq!(
            buffer_bytes_for(None),
            (FALLBACK_BUFFER_BYTES, SizeSource::Fallback)
        );
        assert_eq!(buffer_bytes_for(Some(0)).1, SizeSource::Fallback);
        assert_eq!(MemoryWalk::new(10, 1).line_count(), 2);
    }
}
