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

/// `x` (finite, >= 0) in fixed point; negative or NaN give 0, huge values saturate.
#[inline]
pub fn to_fixed(x: f64) -> Fixed {
    // `as` saturates (and maps NaN to 0).
    (x * SCALE) as u128
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
    }
}
