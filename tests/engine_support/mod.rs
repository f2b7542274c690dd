//! Shared helpers of the engine tests: seeded vectors and a brute-force oracle.

#![allow(dead_code)]

use locus::engine::{AdmissionLimits, AssociationParams, Engine, EngineBuilder, IndexParams};

/// A seeded generator (xorshift64*), so every test run sees the same data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.unit()).collect()
    }
}

pub fn normalized(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (a, b) = (normalized(a), normalized(b));
    a.iter().zip(&b).map(|(x, y)| x * y).sum()
}

/// Ids of the `k` most similar of `data` (`(id, vector)`), ties by id.
pub fn brute_force(data: &[(u64, Vec<f32>)], q: &[f32], k: usize) -> Vec<u64> {
    let mut s: Vec<(u64, f32)> = data.iter().map(|(id, v)| (*id, cosine(q, v))).collect();
    s.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    s.into_iter().take(k).map(|x| x.0).collect()
}

/// A small engine for tests: small segments, an exact-enough search, no pinning requirement.
pub fn small(dim: usize) -> EngineBuilder {
    Engine::builder()
        .dimension(dim)
        .index(IndexParams {
            segment_capacity: 512,
            ef_search: 256,
            ef_construction: 100,
            ..IndexParams::default()
        })
        .associations(AssociationParams {
            similar: 0,
            max_episodes_per_shard: 1 << 16,
            ..AssociationParams::default()
        })
        .admission(AdmissionLimits {
            max_unindexed: 100_000,
            // Debug builds of many tests share two cores: a shard may take long to answer, and
            // these tests check answers, not latency.
            recall_deadline: std::time::Duration::from_secs(60),
            observe_deadline: std::time::Duration::from_secs(60),
            ..AdmissionLimits::default()
        })
}

/// An engine of 64 dimensions for the emulated multi-node machine (`tests/numa_engine*.rs`):
/// small segments, no `similar` associations, and deadlines long enough for software emulation
/// (these tests check answers and placement, not latency).
pub fn emulated() -> EngineBuilder {
    Engine::builder()
        .dimension(64)
        .index(IndexParams {
            segment_capacity: 2048,
            ef_construction: 40,
            ..IndexParams::default()
        })
        .associations(AssociationParams {
            similar: 0,
            max_episodes_per_shard: 1 << 16,
            ..AssociationParams::default()
        })
        .admission(AdmissionLimits {
            recall_deadline: std::time::Duration::from_secs(300),
            observe_deadline: std::time::Duration::from_secs(300),
            ..AdmissionLimits::default()
        })
}
