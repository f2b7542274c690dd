//! The figures of a run, drawn as SVG with `plotters` (no C library; text is left to the
//! viewer's fonts). PNG is not written: plotters' bitmap backend needs a font rasteriser
//! (`ttf`, which links FreeType/fontconfig, or `ab_glyph` plus a font file we would have to ship).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::error::LoadtestError;
use super::result::RunResult;

/// The figures written by [`write_plots`], with their captions.
pub const FIGURES: [(&str, &str); 4] = [
    (
        "latency.svg",
        "Latency over time (per-second P50 and P99, from intended start)",
    ),
    ("spectrum.svg", "Latency percentile spectrum (all ops)"),
    ("throughput.svg", "Throughput over time"),
    ("rss.svg", "Resident memory over time"),
];

const SIZE: (u32, u32) = (900, 420);

fn plot_err(name: &str) -> impl Fn(String) -> LoadtestError + '_ {
    move |message| LoadtestError::Plot {
        name: name.to_string(),
        message,
    }
}

/// A named, coloured line.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// A line chart of one or more named series over `x`.
fn line_chart(
    path: &Path,
    name: &str,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series<'_>],
    x_labels: Option<&dyn Fn(&f64) -> String>,
) -> Result<(), LoadtestError> {
    let err = plot_err(name);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let xs = series.iter().flat_map(|s| s.2.iter().map(|p| p.0));
    let x_max = xs.fold(0.0f64, f64::max).max(1.0);
    let y_max = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| err(e.to_string()))?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc).y_desc(y_desc);
    if let Some(f) = x_labels {
        mesh.x_label_formatter(f);
    }
    mesh.draw().map_err(|e| err(e.to_string()))?;
    for (label, colour, points) in series {
        let colour = *colour;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    if series.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| err(e.to_string()))?;
    }
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// "Nines" of a percentile: 90 → 1, 99 → 2, 99.9 → 3 (100 is drawn at 7).
fn nines(p: f64) -> f64 {
    if p >= 100.0 {
        7.0
    } else {
        -(1.0 - p / 100.0).log10()
    }
}

/// Writes [`FIGURES`] into `dir` and returns their paths.
///
/// # Errors
/// [`LoadtestError::Plot`] if a figure cannot be drawn or written.
pub fn write_plots(r: &RunResult, dir: &Path) -> Result<Vec<PathBuf>, LoadtestError> {
    let ts = &r.timeseries;
    let t = |i: usize| ts[i].t_s as f64;
    let paths: Vec<PathBuf> = FIGURES.iter().map(|(f, _)| dir.join(f)).collect();
    line_chart(
        &paths[0],
        FIGURES[0].0,
        FIGURES[0].1,
        "seconds since measurement started",
        "latency (µs)",
        &[
            ("P50", BLUE, (0..ts.len()).map(|i| (t(i), ts[i].p50_us)).collect()),
            ("P99", RED, (0..ts.len()).map(|i| (t(i), ts[i].p99_us)).collect()),
        ],
        None,
    )?;
    let label = |x: &f64| {
        let p = 100.0 * (1.0 - 10f64.powf(-x));
        if *x >= 7.0 {
            "max".to_string()
        } else {
            format!("{p:.4}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        }
    };
    line_chart(
        &paths[1],
        FIGURES[1].0,
        FIGURES[1].1,
        "percentile",
        "latency (µs)",
        &[(
            "latency",
            RED,
            r.spectrum
                .iter()
                .map(|p| (nines(p.percentile), p.latency_us))
                .collect(),
        )],
        Some(&label),
    )?;
    line_chart(
        &paths[2],
        FIGURES[2].0,
        FIGURES[2].1,
        "seconds since measurement started",
        "ops/s",
        &[(
            "ops/s",
            GREEN,
            (0..ts.len()).map(|i| (t(i), ts[i].ops as f64)).collect(),
        )],
        None,
    )?;
    line_chart(
        &paths[3],
        FIGURES[3].0,
        FIGURES[3].1,
        "seconds since measurement started",
        "RSS (MiB)",
        &[(
            "RSS",
            MAGENTA,
            (0..ts.len())
                .map(|i| (t(i), ts[i].rss_bytes as f64 / (1024.0 * 1024.0)))
                .collect(),
        )],
        None,
    )?;
    Ok(paths)
}
