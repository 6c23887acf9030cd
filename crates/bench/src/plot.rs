//! Plots, drawn with plotters from result records only (never from logs), as
//! PNG and SVG. The font is bundled (DejaVu Sans, crate `bft-plotfont`), so
//! no system fontconfig is needed.
//!
//! 1. messages per committed request vs n, log–log, fitted slope in the
//!    legend: every block full, and one request in flight;
//! 2. bytes per committed request vs n, same axes;
//! 3. throughput vs p50 latency as the offered load rises;
//! 4. latency CDF per protocol;
//! 5. view-change cost vs n (messages and bytes per view change).

use crate::BenchError;
use crate::record::Record;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn register_font() {
    bft_plotfont::register();
}

/// One line on a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
}

pub fn protocol_color(protocol: &str) -> RGBColor {
    match protocol {
        "pbft" => RGBColor(214, 39, 40),
        "qbft" => RGBColor(31, 119, 180),
        "hotstuff" => RGBColor(44, 160, 44),
        _ => RGBColor(100, 100, 100),
    }
}

/// The shade used for real-network (QUIC) curves beside simulated ones.
fn darker(c: RGBColor) -> RGBColor {
    RGBColor(c.0 / 2, c.1 / 2, c.2 / 2)
}

/// Least-squares slope of log(y) against log(x): the exponent k of y ∝ x^k.
/// `None` with fewer than two usable points or no spread in x.
pub fn fit_loglog_slope(points: &[(f64, f64)]) -> Option<f64> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    if logs.len() < 2 {
        return None;
    }
    let k = logs.len() as f64;
    let mx = logs.iter().map(|p| p.0).sum::<f64>() / k;
    let my = logs.iter().map(|p| p.1).sum::<f64>() / k;
    let sxx: f64 = logs.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = logs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

fn faults(r: &Record) -> usize {
    r.scenario["faults"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0)
}

fn is_open_loop(r: &Record) -> bool {
    r.scenario["load"]["mode"].as_str() == Some("open")
}

fn offered_rate(r: &Record) -> f64 {
    r.scenario["load"]["rate"].as_f64().unwrap_or(0.0)
}

/// The two closed-loop scaling settings: `Pipelined` keeps several
/// requests in flight per client so that every block carries one (the
/// setting in which the textbook counts per request hold), `Lone` keeps one,
/// so a chained protocol must commit it with empty blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    Pipelined,
    Lone,
}

fn setting(r: &Record) -> Setting {
    match r.scenario["load"]["outstanding"].as_u64() {
        Some(1) | None => Setting::Lone,
        Some(_) => Setting::Pipelined,
    }
}

/// Per protocol, (n, value) for fault-free closed-loop records of one
/// setting: the scaling runs. The first record (by file name) per
/// (protocol, n) is used.
pub fn scaling_series(
    records: &[(String, Record)],
    which: Setting,
    value: impl Fn(&Record) -> f64,
) -> Vec<Series> {
    let mut by: BTreeMap<String, BTreeMap<usize, f64>> = BTreeMap::new();
    for (_, r) in records.iter().filter(|(_, r)| {
        faults(r) == 0 && !is_open_loop(r) && r.decisions > 0 && setting(r) == which
    }) {
        by.entry(r.protocol.clone())
            .or_default()
            .entry(r.n)
            .or_insert_with(|| value(r));
    }
    series_vs_n(by)
}

/// One line per protocol over n, labelled with its fitted log–log slope.
fn series_vs_n(by: BTreeMap<String, BTreeMap<usize, f64>>) -> Vec<Series> {
    by.into_iter()
        .map(|(p, pts)| {
            let points: Vec<(f64, f64)> = pts.into_iter().map(|(n, v)| (n as f64, v)).collect();
            let label = match fit_loglog_slope(&points) {
                Some(k) => format!("{p} (slope {k:.2})"),
                None => p.clone(),
            };
            Series {
                label,
                points,
                color: protocol_color(&p),
            }
        })
        .collect()
}

fn load_series(records: &[(String, Record)]) -> Vec<Series> {
    let mut by: BTreeMap<String, Vec<(f64, f64, f64)>> = BTreeMap::new();
    for (_, r) in records
        .iter()
        .filter(|(_, r)| faults(r) == 0 && is_open_loop(r))
    {
        let point = (offered_rate(r), r.throughput_tx_s, r.latency_ms.p50);
        by.entry(format!("{} n={} {}", r.protocol, r.n, r.runtime))
            .or_default()
            .push(point);
    }
    by.into_iter()
        .map(|(label, mut pts)| {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut color = protocol_color(label.split(' ').next().unwrap_or(""));
            if label.ends_with("quic") {
                color = darker(color);
            }
            Series {
                label,
                points: pts.into_iter().map(|(_, x, y)| (x, y.max(1e-3))).collect(),
                color,
            }
        })
        .collect()
}

/// Per protocol and runtime, the latency CDF at the highest offered load the
/// system still sustained (≥ 90 % of it committed) at the smallest n: the
/// latency a user gets short of saturation. Without open-loop records, the
/// fault-free record at the smallest n with the most samples.
fn cdf_series(records: &[(String, Record)]) -> Vec<Series> {
    let usable = || {
        records
            .iter()
            .map(|(_, r)| r)
            .filter(|r| faults(r) == 0 && !r.latency_cdf.is_empty())
    };
    let mut groups: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for r in usable() {
        groups
            .entry(format!("{} {}", r.protocol, r.runtime))
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for (key, rs) in groups {
        let min_n = rs.iter().map(|r| r.n).min().unwrap_or(0);
        let at_n: Vec<&Record> = rs.into_iter().filter(|r| r.n == min_n).collect();
        let open: Vec<&Record> = at_n.iter().copied().filter(|r| is_open_loop(r)).collect();
        let sustained = |r: &&Record| r.throughput_tx_s >= 0.9 * offered_rate(r);
        let pick = if open.is_empty() {
            at_n.iter().copied().max_by_key(|r| r.latency_ms.count)
        } else {
            open.iter()
                .copied()
                .filter(sustained)
                .max_by(|a, b| offered_rate(a).total_cmp(&offered_rate(b)))
                .or_else(|| {
                    open.iter()
                        .copied()
                        .min_by(|a, b| offered_rate(a).total_cmp(&offered_rate(b)))
                })
        };
        let Some(r) = pick else { continue };
        let label = if is_open_loop(r) {
            format!("{key} n={} at {:.0} tx/s", r.n, offered_rate(r))
        } else {
            format!("{key} n={}", r.n)
        };
        let base = protocol_color(&r.protocol);
        out.push(Series {
            label,
            points: r
                .latency_cdf
                .iter()
                .map(|(ms, q)| (ms.max(1e-3), *q))
                .collect(),
            color: if r.runtime == "quic" {
                darker(base)
            } else {
                base
            },
        });
    }
    out
}

fn view_change_series(records: &[(String, Record)], bytes: bool) -> Vec<Series> {
    let mut by: BTreeMap<String, BTreeMap<usize, f64>> = BTreeMap::new();
    for (_, r) in records.iter().filter(|(_, r)| faults(r) > 0) {
        let total = if bytes {
            r.view_change_bytes
        } else {
            r.view_change_messages
        };
        let (Some(total), Some(count)) = (total, r.view_changes.filter(|&k| k > 0)) else {
            continue;
        };
        by.entry(r.protocol.clone())
            .or_default()
            .entry(r.n)
            .or_insert(total as f64 / count as f64);
    }
    series_vs_n(by)
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

/// A chart with log or linear axes, one line per series.
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

fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    (x_log, y_log): (bool, bool),
    series: &[Series],
) -> DrawResult<DB> {
    // plotters' log axes draw no tick labels over less than a decade, so a
    // narrow range (a WAN run's latencies, say) is drawn linear instead.
    let x_log = x_log && spans_a_decade(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let y_log = y_log && spans_a_decade(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let xr = range(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
        x_log,
    );
    let yr = range(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        y_log,
    );
    let mut b = ChartBuilder::on(area);
    b.caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(70);
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                .x_label_formatter(&|v| tick_label(*v))
                .y_label_formatter(&|v| tick_label(*v))
                .label_style(("sans-serif", 14))
                .draw()?;
            for s in series {
                let color = s.color;
                chart
                    .draw_series(LineSeries::new(
                        s.points.iter().copied(),
                        color.stroke_width(2),
                    ))?
                    .label(s.label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                chart.draw_series(s.points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font(("sans-serif", 15))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        }};
    }
    match (x_log, y_log) {
        (true, true) => {
            body!(b.build_cartesian_2d((xr.0..xr.1).log_scale(), (yr.0..yr.1).log_scale())?)
        }
        (false, true) => body!(b.build_cartesian_2d(xr.0..xr.1, (yr.0..yr.1).log_scale())?),
        (true, false) => body!(b.build_cartesian_2d((xr.0..xr.1).log_scale(), yr.0..yr.1)?),
        (false, false) => body!(b.build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)?),
    }
    Ok(())
}

/// One plot: a name and a drawing function over any backend.
struct Figure {
    name: &'static str,
    /// Panels are laid out in this many rows, filled row by row.
    rows: usize,
    panels: Vec<Panel>,
}

struct Panel {
    title: String,
    axes: (&'static str, &'static str),
    log: (bool, bool),
    series: Vec<Series>,
}

fn draw_figure<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, fig: &Figure) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let rows = fig.rows.max(1);
    let areas = root.split_evenly((rows, fig.panels.len().div_ceil(rows).max(1)));
    for (area, p) in areas.iter().zip(&fig.panels) {
        draw_lines(area, &p.title, p.axes, p.log, &p.series)?;
    }
    root.present()
}

fn figures(records: &[(String, Record)]) -> Vec<Figure> {
    let mut figs = Vec::new();
    let per_request = |which: Setting, bytes: bool| {
        scaling_series(records, which, move |r| {
            if bytes {
                r.bytes_per_request
            } else {
                r.messages_per_request
            }
        })
    };
    for (name, what, bytes) in [
        ("messages_vs_n", "messages", false),
        ("bytes_vs_n", "bytes", true),
    ] {
        let panels: Vec<Panel> = [
            (
                Setting::Pipelined,
                "every block full (several requests in flight)",
            ),
            (Setting::Lone, "one request in flight"),
        ]
        .into_iter()
        .map(|(which, about)| Panel {
            title: format!("{} per request, {about}", capitalized(what)),
            axes: (
                "replicas n",
                if bytes {
                    "bytes per request"
                } else {
                    "messages per request"
                },
            ),
            log: (true, true),
            series: per_request(which, bytes),
        })
        .filter(|p| p.series.iter().any(|s| s.points.len() >= 2))
        .collect();
        if !panels.is_empty() {
            figs.push(Figure {
                name,
                rows: 1,
                panels,
            });
        }
    }
    let load = load_series(records);
    if !load.is_empty() {
        figs.push(Figure {
            rows: 1,
            name: "throughput_latency",
            panels: vec![Panel {
                title: "Throughput vs median latency as offered load rises".into(),
                axes: ("throughput (tx/s)", "p50 latency (ms)"),
                log: (false, true),
                series: load,
            }],
        });
    }
    let cdf = cdf_series(records);
    if !cdf.is_empty() {
        figs.push(Figure {
            rows: 1,
            name: "latency_cdf",
            panels: vec![Panel {
                title: "End-to-end latency CDF".into(),
                axes: ("latency (ms)", "fraction of requests"),
                log: (true, false),
                series: cdf,
            }],
        });
    }
    let vc = view_change_series(records, false);
    if !vc.is_empty() {
        figs.push(Figure {
            rows: 1,
            name: "view_change_cost",
            panels: vec![
                Panel {
                    title: "Messages per view change (crashed leader)".into(),
                    axes: ("replicas n", "messages"),
                    log: (true, true),
                    series: vc,
                },
                Panel {
                    title: "Bytes per view change".into(),
                    axes: ("replicas n", "bytes"),
                    log: (true, true),
                    series: view_change_series(records, true),
                },
            ],
        });
    }
    figs
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Draws every plot the records support into `out_dir`; returns the files.
pub fn plot(records: &[(String, Record)], out_dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    register_font();
    draw_all(&figures(records), out_dir)
}

/// The sim-vs-QUIC plot: per protocol, completed throughput (top) and median
/// latency (bottom) against the offered rate, over QUIC and in the
/// simulator on `cores` shared cores.
pub fn plot_agreement(
    records: &[(String, Record)],
    out_dir: &Path,
    cores: usize,
) -> Result<Vec<PathBuf>, BenchError> {
    register_font();
    let mut protocols: Vec<&str> = Vec::new();
    for (_, r) in records {
        if !protocols.contains(&r.protocol.as_str()) {
            protocols.push(&r.protocol);
        }
    }
    // A point that committed nothing has no latency: it is left out of the
    // latency panels (its zero throughput is drawn).
    let curve = |protocol: &str, runtime: &str, value: &dyn Fn(&Record) -> Option<f64>| {
        let mut pts: Vec<(f64, f64)> = records
            .iter()
            .filter(|(f, r)| {
                !crate::agreement::is_half(f) && r.protocol == protocol && r.runtime == runtime
            })
            .filter_map(|(_, r)| value(r).map(|v| (offered_rate(r), v)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        pts
    };
    let mut panels = Vec::new();
    for (row, axes, log) in [
        (0, ("offered (tx/s)", "completed (tx/s)"), (false, false)),
        (1, ("offered (tx/s)", "p50 latency (ms)"), (false, true)),
    ] {
        for &p in &protocols {
            let value = move |r: &Record| {
                if row == 0 {
                    Some(r.throughput_tx_s)
                } else {
                    (r.requests_committed > 0).then_some(r.latency_ms.p50.max(1e-3))
                }
            };
            let color = protocol_color(p);
            panels.push(Panel {
                title: format!(
                    "{p}, n = 4: {}",
                    if row == 0 {
                        "throughput"
                    } else {
                        "median latency"
                    }
                ),
                axes,
                log,
                series: vec![
                    Series {
                        label: "QUIC on loopback".into(),
                        points: curve(p, "quic", &value),
                        color: darker(color),
                    },
                    Series {
                        label: format!("simulated, {cores} shared cores"),
                        points: curve(p, "sim", &value),
                        color,
                    },
                ],
            });
        }
    }
    draw_all(
        &[Figure {
            name: "sim_vs_quic",
            rows: 2,
            panels,
        }],
        out_dir,
    )
}

fn draw_all(figs: &[Figure], out_dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    std::fs::create_dir_all(out_dir).map_err(|source| BenchError::Write {
        file: out_dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for fig in figs {
        let rows = fig.rows.max(1);
        let width = 900 * fig.panels.len().div_ceil(rows) as u32;
        let height = 600 * rows as u32;
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
    fn slope_fit_recovers_exponents() {
        let square: Vec<(f64, f64)> = [4.0, 7.0, 10.0, 16.0, 64.0]
            .iter()
            .map(|n| (*n, 3.0 * n * n))
            .collect();
        let linear: Vec<(f64, f64)> = [4.0, 7.0, 10.0, 16.0, 64.0]
            .iter()
            .map(|n| (*n, 2.0 * n))
            .collect();
        assert!((fit_loglog_slope(&square).unwrap() - 2.0).abs() < 1e-9);
        assert!((fit_loglog_slope(&linear).unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(fit_loglog_slope(&[(4.0, 1.0)]), None);
        assert_eq!(fit_loglog_slope(&[(4.0, 1.0), (4.0, 2.0)]), None);
    }
}
