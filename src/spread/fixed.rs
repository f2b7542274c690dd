//! Fixed-point activation: why a spread gives the same bits on any number of workers.
//!
//! Activation is summed as unsigned 64.64 fixed point (`u128`, 2⁻⁶⁴ resolution, range 2⁶⁴).
//! Integer addition is associative and commutative, so per-node sums do not depend on the order
//! contributions arrive in (which shard, which worker, which batch); with saturation at
//! `u128::MAX` (never reached by finite activations) it stays so. Each contribution is computed
//! from the same inputs in the same way wherever it is computed (one function, `contribution`), so a spread
//! split over shards and workers produces exactly the sums of a single-threaded one.

/// 2⁶⁴ as f64.
const SCALE: f64 = 18_446_744_073_709_551_616.0;

/// An activation in 64.64 fixed point (see the module docs).
pub type Fixed = u128;

/// `x` (finite, >= 0) in fixed point, truncated; negative or NaN give 0, huge values saturate
/// (exactly what `(x * 2⁶⁴) as u128` gives, without the compiler's slow generic conversion: this
/// runs once per edge).
#[inline]
pub fn to_fixed(x: f64) -> Fixed {
    let bits = x.to_bits();
    if x.is_nan() || bits >> 63 == 1 {
        return 0;
    }
    // x · 2⁶⁴ = mantissa · 2^(exponent − 1075 + 64).
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormals are below 2⁻¹⁰²², far under the 2⁻⁶⁴ resolution.
        return 0;
    }
    let mantissa = u128::from((bits & ((1u64 << 52) - 1)) | (1u64 << 52));
    let shift = exp - 1075 + 64;
    if shift > 75 {
        u128::MAX // mantissa < 2⁵³, so up to a shift of 75 it fits; past that, saturate (also +∞).
    } else if shift >= 0 {
        mantissa << shift
    } else if shift > -53 {
        mantissa >> (-shift)
    } else {
        0
    }
}

/// A fixed-point activation as f64 (rounded to 53 bits).
#[inline]
pub fn from_fixed(a: Fixed) -> f64 {
    a as f64 / SCALE
}

/// What a node holding `activation` passes along an edge of `weight` in a hop with decay factor
/// `factor`. The one place contributions are computed.
#[inline]
pub(crate) fn contribution(scaled: f64, weight: f32) -> Fixed {
    to_fixed(scaled * f64::from(weight))
}

/// `activation × factor` as f64, computed once per node and hop.
#[inline]
pub(crate) fn scaled(activation: Fixed, factor: f64) -> f64 {
    from_fixed(activation) * factor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_saturates() {
        for x in [0.0, 1.0, 0.5, 1e-12, 12345.678] {
            let back = from_fixed(to_fixed(x));
            assert!((back - x).abs() <= x * 1e-15 + 1e-19, "{x} -> {back}");
        }
        assert_eq!(to_fixed(f64::NAN), 0);
        assert_eq!(to_fixed(-1.0), 0);
        assert_eq!(to_fixed(1e30), u128::MAX);
        assert_eq!(to_fixed(f64::INFINITY), u128::MAX);
        // Agrees with the generic conversion everywhere it is defined.
        let mut x = 1e-25f64;
        while x < 1e25 {
            for y in [x, x * 1.000_000_1, x * 0.999_999_9] {
                assert_eq!(to_fixed(y), (y * SCALE) as u128, "{y}");
            }
            x *= 1.37;
        }
        for y in [
            0.0,
            1.0,
            0.5,
            2f64.powi(63),
            2f64.powi(64),
            2f64.powi(-64),
            2f64.powi(-65),
        ] {
            assert_eq!(to_fixed(y), (y * SCALE) as u128, "{y}");
        }
    }
}
