//! `results/index.html`: one page that opens offline (inline style and
//! script, relative links only): what was run and on what, then per
//! section its setup in words, its plot, a sortable table linking every
//! record and the scenario it came from; the saturation knees, the
//! sim-vs-QUIC agreement and the message timelines where the suite has them.

use crate::BenchError;
use crate::agreement::Row;
use crate::record::Record;
use crate::saturate::Knee;
use crate::suite::{SimVsQuic, SuiteSweep, SuiteTimeline};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Everything the page shows.
pub struct Page<'a> {
    pub out_dir: &'a Path,
    /// Plot files (PNG and SVG) under `out_dir`.
    pub plots: &'a [PathBuf],
    pub sections: &'a [(SuiteSweep, Vec<(String, Record)>)],
    pub knees: &'a [Knee],
    pub agreement: Option<(&'a SimVsQuic, &'a [Row])>,
    pub timelines: Option<(&'a SuiteTimeline, &'a [PathBuf])>,
    pub commit: &'a str,
    /// The 1-minute load average when the run started.
    pub load_average: Option<f64>,
    pub elapsed_s: f64,
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:DejaVu Sans,sans-serif;max-width:1250px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;font-size:13px;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f3f3f3;cursor:pointer;user-select:none}th:hover{background:#e6e6e6}td:first-child,th:first-child{text-align:left}\
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:14px;color:#444}\
.setup{background:#f7f7f2;border-left:4px solid #c9c38c;padding:.4em .8em;font-size:14px}nav a{margin-right:1em}\
code{background:#f3f3f3;padding:0 3px}";

/// Click a header to sort by that column (numbers as numbers), again to
/// reverse. Once loaded, the page's height is left in a `data-height`
/// attribute for scripts/screenshot.sh.
const SCRIPT: &str = "window.addEventListener('load',function(){document.documentElement.dataset.height=document.documentElement.scrollHeight;});document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){\
var t=th.closest('table'),i=Array.prototype.indexOf.call(th.parentNode.children,th),rows=Array.prototype.slice.call(t.querySelectorAll('tr')).slice(1);\
var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';\
rows.sort(function(a,b){var x=a.children[i].textContent,y=b.children[i].textContent,nx=parseFloat(x),ny=parseFloat(y);\
var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c;});rows.forEach(function(r){t.appendChild(r);});});});";

/// What each plot shows, for its caption.
fn plot_caption(name: &str) -> &'static str {
    match name {
        "messages_vs_n" => {
            "Protocol messages per committed request as the committee grows (log–log). The fitted slope is the exponent: about 2 where every replica votes to every other (PBFT, QBFT), about 1 where the leader collects votes (HotStuff)."
        }
        "bytes_vs_n" => {
            "Wire bytes per committed request, same runs. HotStuff's aggregated BLS certificate keeps its votes constant-size."
        }
        "throughput_latency" => {
            "Completed throughput against median latency as the offered open-loop rate rises, one panel per runtime. Rings mark each protocol's saturation knee where a search found it (rule in the caption); past it, throughput stops rising and latency climbs."
        }
        "latency_cdf" => {
            "Distribution of end-to-end latency at the highest offered rate each protocol still sustained."
        }
        "view_change_cost" => {
            "Messages and bytes per leader replacement after the first leader crashes, per committee size."
        }
        "sim_vs_quic" => {
            "The simulator against real QUIC on this machine at the same offered rates: throughput (top) and median latency (bottom), QUIC dashed."
        }
        _ => "",
    }
}

fn figure(h: &mut String, out_dir: &Path, png: &Path) {
    let rel = png.strip_prefix(out_dir).unwrap_or(png);
    let name = rel
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let svg = rel.with_extension("svg");
    let _ = write!(
        h,
        "<figure id=\"plot-{}\"><a href=\"{}\"><img src=\"{}\" alt=\"{}\"></a><figcaption>{} <a href=\"{}\">SVG</a></figcaption></figure>",
        esc(&name),
        esc(&svg.to_string_lossy()),
        esc(&rel.to_string_lossy()),
        esc(&name),
        esc(plot_caption(&name)),
        esc(&svg.to_string_lossy()),
    );
}

/// The plots a section's records feed.
fn plots_for(section: &str) -> &'static [&'static str] {
    match section {
        "scaling" | "scaling-lone" => &["messages_vs_n", "bytes_vs_n"],
        "load" | "quic" => &["throughput_latency", "latency_cdf"],
        "viewchange" => &["view_change_cost"],
        _ => &[],
    }
}

fn records_table(h: &mut String, dir: &str, records: &[(String, Record)]) {
    h.push_str("<table class=\"sortable\"><tr>");
    for col in [
        "record",
        "n",
        "runtime",
        "crypto",
        "offered tx/s",
        "tx/s",
        "p50 ms",
        "p99 ms",
        "msgs/request",
        "bytes/request",
        "empty decisions",
        "view changes",
        "safe",
    ] {
        let _ = write!(h, "<th>{col}</th>");
    }
    h.push_str("</tr>");
    for (file, r) in records {
        let offered = r.scenario["load"]["rate"]
            .as_f64()
            .map(|x| format!("{x:.0}"))
            .unwrap_or_else(|| "closed".into());
        let _ = write!(
            h,
            "<tr><td><a href=\"{}/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.2}</td><td>{:.2}</td><td>{:.1}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(dir),
            esc(file),
            esc(file.trim_end_matches(".json")),
            r.n,
            esc(&r.runtime),
            esc(&r.crypto),
            offered,
            r.throughput_tx_s,
            r.latency_ms.p50,
            r.latency_ms.p99,
            r.messages_per_request,
            r.bytes_per_request,
            r.empty_decisions,
            r.view_changes
                .map_or_else(|| "n/a".to_string(), |k| k.to_string()),
            match (r.runtime.as_str(), r.safety_violations.is_empty()) {
                ("sim", true) => "yes",
                ("sim", false) => "NO",
                _ => "n/a (the oracle runs in the simulator)",
            }
        );
    }
    h.push_str("</table>");
}

fn knees_table(h: &mut String, knees: &[&Knee]) {
    let Some(first) = knees.first() else { return };
    let _ = write!(
        h,
        "<p>Saturation found by search (<code>bftbench saturate</code>): the highest offered rate {}.</p><table class=\"sortable\"><tr><th>protocol</th><th>n</th><th>runtime</th><th>knee tx/s</th><th>completed tx/s</th><th>p50 ms</th><th>p99 ms</th><th>first unsustained</th><th>probes</th></tr>",
        esc(&first.rule.replacen("sustained: ", "with ", 1))
    );
    for k in knees {
        let at = k.at_knee();
        let cell = |x: Option<f64>, digits: usize| {
            x.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&k.protocol),
            k.n,
            esc(&k.runtime),
            cell(k.knee_rate, 0),
            cell(at.map(|p| p.throughput_tx_s), 0),
            cell(at.map(|p| p.p50_ms), 2),
            cell(at.map(|p| p.p99_ms), 2),
            k.first_unsustained.map_or_else(
                || "none up to the range's end".to_string(),
                |v| format!("{v:.0}")
            ),
            k.probes.len()
        );
    }
    h.push_str("</table>");
}

/// Writes `index.html` in the page's `out_dir`.
pub fn write(page: &Page) -> Result<PathBuf, BenchError> {
    let out_dir = page.out_dir;
    let mut h = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>bftbench: PBFT vs QBFT vs chained HotStuff</title><style>{STYLE}</style></head><body><h1>bftbench: PBFT vs QBFT vs chained HotStuff</h1>"
    );
    let env = page
        .sections
        .iter()
        .flat_map(|(_, rs)| rs.first())
        .map(|(_, r)| &r.environment)
        .next();
    let _ = write!(
        h,
        "<p class=\"setup\">Made by <code>bftbench compare</code> at git revision <code>{}</code> in {:.0} s{}{}. Every number on this page comes from the JSON records it links; <code>summary.csv</code> has them all in one table. Simulated runs are deterministic (same seed, same trace hash); QUIC runs are wall-clock measurements of this machine.</p>",
        esc(page.commit),
        page.elapsed_s,
        env.map_or_else(String::new, |e| format!(
            " on {} cores ({} {})",
            e.cores,
            esc(&e.os),
            esc(&e.arch)
        )),
        page.load_average.map_or_else(String::new, |l| format!(
            ", load average {l:.2} at the start"
        )),
    );
    h.push_str("<nav>");
    for (sweep, _) in page.sections {
        let _ = write!(h, "<a href=\"#{0}\">{0}</a>", esc(&sweep.name));
    }
    if page.agreement.is_some() {
        h.push_str("<a href=\"#sim-vs-quic\">sim-vs-quic</a>");
    }
    if page.timelines.is_some() {
        h.push_str("<a href=\"#timeline\">timeline</a>");
    }
    h.push_str("<a href=\"summary.csv\">summary.csv</a></nav>");
    let mut drawn: Vec<&str> = Vec::new();
    for (sweep, records) in page.sections {
        let setup = crate::plot::caption(records.iter().map(|(_, r)| r));
        let scenario = sweep
            .scenario
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = write!(
            h,
            "<h2 id=\"{0}\">{0}</h2><p>{1}</p><p class=\"setup\">Setup: {2}. Scenario: <a href=\"{0}/{3}\">{3}</a>; records in <a href=\"{0}/\">{0}/</a>.</p>",
            esc(&sweep.name),
            esc(&sweep.about),
            esc(&setup),
            esc(&scenario)
        );
        for name in plots_for(&sweep.name) {
            if drawn.contains(name) {
                continue;
            }
            if let Some(p) = page.plots.iter().find(|p| {
                p.extension().is_some_and(|e| e == "png")
                    && p.file_stem().is_some_and(|s| s == *name)
            }) {
                figure(&mut h, out_dir, p);
                drawn.push(name);
            }
        }
        let knees: Vec<&Knee> = page
            .knees
            .iter()
            .filter(|k| {
                records
                    .iter()
                    .any(|(_, r)| r.runtime == k.runtime && r.protocol == k.protocol)
            })
            .collect();
        if sweep.saturate.is_some() {
            knees_table(&mut h, &knees);
        }
        records_table(&mut h, &sweep.name, records);
    }
    if let Some((v, rows)) = page.agreement {
        let _ = write!(
            h,
            "<h2 id=\"sim-vs-quic\">sim-vs-quic</h2><p class=\"setup\">{}</p><p><a href=\"sim-vs-quic.csv\">sim-vs-quic.csv</a>, records in <a href=\"sim-vs-quic/\">sim-vs-quic/</a>.</p>",
            esc(&v.about)
        );
        if let Some(p) = page
            .plots
            .iter()
            .find(|p| p.file_name().is_some_and(|f| f == "sim_vs_quic.png"))
        {
            figure(&mut h, out_dir, p);
        }
        h.push_str("<table class=\"sortable\"><tr><th>protocol</th><th>metric</th><th>simulated</th><th>QUIC</th><th>relative error</th></tr>");
        for r in rows {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:+.0}%</td></tr>",
                esc(&r.protocol),
                r.metric,
                r.sim,
                r.quic,
                r.relative_error() * 100.0
            );
        }
        h.push_str("</table>");
    }
    if let Some((t, files)) = page.timelines {
        let _ = write!(
            h,
            "<h2 id=\"timeline\">timeline</h2><p class=\"setup\">{}</p>",
            esc(&t.about)
        );
        for f in files {
            let rel = f.strip_prefix(out_dir).unwrap_or(f);
            let _ = write!(
                h,
                "<figure><a href=\"{0}\"><img src=\"{0}\" alt=\"{0}\"></a><figcaption>Hover an arrow for its kind, endpoints, times and size. <a href=\"{0}\">SVG</a></figcaption></figure>",
                esc(&rel.to_string_lossy())
            );
        }
    }
    let _ = writeln!(h, "<script>{SCRIPT}</script></body></html>");
    let path = out_dir.join("index.html");
    std::fs::write(&path, h).map_err(|source| BenchError::Write {
        file: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Copies each section's scenario file beside its records, so the page
/// links what was run.
pub fn copy_scenarios(
    out_dir: &Path,
    sections: &[(SuiteSweep, Vec<(String, Record)>)],
) -> Result<(), BenchError> {
    for (sweep, _) in sections {
        let Some(name) = sweep.scenario.file_name() else {
            continue;
        };
        let to = out_dir.join(&sweep.name).join(name);
        std::fs::copy(&sweep.scenario, &to).map_err(|source| BenchError::Write {
            file: to.clone(),
            source,
        })?;
    }
    Ok(())
}
