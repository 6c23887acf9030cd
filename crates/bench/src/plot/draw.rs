//! The drawing primitives every plot shares: panels of lines with their
//! legend beside the data (never over it), marks (the saturation knee),
//! axes with short tick labels (10k, 1.5M; bytes as KB, MB, GB; a log axis
//! over n ticked at the measured n), and a caption strip stating the setup
//! under every figure.

use crate::BenchError;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// One line on a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    /// Drawn dashed (a second runtime beside the first, same colour).
    pub dashed: bool,
}

/// A point called out on a chart, with its label beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub at: (f64, f64),
    pub label: String,
    pub color: RGBColor,
}

/// How an axis writes its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// 250, 10k, 1.5M ([`tick_label`]).
    Count,
    /// 500 B, 10 KB, 1.5 MB, 2 GB (decimal, [`byte_label`]).
    Bytes,
}

/// How a log axis is ticked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ticks {
    /// 1, 2, 5 × 10^k over short ranges, decades over long ones.
    Decades,
    /// At the x values of the data (the measured n).
    AtData,
}

/// One chart of a figure.
pub struct Panel {
    pub title: String,
    pub axes: (&'static str, &'static str),
    pub log: (bool, bool),
    pub units: (Unit, Unit),
    pub x_ticks: Ticks,
    pub series: Vec<Series>,
    pub marks: Vec<Mark>,
}

impl Panel {
    /// A panel of counts with decade ticks and no marks.
    pub fn new(
        title: impl Into<String>,
        axes: (&'static str, &'static str),
        log: (bool, bool),
        series: Vec<Series>,
    ) -> Panel {
        Panel {
            title: title.into(),
            axes,
            log,
            units: (Unit::Count, Unit::Count),
            x_ticks: Ticks::Decades,
            series,
            marks: Vec::new(),
        }
    }
}

/// One plot file (PNG and SVG): panels in rows, and the setup under them.
pub struct Figure {
    pub name: &'static str,
    /// Panels are laid out in this many rows, filled row by row.
    pub rows: usize,
    pub panels: Vec<Panel>,
    /// The setup behind the figure, one line under it.
    pub caption: String,
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (1.0, 10.0);
    }
    if log {
        (lo / 1.5, hi * 1.5)
    } else {
        let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.05).max(1e-9);
        (
            (lo - pad)
                .min(0.0)
                .max(if lo >= 0.0 { 0.0 } else { f64::NEG_INFINITY }),
            hi + pad,
        )
    }
}

/// Do the positive values span at least a factor of 10?
fn spans_a_decade(values: impl Iterator<Item = f64>) -> bool {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    lo.is_finite() && hi >= 10.0 * lo
}

/// A tick label a reader takes in at a glance: 10k, 1.5M, 2G, 250, 0.5.
pub fn tick_label(v: f64) -> String {
    let trim = |x: f64| {
        let t = format!("{x:.2}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    let a = v.abs();
    if a >= 1e9 {
        format!("{}G", trim(v / 1e9))
    } else if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

/// A byte count a reader takes in at a glance: 500 B, 10 KB, 1.5 MB, 2 GB
/// (decimal units, as the counts' 10k).
pub fn byte_label(v: f64) -> String {
    let label = tick_label(v);
    match label.chars().last() {
        Some(c @ ('k' | 'M' | 'G')) => {
            let unit = if c == 'k' { 'K' } else { c };
            format!("{} {unit}B", &label[..label.len() - 1])
        }
        _ => format!("{label} B"),
    }
}

fn label(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Count => tick_label(v),
        Unit::Bytes => byte_label(v),
    }
}

/// Tick positions for a log axis over `lo..hi`: every 1, 2, 5 × 10^k inside
/// when the range spans under three decades, else every decade.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo) {
        return Vec::new();
    }
    let steps: &[f64] = if hi / lo < 1000.0 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let mut out = Vec::new();
    let mut decade = 10f64.powi(lo.log10().floor() as i32);
    while decade <= hi {
        for s in steps {
            let v = decade * s;
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
        decade *= 10.0;
    }
    out
}

/// The distinct x values of the data, ascending: ticks at the measured n.
fn data_ticks(series: &[Series]) -> Vec<f64> {
    let mut xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite() && *x > 0.0)
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs
}

/// Width of the legend strip right of each chart, pixels.
const LEGEND_WIDTH: u32 = 210;
/// Height of the caption strip under a figure (two lines), pixels.
const CAPTION_HEIGHT: u32 = 44;

/// The legend in its own strip beside the chart: a swatch and a label per
/// series, then the marks.
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> DrawResult<DB> {
    let font = ("sans-serif", 14).into_font();
    let mut y = 52;
    for s in &p.series {
        let c = s.color;
        if s.dashed {
            area.draw(&PathElement::new(vec![(4, y), (11, y)], c.stroke_width(2)))?;
            area.draw(&PathElement::new(vec![(19, y), (26, y)], c.stroke_width(2)))?;
        } else {
            area.draw(&PathElement::new(vec![(4, y), (26, y)], c.stroke_width(2)))?;
        }
        area.draw(&Circle::new((15, y), 3, c.filled()))?;
        for (i, line) in wrap(&s.label, 24).iter().enumerate() {
            area.draw(&Text::new(
                line.clone(),
                (32, y - 7 + 16 * i as i32),
                font.clone(),
            ))?;
        }
        y += 16 * wrap(&s.label, 24).len() as i32 + 8;
    }
    for m in &p.marks {
        area.draw(&Circle::new((15, y), 7, m.color.stroke_width(2)))?;
        for (i, line) in wrap(&m.label, 24).iter().enumerate() {
            area.draw(&Text::new(
                line.clone(),
                (32, y - 7 + 16 * i as i32),
                font.clone(),
            ))?;
        }
        y += 16 * wrap(&m.label, 24).len() as i32 + 8;
    }
    Ok(())
}

/// Splits a label into lines of at most `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 1 + word.chars().count() <= width => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> DrawResult<DB> {
    let width = area.dim_in_pixel().0;
    let (chart, legend) = area.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
    draw_lines(&chart, p)?;
    draw_legend(&legend, p)
}

fn draw_lines<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> DrawResult<DB> {
    let series = &p.series;
    let xs = || series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    // A log axis needs a decade of data to read as one; narrower ranges (a
    // WAN run's latencies, say) are drawn linear.
    let x_log = p.log.0 && spans_a_decade(xs());
    let y_log = p.log.1 && spans_a_decade(ys());
    let xr = range(xs(), x_log);
    let yr = range(ys(), y_log);
    let x_ticks = match p.x_ticks {
        Ticks::AtData => data_ticks(series),
        Ticks::Decades => log_ticks(xr.0, xr.1),
    };
    let y_ticks = log_ticks(yr.0, yr.1);
    let (x_unit, y_unit) = p.units;
    let x_fmt = move |v: &f64| label(x_unit, *v);
    let y_fmt = move |v: &f64| label(y_unit, *v);
    let mut b = ChartBuilder::on(area);
    b.caption(&p.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(78);
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(p.axes.0)
                .y_desc(p.axes.1)
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .label_style(("sans-serif", 14))
                .draw()?;
            for s in series {
                let color = s.color;
                if s.dashed {
                    chart.draw_series(DashedLineSeries::new(
                        s.points.iter().copied(),
                        8,
                        5,
                        color.stroke_width(2),
                    ))?;
                } else {
                    chart.draw_series(LineSeries::new(
                        s.points.iter().copied(),
                        color.stroke_width(2),
                    ))?;
                }
                chart.draw_series(s.points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
            }
            chart.draw_series(
                p.marks
                    .iter()
                    .map(|m| Circle::new(m.at, 8, m.color.stroke_width(2))),
            )?;
        }};
    }
    let (x0, x1, y0, y1) = (xr.0, xr.1, yr.0, yr.1);
    match (x_log, y_log) {
        (true, true) => body!(b.build_cartesian_2d(
            (x0..x1).log_scale().with_key_points(x_ticks),
            (y0..y1).log_scale().with_key_points(y_ticks)
        )?),
        (false, true) => {
            body!(b.build_cartesian_2d(x0..x1, (y0..y1).log_scale().with_key_points(y_ticks))?)
        }
        (true, false) => {
            body!(b.build_cartesian_2d((x0..x1).log_scale().with_key_points(x_ticks), y0..y1)?)
        }
        (false, false) => body!(b.build_cartesian_2d(x0..x1, y0..y1)?),
    }
    Ok(())
}

fn draw_figure<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, fig: &Figure) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let height = root.dim_in_pixel().1;
    let (body, caption) = root.split_vertically(height.saturating_sub(CAPTION_HEIGHT));
    let rows = fig.rows.max(1);
    let areas = body.split_evenly((rows, fig.panels.len().div_ceil(rows).max(1)));
    for (area, p) in areas.iter().zip(&fig.panels) {
        draw_panel(area, p)?;
    }
    // About 7 pixels per character at this size.
    let per_line = (root.dim_in_pixel().0 as usize / 7).max(40);
    let style = ("sans-serif", 14).into_font().color(&RGBColor(70, 70, 70));
    for (i, line) in wrap(&fig.caption, per_line).into_iter().take(2).enumerate() {
        caption.draw(&Text::new(line, (12, 4 + 18 * i as i32), style.clone()))?;
    }
    root.present()
}

/// Draws each figure as PNG and SVG into `out_dir`; returns the files.
pub fn draw_all(figs: &[Figure], out_dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    std::fs::create_dir_all(out_dir).map_err(|source| BenchError::Write {
        file: out_dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for fig in figs {
        let rows = fig.rows.max(1);
        let width = (900 + LEGEND_WIDTH) * fig.panels.len().div_ceil(rows) as u32;
        let height = 600 * rows as u32 + CAPTION_HEIGHT;
        let png = out_dir.join(format!("{}.png", fig.name));
        draw_figure(
            BitMapBackend::new(&png, (width, height)).into_drawing_area(),
            fig,
        )
        .map_err(|e| BenchError::Plot {
            file: png.clone(),
            reason: e.to_string(),
        })?;
        let svg = out_dir.join(format!("{}.svg", fig.name));
        draw_figure(
            SVGBackend::new(&svg, (width, height)).into_drawing_area(),
            fig,
        )
        .map_err(|e| BenchError::Plot {
            file: svg.clone(),
            reason: e.to_string(),
        })?;
        written.push(png);
        written.push(svg);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        let labels: Vec<String> = [0.0, 0.5, 7.0, 250.0, 10_000.0, 15_000.0, 1.5e6, 2e9]
            .iter()
            .map(|&v| tick_label(v))
            .collect();
        assert_eq!(labels, ["0", "0.5", "7", "250", "10k", "15k", "1.5M", "2G"]);
    }

    #[test]
    fn byte_labels_use_decimal_units() {
        let labels: Vec<String> = [500.0, 1_000.0, 25_000.0, 1.5e6, 2e9]
            .iter()
            .map(|&v| byte_label(v))
            .collect();
        assert_eq!(labels, ["500 B", "1 KB", "25 KB", "1.5 MB", "2 GB"]);
    }

    #[test]
    fn log_ticks_are_1_2_5_over_short_ranges_and_decades_over_long_ones() {
        assert_eq!(log_ticks(3.0, 60.0), [5.0, 10.0, 20.0, 50.0]);
        assert_eq!(log_ticks(500.0, 2e6), [1e3, 1e4, 1e5, 1e6]);
    }

    #[test]
    fn a_long_legend_label_wraps_at_spaces() {
        assert_eq!(
            wrap("simulated, 2 shared cores beside QUIC", 24),
            ["simulated, 2 shared", "cores beside QUIC"]
        );
    }
}
