//! 6. throughput, latency and memory over time, for runs of at least a
//!    minute (soaks): one line per record, coloured by protocol, from
//!    [`Record::over_time`] (completions per second, p50 dashed and p99,
//!    the process's resident memory where measured).

use super::{Figure, Panel, Series, Unit, caption, protocol_color};
use crate::record::Record;

/// Runs shorter than this many seconds are left out: a figure over time is
/// for soaks, not for every short run of a sweep.
pub const MIN_SECONDS: usize = 60;

/// Protocol, runtime and n, and the offered rate of an open-loop run, so
/// that the runs of one protocol in a search or sweep tell apart.
fn label(r: &Record) -> String {
    let open = r.scenario.pointer("/load/mode").and_then(|m| m.as_str()) == Some("open");
    let rate = r.scenario.pointer("/load/rate").and_then(|v| v.as_f64());
    match rate.filter(|_| open) {
        Some(rate) => format!("{} ({}, n={}) at {rate:.0}/s", r.protocol, r.runtime, r.n),
        None => format!("{} ({}, n={})", r.protocol, r.runtime, r.n),
    }
}

fn line(
    r: &Record,
    dashed: bool,
    suffix: &str,
    y: impl Fn(&bft_load::SeriesPoint) -> Option<f64>,
) -> Series {
    Series {
        label: format!("{}{suffix}", label(r)),
        points: r
            .over_time
            .iter()
            .filter_map(|p| y(p).map(|v| (p.t_s, v)))
            .collect(),
        color: protocol_color(&r.protocol),
        dashed,
    }
}

/// The figure, if any record ran long enough.
pub fn figure(records: &[(String, Record)]) -> Option<Figure> {
    let long: Vec<&Record> = records
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r.over_time.len() >= MIN_SECONDS)
        .collect();
    if long.is_empty() {
        return None;
    }
    let axes = |y| ("seconds since the load started", y);
    let throughput = long
        .iter()
        .map(|r| line(r, false, "", |p| Some(p.completed as f64)))
        .collect();
    let latency = long
        .iter()
        .flat_map(|r| {
            let busy = |p: &bft_load::SeriesPoint| p.completed > 0;
            [
                line(r, false, " p99", move |p| busy(p).then_some(p.p99_ms)),
                line(r, true, " p50", move |p| busy(p).then_some(p.p50_ms)),
            ]
        })
        .collect();
    let memory: Vec<Series> = long
        .iter()
        .map(|r| line(r, false, "", |p| p.rss_bytes.map(|b| b as f64)))
        .filter(|s| !s.points.is_empty())
        .collect();
    let mut panels = vec![
        Panel::new(
            "Completed requests per second",
            axes("requests/s"),
            (false, false),
            throughput,
        ),
        Panel::new(
            "Latency of the requests completed in each second (p99, p50 dashed)",
            axes("ms"),
            (false, false),
            latency,
        ),
    ];
    if !memory.is_empty() {
        panels.push(Panel {
            units: (Unit::Count, Unit::Bytes),
            ..Panel::new(
                "Resident memory of the process running the replicas and clients",
                axes("bytes"),
                (false, false),
                memory,
            )
        });
    }
    Some(Figure {
        name: "over_time",
        rows: panels.len(),
        panels,
        caption: caption(long.iter().copied()),
    })
}
