//! Nanosecond latency histograms (HDR).
//!
//! A [`LatencyHistogram`] wraps `hdrhistogram::Histogram<u64>` with fixed bounds — 1 ns to one
//! hour, three significant digits, so any recorded value is within 0.1% of the truth — and
//! saturating records (a value past an hour counts as an hour rather than failing on a hot path).
//! Memory is fixed at creation (33 792 counts of 8 bytes, about 264 KiB, for these bounds), so
//! recording never allocates.
//!
//! One histogram belongs to one recording thread; readers clone or [`merge`](LatencyHistogram::merge)
//! them. HDR merging is exact: the merged P99 is the P99 of all samples.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::error::MetricsError;

/// Highest trackable value: one hour in nanoseconds.
pub const MAX_NANOS: u64 = 3_600 * 1_000_000_000;
/// Significant decimal digits kept (0.1% relative error).
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// A histogram of values, usually nanoseconds (also used for unitless counts such as items per
/// batch).
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    inner: Histogram<u64>,
}

/// Quantiles read from a histogram: the summary that reports and Prometheus show.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Quantiles {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample (0 when empty).
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// Sum of samples (approximate: count × mean).
    pub sum: f64,
}

impl LatencyHistogram {
    /// A histogram from 1 to [`MAX_NANOS`] with [`SIGNIFICANT_DIGITS`].
    pub fn new() -> Self {
        // The bounds are constants that hdrhistogram accepts (low >= 1, high >= 2*low,
        // sigfig <= 5), checked by the `default_bounds_are_accepted` test.
        match Self::with_bounds(1, MAX_NANOS, SIGNIFICANT_DIGITS) {
            Ok(h) => h,
            Err(e) => unreachable!("constant histogram bounds refused: {e}"),
        }
    }

    /// A histogram with its own bounds.
    ///
    /// # Errors
    /// [`MetricsError::InvalidHistogram`] if `low` is 0, `high < 2 * low`, or `sigfig > 5`.
    pub fn with_bounds(low: u64, high: u64, sigfig: u8) -> Result<Self, MetricsError> {
        Histogram::new_with_bounds(low, high, sigfig)
            .map(|inner| Self { inner })
            .map_err(|e| MetricsError::InvalidHistogram {
                detail: format!("{e:?}"),
            })
    }

    /// Records one value, clamped into the histogram's range.
    #[inline]
    pub fn record(&mut self, value: u64) {
        self.inner.saturating_record(value.max(self.inner.low()));
    }

    /// Records `count` samples of one value.
    #[inline]
    pub fn record_n(&mut self, value: u64, count: u64) {
        self.inner.saturating_record_n(value.max(self.inner.low()), count);
    }

    /// Records a duration in nanoseconds.
    #[inline]
    pub fn record_duration(&mut self, d: Duration) {
        self.record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds every sample of `other` to this histogram.
    ///
    /// # Errors
    /// [`MetricsError::Merge`] if `other` holds values this histogram cannot track.
    pub fn merge(&mut self, other: &LatencyHistogram) -> Result<(), MetricsError> {
        self.inner.add(&other.inner).map_err(|e| MetricsError::Merge {
            detail: format!("{e:?}"),
        })
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    /// Whether no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The value at quantile `q` (0..=1); 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.inner.is_empty() {
            0
        } else {
            self.inner.value_at_quantile(q.clamp(0.0, 1.0))
        }
    }

    /// Forgets every sample.
    pub fn reset(&mut self) {
        self.inner.reset();
    }

    /// The summary: count, min, mean, P50/P90/P99/P99.9, max.
    pub fn quantiles(&self) -> Quantiles {
        if self.inner.is_empty() {
            return Quantiles::default();
        }
        let mean = self.inner.mean();
        Quantiles {
            count: self.inner.len(),
            min: self.inner.min(),
            mean,
            p50: self.quantile(0.5),
            p90: self.quantile(0.9),
            p99: self.quantile(0.99),
            p999: self.quantile(0.999),
            max: self.inner.max(),
            sum: mean * self.inner.len() as f64,
        }
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_bounds_are_accepted() {
        assert!(LatencyHistogram::with_bounds(1, MAX_NANOS, SIGNIFICANT_DIGITS).is_ok());
    }

    #[test]
    fn bad_bounds_are_a_typed_error() {
        assert!(matches!(
            LatencyHistogram::with_bounds(0, 10, 3),
            Err(MetricsError::InvalidHistogram { .. })
        ));
        assert!(LatencyHistogram::with_bounds(1, 1000, 9).is_err());
    }

    #[test]
    fn quantiles_are_within_precision() {
        let mut h = LatencyHistogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let q = h.quantiles();
        assert_eq!(q.count, 10_000);
        let within = |got: u64, want: u64| (got as f64 - want as f64).abs() / want as f64 <= 0.001;
        assert!(within(q.p50, 5_000_000), "p50 {}", q.p50);
        assert!(within(q.p99, 9_900_000), "p99 {}", q.p99);
        assert!(within(q.max, 10_000_000), "max {}", q.max);
        assert!(within(q.min, 1000));
    }

    #[test]
    fn merge_is_exact_and_out_of_range_saturates() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        a.record_n(100, 99);
        b.record(1_000_000);
        b.record(u64::MAX); // clamps to an hour
        b.record(0); // clamps to the low bound
        a.merge(&b).unwrap();
        assert_eq!(a.len(), 102);
        assert!(a.quantiles().max >= MAX_NANOS - MAX_NANOS / 1000);
        assert_eq!(a.quantiles().min, 1);
    }

    #[test]
    fn empty_histogram_summarises_to_zero() {
        let h = LatencyHistogram::new();
        assert_eq!(h.quantiles(), Quantiles::default());
        assert_eq!(h.quantile(0.99), 0);
    }
}
