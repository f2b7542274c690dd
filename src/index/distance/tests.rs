//! Every kernel set this CPU runs, checked against the scalar reference on shared seeds: random
//! inputs of every length around the lane widths, zeros, large magnitudes, and i8 extremes.

use super::{Kernels, scalar};
use crate::rng::SplitMix64;

/// Lengths around every lane width and unroll factor (4, 8, 16, 32, 64) plus real dimensions.
const LENGTHS: &[usize] = &[
    0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 127, 128, 129, 768, 1000,
];

fn random_vec(rng: &mut SplitMix64, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| (rng.next_open01() as f32 * 2.0 - 1.0) * scale)
        .collect()
}

fn random_i8(rng: &mut SplitMix64, n: usize) -> Vec<i8> {
    (0..n).map(|_| (rng.next_u64() % 256) as u8 as i8).collect()
}

fn close(got: f32, want: f32, magnitude: f32) -> bool {
    (got - want).abs() <= 1e-5 * magnitude + 1e-6
}

fn check_f32(k: &Kernels, a: &[f32], b: &[f32]) {
    let mag_dot: f32 = a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum();
    let mag_l2: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let (got, want) = (k.dot(a, b), scalar::dot(a, b));
    assert!(
        close(got, want, mag_dot),
        "{} dot n={}: {got} vs {want}",
        k.name(),
        a.len()
    );
    let (got, want) = (k.l2_squared(a, b), scalar::l2_squared(a, b));
    assert!(
        close(got, want, mag_l2),
        "{} l2 n={}: {got} vs {want}",
        k.name(),
        a.len()
    );
    let (got, want) = (k.cosine_distance(a, b), scalar::cosine_distance(a, b));
    assert!(
        (got - want).abs() <= 1e-4,
        "{} cosine n={}: {got} vs {want}",
        k.name(),
        a.len()
    );
}

#[test]
fn detect_picks_an_available_set() {
    let names: Vec<_> = Kernels::available().iter().map(|k| k.name()).collect();
    assert!(names.contains(&Kernels::detect().name()));
    assert_eq!(names.last(), Some(&"scalar"));
    println!(
        "kernel sets on this CPU: {names:?}; detected: {}",
        Kernels::detect().name()
    );
}

/// Names every SIMD set this build has and says which ones this CPU cannot run (their tests
/// above are then skipped, and this test prints why).
#[test]
fn every_built_set_is_offered_exactly_when_the_cpu_has_its_features() {
    if cfg!(target_arch = "x86_64") && !cfg!(locus_avx512) {
        println!("skipped: avx512 kernels not built (compiler older than Rust 1.89, see build.rs)");
    }
    // The CPU's features from a source independent of the dispatcher's: the kernel's
    // /proc/cpuinfo flags (x86_64 Linux). Elsewhere only "the set is offered or refused with a
    // typed error" is checked.
    let flags: Option<Vec<String>> = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|text| {
        text.lines()
            .find(|l| l.starts_with("flags"))
            .and_then(|l| l.split(':').nth(1))
            .map(|f| f.split_whitespace().map(str::to_owned).collect())
    });
    let has = |f: &str| flags.as_ref().map(|v| v.iter().any(|x| x == f));
    let built: &[(&str, &[&str])] = if cfg!(all(target_arch = "x86_64", locus_avx512)) {
        &[("avx512", &["avx512f", "avx512bw"]), ("avx2", &["avx2", "fma"])]
    } else if cfg!(target_arch = "x86_64") {
        &[("avx2", &["avx2", "fma"])]
    } else if cfg!(target_arch = "aarch64") {
        &[("neon", &[])]
    } else {
        &[]
    };
    for (name, needs) in built {
        let offered = Kernels::by_name(name);
        let expected: Option<bool> = if cfg!(target_arch = "x86_64") {
            needs
                .iter()
                .map(|f| has(f))
                .collect::<Option<Vec<bool>>>()
                .map(|v| v.iter().all(|&b| b))
        } else {
            None
        };
        match (expected, &offered) {
            (Some(true), Ok(_)) => println!("{name}: offered, and checked against scalar above"),
            (Some(false), Err(crate::index::IndexError::Unsupported { .. })) => {
                println!("skipped: {name} kernels not tested: this CPU lacks {needs:?}")
            }
            (Some(want), got) => panic!(
                "{name}: /proc/cpuinfo says the CPU {} {needs:?}, but the dispatcher answered {got:?}",
                if want { "has" } else { "lacks" }
            ),
            (None, Ok(_)) => println!("{name}: offered"),
            (None, Err(crate::index::IndexError::Unsupported { .. })) => {
                println!("skipped: {name} not offered")
            }
            (None, Err(e)) => panic!("{name}: refused with an unexpected error: {e}"),
        }
    }
}

#[test]
fn unknown_or_unavailable_set_is_refused() {
    assert!(matches!(
        Kernels::by_name("sse9"),
        Err(crate::index::IndexError::Unsupported { .. })
    ));
    assert_eq!(Kernels::by_name("scalar").map(|k| k.name()).ok(), Some("scalar"));
}

#[test]
fn simd_sets_equal_scalar_on_random_inputs() {
    for k in Kernels::available() {
        let mut rng = SplitMix64::new(7);
        for &n in LENGTHS {
            for _ in 0..4 {
                let a = random_vec(&mut rng, n, 1.0);
                let b = random_vec(&mut rng, n, 1.0);
                check_f32(&k, &a, &b);
            }
        }
    }
}

#[test]
fn simd_sets_equal_scalar_on_edge_cases() {
    for k in Kernels::available() {
        let mut rng = SplitMix64::new(11);
        for &n in LENGTHS {
            let zeros = vec![0.0f32; n];
            let x = random_vec(&mut rng, n, 1.0);
            check_f32(&k, &zeros, &zeros);
            check_f32(&k, &zeros, &x);
            assert_eq!(
                k.cosine_distance(&zeros, &x),
                1.0,
                "{}: cosine with a zero vector",
                k.name()
            );
            // Large magnitudes: products near 1e30, sums still below f32::MAX.
            let big_a = random_vec(&mut rng, n, 1e15);
            let big_b = random_vec(&mut rng, n, 1e15);
            check_f32(&k, &big_a, &big_b);
            // Tiny magnitudes (subnormal products).
            let tiny = random_vec(&mut rng, n, 1e-20);
            check_f32(&k, &tiny, &x);
        }
        // Unequal lengths: only the common prefix is used.
        let a = random_vec(&mut rng, 37, 1.0);
        let b = random_vec(&mut rng, 20, 1.0);
        assert!(close(k.dot(&a, &b), scalar::dot(&a[..20], &b), 20.0));
    }
}

#[test]
fn simd_i8_dot_equals_scalar_exactly() {
    for k in Kernels::available() {
        let mut rng = SplitMix64::new(13);
        for &n in LENGTHS {
            let a = random_i8(&mut rng, n);
            let b = random_i8(&mut rng, n);
            assert_eq!(
                k.dot_i8(&a, &b),
                scalar::dot_i8(&a, &b),
                "{} dot_i8 n={n}",
                k.name()
            );
            let lo = vec![i8::MIN; n];
            let hi = vec![i8::MAX; n];
            assert_eq!(k.dot_i8(&lo, &lo), 16384 * n as i32, "{} i8 MIN² n={n}", k.name());
            assert_eq!(
                k.dot_i8(&lo, &hi),
                -16256 * n as i32,
                "{} i8 MIN·MAX n={n}",
                k.name()
            );
        }
    }
}

/// Every i8 tail length (0..64 bytes after whole 64-byte blocks) on every set: the AVX-512 tail
/// is one 512-bit masked load split into halves, so each length exercises a different mask.
#[test]
fn simd_i8_dot_every_tail_length() {
    for k in Kernels::available() {
        let mut rng = SplitMix64::new(17);
        for n in 0..=200 {
            let a = random_i8(&mut rng, n);
            let b = random_i8(&mut rng, n);
            assert_eq!(
                k.dot_i8(&a, &b),
                scalar::dot_i8(&a, &b),
                "{} dot_i8 n={n}",
                k.name()
            );
        }
    }
}

/// Large norms: `|a|²·|b|²` overflows f32 (here ~1e70) while each squared norm (~1e35) does not.
/// The cosine of parallel vectors must still be 0, of opposite ones 2, of orthogonal ones 1.
#[test]
fn cosine_of_large_norm_vectors_is_exact_on_every_set() {
    for k in Kernels::available() {
        let mut rng = SplitMix64::new(19);
        for &n in &[1usize, 3, 16, 17, 64, 100, 768] {
            let a = random_vec(&mut rng, n, 1e17);
            let half: Vec<f32> = a.iter().map(|x| x * 0.5).collect();
            let neg: Vec<f32> = a.iter().map(|x| -x).collect();
            let d = k.cosine_distance(&a, &half);
            assert!(
                d.abs() < 1e-3,
                "{} n={n}: cos(a, a/2) distance {d}, want 0",
                k.name()
            );
            let d = k.cosine_distance(&a, &neg);
            assert!(
                (d - 2.0).abs() < 1e-3,
                "{} n={n}: cos(a, −a) distance {d}, want 2",
                k.name()
            );
            if n >= 2 {
                let mut x = vec![0.0f32; n];
                let mut y = vec![0.0f32; n];
                x[0] = 3e18;
                y[1] = 3e18;
                let d = k.cosine_distance(&x, &y);
                assert!(
                    (d - 1.0).abs() < 1e-6,
                    "{} n={n}: orthogonal distance {d}",
                    k.name()
                );
            }
        }
    }
}
