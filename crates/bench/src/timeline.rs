//! `bftbench timeline SCENARIO --from T --to T`: a message sequence
//! (Lamport) diagram of a simulated run, as SVG. One lane per replica, time
//! left to right; an arrow per protocol message from its send to its
//! arrival, coloured by kind; commits (dots), view timeouts (red bars),
//! crashes (a cross, the lane dashed while down); the view change shaded.
//!
//! **Time axis.** Stretches where nothing happens for longer than ten
//! one-way delays (the median arrow's transit) are cut out and drawn as a
//! labelled break (`⋯ 187 ms ⋯`), so a 200 ms timeout and the burst of
//! messages on either side of it fit one picture. Within a stretch the scale
//! is linear and the same for every stretch.
//!
//! **View change** (the shaded band): the same definition as the records'
//! ([`bft_sim::replacements`]): from the first view timeout of an honest
//! replica to the first decision an honest replica commits in a later
//! view; the band's label counts the arrows sent inside it.

use crate::BenchError;
use crate::protocols::BenchProtocol;
use crate::scenario::{Runtime, Scenario};
use bft_core::{Adversarial, NodeId, Time};
use bft_sim::timeline::Event;
use bft_sim::{Simulation, Timeline};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs the scenario in the simulator to `to` (plus the time for the last
/// messages to land) and returns what it sent from `from` to `to`.
pub fn record(s: &Scenario, from: Duration, to: Duration) -> Result<Timeline, BenchError> {
    if s.runtime != Runtime::Sim {
        return Err(BenchError::Unsupported(
            "bftbench timeline draws simulated runs: set runtime = \"sim\"".into(),
        ));
    }
    if from >= to {
        return Err(BenchError::Unsupported(format!(
            "--from {from:?} must be before --to {to:?}"
        )));
    }
    crate::with_protocol!(s.protocol, P => record_with::<P>(s, P::config(s), from, to))
}

fn record_with<P: Adversarial>(
    s: &Scenario,
    proto: P::Config,
    from: Duration,
    to: Duration,
) -> Result<Timeline, BenchError> {
    let mut sim = Simulation::<P>::new(crate::run::sim_config(s), proto)?;
    sim.record_timeline(from, to);
    // Messages sent just before `to` land after it.
    sim.run_until(Time::from_duration(to + Duration::from_secs(1)));
    sim.timeline()
        .cloned()
        .ok_or_else(|| BenchError::Unsupported("the simulator recorded no timeline".into()))
}

/// The first leader replacement in a timeline: (first view timeout of an
/// honest replica, first decision an honest replica commits in a later
/// view).
pub fn view_change(t: &Timeline) -> Option<(Time, Time)> {
    let (start, view) = t.marks.iter().find_map(|m| match m.event {
        Event::Timeout { view } if m.honest => Some((m.at, view)),
        _ => None,
    })?;
    let end = t.marks.iter().find_map(|m| match m.event {
        Event::Commit { view: v, .. } if m.honest && m.at >= start && v > view => Some(m.at),
        _ => None,
    })?;
    Some((start, end))
}

/// Cuts the timeline `after` past the end of its first view change (when
/// it has one), so a diagram shows the recovery and a few decisions after.
pub fn crop_after_recovery(t: &mut Timeline, after: Duration) {
    let Some((_, end)) = view_change(t) else {
        return;
    };
    let to = end.saturating_add(after);
    if to >= t.to {
        return;
    }
    t.to = to;
    t.arrows.retain(|a| a.sent <= to);
    t.marks.retain(|m| m.at <= to);
}

/// A piecewise-linear time axis with the idle stretches cut out.
struct Axis {
    /// (start, end, x of start) of each drawn stretch, in order.
    stretches: Vec<(Time, Time, f64)>,
    px_per_ns: f64,
}

/// Width of a cut-out stretch, pixels.
const BREAK_PX: f64 = 46.0;

impl Axis {
    fn new(t: &Timeline, x0: f64, width: f64) -> Axis {
        let mut times: Vec<u64> = t
            .arrows
            .iter()
            .flat_map(|a| [Some(a.sent), a.arrives.filter(|x| *x <= t.to)])
            .flatten()
            .chain(t.marks.iter().map(|m| m.at))
            .map(|x| x.0)
            .collect();
        times.push(t.from.0);
        times.push(t.to.0);
        times.sort_unstable();
        times.dedup();
        let mut transits: Vec<u64> = t
            .arrows
            .iter()
            .filter_map(|a| a.arrives.map(|r| r.0.saturating_sub(a.sent.0)))
            .collect();
        transits.sort_unstable();
        let delay = transits
            .get(transits.len() / 2)
            .copied()
            .unwrap_or(1_000_000);
        let gap = (10 * delay).max(1_000_000);
        let pad = delay.max(200_000);
        let mut spans: Vec<(u64, u64)> = Vec::new();
        for &x in &times {
            match spans.last_mut() {
                Some(s) if x <= s.1 + gap => s.1 = x,
                _ => spans.push((x, x)),
            }
        }
        let spans: Vec<(u64, u64)> = spans
            .into_iter()
            .map(|(a, b)| (a.saturating_sub(pad).max(t.from.0), b + pad))
            .collect();
        let active: u64 = spans.iter().map(|(a, b)| b - a).sum::<u64>().max(1);
        let breaks = spans.len().saturating_sub(1) as f64;
        let px_per_ns = ((width - breaks * BREAK_PX) / active as f64).max(1e-9);
        let mut x = x0;
        let stretches = spans
            .into_iter()
            .map(|(a, b)| {
                let s = (Time(a), Time(b), x);
                x += (b - a) as f64 * px_per_ns + BREAK_PX;
                s
            })
            .collect();
        Axis {
            stretches,
            px_per_ns,
        }
    }

    fn x(&self, at: Time) -> f64 {
        let mut last = None;
        for &(a, b, x) in &self.stretches {
            if at < a {
                // In a break: its left edge.
                return last.unwrap_or(x);
            }
            if at <= b {
                return x + (at.0 - a.0) as f64 * self.px_per_ns;
            }
            last = Some(x + (b.0 - a.0) as f64 * self.px_per_ns + BREAK_PX / 2.0);
        }
        last.unwrap_or(0.0)
    }
}

/// Ten colours that stay apart on white (Tableau 10).
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
    "#7f7f7f", "#d62728",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn ms(t: Time) -> String {
    format!("{:.1} ms", t.0 as f64 / 1e6)
}

/// The diagram as an SVG document.
pub fn svg(t: &Timeline, n: usize, title: &str, caption: &str) -> String {
    const LEFT: f64 = 110.0;
    const RIGHT: f64 = 30.0;
    const TOP: f64 = 96.0;
    const LANE: f64 = 64.0;
    let width = 1500.0;
    let lanes_h = LANE * n.saturating_sub(1) as f64;
    let height = TOP + lanes_h + 130.0;
    let axis = Axis::new(t, LEFT, width - LEFT - RIGHT);
    let y = |node: NodeId| TOP + LANE * node.index() as f64;
    let kinds = kinds(t);
    let colour = |kind: &str| {
        let i = kinds.keys().position(|k| *k == kind).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"13\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<defs>"
    );
    for (i, kind) in kinds.keys().enumerate() {
        let _ = write!(
            s,
            "<marker id=\"h{i}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{}\"/></marker>",
            colour(kind)
        );
    }
    s.push_str("</defs>\n");
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"26\" font-size=\"18\">{}</text>",
        esc(title)
    );
    // Legend: one swatch per kind, with its count in the window.
    let mut lx = LEFT;
    for (kind, count) in &kinds {
        let c = colour(kind);
        let _ = writeln!(
            s,
            "<line x1=\"{lx}\" y1=\"48\" x2=\"{}\" y2=\"48\" stroke=\"{c}\" stroke-width=\"2.5\"/><text x=\"{}\" y=\"52\">{} ({count})</text>",
            lx + 22.0,
            lx + 27.0,
            esc(kind)
        );
        lx += 48.0 + 8.5 * (kind.len() + count.to_string().len()) as f64;
    }
    let _ = writeln!(
        s,
        "<text x=\"{lx}\" y=\"52\"><tspan fill=\"black\">● commit</tspan>   <tspan fill=\"#d62728\">▮ view timeout</tspan>   ✕ crash</text>"
    );
    // The view change band.
    if let Some((a, b)) = view_change(t) {
        let (xa, xb) = (axis.x(a), axis.x(b));
        let sent = t
            .arrows
            .iter()
            .filter(|m| m.sent >= a && m.sent <= b)
            .count();
        let _ = writeln!(
            s,
            "<rect x=\"{xa:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"#fff3b0\"/><text x=\"{xa:.1}\" y=\"{}\" fill=\"#7a5c00\">view change: {:.1} ms, {sent} messages</text>",
            TOP - 24.0,
            (xb - xa).max(2.0),
            lanes_h + 40.0,
            TOP - 28.0,
            (b.0 - a.0) as f64 / 1e6
        );
    }
    // Lanes, dashed while the replica is down.
    for i in 0..n {
        let node = NodeId(i as u16);
        let yy = y(node);
        let _ = writeln!(s, "<text x=\"12\" y=\"{:.1}\">replica {i}</text>", yy + 4.0);
        let mut down: Option<Time> = None;
        let mut x = LEFT;
        let mut segs: Vec<(f64, f64, bool)> = Vec::new();
        for m in t.marks.iter().filter(|m| m.node == node) {
            match m.event {
                Event::Crash if down.is_none() => {
                    segs.push((x, axis.x(m.at), false));
                    x = axis.x(m.at);
                    down = Some(m.at);
                }
                Event::Restart if down.is_some() => {
                    segs.push((x, axis.x(m.at), true));
                    x = axis.x(m.at);
                    down = None;
                }
                _ => {}
            }
        }
        segs.push((x, width - RIGHT, down.is_some()));
        for (a, b, dashed) in segs {
            let style = if dashed {
                "stroke=\"#bbb\" stroke-dasharray=\"6 5\""
            } else {
                "stroke=\"#444\""
            };
            let _ = writeln!(
                s,
                "<line x1=\"{a:.1}\" y1=\"{yy}\" x2=\"{b:.1}\" y2=\"{yy}\" {style} stroke-width=\"1.5\"/>"
            );
        }
    }
    // Breaks in the time axis.
    for w in axis.stretches.windows(2) {
        let (_, end, x) = w[0];
        let (next, _, _) = w[1];
        let xb = x + (end.0 - w[0].0.0) as f64 * axis.px_per_ns;
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#f4f4f4\"/><text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#666\">⋯ {:.0} ms ⋯</text>",
            xb + 4.0,
            TOP - 14.0,
            BREAK_PX - 8.0,
            lanes_h + 28.0,
            xb + BREAK_PX / 2.0,
            TOP + lanes_h + 30.0,
            (next.0 - end.0) as f64 / 1e6
        );
    }
    // Arrows.
    for a in &t.arrows {
        let i = kinds.keys().position(|k| *k == a.kind).unwrap_or(0);
        let (x1, y1) = (axis.x(a.sent), y(a.from));
        let tip = format!(
            "{} {}→{} sent {} arrives {} ({} B)",
            a.kind,
            a.from.index(),
            a.to.index(),
            ms(a.sent),
            a.arrives.map_or("never (lost)".into(), ms),
            a.bytes
        );
        let (x2, y2, lost) = match a.arrives {
            Some(r) if r <= t.to => (axis.x(r), y(a.to), false),
            Some(_) => (width - RIGHT, y(a.to), false),
            None => (x1 + 20.0, (y1 + y(a.to)) / 2.0, true),
        };
        let _ = writeln!(
            s,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{}\" stroke-width=\"1.2\" opacity=\"0.85\"{}><title>{}</title></line>",
            colour(a.kind),
            if lost {
                String::new()
            } else {
                format!(" marker-end=\"url(#h{i})\"")
            },
            esc(&tip)
        );
    }
    // Marks.
    for m in &t.marks {
        let (x, yy) = (axis.x(m.at), y(m.node));
        let _ = match m.event {
            Event::Commit {
                slot,
                view,
                requests,
            } => writeln!(
                s,
                "<circle cx=\"{x:.1}\" cy=\"{yy}\" r=\"4\" fill=\"black\"><title>commit slot {slot} (view {view}, {requests} requests) at {}</title></circle>",
                ms(m.at)
            ),
            Event::Timeout { view } => writeln!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"4\" height=\"18\" fill=\"#d62728\"><title>view timeout in view {view} at {}</title></rect>",
                x - 2.0,
                yy - 9.0,
                ms(m.at)
            ),
            Event::Crash => writeln!(
                s,
                "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"20\" text-anchor=\"middle\">✕<title>crash at {}</title></text>",
                yy + 7.0,
                ms(m.at)
            ),
            Event::Restart => writeln!(
                s,
                "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"12\">restart</text>",
                yy - 10.0
            ),
        };
    }
    // Time ticks at each stretch's start and end.
    let axis_y = TOP + lanes_h + 52.0;
    for &(a, b, x) in &axis.stretches {
        let xb = x + (b.0 - a.0) as f64 * axis.px_per_ns;
        for (xx, at, anchor) in [(x, a, "start"), (xb, b, "end")] {
            let _ = writeln!(
                s,
                "<line x1=\"{xx:.1}\" y1=\"{}\" x2=\"{xx:.1}\" y2=\"{}\" stroke=\"#888\"/><text x=\"{xx:.1}\" y=\"{}\" text-anchor=\"{anchor}\" font-size=\"11\" fill=\"#444\">{:.3} s</text>",
                axis_y - 6.0,
                axis_y,
                axis_y + 14.0,
                at.as_secs_f64()
            );
        }
    }
    let _ = writeln!(
        s,
        "<text x=\"12\" y=\"{:.1}\" fill=\"#555\">{}</text>",
        height - 28.0,
        esc(caption)
    );
    if t.dropped > 0 {
        let _ = writeln!(
            s,
            "<text x=\"12\" y=\"{:.1}\" fill=\"#d62728\">{} more messages and marks in the window were not kept (memory bound): narrow --from/--to</text>",
            height - 10.0,
            t.dropped
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The caption under a diagram: the scenario's setup.
pub fn caption(s: &Scenario, t: &Timeline) -> String {
    format!(
        "{} n = {} · simulated, {} crypto · {} · window {:.3}–{:.3} s · {} messages · seed {} · git {}",
        s.protocol.as_str(),
        s.nodes,
        s.crypto.as_str(),
        match &s.network.delay {
            bft_sim::DelayModel::Fixed(d) => format!("one-way delay {d:?}"),
            bft_sim::DelayModel::Uniform { min, max } => format!("one-way delay {min:?}–{max:?}"),
            bft_sim::DelayModel::Regions(_) => "region latency matrix".into(),
        },
        t.from.as_secs_f64(),
        t.to.as_secs_f64(),
        t.arrows.len(),
        s.seed,
        crate::record::git_rev()
    )
}

/// Records and draws one diagram per point of the scenario's sweep
/// (usually one per protocol) into `out_dir/timeline-<point>.svg`.
pub fn draw(
    base: &Scenario,
    file: &Path,
    from: Duration,
    to: Duration,
    after_recovery: Option<Duration>,
    out_dir: &Path,
) -> Result<Vec<PathBuf>, BenchError> {
    std::fs::create_dir_all(out_dir).map_err(|source| BenchError::Write {
        file: out_dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for point in crate::sweep::points(base, file)? {
        let s = &point.scenario;
        let mut t = record(s, from, to)?;
        if let Some(after) = after_recovery {
            crop_after_recovery(&mut t, after);
        }
        let title = format!(
            "{}, n = {}: every protocol message from {:.3} s to {:.3} s",
            s.protocol.as_str(),
            s.nodes,
            t.from.as_secs_f64(),
            t.to.as_secs_f64()
        );
        let path = out_dir.join(format!("timeline-{}.svg", point.name));
        std::fs::write(&path, svg(&t, s.nodes, &title, &caption(s, &t))).map_err(|source| {
            BenchError::Write {
                file: path.clone(),
                source,
            }
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Counts per kind of the arrows in a timeline (for tests and summaries).
pub fn kinds(t: &Timeline) -> BTreeMap<&'static str, usize> {
    let mut k = BTreeMap::new();
    for a in &t.arrows {
        *k.entry(a.kind).or_default() += 1;
    }
    k
}
