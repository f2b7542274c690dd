//! aarch64 kernels: NEON (Advanced SIMD), part of the aarch64 baseline.

pub(crate) mod neon;
