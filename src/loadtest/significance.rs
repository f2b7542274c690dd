//! The regression gate's statistics: a one-sided Mann–Whitney U test (is the later sample
//! stochastically larger?) and a seeded bootstrap confidence interval of the effect, the ratio
//! of the two samples' medians.
//!
//! The samples are the P99s of whole seconds (of one run, or of every run of a
//! `locus loadtest --repeat N`): one op's latency is not independent of its neighbours' (a stall
//! delays every op queued behind it), but one second's P99 is a fair unit of evidence, and a
//! second's P99 is what a service's dashboard shows.

use statrs::distribution::{ContinuousCDF, Normal};

use crate::rng::SplitMix64;

/// Significance level of the gate: a rise is a regression only with p below it.
pub const ALPHA: f64 = 0.01;

/// Fewest samples per side for the test; with fewer the gate falls back to fixed limits.
pub const MIN_SAMPLES: usize = 8;

/// Confidence level of the effect's interval.
pub const CI_LEVEL: f64 = 0.99;

/// Bootstrap resamples of the effect's interval.
pub const RESAMPLES: usize = 2000;

/// A one-sided Mann–Whitney U test of "after is stochastically larger than before".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UTest {
    /// U of the later sample (the number of (before, after) pairs where after is larger, ties
    /// counting one half).
    pub u: f64,
    /// The normal approximation's z (tie-corrected, with continuity correction).
    pub z: f64,
    /// The one-sided p-value.
    pub p: f64,
    /// Sample sizes (before, after).
    pub n: (usize, usize),
}

/// Runs the test. Both samples must be non-empty (the gate checks [`MIN_SAMPLES`] first); NaNs
/// rank as the largest values.
pub fn mann_whitney_greater(before: &[f64], after: &[f64]) -> UTest {
    let (n1, n2) = (before.len(), after.len());
    let mut all: Vec<(f64, bool)> = before
        .iter()
        .map(|&x| (x, false))
        .chain(after.iter().map(|&x| (x, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let mut rank_sum_after = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && all[j].0.total_cmp(&all[i].0).is_eq() {
            j += 1;
        }
        // Ranks i+1 ..= j share their mean.
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum_after += mean_rank * all[i..j].iter().filter(|x| x.1).count() as f64;
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    let (f1, f2, nf) = (n1 as f64, n2 as f64, n as f64);
    let u = rank_sum_after - f2 * (f2 + 1.0) / 2.0;
    let mean = f1 * f2 / 2.0;
    let var = if n > 1 {
        f1 * f2 / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)))
    } else {
        0.0
    };
    if var <= 0.0 {
        return UTest {
            u,
            z: 0.0,
            p: 1.0,
            n: (n1, n2),
        };
    }
    let z = (u - mean - 0.5) / var.sqrt();
    // The standard normal's parameters are constants it accepts.
    let p = Normal::new(0.0, 1.0).map_or(1.0, |d| d.sf(z));
    UTest { u, z, p, n: (n1, n2) }
}

/// The effect: after's median over before's, with its bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effect {
    /// median(after) / median(before).
    pub ratio: f64,
    /// Lower end of the [`CI_LEVEL`] interval.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else if a > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

/// The ratio of medians and its percentile-bootstrap interval at [`CI_LEVEL`] ([`RESAMPLES`]
/// resamples of each side, seeded: the same inputs give the same interval).
pub fn median_ratio(before: &[f64], after: &[f64], seed: u64) -> Effect {
    let point = ratio(median(&mut after.to_vec()), median(&mut before.to_vec()));
    if before.is_empty() || after.is_empty() {
        return Effect {
            ratio: point,
            low: point,
            high: point,
        };
    }
    let mut rng = SplitMix64::new(seed);
    let mut draw = |src: &[f64], buf: &mut Vec<f64>| {
        buf.clear();
        buf.extend((0..src.len()).map(|_| src[rng.below(src.len() as u64) as usize]));
        median(buf)
    };
    let (mut bb, mut ab) = (Vec::new(), Vec::new());
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let b = draw(before, &mut bb);
            let a = draw(after, &mut ab);
            ratio(a, b)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - CI_LEVEL) / 2.0;
    let at = |q: f64| ratios[((q * RESAMPLES as f64) as usize).min(RESAMPLES - 1)];
    Effect {
        ratio: point,
        low: at(tail),
        high: at(1.0 - tail),
    }
}

/// The gate's verdict on one op's samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    /// The U test.
    pub test: UTest,
    /// The effect and its interval.
    pub effect: Effect,
    /// Whether it is a regression: p < [`ALPHA`] and the whole interval above `1 + min_rise`.
    pub regression: bool,
}

/// Judges whether `after` is worse than `before`: significantly larger (p < [`ALPHA`]) by
/// more than `min_rise` (0.05 = 5 %) with [`CI_LEVEL`] confidence.
pub fn judge(before: &[f64], after: &[f64], min_rise: f64, seed: u64) -> Judgement {
    let test = mann_whitney_greater(before, after);
    let effect = median_ratio(before, after, seed);
    Judgement {
        test,
        effect,
        regression: test.p < ALPHA && effect.low > 1.0 + min_rise,
    }
}

/// One-sided two-proportion z test of "the later rate is higher": `k` events of `n` before and
/// after. Returns the p-value (1 when the rates are equal or both zero).
pub fn rate_rise_p(k_before: u64, n_before: u64, k_after: u64, n_after: u64) -> f64 {
    if n_before == 0 || n_after == 0 {
        return 1.0;
    }
    let (p1, p2) = (k_before as f64 / n_before as f64, k_after as f64 / n_after as f64);
    let pooled = (k_before + k_after) as f64 / (n_before + n_after) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n_before as f64 + 1.0 / n_after as f64)).sqrt();
    if se <= 0.0 {
        return 1.0;
    }
    Normal::new(0.0, 1.0).map_or(1.0, |d| d.sf((p2 - p1) / se))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u_counts_pairs_and_ties() {
        // after = {3, 4} over before = {1, 2, 3}: pairs after > before: 3>1,3>2, 4>1,4>2,4>3 = 5,
        // plus the tie 3 = 3 counting 0.5.
        let t = mann_whitney_greater(&[1.0, 2.0, 3.0], &[3.0, 4.0]);
        assert_eq!(t.u, 5.5);
        assert_eq!(t.n, (3, 2));
        let same = mann_whitney_greater(&[2.0; 10], &[2.0; 10]);
        assert_eq!(same.p, 1.0);
    }

    #[test]
    fn separated_samples_are_significant_and_the_ratio_brackets_the_shift() {
        let before: Vec<f64> = (0..20).map(|i| 100.0 + i as f64).collect();
        let after: Vec<f64> = before.iter().map(|x| x * 1.5).collect();
        let j = judge(&before, &after, 0.05, 1);
        assert!(j.test.p < 1e-6, "{j:?}");
        assert!(j.regression);
        assert!(j.effect.low <= 1.5 && 1.5 <= j.effect.high, "{j:?}");
        // The other way round is no regression: the test is one-sided.
        assert!(!judge(&after, &before, 0.05, 1).regression);
    }

    #[test]
    fn a_rate_rise_needs_evidence() {
        assert!(rate_rise_p(0, 10_000, 1, 10_000) > 0.1);
        assert!(rate_rise_p(10, 10_000, 100, 10_000) < 1e-6);
        assert_eq!(rate_rise_p(0, 100, 0, 100), 1.0);
    }
}
