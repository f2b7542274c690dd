//! NEON kernels: 4 f32 lanes, four accumulators (16 floats per iteration); i8 products widened
//! with `smull`/`smull2` and accumulated pairwise into i32 with `sadalp`.

use std::arch::aarch64::*;

use super::super::Kernels;
use super::super::scalar::cosine_from_parts;

/// The NEON set, if this CPU has NEON (every aarch64 Linux CPU does; checked anyway).
pub(crate) fn kernels() -> Option<Kernels> {
    if std::arch::is_aarch64_feature_detected!("neon") {
        Some(Kernels {
            name: "neon",
            dot,
            l2_squared,
            cosine_distance,
            dot_i8,
        })
    } else {
        None
    }
}

// The safe wrappers are only reachable through the `Kernels` value built by `kernels()`, which
// exists only after NEON was detected: the invariant every SAFETY comment here relies on.

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    // SAFETY: NEON is present; both pointers are valid for `n` reads.
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

/// # Safety
/// NEON must be available; `a` and `b` must be valid for `n` f32 reads.
#[target_feature(enable = "neon")]
unsafe fn dot_impl(a: *const f32, b: *const f32, n: usize) -> f32 {
    // SAFETY: 4-lane loads at i with i+4 ≤ n (i+16 ≤ n in the main loop); tail reads i < n.
    unsafe {
        let mut acc = [vdupq_n_f32(0.0); 4];
        let mut i = 0;
        while i + 16 <= n {
            for (l, a_l) in acc.iter_mut().enumerate() {
                *a_l = vfmaq_f32(*a_l, vld1q_f32(a.add(i + 4 * l)), vld1q_f32(b.add(i + 4 * l)));
            }
            i += 16;
        }
        while i + 4 <= n {
            acc[0] = vfmaq_f32(acc[0], vld1q_f32(a.add(i)), vld1q_f32(b.add(i)));
            i += 4;
        }
        let mut s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
        while i < n {
            s += *a.add(i) * *b.add(i);
            i += 1;
        }
        s
    }
}

/// # Safety
/// As for [`dot_impl`].
#[target_feature(enable = "neon")]
unsafe fn l2_impl(a: *const f32, b: *const f32, n: usize) -> f32 {
    // SAFETY: same bounds as `dot_impl`.
    unsafe {
        let mut acc = [vdupq_n_f32(0.0); 4];
        let mut i = 0;
        while i + 16 <= n {
            for (l, a_l) in acc.iter_mut().enumerate() {
                let d = vsubq_f32(vld1q_f32(a.add(i + 4 * l)), vld1q_f32(b.add(i + 4 * l)));
                *a_l = vfmaq_f32(*a_l, d, d);
            }
            i += 16;
        }
        while i + 4 <= n {
            let d = vsubq_f32(vld1q_f32(a.add(i)), vld1q_f32(b.add(i)));
            acc[0] = vfmaq_f32(acc[0], d, d);
            i += 4;
        }
        let mut s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
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
#[target_feature(enable = "neon")]
unsafe fn cosine_impl(a: *const f32, b: *const f32, n: usize) -> f32 {
    // SAFETY: same bounds as `dot_impl`.
    unsafe {
        let (mut ab, mut aa, mut bb) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        let mut i = 0;
        while i + 4 <= n {
            let x = vld1q_f32(a.add(i));
            let y = vld1q_f32(b.add(i));
            ab = vfmaq_f32(ab, x, y);
            aa = vfmaq_f32(aa, x, x);
            bb = vfmaq_f32(bb, y, y);
            i += 4;
        }
        let (mut sab, mut saa, mut sbb) = (vaddvq_f32(ab), vaddvq_f32(aa), vaddvq_f32(bb));
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
/// NEON must be available; `a` and `b` must be valid for `n` i8 reads.
#[target_feature(enable = "neon")]
unsafe fn dot_i8_impl(a: *const i8, b: *const i8, n: usize) -> i32 {
    // SAFETY: 16-byte loads at i with i+16 ≤ n; tail reads i < n.
    unsafe {
        let mut acc = vdupq_n_s32(0);
        let mut i = 0;
        while i + 16 <= n {
            let x = vld1q_s8(a.add(i));
            let y = vld1q_s8(b.add(i));
            acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(x), vget_low_s8(y)));
            acc = vpadalq_s16(acc, vmull_high_s8(x, y));
            i += 16;
        }
        let mut s = vaddvq_s32(acc);
        while i < n {
            s += i32::from(*a.add(i)) * i32::from(*b.add(i));
            i += 1;
        }
        s
    }
}
