//! `report.html`: the summary table and the figures of one run, self-contained beside its SVGs.
//!
//! The page carries a small script that sets `data-figures="loaded N/M"` (or `"failed …"`) on
//! `<body>` once every `<img>` has loaded, so a headless browser can check that it renders.

use std::fmt::Write as _;

use super::plot::FIGURES;
use super::result::{OpSummary, RunResult};
use super::scenario::OpKind;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn row(out: &mut String, name: &str, o: &OpSummary) {
    let l = &o.latency_us;
    let _ = writeln!(
        out,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td>\
         <td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td></tr>",
        esc(name),
        o.count,
        o.error_count(),
        o.rejected,
        l.p50,
        l.p90,
        l.p95,
        l.p99,
        l.p999,
        l.p9999,
        l.max,
        o.throughput_ops_s
    );
}

/// The HTML page of a run; figures are referenced by their file names in the same directory.
pub fn html(r: &RunResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>locus loadtest: {name}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em;max-width:1000px}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:2px 8px;text-align:right}}\
         td:first-child{{text-align:left}}figure{{margin:1.5em 0}}img{{max-width:100%}}\
         </style></head>\n<body data-figures=\"pending\">\n<h1>locus loadtest: {name}</h1>",
        name = esc(&r.name)
    );
    let _ = writeln!(
        out,
        "<p>target <b>{}</b> · {:.1} s measured · preload {:.2} s · schema {}</p>",
        esc(&r.target),
        r.measured_s,
        r.preload_s,
        esc(&r.schema)
    );
    let _ = writeln!(
        out,
        "<h2>Latency from intended start (µs)</h2>\n<table><tr><th>op</th><th>count</th><th>errors</th>\
         <th>rejected</th><th>P50</th><th>P90</th><th>P95</th><th>P99</th><th>P99.9</th><th>P99.99</th>\
         <th>max</th><th>ops/s</th></tr>"
    );
    for kind in OpKind::ALL {
        if let Some(o) = r.ops.get(kind.name()) {
            row(&mut out, kind.name(), o);
        }
    }
    row(&mut out, "all", &r.overall);
    out.push_str("</table>\n");
    let d = &r.driver;
    let _ = writeln!(
        out,
        "<p>Driver: {} threads, offered {}; own lag P99 {:.1} µs, max {:.1} µs; {} ops not issued; \
         {} samples dropped.{}</p>",
        d.threads,
        d.offered_ops_s
            .map(|x| format!("{x:.0} ops/s"))
            .unwrap_or_else(|| "closed loop".into()),
        d.own_lag_us.p99,
        d.own_lag_us.max,
        d.not_issued,
        d.dropped_samples,
        if d.late {
            " <b>The driver fell behind its schedule.</b>"
        } else {
            ""
        }
    );
    let p = &r.process;
    let _ = writeln!(
        out,
        "<p>Process: RSS {:.1} MiB after preload, peak {:.1} MiB; CPU {:.2} s ({:.2} cores busy).</p>",
        p.rss_after_preload_bytes as f64 / 1048576.0,
        p.rss_peak_bytes as f64 / 1048576.0,
        p.cpu_s,
        p.cpu_cores_busy
    );
    if r.validation.passed {
        out.push_str("<p>Validation: passed.</p>\n");
    } else {
        out.push_str("<p>Validation <b>failed</b>:</p><ul>\n");
        for f in &r.validation.failures {
            let _ = writeln!(out, "<li>{}</li>", esc(f));
        }
        out.push_str("</ul>\n");
    }
    for (file, caption) in FIGURES {
        let _ = writeln!(
            out,
            "<figure><img src=\"{file}\" alt=\"{c}\"><figcaption>{c}</figcaption></figure>",
            c = esc(caption)
        );
    }
    if let Some(m) = &r.target_metrics {
        let pretty = serde_json::to_string_pretty(m).unwrap_or_default();
        let _ = writeln!(
            out,
            "<h2>Target metrics at the end</h2>\n<pre>{}</pre>",
            esc(&pretty)
        );
    }
    out.push_str(
        "<script>\n(function(){\n  var imgs=Array.prototype.slice.call(document.images);\n  \
         function check(){\n    var ok=imgs.filter(function(i){return i.complete&&i.naturalWidth>0;}).length;\n    \
         var bad=imgs.filter(function(i){return i.complete&&i.naturalWidth===0;}).length;\n    \
         if(bad>0){document.body.setAttribute('data-figures','failed '+bad+'/'+imgs.length);}\n    \
         else if(ok===imgs.length){document.body.setAttribute('data-figures','loaded '+ok+'/'+imgs.length);}\n  }\n  \
         imgs.forEach(function(i){i.addEventListener('load',check);i.addEventListener('error',check);});\n  \
         window.addEventListener('load',check);check();\n})();\n</script>\n</body></html>\n",
    );
    out
}
