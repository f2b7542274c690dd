//! [`SpreadParams`] and [`Decay`]: what a spread computes.

use std::time::Duration;

use serde::Serialize;

use super::error::SpreadError;

/// The most hops a spread may run.
pub const MAX_HOPS: u32 = 64;

/// How activation decays with the number of hops a walk has taken.
///
/// Each variant defines a cumulative factor `D(L)` for a walk of `L` edges (`D(0) = 1`); hop `h`
/// multiplies what flows by `d(h) = D(h) / D(h − 1)`, so a walk of length `L` contributes
/// `seed activation × Π edge weights × D(L)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Decay {
    /// `D(L) = factor^L` (graphpeers' `decay`, 0.5). `factor` finite and >= 0.
    Exponential {
        /// Kept per hop.
        factor: f64,
    },
    /// `D(L) = (1 + L)^−exponent`. `exponent` finite and >= 0.
    PowerLaw {
        /// The exponent.
        exponent: f64,
    },
    /// `D(L) = max(0, 1 − step·L)`. `step` finite and >= 0.
    Linear {
        /// Lost per hop.
        step: f64,
    },
    /// Per-hop factors `d(1), d(2), …` given directly (at least `max_hops` of them, each
    /// finite and >= 0).
    Table(Vec<f64>),
}

impl Default for Decay {
    fn default() -> Self {
        Decay::Exponential { factor: 0.5 }
    }
}

fn check(what: &str, v: f64) -> Result<f64, SpreadError> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(SpreadError::InvalidInput {
            what: format!("{what} must be finite and >= 0, got {v}"),
        })
    }
}

impl Decay {
    /// The per-hop factors `d(1..=max_hops)` (entries past `max_hops` are 0).
    ///
    /// # Errors
    /// [`SpreadError::InvalidInput`] for a NaN/negative/infinite parameter, a table shorter than
    /// `max_hops`, or `max_hops` past [`MAX_HOPS`].
    pub fn per_hop(&self, max_hops: u32) -> Result<[f64; MAX_HOPS as usize], SpreadError> {
        if max_hops > MAX_HOPS {
            return Err(SpreadError::InvalidInput {
                what: format!("max_hops {max_hops} > {MAX_HOPS}"),
            });
        }
        let mut out = [0.0; MAX_HOPS as usize];
        let cumulative = |l: u32| -> Result<f64, SpreadError> {
            Ok(match self {
                Decay::Exponential { factor } => check("decay factor", *factor)?.powi(l as i32),
                Decay::PowerLaw { exponent } => {
                    (1.0 + f64::from(l)).powf(-check("decay exponent", *exponent)?)
                }
                Decay::Linear { step } => (1.0 - check("decay step", *step)? * f64::from(l)).max(0.0),
                Decay::Table(_) => 0.0,
            })
        };
        for h in 1..=max_hops {
            out[h as usize - 1] = match self {
                Decay::Exponential { factor } => check("decay factor", *factor)?,
                Decay::Table(t) => {
                    let v = t.get(h as usize - 1).ok_or_else(|| SpreadError::InvalidInput {
                        what: format!("decay table has {} entries, max_hops is {max_hops}", t.len()),
                    })?;
                    check("decay table entry", *v)?
                }
                _ => {
                    let prev = cumulative(h - 1)?;
                    if prev > 0.0 { cumulative(h)? / prev } else { 0.0 }
                }
            };
        }
        Ok(out)
    }
}

/// What a spread computes. See `docs/spreading.md` for the semantics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpreadParams {
    /// Hops to run (1..=[`MAX_HOPS`]). Default 3.
    pub max_hops: u32,
    /// Decay per hop. Default exponential 0.5.
    pub decay: Decay,
    /// Propagation threshold: a node that received less than this in a hop does not propagate
    /// further (it still counts in the result). Default 0 (no pruning).
    pub threshold: f64,
    /// Result threshold: nodes whose total activation is below it are not reported. Default 0.
    pub result_threshold: f64,
    /// Fan-out cap `F`: a node passes activation along its `F` heaviest out-edges only (ties by
    /// target id). 0 = all edges. Default 0.
    pub fan_out: usize,
    /// Nodes to return (top-k by total activation, ties by id ascending). Default 10.
    pub k: usize,
    /// Whether seeds may appear in the result (their total then includes their initial
    /// activation). Default false.
    pub include_seeds: bool,
    /// Latency budget: before each hop the spread predicts the hop's cost and stops (result
    /// marked `partial`) if it would exceed what is left. `None`: no budget. Default `None`.
    pub budget: Option<Duration>,
}

impl Default for SpreadParams {
    fn default() -> Self {
        Self {
            max_hops: 3,
            decay: Decay::default(),
            threshold: 0.0,
            result_threshold: 0.0,
            fan_out: 0,
            k: 10,
            include_seeds: false,
            budget: None,
        }
    }
}

impl SpreadParams {
    /// Checks every parameter.
    ///
    /// # Errors
    /// [`SpreadError::InvalidInput`] for `max_hops = 0` or past [`MAX_HOPS`], `k = 0`, a NaN or
    /// negative threshold, or a bad decay.
    pub fn validate(&self) -> Result<(), SpreadError> {
        self.per_hop().map(|_| ())
    }

    /// Validates and returns the per-hop decay factors.
    pub(crate) fn per_hop(&self) -> Result<[f64; MAX_HOPS as usize], SpreadError> {
        if self.max_hops == 0 {
            return Err(SpreadError::InvalidInput {
                what: "max_hops must be >= 1".into(),
            });
        }
        if self.k == 0 {
            return Err(SpreadError::InvalidInput {
                what: "k must be >= 1".into(),
            });
        }
        check("threshold", self.threshold)?;
        check("result_threshold", self.result_threshold)?;
        self.decay.per_hop(self.max_hops)
    }
}
