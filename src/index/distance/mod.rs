//! Distance kernels with run-time CPU dispatch.
//!
//! Three metrics ([`Metric`]) are built from three primitive kernels: the f32 dot product, the
//! squared L2 distance, and the cosine distance, plus the i8 dot product used by the quantized
//! first pass. Each kernel exists as a portable scalar reference ([`scalar`], always built) and as
//! SIMD versions per ISA: AVX2+FMA and AVX-512 (F+BW) on x86_64, NEON on aarch64.
//!
//! The best set this CPU can run is chosen **once**, on first use of [`Kernels::detect`], and
//! cached; an index copies the chosen [`Kernels`] (a handful of function pointers) at creation,
//! so each distance costs one indirect call and no feature check. A `Kernels` value holding SIMD
//! pointers can only be obtained from a constructor that first verified the CPU features; that
//! is the invariant that makes the safe wrappers around the `#[target_feature]` functions sound.
//!
//! Set `LOCUS_SIMD=scalar|avx2|avx512|neon` to force a set (for benchmarks and tests); a set the
//! CPU cannot run is refused with [`IndexError::Unsupported`] by [`Kernels::try_detect`] (and so
//! by `HnswIndex::new` and `HnswIndex::load`), never silently replaced.

pub mod scalar;

#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(target_arch = "aarch64")]
mod aarch64;

mod prefetch;

use std::sync::OnceLock;

pub use prefetch::prefetch_lines;

use super::IndexError;

/// How closeness is measured. Every metric is turned into a *distance*: smaller is closer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Metric {
    /// Squared Euclidean distance `Σ (aᵢ − bᵢ)²`.
    L2,
    /// Inner product; the distance is `1 − a·b` (the convention of hnswlib), so for unit
    /// vectors it equals the cosine distance.
    InnerProduct,
    /// Cosine distance `1 − a·b / (|a| |b|)`. An index of this metric normalises vectors on
    /// insert and then uses the inner product.
    Cosine,
}

impl Metric {
    /// The on-disk code of the metric (snapshot format).
    pub(crate) fn code(self) -> u8 {
        match self {
            Metric::L2 => 0,
            Metric::InnerProduct => 1,
            Metric::Cosine => 2,
        }
    }

    /// The metric of an on-disk code.
    pub(crate) fn from_code(code: u8) -> Option<Metric> {
        match code {
            0 => Some(Metric::L2),
            1 => Some(Metric::InnerProduct),
            2 => Some(Metric::Cosine),
            _ => None,
        }
    }
}

/// A set of distance kernels for one instruction set.
///
/// Obtain one from [`Kernels::detect`] (the best for this CPU), [`Kernels::scalar`], or
/// [`Kernels::by_name`]. Slices passed to the kernels should have equal lengths; if they do
/// not, only the common prefix is used (never an out-of-bounds read).
#[derive(Clone, Copy)]
pub struct Kernels {
    name: &'static str,
    dot: fn(&[f32], &[f32]) -> f32,
    l2_squared: fn(&[f32], &[f32]) -> f32,
    cosine_distance: fn(&[f32], &[f32]) -> f32,
    dot_i8: fn(&[i8], &[i8]) -> i32,
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernels").field("name", &self.name).finish()
    }
}

/// The outcome of the first detection: the set, or the refused `LOCUS_SIMD` name and the sets
/// that were available (kept as text: `IndexError` is not `Clone`).
static DETECTED: OnceLock<Result<Kernels, (String, String)>> = OnceLock::new();

/// The environment variable that forces a kernel set.
pub const SIMD_ENV: &str = "LOCUS_SIMD";

impl Kernels {
    /// The best kernels this CPU runs, or those named by `LOCUS_SIMD`, detected on the first
    /// call and cached for the life of the process. [`HnswIndex::new`](crate::index::HnswIndex::new)
    /// and [`HnswIndex::load`](crate::index::HnswIndex::load) use this.
    ///
    /// # Errors
    /// [`IndexError::Unsupported`] if `LOCUS_SIMD` names a set this CPU cannot run (or no set at
    /// all): unset the variable or name one of the sets listed in the error.
    pub fn try_detect() -> Result<&'static Kernels, IndexError> {
        DETECTED
            .get_or_init(|| match std::env::var(SIMD_ENV) {
                Ok(name) => Kernels::by_name(&name).map_err(|e| match e {
                    IndexError::Unsupported { name, available } => (name, available),
                    other => (name, other.to_string()),
                }),
                // `available` lists the best first and always ends with the scalar set.
                Err(_) => Ok(Kernels::available()
                    .into_iter()
                    .next()
                    .unwrap_or_else(Kernels::scalar)),
            })
            .as_ref()
            .map_err(|(name, available)| IndexError::Unsupported {
                name: name.clone(),
                available: available.clone(),
            })
    }

    /// Like [`Kernels::try_detect`], for callers that cannot handle an error: when `LOCUS_SIMD`
    /// names a set this CPU cannot run, this returns the scalar set (the one set every CPU
    /// runs), never the refused one; [`Kernels::try_detect`] reports the refusal.
    pub fn detect() -> &'static Kernels {
        static FALLBACK: OnceLock<Kernels> = OnceLock::new();
        Kernels::try_detect().unwrap_or_else(|_| FALLBACK.get_or_init(Kernels::scalar))
    }

    /// The portable scalar reference kernels.
    pub fn scalar() -> Kernels {
        Kernels {
            name: "scalar",
            dot: scalar::dot,
            l2_squared: scalar::l2_squared,
            cosine_distance: scalar::cosine_distance,
            dot_i8: scalar::dot_i8,
        }
    }

    /// Every kernel set this CPU can run, best first; the last one is always `scalar`.
    pub fn available() -> Vec<Kernels> {
        let mut sets = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            #[cfg(locus_avx512)]
            sets.extend(x86_64::avx512::kernels());
            sets.extend(x86_64::avx2::kernels());
        }
        #[cfg(target_arch = "aarch64")]
        sets.extend(aarch64::neon::kernels());
        sets.push(Kernels::scalar());
        sets
    }

    /// The kernel set called `name` (`scalar`, `avx2`, `avx512`, `neon`).
    ///
    /// # Errors
    /// [`IndexError::Unsupported`] if this CPU cannot run that set (or no set has that name).
    pub fn by_name(name: &str) -> Result<Kernels, IndexError> {
        let all = Kernels::available();
        all.iter()
            .find(|k| k.name == name)
            .copied()
            .ok_or_else(|| IndexError::Unsupported {
                name: name.to_string(),
                available: all.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
            })
    }

    /// The name of this set (`scalar`, `avx2`, `avx512`, `neon`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Inner product `a·b`.
    #[inline(always)]
    pub fn dot(&self, a: &[f32], b: &[f32]) -> f32 {
        (self.dot)(a, b)
    }

    /// Squared Euclidean distance.
    #[inline(always)]
    pub fn l2_squared(&self, a: &[f32], b: &[f32]) -> f32 {
        (self.l2_squared)(a, b)
    }

    /// Cosine distance `1 − a·b/(|a||b|)`; 1 if either vector is zero.
    #[inline(always)]
    pub fn cosine_distance(&self, a: &[f32], b: &[f32]) -> f32 {
        (self.cosine_distance)(a, b)
    }

    /// Inner product of two i8 vectors, exact in i32 (for lengths below 2¹⁷).
    #[inline(always)]
    pub fn dot_i8(&self, a: &[i8], b: &[i8]) -> i32 {
        (self.dot_i8)(a, b)
    }

    /// The distance of `metric` between `a` and `b` (smaller is closer).
    #[inline(always)]
    pub fn distance(&self, metric: Metric, a: &[f32], b: &[f32]) -> f32 {
        match metric {
            Metric::L2 => self.l2_squared(a, b),
            Metric::InnerProduct => 1.0 - self.dot(a, b),
            Metric::Cosine => self.cosine_distance(a, b),
        }
    }
}

#[cfg(test)]
mod tests;
