//! Prometheus text exposition (format 0.0.4).
//!
//! [`PrometheusWriter`] appends metric families to a `String`: one `# HELP` and one `# TYPE`
//! line per family, then one sample line per label set. HDR histograms are written as a `summary`
//! (quantiles 0.5, 0.9, 0.99, 0.999 plus `_sum` and `_count`): they have no fixed buckets to
//! expose, and a summary is what their quantiles are; counts kept in fixed buckets are written as
//! a `histogram` ([`PrometheusWriter::histogram`]). A family may be declared before its samples
//! ([`PrometheusWriter::family`]) so that it is typed even while it has none. Names are checked against
//! Prometheus's grammar before anything is written, so a refused sample leaves no partial text;
//! label values are escaped (`\\`, `\"`, `\n`).

use std::fmt::Write as _;

use super::error::MetricsError;
use super::histogram::Quantiles;

/// Builds a Prometheus text exposition.
#[derive(Debug, Default, Clone)]
pub struct PrometheusWriter {
    out: String,
    last_family: Option<String>,
}

/// The kind of a metric family (its `# TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A count that only grows.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Quantiles plus `_sum` and `_count`.
    Summary,
    /// Cumulative counts in fixed buckets (`_bucket{le=…}`) plus `_sum` and `_count`.
    Histogram,
}

impl MetricKind {
    fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Summary => "summary",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// A sample's value: counts are written exactly, measurements as floats.
#[derive(Debug, Clone, Copy)]
enum Value {
    Count(u64),
    Float(f64),
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

impl PrometheusWriter {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks a family's name and its label names before anything is written, so a refused
    /// sample leaves no header and no half line behind. `reserved` is a label the writer adds
    /// itself (`quantile` for summaries), which the caller may not give.
    fn validate(name: &str, labels: &[(&str, &str)], reserved: Option<&str>) -> Result<(), MetricsError> {
        if !valid_name(name) {
            return Err(MetricsError::InvalidName { name: name.into() });
        }
        for (i, &(k, _)) in labels.iter().enumerate() {
            let duplicate = labels[..i].iter().any(|&(earlier, _)| earlier == k);
            if !valid_name(k) || k.starts_with("__") || duplicate || reserved == Some(k) {
                return Err(MetricsError::InvalidName { name: k.into() });
            }
        }
        Ok(())
    }

    /// Writes the `# HELP` / `# TYPE` lines when `name` starts a new family. The name was
    /// validated.
    fn header(&mut self, name: &str, help: &str, kind: MetricKind) {
        if self.last_family.as_deref() != Some(name) {
            let help = help.replace('\\', "\\\\").replace('\n', "\\n");
            // Writing to a String cannot fail.
            let _ = writeln!(self.out, "# HELP {name} {help}");
            let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
            self.last_family = Some(name.into());
        }
    }

    /// Writes one sample line. The name and labels were validated.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], extra: Option<(&str, &str)>, value: Value) {
        self.out.push_str(name);
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(extra) {
            self.out.push(if first { '{' } else { ',' });
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_label_value(v, &mut self.out);
            self.out.push('"');
        }
        if !first {
            self.out.push('}');
        }
        match value {
            Value::Count(n) => {
                let _ = writeln!(self.out, " {n}");
            }
            Value::Float(v) if v.is_nan() => self.out.push_str(" NaN\n"),
            Value::Float(v) if v.is_infinite() => {
                self.out.push_str(if v > 0.0 { " +Inf\n" } else { " -Inf\n" });
            }
            Value::Float(v) => {
                let _ = writeln!(self.out, " {v}");
            }
        }
    }

    /// Declares a family: writes its `# HELP` / `# TYPE` lines now (unless it is the family
    /// being written), so that it is typed in the exposition even if no sample follows. Its
    /// samples must come next.
    ///
    /// # Errors
    /// [`MetricsError::InvalidName`] for a bad metric name; nothing is written then.
    pub fn family(&mut self, name: &str, help: &str, kind: MetricKind) -> Result<(), MetricsError> {
        Self::validate(name, &[], None)?;
        self.header(name, help, kind);
        Ok(())
    }

    /// Writes one sample of a counter family. Samples of one family must be written together.
    ///
    /// # Errors
    /// [`MetricsError::InvalidName`] for a bad metric or label name, a label given twice or
    /// one starting with `__`; nothing is written then.
    pub fn counter(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: u64,
    ) -> Result<(), MetricsError> {
        Self::validate(name, labels, None)?;
        self.header(name, help, MetricKind::Counter);
        self.sample(name, labels, None, Value::Count(value));
        Ok(())
    }

    /// Writes one sample of a gauge family.
    ///
    /// # Errors
    /// [`MetricsError::InvalidName`] for a bad metric or label name, a label given twice or
    /// one starting with `__`; nothing is written then.
    pub fn gauge(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) -> Result<(), MetricsError> {
        Self::validate(name, labels, None)?;
        self.header(name, help, MetricKind::Gauge);
        self.sample(name, labels, None, Value::Float(value));
        Ok(())
    }

    /// Writes a histogram's quantiles as one summary, scaled by `scale` (e.g. `1e-9` to turn
    /// nanoseconds into the seconds Prometheus expects).
    ///
    /// # Errors
    /// [`MetricsError::InvalidName`] for a bad metric or label name, a label given twice or
    /// one starting with `__`, or a `quantile` label (the summary writes its own); nothing is
    /// written then.
    pub fn summary(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        q: &Quantiles,
        scale: f64,
    ) -> Result<(), MetricsError> {
        Self::validate(name, labels, Some("quantile"))?;
        self.header(name, help, MetricKind::Summary);
        for (label, v) in [("0.5", q.p50), ("0.9", q.p90), ("0.99", q.p99), ("0.999", q.p999)] {
            self.sample(
                name,
                labels,
                Some(("quantile", label)),
                Value::Float(v as f64 * scale),
            );
        }
        self.sample(&format!("{name}_sum"), labels, None, Value::Float(q.sum * scale));
        self.sample(&format!("{name}_count"), labels, None, Value::Count(q.count));
        Ok(())
    }

    /// Writes one histogram of fixed buckets: `buckets` are (upper bound, cumulative count)
    /// pairs in rising order, without the `+Inf` bucket, which the writer adds with `count`;
    /// then `_sum` and `_count`.
    ///
    /// # Errors
    /// [`MetricsError::InvalidName`] for a bad metric or label name, a label given twice or
    /// one starting with `__`, or an `le` label (the histogram writes its own); nothing is
    /// written then.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        buckets: impl IntoIterator<Item = (f64, u64)>,
        sum: f64,
        count: u64,
    ) -> Result<(), MetricsError> {
        Self::validate(name, labels, Some("le"))?;
        self.header(name, help, MetricKind::Histogram);
        let bucket = format!("{name}_bucket");
        for (le, c) in buckets {
            self.sample(&bucket, labels, Some(("le", &le.to_string())), Value::Count(c));
        }
        self.sample(&bucket, labels, Some(("le", "+Inf")), Value::Count(count));
        self.sample(&format!("{name}_sum"), labels, None, Value::Float(sum));
        self.sample(&format!("{name}_count"), labels, None, Value::Count(count));
        Ok(())
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        &self.out
    }

    /// The finished exposition.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::LatencyHistogram;

    #[test]
    fn writes_families_with_one_header_each() {
        let mut w = PrometheusWriter::new();
        w.counter("locus_items_total", "Items run.", &[("node", "0")], 5)
            .unwrap();
        w.counter("locus_items_total", "Items run.", &[("node", "1")], 7)
            .unwrap();
        w.gauge("locus_depth", "Queue depth.", &[], 2.5).unwrap();
        let text = w.finish();
        assert_eq!(
            text,
            "# HELP locus_items_total Items run.\n# TYPE locus_items_total counter\n\
             locus_items_total{node=\"0\"} 5\nlocus_items_total{node=\"1\"} 7\n\
             # HELP locus_depth Queue depth.\n# TYPE locus_depth gauge\nlocus_depth 2.5\n"
        );
    }

    #[test]
    fn summary_has_quantiles_sum_and_count() {
        let mut h = LatencyHistogram::new();
        for v in 1..=100 {
            h.record(v * 1_000_000);
        }
        let mut w = PrometheusWriter::new();
        w.summary(
            "locus_wait_seconds",
            "Wait.",
            &[("class", "high")],
            &h.quantiles(),
            1e-9,
        )
        .unwrap();
        let text = w.finish();
        assert!(text.contains("# TYPE locus_wait_seconds summary\n"));
        assert!(text.contains("locus_wait_seconds{class=\"high\",quantile=\"0.99\"} 0.099"));
        assert!(text.contains("locus_wait_seconds_count{class=\"high\"} 100\n"));
        assert!(text.contains("locus_wait_seconds_sum{class=\"high\"} "));
    }

    #[test]
    fn a_refused_sample_writes_nothing() {
        type Write = fn(&mut PrometheusWriter) -> Result<(), MetricsError>;
        let mut w = PrometheusWriter::new();
        w.counter("locus_ok_total", "Ok.", &[("node", "0")], 1).unwrap();
        let before = w.as_str().to_owned();
        let refused: [(&str, Write); 7] = [
            ("bad label on a new family", |w| {
                w.counter("locus_new_total", "New.", &[("bad-label", "v")], 1)
            }),
            ("reserved label after a good one", |w| {
                w.counter("locus_ok_total", "Ok.", &[("node", "1"), ("__r", "v")], 1)
            }),
            ("label starting with a digit", |w| {
                w.gauge("locus_g", "G.", &[("ok", "v"), ("9", "v")], 1.0)
            }),
            ("bad metric name", |w| w.gauge("locus-g", "G.", &[], 1.0)),
            ("label given twice", |w| {
                w.gauge("locus_g", "G.", &[("a", "1"), ("a", "2")], 1.0)
            }),
            ("bad label on a summary", |w| {
                let q = LatencyHistogram::new().quantiles();
                w.summary("locus_s", "S.", &[("bad label", "v")], &q, 1.0)
            }),
            ("summary label clashing with `quantile`", |w| {
                let q = LatencyHistogram::new().quantiles();
                w.summary("locus_s", "S.", &[("quantile", "x")], &q, 1.0)
            }),
        ];
        for (what, write) in refused {
            let mut w = w.clone();
            assert!(
                matches!(write(&mut w), Err(MetricsError::InvalidName { .. })),
                "{what}: not refused"
            );
            assert_eq!(w.as_str(), before, "{what}: a refused sample left text behind");
        }
        // The writer still works after a refusal.
        w.counter("locus_new_total", "New.", &[("bad-label", "v")], 1)
            .unwrap_err();
        w.counter("locus_new_total", "New.", &[], 2).unwrap();
        assert_eq!(
            w.as_str(),
            format!(
                "{before}# HELP locus_new_total New.\n# TYPE locus_new_total counter\nlocus_new_total 2\n"
            )
        );
    }

    #[test]
    fn histogram_has_cumulative_buckets_inf_sum_and_count() {
        let mut w = PrometheusWriter::new();
        w.family("locus_empty", "Nothing yet.", MetricKind::Gauge)
            .unwrap();
        w.histogram(
            "locus_h_seconds",
            "H.",
            &[("shard", "0")],
            [(0.001, 2), (0.01, 3)],
            0.5,
            4,
        )
        .unwrap();
        w.histogram("locus_h_seconds", "H.", &[], [(0.001, 0)], 0.0, 0)
            .unwrap();
        assert_eq!(
            w.as_str(),
            "# HELP locus_empty Nothing yet.\n# TYPE locus_empty gauge\n\
             # HELP locus_h_seconds H.\n# TYPE locus_h_seconds histogram\n\
             locus_h_seconds_bucket{shard=\"0\",le=\"0.001\"} 2\n\
             locus_h_seconds_bucket{shard=\"0\",le=\"0.01\"} 3\n\
             locus_h_seconds_bucket{shard=\"0\",le=\"+Inf\"} 4\n\
             locus_h_seconds_sum{shard=\"0\"} 0.5\nlocus_h_seconds_count{shard=\"0\"} 4\n\
             locus_h_seconds_bucket{le=\"0.001\"} 0\nlocus_h_seconds_bucket{le=\"+Inf\"} 0\n\
             locus_h_seconds_sum 0\nlocus_h_seconds_count 0\n"
        );
        let before = w.as_str().to_owned();
        assert!(w.histogram("locus_h2", "H.", &[("le", "1")], [], 0.0, 0).is_err());
        assert!(w.family("bad-name", "B.", MetricKind::Counter).is_err());
        assert_eq!(w.as_str(), before);
    }

    #[test]
    fn counts_are_written_exactly() {
        let mut w = PrometheusWriter::new();
        w.counter("locus_big_total", "Big.", &[], u64::MAX).unwrap();
        assert!(w.as_str().ends_with("locus_big_total 18446744073709551615\n"));
    }

    #[test]
    fn bad_names_are_refused_and_values_escaped() {
        let mut w = PrometheusWriter::new();
        assert!(matches!(
            w.counter("9bad", "x", &[], 1),
            Err(MetricsError::InvalidName { .. })
        ));
        assert!(w.counter("ok", "x", &[("bad-label", "v")], 1).is_err());
        let mut w = PrometheusWriter::new();
        w.gauge("g", "h", &[("l", "a\"b\\c\nd")], 1.0).unwrap();
        assert!(w.as_str().contains("g{l=\"a\\\"b\\\\c\\nd\"} 1\n"));
    }
}
