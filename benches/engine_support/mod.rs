//! What the engine benches share: seeded embeddings, so every run sees the same data.

/// A seeded pseudo-random embedding of `dim` floats in [-0.5, 0.5) (xorshift64).
pub fn vector(seed: u64, dim: usize) -> Vec<f32> {
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
