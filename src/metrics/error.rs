//! Errors of the metrics module.

/// What went wrong creating, merging or writing a metric.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricsError {
    /// A histogram's bounds or precision were refused (low bound 0, high bound below twice the
    /// low bound, or more than 5 significant digits). Use [`crate::metrics::LatencyHistogram::new`]'s
    /// defaults.
    #[error("invalid histogram bounds or precision: {detail}")]
    InvalidHistogram {
        /// What the histogram library said.
        detail: String,
    },
    /// Two histograms could not be merged (the other one holds values outside this one's
    /// range and this one cannot grow).
    #[error("cannot merge histograms: {detail}")]
    Merge {
        /// What the histogram library said.
        detail: String,
    },
    /// A metric or label name does not match Prometheus's `[a-zA-Z_:][a-zA-Z0-9_:]*`, or a
    /// label name is reserved (`__…`, `quantile` on a summary, `le` on a histogram) or given twice. Nothing was
    /// written; fix the name.
    #[error("invalid Prometheus name {name:?}")]
    InvalidName {
        /// The name given.
        name: String,
    },
}
