//! AVX-512 (F+BW) kernels: 16 f32 lanes, four accumulators (64 floats per iteration) and a
//! masked load for the tail, so no scalar loop; i8 products widened to i16 (`vpmovsxbw`) and
//! summed pairwise with `vpmaddwd`.

use std::arch::x86_64::*;

use super::super::Kernels;
use super::super::scalar::cosine_from_parts;

/// The AVX-512 set, if this CPU has AVX-512 F and BW.
pub(crate) fn kernels() -> Option<Kernels> {
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
        Some(Kernels {
            name: "avx512",
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
// which exists only after AVX-512 F and BW were detected: the invariant every SAFETY comment
// here relies on.

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    // SAFETY: AVX-512 F+BW are present (see above); both pointers are valid for `n` reads.
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

/// The mask selecting the first `rem` (< 16) lanes.
#[inline(always)]
fn tail_mask(rem: usize) -> __mmask16 {
    ((1u32 << rem) - 1) as __mmask16
}

/// # Safety
/// AVX-512 F must be available; `a` and `b` must be valid for `n` f32 reads.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn dot_impl(a: *const f32, b: *const f32, n: usize) -> f32 {
    // SAFETY: full loads read i..i+16 with i+16 ≤ n; the masked tail load reads only the
    // lanes i..n selected by the mask (masked-off lanes are not accessed and cannot fault).
    unsafe {
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        while i + 64 <= n {
            for (l, a_l) in acc.iter_mut().enumerate() {
                let x = _mm512_loadu_ps(a.add(i + 16 * l));
                let y = _mm512_loadu_ps(b.add(i + 16 * l));
                *a_l = _mm512_fmadd_ps(x, y, *a_l);
            }
            i += 64;
        }
        while i + 16 <= n {
            acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(a.add(i)), _mm512_loadu_ps(b.add(i)), acc[0]);
            i += 16;
        }
        if i < n {
            let m = tail_mask(n - i);
            let x = _mm512_maskz_loadu_ps(m, a.add(i));
            let y = _mm512_maskz_loadu_ps(m, b.add(i));
            acc[1] = _mm512_fmadd_ps(x, y, acc[1]);
        }
        _mm512_reduce_add_ps(_mm512_add_ps(
            _mm512_add_ps(acc[0], acc[1]),
            _mm512_add_ps(acc[2], acc[3]),
        ))
    }
}

/// # Safety
/// As for [`dot_impl`].
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn l2_impl(a: *const f32, b: *const f32, n: usize) -> f32 {
    // SAFETY: same bounds as `dot_impl`.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        while i + 64 <= n {
            for (l, a_l) in acc.iter_mut().enumerate() {
                let d = _mm512_sub_ps(
                    _mm512_loadu_ps(a.add(i + 16 * l)),
                    _mm512_loadu_ps(b.add(i + 16 * l)),
                );
                *a_l = _mm512_fmadd_ps(d, d, *a_l);
            }
            i += 64;
        }
        while i + 16 <= n {
            let d = _mm512_sub_ps(_mm512_loadu_ps(a.add(i)), _mm512_loadu_ps(b.add(i)));
            acc[0] = _mm512_fmadd_ps(d, d, acc[0]);
            i += 16;
        }
        if i < n {
            let m = tail_mask(n - i);
            let d = _mm512_sub_ps(
                _mm512_maskz_loadu_ps(m, a.add(i)),
                _mm512_maskz_loadu_ps(m, b.add(i)),
            );
            acc[1] = _mm512_fmadd_ps(d, d, acc[1]);
        }
        _mm512_reduce_add_ps(_mm512_add_ps(
            _mm512_add_ps(acc[0], acc[1]),
            _mm512_add_ps(acc[2], acc[3]),
        ))
    }
}

/// # Safety
/// As for [`dot_impl`].
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn cosine_impl(a: *const f32, b: *const f32, n: usize) -> f32 {
    // SAFETY: same bounds as `dot_impl`.
    unsafe {
        let (mut ab, mut aa, mut bb) = (_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps());
        let mut i = 0;
        while i < n {
            let m = if i + 16 <= n { 0xffff } else { tail_mask(n - i) };
            let x = _mm512_maskz_loadu_ps(m, a.add(i));
            let y = _mm512_maskz_loadu_ps(m, b.add(i));
            ab = _mm512_fmadd_ps(x, y, ab);
            aa = _mm512_fmadd_ps(x, x, aa);
            bb = _mm512_fmadd_ps(y, y, bb);
            i += 16;
        }
        cosine_from_parts(
            _mm512_reduce_add_ps(ab),
            _mm512_reduce_add_ps(aa),
            _mm512_reduce_add_ps(bb),
        )
    }
}

/// # Safety
/// AVX-512 F+BW must be available; `a` and `b` must be valid for `n` i8 reads.
///
/// As in the AVX2 kernel, `a·b = |a| · (b·sign a)` through `vpmaddubsw` (sign applied by a
/// masked negation, AVX-512 has no `vpsignb`); 64-byte blocks holding -128 in either vector take the
/// exact widening path. The tail (< 64 bytes) uses one 512-bit masked load (BW, not VL) and
/// the widening path.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn dot_i8_impl(a: *const i8, b: *const i8, n: usize) -> i32 {
    // SAFETY: every instruction below is AVX-512 F or BW (no VL form: the tail uses a 512-bit
    // masked load), both detected by `kernels()`. Full loads read i..i+64 with i+64 ≤ n; the
    // masked tail load reads only the bytes i..n selected by its mask (n − i < 64), and masked-off
    // bytes are not accessed and cannot fault.
    unsafe {
        let ones = _mm512_set1_epi16(1);
        let zero = _mm512_setzero_si512();
        let min = _mm512_set1_epi8(i8::MIN);
        let (mut acc0, mut acc1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
        let mut i = 0;
        while i + 64 <= n {
            let x = _mm512_loadu_si512(a.add(i).cast());
            let y = _mm512_loadu_si512(b.add(i).cast());
            if _mm512_cmpeq_epi8_mask(x, min) | _mm512_cmpeq_epi8_mask(y, min) == 0 {
                let negative = _mm512_movepi8_mask(x);
                let y_signed = _mm512_mask_sub_epi8(y, negative, zero, y);
                let prod = _mm512_maddubs_epi16(_mm512_abs_epi8(x), y_signed);
                acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(prod, ones));
            } else {
                acc1 = _mm512_add_epi32(
                    acc1,
                    widened_dot(_mm512_castsi512_si256(x), _mm512_castsi512_si256(y)),
                );
                let (xh, yh) = (
                    _mm512_extracti64x4_epi64::<1>(x),
                    _mm512_extracti64x4_epi64::<1>(y),
                );
                acc1 = _mm512_add_epi32(acc1, widened_dot(xh, yh));
            }
            i += 64;
        }
        if i < n {
            // One 512-bit masked load (AVX-512 BW: `vmovdqu8 zmm{k}{z}`) of the last < 64
            // bytes, then the exact widening path on its two 256-bit halves. A 256-bit masked
            // load would need AVX-512 VL, which `kernels()` does not check.
            let m: __mmask64 = (1u64 << (n - i)) - 1;
            let x = _mm512_maskz_loadu_epi8(m, a.add(i));
            let y = _mm512_maskz_loadu_epi8(m, b.add(i));
            acc1 = _mm512_add_epi32(
                acc1,
                widened_dot(_mm512_castsi512_si256(x), _mm512_castsi512_si256(y)),
            );
            let (xh, yh) = (
                _mm512_extracti64x4_epi64::<1>(x),
                _mm512_extracti64x4_epi64::<1>(y),
            );
            acc1 = _mm512_add_epi32(acc1, widened_dot(xh, yh));
        }
        _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1))
    }
}

/// Σ x·y over 32 i8 lanes, widened to i16 (exact for every input), as 16 i32 partial sums.
#[target_feature(enable = "avx512f,avx512bw")]
fn widened_dot(x: __m256i, y: __m256i) -> __m512i {
    _mm512_madd_epi16(_mm512_cvtepi8_epi16(x), _mm512_cvtepi8_epi16(y))
}
