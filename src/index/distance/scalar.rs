//! Portable scalar kernels: the reference every SIMD kernel is tested against, and the fallback
//! on CPUs without a SIMD set. Four independent accumulators let the compiler overlap the
//! additions (and auto-vectorise where the baseline ISA allows).

/// Inner product `a·b` over the common prefix of `a` and `b`.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}

/// Squared Euclidean distance over the common prefix of `a` and `b`.
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..4 {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        let d = x - y;
        s += d * d;
    }
    s
}

/// Cosine distance `1 − a·b/(|a||b|)`; 1 if either vector is zero.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (mut ab, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a[..n].iter().zip(&b[..n]) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    cosine_from_parts(ab, aa, bb)
}

/// `1 − ab/√(aa·bb)`, or 1 when a norm is zero (shared by every backend).
///
/// Computed in f64: `aa·bb` overflows f32 as soon as the norms' product passes ~1.8e19 (each
/// `aa` near 1e19 is still finite), and the cosine would silently become 0 (distance 1).
#[inline(always)]
pub(crate) fn cosine_from_parts(ab: f32, aa: f32, bb: f32) -> f32 {
    let denom = (f64::from(aa) * f64::from(bb)).sqrt();
    if denom > 0.0 {
        (1.0 - f64::from(ab) / denom) as f32
    } else {
        1.0
    }
}

/// Inner product of two i8 vectors in i32, over the common prefix.
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum()
}
