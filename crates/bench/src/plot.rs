//! Plots, drawn with plotters from result records only (never from logs), as
//! PNG and SVG. The font is bundled (DejaVu Sans, crate `bft-plotfont`), so
//! no system fontconfig is needed. Each protocol has one colour in every
//! plot ([`protocol_color`]); a figure's caption states the setup of the
//! records it draws ([`caption`]).
//!
//! 1. messages per committed request vs n, log–log, fitted slope in the
//!    legend: every block full, and one request in flight;
//! 2. bytes per committed request vs n, same axes;
//! 3. throughput vs p50 latency as the offered load rises, a panel per
//!    runtime, the saturation knee marked where a search found one;
//! 4. latency CDF per protocol, a panel per runtime;
//! 5. view-change cost vs n (messages and bytes per view change);
//! 6. throughput, latency and memory over time for soaks ([`over_time`]).

mod draw;
pub mod over_time;

pub use draw::{
    Figure, Mark, Panel, Series, Ticks, Unit, byte_label, draw_all, log_ticks, tick_label,
};

use crate::BenchError;
use crate::record::Record;
use crate::saturate::Knee;
use plotters::style::RGBColor;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn register_font() {
    bft_plotfont::register();
}

pub fn protocol_color(protocol: &str) -> RGBColor {
    match protocol {
        "pbft" => RGBColor(214, 39, 40),
        "qbft" => RGBColor(31, 119, 180),
        "hotstuff" => RGBColor(44, 160, 44),
        _ => RGBColor(100, 100, 100),
    }
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
                dashed: false,
            }
        })
        .collect()
}

/// Per protocol and n, (throughput, p50) as the offered rate rises, for the
/// fault-free open-loop records of one runtime.
fn load_series(records: &[(String, Record)], runtime: &str) -> Vec<Series> {
    // (offered, throughput, p50) per (protocol, n).
    type Points = Vec<(f64, f64, f64)>;
    let mut by: BTreeMap<(String, usize), Points> = BTreeMap::new();
    for (_, r) in load_records(records, runtime) {
        let point = (offered_rate(r), r.throughput_tx_s, r.latency_ms.p50);
        by.entry((r.protocol.clone(), r.n)).or_default().push(point);
    }
    by.into_iter()
        .map(|((protocol, n), mut pts)| {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            pts.dedup_by(|a, b| a.0 == b.0);
            Series {
                label: format!("{protocol} n={n}"),
                points: pts.into_iter().map(|(_, x, y)| (x, y.max(1e-3))).collect(),
                color: protocol_color(&protocol),
                dashed: false,
            }
        })
        .collect()
}

fn load_records<'a>(
    records: &'a [(String, Record)],
    runtime: &'a str,
) -> impl Iterator<Item = &'a (String, Record)> {
    records
        .iter()
        .filter(move |(_, r)| faults(r) == 0 && is_open_loop(r) && r.runtime == runtime)
}

/// The knees of `runtime`, marked at their probe's (throughput, p50).
fn knee_marks(knees: &[Knee], runtime: &str) -> Vec<Mark> {
    knees
        .iter()
        .filter(|k| k.runtime == runtime)
        .filter_map(|k| {
            let p = k.at_knee()?;
            Some(Mark {
                at: (p.throughput_tx_s, p.p50_ms.max(1e-3)),
                label: match k.first_unsustained {
                    Some(_) => format!("{} knee: {} tx/s", k.protocol, tick_label(p.offered)),
                    None => format!(
                        "{} sustained the whole range (to {} tx/s)",
                        k.protocol,
                        tick_label(p.offered)
                    ),
                },
                color: protocol_color(&k.protocol),
            })
        })
        .collect()
}

/// Per protocol, the latency CDF of one runtime at the highest offered load
/// the system still sustained (≥ 90 % of it committed) at the smallest n:
/// the latency a user gets short of saturation. Without open-loop records,
/// the fault-free record at the smallest n with the most samples.
fn cdf_series(records: &[(String, Record)], runtime: &str) -> Vec<Series> {
    let mut groups: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for (_, r) in records
        .iter()
        .filter(|(_, r)| faults(r) == 0 && !r.latency_cdf.is_empty() && r.runtime == runtime)
    {
        groups.entry(r.protocol.clone()).or_default().push(r);
    }
    let mut out = Vec::new();
    for (protocol, rs) in groups {
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
            format!(
                "{protocol} n={} at {} tx/s",
                r.n,
                tick_label(offered_rate(r))
            )
        } else {
            format!("{protocol} n={}", r.n)
        };
        out.push(Series {
            label,
            points: r
                .latency_cdf
                .iter()
                .map(|(ms, q)| (ms.max(1e-3), *q))
                .collect(),
            color: protocol_color(&r.protocol),
            dashed: false,
        });
    }
    out
}

/// The runtimes present, simulator first, with their panel titles.
fn runtimes(records: &[(String, Record)]) -> Vec<(&'static str, &'static str)> {
    [
        ("sim", "simulated (model crypto)"),
        ("quic", "QUIC on 127.0.0.1, real crypto (this machine)"),
    ]
    .into_iter()
    .filter(|(rt, _)| records.iter().any(|(_, r)| r.runtime == *rt))
    .collect()
}

/// The setup behind a set of records, in one line: n, runtime and crypto
/// (with the cost profile of model crypto), load, batch, request size, the
/// git revision(s).
pub fn caption<'a>(records: impl IntoIterator<Item = &'a Record>) -> String {
    let mut n = BTreeSet::new();
    let (mut runtime, mut load, mut batch, mut tx, mut rev) = (
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
    );
    for r in records {
        n.insert(r.n);
        let sc = &r.scenario;
        runtime.insert(match (r.runtime.as_str(), r.crypto.as_str()) {
            ("sim", "model") => {
                let profile = sc["cost_profile"].as_str().unwrap_or("default");
                let profile = profile.split(" (").next().unwrap_or(profile);
                format!("simulated, model crypto ({profile} cost profile)")
            }
            ("sim", c) => format!("simulated, {c} crypto"),
            (rt, c) => format!("{rt}, {c} crypto"),
        });
        load.insert(match sc["load"]["mode"].as_str() {
            Some("open") => "open-loop load".to_string(),
            _ => format!(
                "closed loop, {} in flight per client",
                sc["load"]["outstanding"].as_u64().unwrap_or(1)
            ),
        });
        batch.insert(sc["batch"]["max_size"].as_u64().unwrap_or(0));
        tx.insert(sc["load"]["tx_size"].as_u64().unwrap_or(0));
        rev.insert(r.git_rev.clone());
    }
    let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(" / ");
    let nums = |s: &BTreeSet<u64>| {
        s.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join("/")
    };
    let ns = match (n.first(), n.last()) {
        (Some(a), Some(b)) if a == b => format!("n = {a}"),
        (Some(a), Some(b)) => format!("n = {a}…{b}"),
        _ => return String::new(),
    };
    format!(
        "{ns} · {} · {} · batch ≤ {} · {} B requests · git {}",
        join(&runtime),
        join(&load),
        nums(&batch),
        nums(&tx),
        join(&rev)
    )
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

fn figures(records: &[(String, Record)], knees: &[Knee]) -> Vec<Figure> {
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
    let scaling = records
        .iter()
        .map(|(_, r)| r)
        .filter(|r| faults(r) == 0 && !is_open_loop(r) && r.decisions > 0);
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
            units: (Unit::Count, if bytes { Unit::Bytes } else { Unit::Count }),
            x_ticks: Ticks::AtData,
            ..Panel::new(
                format!("{} per request, {about}", capitalized(what)),
                (
                    "replicas n",
                    if bytes {
                        "bytes per request"
                    } else {
                        "messages per request"
                    },
                ),
                (true, true),
                per_request(which, bytes),
            )
        })
        .filter(|p| p.series.iter().any(|s| s.points.len() >= 2))
        .collect();
        if !panels.is_empty() {
            figs.push(Figure {
                name,
                rows: 1,
                panels,
                caption: caption(scaling.clone()),
            });
        }
    }
    let rts = runtimes(records);
    let load: Vec<Panel> = rts
        .iter()
        .map(|(rt, about)| Panel {
            marks: knee_marks(knees, rt),
            ..Panel::new(
                format!("Throughput vs median latency, {about}"),
                ("throughput (tx/s)", "p50 latency (ms)"),
                (false, true),
                load_series(records, rt),
            )
        })
        .filter(|p| !p.series.is_empty())
        .collect();
    if !load.is_empty() {
        let mut c = caption(
            rts.iter()
                .flat_map(|(rt, _)| load_records(records, rt).map(|(_, r)| r)),
        );
        if let Some(k) = knees.first() {
            c.push_str(&format!(" · knee: {}", k.rule));
        }
        figs.push(Figure {
            rows: 1,
            name: "throughput_latency",
            panels: load,
            caption: c,
        });
    }
    let cdf: Vec<Panel> = rts
        .iter()
        .map(|(rt, about)| {
            Panel::new(
                format!("Latency CDF, {about}"),
                ("latency (ms)", "fraction of requests"),
                (true, false),
                cdf_series(records, rt),
            )
        })
        .filter(|p| !p.series.is_empty())
        .collect();
    if !cdf.is_empty() {
        figs.push(Figure {
            rows: 1,
            name: "latency_cdf",
            panels: cdf,
            caption: caption(
                records
                    .iter()
                    .map(|(_, r)| r)
                    .filter(|r| faults(r) == 0 && !r.latency_cdf.is_empty()),
            ),
        });
    }
    let vc = view_change_series(records, false);
    if !vc.is_empty() {
        figs.push(Figure {
            rows: 1,
            name: "view_change_cost",
            panels: vec![
                Panel {
                    x_ticks: Ticks::AtData,
                    ..Panel::new(
                        "Messages per view change (crashed leader)",
                        ("replicas n", "messages"),
                        (true, true),
                        vc,
                    )
                },
                Panel {
                    x_ticks: Ticks::AtData,
                    units: (Unit::Count, Unit::Bytes),
                    ..Panel::new(
                        "Bytes per view change",
                        ("replicas n", "bytes"),
                        (true, true),
                        view_change_series(records, true),
                    )
                },
            ],
            caption: caption(records.iter().map(|(_, r)| r).filter(|r| faults(r) > 0)),
        });
    }
    figs.extend(over_time::figure(records));
    figs
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Draws every plot the records support into `out_dir`; returns the files.
/// Knees found by saturation searches are marked on the throughput–latency
/// chart.
pub fn plot(
    records: &[(String, Record)],
    knees: &[Knee],
    out_dir: &Path,
) -> Result<Vec<PathBuf>, BenchError> {
    register_font();
    draw_all(&figures(records, knees), out_dir)
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
            panels.push(Panel::new(
                format!(
                    "{p}, n = 4: {}",
                    if row == 0 {
                        "throughput"
                    } else {
                        "median latency"
                    }
                ),
                axes,
                log,
                vec![
                    Series {
                        label: "QUIC on 127.0.0.1 (dashed)".into(),
                        points: curve(p, "quic", &value),
                        color,
                        dashed: true,
                    },
                    Series {
                        label: format!("simulated, {cores} shared cores"),
                        points: curve(p, "sim", &value),
                        color,
                        dashed: false,
                    },
                ],
            ));
        }
    }
    draw_all(
        &[Figure {
            name: "sim_vs_quic",
            rows: 2,
            panels,
            caption: caption(records.iter().map(|(_, r)| r)),
        }],
        out_dir,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
