//! Shared helpers of the index tests: seeded clustered data and exact search.

#![allow(dead_code)]

/// SplitMix64: a tiny seeded generator for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// A standard normal draw (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let (u1, u2) = (self.uniform(), self.uniform());
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}

pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// `n` unit vectors of `dim` around `clusters` random unit centres (noise of norm ≈ `noise`),
/// the shape of the peer benchmark's data. Returned concatenated.
pub fn clustered(seed: u64, n: usize, dim: usize, clusters: usize, noise: f32) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut centres = vec![0f32; clusters * dim];
    for c in centres.chunks_exact_mut(dim) {
        c.iter_mut().for_each(|x| *x = rng.normal());
        normalize(c);
    }
    let mut out = vec![0f32; n * dim];
    let sigma = noise / (dim as f32).sqrt();
    for v in out.chunks_exact_mut(dim) {
        let c = (rng.next_u64() % clusters as u64) as usize;
        let spread = sigma * (0.5 + rng.uniform() as f32);
        for (x, &m) in v.iter_mut().zip(&centres[c * dim..(c + 1) * dim]) {
            *x = m + spread * rng.normal();
        }
        normalize(v);
    }
    out
}

/// Exact top-k ids by inner product (largest first).
pub fn exact_ip_topk(base: &[f32], dim: usize, query: &[f32], k: usize) -> Vec<u32> {
    let mut scored: Vec<(f32, u32)> = base
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| (v.iter().zip(query).map(|(a, b)| a * b).sum::<f32>(), i as u32))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.truncate(k);
    scored.into_iter().map(|(_, i)| i).collect()
}

/// Exact top-k ids by squared L2 (smallest first).
pub fn exact_l2_topk(base: &[f32], dim: usize, query: &[f32], k: usize) -> Vec<u32> {
    let mut scored: Vec<(f32, u32)> = base
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| {
            (
                v.iter().zip(query).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(),
                i as u32,
            )
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    scored.truncate(k);
    scored.into_iter().map(|(_, i)| i).collect()
}

pub fn recall(found: &[u32], truth: &[u32]) -> f64 {
    found.iter().filter(|id| truth.contains(id)).count() as f64 / truth.len() as f64
}
