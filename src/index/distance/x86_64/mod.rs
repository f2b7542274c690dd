//! x86_64 kernels: AVX2+FMA (Haswell/Zen and later) and AVX-512 F+BW (Skylake-SP, Zen 4).

pub(crate) mod avx2;
// Needs Rust 1.89 (AVX-512 intrinsics); `build.rs` sets `locus_avx512` when the compiler has it.
#[cfg(locus_avx512)]
#[clippy::msrv = "1.89"]
pub(crate) mod avx512;
