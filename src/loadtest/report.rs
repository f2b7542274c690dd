//! `report.html`: one self-contained page per run (the SVG figures inline, no other file
//! needed), dark on light so that it prints. From the top: the scenario and the validation
//! targets that were checked, latency and service time per op, the driver and the process, the
//! repeats, the figures, and the target's metrics as tables.
//!
//! The page carries a small script that sets `data-figures="loaded N/M"` on `<body>` once every
//! figure has drawn something (a non-empty box with a data line in it), or `"failed K/M"`, so that a
//! headless browser can check that it renders.

use std::fmt::Write as _;

use serde_json::Value;

use super::plot::Figure;
use super::result::{OpSummary, Percentiles, RunResult};
use super::scenario::OpKind;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A latency in µs, in the unit that reads best.
fn us(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.2} s", v / 1e6)
    } else if v >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else {
        format!("{v:.1} µs")
    }
}

/// A JSON value in words: objects as `key value, key value`, seconds as they are.
fn words(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a.iter().map(words).collect::<Vec<_>>().join(", "),
        Value::Object(o) => {
            let set: Vec<String> = o
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{} {}", k.replace('_', " "), words(v)))
                .collect();
            if set.is_empty() {
                "none (defaults)".into()
            } else {
                set.join(", ")
            }
        }
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:960px;color:#111;\
background:#fff;line-height:1.4}h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;\
border-bottom:1px solid #999}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #999;padding:2px 6px;text-align:right;white-space:nowrap;font-size:.9em}th{background:#eee;white-space:normal}\
td:first-child,th:first-child{text-align:left}table.kv td{text-align:left;white-space:normal}\
figure{margin:1.2em 0;break-inside:avoid}figure svg{max-width:100%;height:auto}\
figcaption{font-size:.9em;color:#333}.bad{color:#a00;font-weight:bold}\
@media print{body{margin:0;max-width:none}h2{break-after:avoid}}";

fn latency_table(out: &mut String, r: &RunResult, pick: fn(&OpSummary) -> &Percentiles, with_counts: bool) {
    out.push_str("<table><tr><th>op</th>");
    if with_counts {
        out.push_str("<th>count</th><th>errors</th><th>rejected</th>");
    }
    out.push_str("<th>P50</th><th>P90</th><th>P95</th><th>P99</th><th>P99.9</th><th>P99.99</th><th>max</th>");
    if with_counts {
        out.push_str("<th>ops/s</th>");
    }
    out.push_str("</tr>\n");
    let rows = OpKind::ALL
        .iter()
        .filter_map(|k| r.ops.get(k.name()).map(|o| (k.name(), o)))
        .chain(std::iter::once(("all", &r.overall)));
    for (name, o) in rows {
        let l = pick(o);
        let _ = write!(out, "<tr><td>{}</td>", esc(name));
        if with_counts {
            let _ = write!(
                out,
                "<td>{}</td><td>{}</td><td>{}</td>",
                o.count,
                o.error_count(),
                o.rejected
            );
        }
        for v in [l.p50, l.p90, l.p95, l.p99, l.p999, l.p9999, l.max] {
            let _ = write!(out, "<td>{}</td>", us(v));
        }
        if with_counts {
            let _ = write!(out, "<td>{:.1}</td>", o.throughput_ops_s);
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn scenario_section(out: &mut String, r: &RunResult) {
    out.push_str("<h2 id=\"scenario\">Scenario</h2>\n<table class=\"kv\">\n");
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(out, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(&v));
    };
    kv("target", r.target.clone());
    let s = &r.scenario;
    let get = |k: &str| s.get(k).map(words).unwrap_or_else(|| "–".into());
    kv("source", get("source"));
    kv("arrival", get("arrival"));
    kv(
        "measured",
        format!(
            "{:.1} s after {} s warmup, {} client threads",
            r.measured_s,
            get("warmup"),
            r.driver.threads
        ),
    );
    kv("operation mix (weights)", get("operations"));
    kv("data", get("data"));
    kv("engine overrides", get("engine"));
    kv("seed", get("seed"));
    kv("preload time", format!("{:.2} s", r.preload_s));
    out.push_str("</table>\n");
}

fn validation_section(out: &mut String, r: &RunResult) {
    out.push_str("<h2 id=\"validation\">Validation</h2>\n");
    let v = &r.validation;
    if v.checked.is_empty() {
        out.push_str("<p>No target was set: nothing was checked.</p>\n");
    } else {
        out.push_str("<p>Targets checked:</p><ul>\n");
        for c in &v.checked {
            let _ = writeln!(out, "<li>{}</li>", esc(c));
        }
        out.push_str("</ul>\n");
        if !v.checked.iter().any(|c| c.contains("P99")) {
            out.push_str("<p>No latency target was set: the verdict says nothing about latency.</p>\n");
        }
    }
    if v.passed {
        out.push_str("<p>Verdict: <b>passed</b>.</p>\n");
    } else {
        out.push_str("<p class=\"bad\">Verdict: failed.</p><ul>\n");
        for f in &v.failures {
            let _ = writeln!(out, "<li class=\"bad\">{}</li>", esc(f));
        }
        out.push_str("</ul>\n");
    }
}

fn run_sections(out: &mut String, r: &RunResult) {
    out.push_str(
        "<h2 id=\"latency\">Latency from intended start</h2>\n<p>What a caller waits: from when \
         the op should have started (open loop, no coordinated omission) to its end.</p>\n",
    );
    latency_table(out, r, |o| &o.latency_us, true);
    out.push_str(
        "<h2 id=\"service\">Service time</h2>\n<p>From the op's actual start to its end: the \
         target's own time, without the queueing the latency above includes.</p>\n",
    );
    latency_table(out, r, |o| &o.service_us, false);
    let d = &r.driver;
    out.push_str("<h2 id=\"driver\">Driver and process</h2>\n");
    let _ = writeln!(
        out,
        "<p>Driver: {} threads, offered {}; own lag P99 {}, max {}; {} ops not issued; {} samples \
         dropped.{}</p>",
        d.threads,
        d.offered_ops_s
            .map(|x| format!("{x:.0} ops/s"))
            .unwrap_or_else(|| "closed loop".into()),
        us(d.own_lag_us.p99),
        us(d.own_lag_us.max),
        d.not_issued,
        d.dropped_samples,
        if d.late {
            " <span class=\"bad\">The driver fell behind its schedule: the figures include its delay.</span>"
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
    if !r.repeats.is_empty() {
        out.push_str(
            "<h2 id=\"repeats\">Repeats</h2>\n<p>The tables above are the last run's. P99 per run:</p>\n\
             <table><tr><th>run</th><th>P99 (all ops)</th><th>whole seconds</th></tr>\n",
        );
        let mine = r.as_repeat();
        for (i, run) in r.repeats.iter().chain(std::iter::once(&mine)).enumerate() {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                i + 1,
                run.p99_us.get("all").map_or("–".into(), |&v| us(v)),
                run.second_p99_us.get("all").map_or(0, Vec::len)
            );
        }
        out.push_str("</table>\n");
    }
}

fn figures_section(out: &mut String, figures: &[Figure]) {
    out.push_str("<h2 id=\"figures\">Figures</h2>\n");
    for f in figures {
        // The SVG documents come from plotters: strip the XML prologue, if any, to inline them.
        let svg = f.svg.find("<svg").map_or(f.svg.as_str(), |i| &f.svg[i..]);
        let _ = writeln!(
            out,
            "<figure data-figure=\"{}\">\n{svg}\n<figcaption>{}</figcaption></figure>",
            esc(f.file),
            esc(f.caption)
        );
    }
}

/// µs of an engine latency snapshot's quantile (nanoseconds in the snapshot).
fn snap_us(op: &Value, q: &str) -> String {
    op.get("quantiles")
        .and_then(|v| v.get(q))
        .and_then(Value::as_f64)
        .map_or("–".into(), |ns| us(ns / 1000.0))
}

fn engine_section(out: &mut String, m: &Value) {
    out.push_str("<h2 id=\"engine\">Target metrics at the end</h2>\n");
    let Some(shards) = m.get("shards").and_then(Value::as_array) else {
        // Not an engine: its scalars only.
        out.push_str("<table class=\"kv\">\n");
        if let Some(o) = m.as_object() {
            for (k, v) in o {
                let _ = writeln!(out, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(&words(v)));
            }
        }
        out.push_str("</table>\n");
        return;
    };
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    out.push_str("<table class=\"kv\">\n");
    for (label, key) in [
        ("episodes", "episodes"),
        ("kernels", "kernels"),
        ("open for (s)", "uptime_s"),
        ("recalls answered partial", "recalls_partial"),
        ("preload absorb (ms)", "loadtest_preload_absorb_ms"),
    ] {
        if let Some(v) = m.get(key) {
            let text = match v.as_f64() {
                Some(f) if key == "uptime_s" => format!("{f:.1}"),
                _ => words(v),
            };
            let _ = writeln!(out, "<tr><td>{label}</td><td>{}</td></tr>", esc(&text));
        }
    }
    let degradations = m.get("degradations").map(words).unwrap_or_else(|| "none".into());
    let _ = writeln!(
        out,
        "<tr><td>degradations</td><td>{}</td></tr>\n</table>",
        esc(&degradations)
    );
    out.push_str(
        "<table><tr><th>caller-side op</th><th>count</th><th>P50</th><th>P99</th><th>P99.9</th>\
         <th>max</th></tr>\n",
    );
    for name in ["recall", "complete"] {
        if let Some(op) = m.get(name) {
            let count = op.get("quantiles").and_then(|q| num(q, "count")).unwrap_or(0.0);
            let _ = writeln!(
                out,
                "<tr><td>{name}</td><td>{count}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                snap_us(op, "p50"),
                snap_us(op, "p99"),
                snap_us(op, "p999"),
                snap_us(op, "max")
            );
        }
    }
    out.push_str("</table>\n");
    out.push_str(
        "<table><tr><th>shard</th><th>node</th><th>memory node</th><th>workers</th>\
         <th>episodes</th><th>index lag</th><th>accepted</th><th>refused</th><th>edges</th>\
         <th>pages on home node</th><th>tasks off node</th><th>observe P99</th><th>search P99</th></tr>\n",
    );
    for sh in shards {
        let spaces = sh.get("spaces").and_then(Value::as_array);
        let sum = |f: &dyn Fn(&Value) -> f64| spaces.map_or(0.0, |sp| sp.iter().map(f).sum());
        let episodes = sum(&|sp| num(sp, "episodes").unwrap_or(0.0));
        let lag = sum(&|sp| num(sp, "index_lag_episodes").unwrap_or(0.0));
        let accepted = sum(&|sp| num(sp, "accepted").unwrap_or(0.0));
        let refused = sum(&|sp| {
            sp.get("rejected")
                .and_then(Value::as_object)
                .map_or(0.0, |r| r.values().filter_map(Value::as_f64).sum())
        });
        let cell = |k: &str| num(sh, k).map_or("–".into(), |v| format!("{v}"));
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{episodes}</td><td>{lag}</td>\
             <td>{accepted}</td><td>{refused}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            cell("shard"),
            cell("node"),
            cell("memory_node"),
            cell("workers"),
            cell("edges"),
            num(sh, "placement_home_fraction").map_or("unknown".into(), |f| format!("{:.1} %", f * 100.0)),
            cell("tasks_off_node"),
            sh.get("observe").map_or("–".into(), |o| snap_us(o, "p99")),
            sh.get("search").map_or("–".into(), |o| snap_us(o, "p99")),
        );
    }
    out.push_str("</table>\n<p>Refused: observations refused by admission control since the engine opened (preload retries included).</p>\n");
}

/// The page of a run, with `figures` (from [`plot::render`](super::plot::render)) inline.
pub fn html(r: &RunResult, figures: &[Figure]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>locus loadtest: {name}</title>\n<style>{STYLE}</style></head>\n\
         <body data-figures=\"pending\">\n<h1>locus loadtest: {name}</h1>",
        name = esc(&r.name)
    );
    let verdict = if r.validation.passed { "passed" } else { "FAILED" };
    let _ = writeln!(
        out,
        "<p>P99 (all ops) <b>{}</b> · {:.1} ops/s · validation {verdict} · {} · result schema {}</p>",
        us(r.overall.latency_us.p99),
        r.overall.throughput_ops_s,
        if r.repeats.is_empty() {
            "1 run".to_string()
        } else {
            format!("{} runs", r.runs())
        },
        esc(&r.schema)
    );
    scenario_section(&mut out, r);
    validation_section(&mut out, r);
    run_sections(&mut out, r);
    figures_section(&mut out, figures);
    if let Some(m) = &r.target_metrics {
        engine_section(&mut out, m);
    }
    out.push_str(
        "<script>\n(function(){\n  function check(){\n    \
         var figs=Array.prototype.slice.call(document.querySelectorAll('figure[data-figure]'));\n    \
         var bad=figs.filter(function(f){var s=f.querySelector('svg');\n      \
         if(!s){return true;}var b=s.getBoundingClientRect();\n      \
         return !(b.width>0&&b.height>0&&s.querySelector('polyline'));}).length;\n    \
         document.body.setAttribute('data-figures',bad>0?'failed '+bad+'/'+figs.length:'loaded '+figs.length+'/'+figs.length);\n  }\n  \
         if(document.readyState==='complete'){check();}else{window.addEventListener('load',check);}\n})();\n\
         </script>\n</body></html>\n",
    );
    out
}
