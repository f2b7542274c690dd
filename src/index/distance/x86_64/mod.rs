//! x86_64 kernels: AVX2+FMA (Haswell/Zen and later) and AVX-512 F+BW (Skylake-SP, Zen 4).

pub(crate) mod avx2;
pub(crate) mod avx512;
