//! A small seeded pseudo-random generator (SplitMix64; Steele, Lea & Flood, "Fast splittable
//! pseudorandom number generators", 2014): deterministic per seed, one `u64` of state, no
//! dependency. Used where runs must repeat exactly (the HNSW level draw, counter workloads,
//! kernel tests). Not for cryptography.

/// SplitMix64 state.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator started at `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound > 0`); the modulo bias is irrelevant for workloads.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// A uniform draw in the open interval (0, 1).
    pub(crate) fn next_open01(&mut self) -> f64 {
        // 53 random bits, shifted by half a step so 0 is never returned.
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// A deterministic vector of `dim` values in [-0.5, 0.5) for `seed` (xorshift64), shared by the
/// unit tests that need repeatable embeddings.
#[cfg(test)]
pub(crate) fn test_vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dim)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}
