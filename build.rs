//! Build script: turns on code that needs a newer compiler than the crate's minimum (1.85).
//!
//! - `locus_avx512`: the AVX-512 distance kernels (`src/index/distance/x86_64/avx512.rs`) use
//!   intrinsics stabilised in Rust 1.89; older compilers build without them (AVX2 and scalar
//!   kernels remain, and run-time dispatch simply never offers AVX-512).

fn main() {
    println!("cargo:rustc-check-cfg=cfg(locus_avx512)");
    autocfg::rerun_path("build.rs");
    if let Ok(ac) = autocfg::AutoCfg::new() {
        if ac.probe_rustc_version(1, 89) {
            println!("cargo:rustc-cfg=locus_avx512");
        }
    }
}
