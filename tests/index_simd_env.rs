//! `LOCUS_SIMD` dispatch, one child process per setting (the detected set is cached for the life
//! of a process, and the variable is process state): every set this CPU runs is honoured by
//! `HnswIndex::new`, and a set it cannot run (or no set of that name) is refused with
//! `IndexError::Unsupported` instead of being silently replaced.

use std::process::Command;

use locus::index::{HnswConfig, HnswIndex, IndexError, Kernels, Metric};

/// Set in the child runs: what the child expects (`ok:<name>` or `unsupported`).
const EXPECT: &str = "LOCUS_TEST_SIMD_EXPECT";

/// Runs `child_checks_its_kernels` in a child process with `LOCUS_SIMD=simd`.
fn run_child(simd: &str, expect: &str) {
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args([
            "--exact",
            "child_checks_its_kernels",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LOCUS_SIMD", simd)
        .env(EXPECT, expect)
        .output()
        .expect("spawn the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "LOCUS_SIMD={simd}: child failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "LOCUS_SIMD={simd}: child did not run:\n{text}"
    );
}

/// The child: does what the parent told it to expect.
#[test]
fn child_checks_its_kernels() {
    let Ok(expect) = std::env::var(EXPECT) else {
        return; // Only meaningful in a child started by the tests below.
    };
    let config = HnswConfig::new(8, 16, Metric::L2);
    match expect.strip_prefix("ok:") {
        Some(name) => {
            let index = HnswIndex::new(config).expect("a runnable set is accepted");
            assert_eq!(index.kernel_name(), name);
            assert_eq!(Kernels::try_detect().map(|k| k.name()).ok(), Some(name));
            let a = index.insert(&[1.0; 8]).unwrap();
            index.insert(&[-1.0; 8]).unwrap();
            assert_eq!(index.search(&[0.9; 8], 1, 8).unwrap()[0].id, a);
        }
        None => {
            let err = HnswIndex::new(config).expect_err("an unrunnable set must be refused");
            assert!(matches!(err, IndexError::Unsupported { .. }), "{err}");
            assert!(matches!(
                Kernels::try_detect(),
                Err(IndexError::Unsupported { .. })
            ));
            // The infallible `detect` never hands out the refused set.
            assert_eq!(Kernels::detect().name(), "scalar");
        }
    }
}

#[test]
fn every_runnable_set_is_honoured() {
    for k in Kernels::available() {
        run_child(k.name(), &format!("ok:{}", k.name()));
    }
}

#[test]
fn a_set_this_cpu_cannot_run_is_refused() {
    run_child("sse9", "unsupported");
    for name in ["scalar", "avx2", "avx512", "neon"] {
        if Kernels::by_name(name).is_err() {
            run_child(name, "unsupported");
        }
    }
}
