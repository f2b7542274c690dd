//! AVX2+FMA kernels: 8 f32 lanes, four accumulators (32 floats per iteration) to hide the FMA
//! latency; i8 products widened to i16 and summed pairwise with `vpmaddwd`.

use std::arch::x86_64::*;

use super::super::Kernels;
use super::super::scalar::cosine_from_parts;

/// The AVX2+FMA set, if this CPU has both features.
pub(crate) fn kernels() -> Option<Kernels> {
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Some(Kernels {
            name: "avx2",
            dot,
            l2_squared,
            cosine_distance,
            dot_i8,
        })
    } else {
        None
    }
}

// The safe wrappers below are only reachable through the `Kernels` value built by `kernels()`,
// which exists only after AVX2 and FMA were detected: that is the invariant every SAFETY
// comment here relies on.

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    // SAFETY: AVX2+FMA are present (see above); both pointers are valid for `n` reads.
    unsafe { dot_impl(a.as_ptr(), b.as_ptr(), n) }
}

fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    // SAFETY: as for `dot`.
    unsafe { l2_impl(a.as_ptr(), b.as_ptr(), n) }
}

fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    // SAFETY: as for `dot`.
    unsafe { cosine_impl(a.as_ptr(), b.as_ptr(), n) }
}

fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    // SAFETY: as for `dot`.
    unsafe { dot_i8_impl(a.as_ptr(), b.as_ptr(), n) }
}

#[target_feature(enable = "avx2,fma")]
fn hsum_ps(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps::<1>(v);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

#[target_feature(enable = "avx2,fma")]
fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// # Safety
/// AVX2 and FMA must be available; `a` and `b` must be valid for `n` f32 reads.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_impl(a: *const f32, b: *const f32, n: usize) -> f32 {
    // SAFETY: every load reads lanes i..i+8 (or i..i+32) with i+8 ≤ n (or i+32 ≤ n), and the
    // scalar tail reads i < n: all inside the caller's valid range.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (l, a_l) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(a.add(i + 8 * l));
                let y = _mm256_loadu_ps(b.add(i + 8 * l));
                *a_l = _mm256_fmadd_ps(x, y, *a_l);
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(i)), _mm256_loadu_ps(b.add(i)), acc[0]);
            i += 8;
        }
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut s = hsum_ps(v);
        while i < n {
            s += *a.add(i) * *b.add(i);
            i += 1;
        }
        s
    }
}

/// # Safety
/// As for [`dot_impl`].
#[target_feature(enable = "avx2,fma")]
unsafe fn l2_impl(a: *const f32, b: *const f32, n: usize) -> f32 {
    // SAFETY: same bounds as `dot_impl`.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (l, a_l) in acc.iter_mut().enumerate() {
                let d = _mm256_sub_ps(
                    _mm256_loadu_ps(a.add(i + 8 * l)),
                    _mm256_loadu_ps(b.add(i + 8 * l)),
                );
                *a_l = _mm256_fmadd_ps(d, d, *a_l);
            }
            i += 32;
        }
        while i + 8 <= n {
            let d = _mm256_sub_ps(_mm256_loadu_ps(a.add(i)), _mm256_loadu_ps(b.add(i)));
            acc[0] = _mm256_fmadd_ps(d, d, acc[0]);
            i += 8;
        }
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut s = hsum_ps(v);
        while i < n {
            let d = *a.add(i) - *b.add(i);
            s += d * d;
            i += 1;
        }
        s
    }
}

/// # Safety
/// As for [`dot_impl`].
#[target_feature(enable = "avx2,fma")]
unsafe fn cosine_impl(a: *const f32, b: *const f32, n: usize) -> f32 {
    // SAFETY: same bounds as `dot_impl`.
    unsafe {
        let (mut ab, mut aa, mut bb) = (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 8 <= n {
            let x = _mm256_loadu_ps(a.add(i));
            let y = _mm256_loadu_ps(b.add(i));
            ab = _mm256_fmadd_ps(x, y, ab);
            aa = _mm256_fmadd_ps(x, x, aa);
            bb = _mm256_fmadd_ps(y, y, bb);
            i += 8;
        }
        let (mut sab, mut saa, mut sbb) = (hsum_ps(ab), hsum_ps(aa), hsum_ps(bb));
        while i < n {
            let (x, y) = (*a.add(i), *b.add(i));
            sab += x * y;
            saa += x * x;
            sbb += y * y;
            i += 1;
        }
        cosine_from_parts(sab, saa, sbb)
    }
}

/// # Safety
/// AVX2 must be available; `a` and `b` must be valid for `n` i8 reads.
///
/// `vpmaddubsw` multiplies unsigned by signed bytes, so `a·b` is computed as `|a| · (b·sign a)`
/// (`vpsignb`). Pairs are summed in i16 with saturation, exact as long as no product pair
/// exceeds 32 767, and `b·sign a` is exact unless `b` holds -128. The index quantises to
/// [-127, 127]; a block holding -128 in either vector takes the exact widening path instead,
/// so the result is exact for every input.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_i8_impl(a: *const i8, b: *const i8, n: usize) -> i32 {
    // SAFETY: 32-byte loads at i with i+32 ≤ n; the scalar tail reads i < n.
    unsafe {
        let ones = _mm256_set1_epi16(1);
        let min = _mm256_set1_epi8(i8::MIN);
        let (mut acc0, mut acc1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        let mut i = 0;
        while i + 32 <= n {
            let x = _mm256_loadu_si256(a.add(i).cast());
            let y = _mm256_loadu_si256(b.add(i).cast());
            if _mm256_movemask_epi8(_mm256_or_si256(
                _mm256_cmpeq_epi8(x, min),
                _mm256_cmpeq_epi8(y, min),
            )) == 0
            {
                let prod = _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(y, x));
                acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(prod, ones));
            } else {
                let xl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(x));
                let yl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(y));
                let xh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(x));
                let yh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(y));
                acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(xl, yl));
                acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(xh, yh));
            }
            i += 32;
        }
        let mut s = hsum_epi32(_mm256_add_epi32(acc0, acc1));
        while i < n {
            s += i32::from(*a.add(i)) * i32::from(*b.add(i));
            i += 1;
        }
        s
    }
}
