//! The figures of a run, drawn as SVG with `plotters` (no C library; text is left to the
//! viewer's fonts). PNG is not written: plotters' bitmap backend needs a font rasteriser
//! (`ttf`, which links FreeType/fontconfig, or `ab_glyph` plus a font file we would have to ship).
//!
//! Latencies are drawn per op kind on a logarithmic axis (one op's tail is not hidden under
//! another's median); the last, partial second of the series is left out of every figure.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::error::LoadtestError;
use super::result::{RunResult, SpectrumPoint};

/// The figures, in order: file name, title (drawn in the figure) and caption (what to read
/// in it, for the report).
pub const FIGURES: [(&str, &str, &str); 4] = [
    (
        "latency.svg",
        "P99 latency per second, per op",
        "Each line is one op kind's P99 in each whole second of the measured time, measured from \
         the op's intended start (log scale); the dashed line is all ops' median.",
    ),
    (
        "spectrum.svg",
        "Latency percentile spectrum, per op",
        "Latency at each percentile over the whole run, per op kind (log scale): the right end is \
         the tail a P99 figure leaves out.",
    ),
    (
        "throughput.svg",
        "Throughput per second",
        "Ops completed in each whole second (all kinds); the last, partial second is left out.",
    ),
    (
        "rss.svg",
        "Resident memory",
        "The process's resident set at the end of each second.",
    ),
];

/// One drawn figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File name (`latency.svg`).
    pub file: &'static str,
    /// Title, drawn in the figure.
    pub title: &'static str,
    /// What to read in it.
    pub caption: &'static str,
    /// The SVG document.
    pub svg: String,
}

const SIZE: (u32, u32) = (900, 400);

/// Colours of the op kinds (and `all`), dark enough to print.
fn colour(op: &str) -> RGBColor {
    match op {
        "observe" => RGBColor(0x1f, 0x4e, 0x9a),
        "recall" => RGBColor(0xb2, 0x22, 0x22),
        "recall_spread" => RGBColor(0x2e, 0x7d, 0x32),
        "complete" => RGBColor(0x8e, 0x24, 0xaa),
        "associate" => RGBColor(0xc4, 0x6a, 0x00),
        _ => RGBColor(0x20, 0x20, 0x20),
    }
}

/// A tick label without spurious decimals: `3500`, `12.5`, `0.25`.
pub fn tick(v: f64) -> String {
    let s = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A latency tick in µs or ms: `250 µs`, `1.5 ms`.
fn latency_tick(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{} s", tick(us / 1e6))
    } else if us >= 1000.0 {
        format!("{} ms", tick(us / 1000.0))
    } else {
        format!("{} µs", tick(us))
    }
}

fn plot_err(name: &str) -> impl Fn(String) -> LoadtestError + '_ {
    move |message| LoadtestError::Plot {
        name: name.to_string(),
        message,
    }
}

/// A named, coloured line, dashed or not.
struct Series {
    label: String,
    colour: RGBColor,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// Axes of a chart.
struct Axes<'a> {
    x_desc: &'a str,
    y_desc: &'a str,
    log_y: bool,
    /// How many x labels (whole seconds: one per second up to 12).
    x_ticks: usize,
    x_label: &'a dyn Fn(&f64) -> String,
    y_label: &'a dyn Fn(&f64) -> String,
}

/// A line chart of `series` as an SVG string.
fn line_chart(name: &str, title: &str, axes: &Axes<'_>, series: &[Series]) -> Result<String, LoadtestError> {
    let err = plot_err(name);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let points = || series.iter().flat_map(|s| s.points.iter());
        let x_max = points().map(|p| p.0).fold(0.0f64, f64::max).max(1.0);
        let y_top = points().map(|p| p.1).fold(0.0f64, f64::max).max(1e-3);
        // Head room for the legend above the lines (a log axis needs a factor, not a margin).
        let y_max = if axes.log_y { y_top * 4.0 } else { y_top * 1.35 };
        let mut chart = ChartBuilder::on(&root);
        chart
            .caption(title, ("sans-serif", 20).into_font().color(&BLACK))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(78);
        let style = ("sans-serif", 14).into_font().color(&BLACK);
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(axes.x_desc)
                    .x_labels(axes.x_ticks)
                    .y_labels(12)
                    .y_desc(axes.y_desc)
                    .x_label_formatter(axes.x_label)
                    .y_label_formatter(axes.y_label)
                    .label_style(style.clone())
                    .axis_desc_style(style.clone())
                    .light_line_style(RGBColor(0xee, 0xee, 0xee))
                    .bold_line_style(RGBColor(0xcc, 0xcc, 0xcc))
                    .draw()
                    .map_err(|e| err(e.to_string()))?;
                for s in series {
                    let c = s.colour;
                    let stroke = c.stroke_width(2);
                    let drawn = if s.dashed {
                        chart.draw_series(DashedLineSeries::new(
                            s.points.iter().copied(),
                            6,
                            4,
                            stroke,
                        ))
                    } else {
                        chart.draw_series(LineSeries::new(s.points.iter().copied(), stroke))
                    };
                    drawn
                        .map_err(|e| err(e.to_string()))?
                        .label(s.label.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
                }
                if series.len() > 1 {
                    chart
                        .configure_series_labels()
                        .label_font(style.clone())
                        .background_style(WHITE.mix(0.9))
                        .border_style(BLACK)
                        .position(SeriesLabelPosition::UpperRight)
                        .draw()
                        .map_err(|e| err(e.to_string()))?;
                }
            }};
        }
        if axes.log_y {
            let y_min = points()
                .map(|p| p.1)
                .filter(|&y| y > 0.0)
                .fold(f64::INFINITY, f64::min);
            let y_min = if y_min.is_finite() { y_min * 0.8 } else { 0.1 };
            draw!(
                chart
                    .build_cartesian_2d(0f64..x_max, (y_min..y_max.max(y_min * 2.0)).log_scale())
                    .map_err(|e| err(e.to_string()))?
            );
        } else {
            draw!(
                chart
                    .build_cartesian_2d(0f64..x_max, 0f64..y_max)
                    .map_err(|e| err(e.to_string()))?
            );
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

/// "Nines" of a percentile: 90 → 1, 99 → 2, 99.9 → 3 (100 is drawn at 7).
fn nines(p: f64) -> f64 {
    if p >= 100.0 {
        7.0
    } else {
        -(1.0 - p / 100.0).log10()
    }
}

fn spectrum_points(sp: &[SpectrumPoint]) -> Vec<(f64, f64)> {
    sp.iter()
        .filter(|p| p.latency_us > 0.0)
        .map(|p| (nines(p.percentile), p.latency_us))
        .collect()
}

/// Draws [`FIGURES`] for `r`.
///
/// # Errors
/// [`LoadtestError::Plot`] if a figure cannot be drawn.
pub fn render(r: &RunResult) -> Result<Vec<Figure>, LoadtestError> {
    let whole: Vec<_> = r.timeseries.iter().filter(|p| !p.partial).collect();
    let seconds = |x: &f64| format!("{x:.0}");
    let plain = |y: &f64| tick(*y);
    let latency = |y: &f64| latency_tick(*y);
    let mut per_op: Vec<Series> = r
        .op_timeseries
        .iter()
        .map(|(op, ts)| Series {
            label: format!("{op} P99"),
            colour: colour(op),
            dashed: false,
            points: ts
                .iter()
                .filter(|p| !p.partial && p.ops > 0 && p.p99_us > 0.0)
                .map(|p| (p.t_s as f64, p.p99_us))
                .collect(),
        })
        .collect();
    per_op.push(Series {
        label: "all ops P50".into(),
        colour: colour("all"),
        dashed: true,
        points: whole
            .iter()
            .filter(|p| p.ops > 0 && p.p50_us > 0.0)
            .map(|p| (p.t_s as f64, p.p50_us))
            .collect(),
    });
    let last_second = whole.last().map_or(1, |p| p.t_s as usize);
    let over_time = |y_desc, log_y, y_label| Axes {
        x_desc: "seconds since measurement started",
        y_desc,
        log_y,
        x_ticks: (last_second + 1).clamp(2, 12),
        x_label: &seconds,
        y_label,
    };
    let latency_svg = line_chart(
        FIGURES[0].0,
        FIGURES[0].1,
        &over_time("latency", true, &latency),
        &per_op,
    )?;
    let percentile = |x: &f64| {
        if *x >= 7.0 {
            "max".to_string()
        } else {
            let p = 100.0 * (1.0 - 10f64.powf(-x));
            format!("{p:.4}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        }
    };
    let mut spectra: Vec<Series> = r
        .op_spectrum
        .iter()
        .map(|(op, sp)| Series {
            label: op.clone(),
            colour: colour(op),
            dashed: false,
            points: spectrum_points(sp),
        })
        .collect();
    if spectra.is_empty() {
        spectra.push(Series {
            label: "all ops".into(),
            colour: colour("all"),
            dashed: false,
            points: spectrum_points(&r.spectrum),
        });
    }
    let spectrum_svg = line_chart(
        FIGURES[1].0,
        FIGURES[1].1,
        &Axes {
            x_desc: "percentile",
            y_desc: "latency",
            log_y: true,
            x_ticks: 8,
            x_label: &percentile,
            y_label: &latency,
        },
        &spectra,
    )?;
    let throughput_svg = line_chart(
        FIGURES[2].0,
        FIGURES[2].1,
        &over_time("ops/s", false, &plain),
        &[Series {
            label: "ops/s".into(),
            colour: colour("observe"),
            dashed: false,
            points: whole.iter().map(|p| (p.t_s as f64, p.ops as f64)).collect(),
        }],
    )?;
    let rss_svg = line_chart(
        FIGURES[3].0,
        FIGURES[3].1,
        &over_time("RSS (MiB)", false, &plain),
        &[Series {
            label: "RSS".into(),
            colour: colour("complete"),
            dashed: false,
            points: whole
                .iter()
                .map(|p| (p.t_s as f64, p.rss_bytes as f64 / (1024.0 * 1024.0)))
                .collect(),
        }],
    )?;
    Ok([latency_svg, spectrum_svg, throughput_svg, rss_svg]
        .into_iter()
        .zip(FIGURES)
        .map(|(svg, (file, title, caption))| Figure {
            file,
            title,
            caption,
            svg,
        })
        .collect())
}

/// Writes `figures` into `dir` and returns their paths.
///
/// # Errors
/// [`LoadtestError::Io`] if a file cannot be written.
pub fn write_figures(figures: &[Figure], dir: &Path) -> Result<Vec<PathBuf>, LoadtestError> {
    figures
        .iter()
        .map(|f| {
            let path = dir.join(f.file);
            std::fs::write(&path, &f.svg).map_err(|source| LoadtestError::Io {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        })
        .collect()
}

/// Draws [`FIGURES`] into `dir` and returns their paths.
///
/// # Errors
/// [`LoadtestError::Plot`] or [`LoadtestError::Io`].
pub fn write_plots(r: &RunResult, dir: &Path) -> Result<Vec<PathBuf>, LoadtestError> {
    write_figures(&render(r)?, dir)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ticks_have_no_spurious_decimals() {
        assert_eq!(super::tick(3500.0), "3500");
        assert_eq!(super::tick(12.5), "12.5");
        assert_eq!(super::tick(0.25), "0.25");
        assert_eq!(super::tick(2.0), "2");
        assert_eq!(super::latency_tick(1500.0), "1.5 ms");
    }
}
