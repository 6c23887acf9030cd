//! `bftbench compare`: a suite of named sweeps, each into its own results
//! directory, then plots, a CSV of everything and a static HTML report.
//!
//! ```toml
//! out_dir = "results"
//! [[sweeps]]
//! name = "scaling"                        # results/scaling/
//! scenario = "compare/scaling.toml"       # relative to this file
//! ```

use crate::BenchError;
use crate::record::Record;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    #[serde(default = "default_out")]
    pub out_dir: PathBuf,
    pub sweeps: Vec<SuiteSweep>,
    /// The simulator checked against QUIC (see [`crate::agreement`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_vs_quic: Option<SimVsQuic>,
}

/// `[sim_vs_quic]`: a QUIC scenario with a protocol × rate sweep; its
/// records go to `<out_dir>/sim-vs-quic/`, the comparison to
/// `<out_dir>/sim-vs-quic.csv` and `sim_vs_quic.png`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimVsQuic {
    pub scenario: PathBuf,
    #[serde(default)]
    pub about: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteSweep {
    pub name: String,
    pub scenario: PathBuf,
    /// What this sweep shows, for the report.
    #[serde(default)]
    pub about: String,
}

fn default_out() -> PathBuf {
    PathBuf::from("results")
}

impl Suite {
    pub fn load(path: &Path) -> Result<Suite, BenchError> {
        let text = std::fs::read_to_string(path).map_err(|source| BenchError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let mut suite: Suite = toml::from_str(&text).map_err(|source| BenchError::Parse {
            file: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for (i, s) in suite.sweeps.iter_mut().enumerate() {
            let valid = !s.name.is_empty()
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(BenchError::Invalid {
                    file: path.to_path_buf(),
                    key: format!("sweeps[{i}].name"),
                    value: format!("\"{}\"", s.name),
                    reason: "use letters, digits, '-' or '_' (it names a directory)".into(),
                });
            }
            s.scenario = base.join(&s.scenario);
        }
        if let Some(v) = &mut suite.sim_vs_quic {
            v.scenario = base.join(&v.scenario);
        }
        Ok(suite)
    }
}

/// Checks a file `bftbench` reads: a scenario, or a compare suite (a file
/// with `sweeps`), whose every scenario and every point of its sweep is
/// validated. Returns one line per file checked.
pub fn validate_file(path: &Path) -> Result<Vec<String>, BenchError> {
    use crate::scenario::{Overrides, Scenario, display_path};
    let text = std::fs::read_to_string(path).map_err(|source| BenchError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let is_suite = text
        .parse::<toml::Table>()
        .is_ok_and(|t| t.contains_key("sweeps"));
    let line = |file: &Path, s: &Scenario| {
        format!(
            "{}: ok ({} n={} f={} runtime={:?} crypto={})",
            file.display(),
            s.protocol,
            s.nodes,
            s.f(),
            s.runtime,
            s.crypto.as_str()
        )
    };
    if !is_suite {
        let s = Scenario::load(path, &Overrides::default())?;
        return Ok(vec![line(path, &s)]);
    }
    let suite = Suite::load(path)?;
    let files = suite
        .sweeps
        .iter()
        .map(|s| &s.scenario)
        .chain(suite.sim_vs_quic.iter().map(|v| &v.scenario));
    let mut lines = Vec::new();
    for file in files {
        let file = display_path(file);
        let s = Scenario::load(&file, &Overrides::default())?;
        for point in crate::sweep::points(&s, &file)? {
            point.scenario.validate(&file)?;
        }
        lines.push(line(&file, &s));
    }
    lines.push(format!(
        "{}: ok (a suite of {} sweeps{})",
        path.display(),
        suite.sweeps.len(),
        if suite.sim_vs_quic.is_some() {
            " and a sim-vs-QUIC section"
        } else {
            ""
        }
    ));
    Ok(lines)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Writes `index.html` in `out_dir`: the plots and a summary table, with
/// relative links only, so it opens offline.
pub fn write_html(
    out_dir: &Path,
    plots: &[PathBuf],
    sections: &[(SuiteSweep, Vec<(String, Record)>)],
    agreement: Option<(&SimVsQuic, &[crate::agreement::Row])>,
    commit: &str,
) -> Result<PathBuf, BenchError> {
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>bftbench comparison</title>\
         <style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}\
         table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
         th{background:#f3f3f3}td:first-child{text-align:left}img{max-width:100%;border:1px solid #eee;margin:1em 0}</style>\
         </head><body><h1>bftbench: PBFT vs QBFT vs chained HotStuff</h1>",
    );
    h.push_str(&format!(
        "<p>Made by <code>bftbench compare</code> at git revision <code>{}</code>. Every number below comes from the JSON records beside this page.</p>",
        esc(commit)
    ));
    for p in plots
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
    {
        let rel = p.strip_prefix(out_dir).unwrap_or(p);
        let svg = rel.with_extension("svg");
        h.push_str(&format!(
            "<a href=\"{}\"><img src=\"{}\" alt=\"{}\"></a>",
            esc(&svg.to_string_lossy()),
            esc(&rel.to_string_lossy()),
            esc(&rel.to_string_lossy())
        ));
    }
    for (sweep, records) in sections {
        h.push_str(&format!(
            "<h2>{}</h2><p>{}</p><table><tr>",
            esc(&sweep.name),
            esc(&sweep.about)
        ));
        for col in [
            "protocol",
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
            h.push_str(&format!("<th>{col}</th>"));
        }
        h.push_str("</tr>");
        for (file, r) in records {
            let offered = r.scenario["load"]["rate"]
                .as_f64()
                .map(|x| format!("{x:.0}"))
                .unwrap_or_else(|| "closed".into());
            h.push_str(&format!(
                "<tr><td><a href=\"{}/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.2}</td><td>{:.2}</td><td>{:.1}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&sweep.name),
                esc(file),
                esc(&r.protocol),
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
                    _ => "n/a (oracle runs in the simulator)",
                }
            ));
        }
        h.push_str("</table>");
    }
    if let Some((v, rows)) = agreement {
        h.push_str(&format!(
            "<h2>sim-vs-quic</h2><p>{}</p><p><a href=\"sim-vs-quic.csv\">sim-vs-quic.csv</a>, records in <a href=\"sim-vs-quic/\">sim-vs-quic/</a>.</p><table><tr><th>protocol</th><th>metric</th><th>simulated</th><th>QUIC</th><th>relative error</th></tr>",
            esc(&v.about)
        ));
        for r in rows {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:+.0}%</td></tr>",
                esc(&r.protocol),
                r.metric,
                r.sim,
                r.quic,
                r.relative_error() * 100.0
            ));
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    let path = out_dir.join("index.html");
    std::fs::write(&path, h).map_err(|source| BenchError::Write {
        file: path.clone(),
        source,
    })?;
    Ok(path)
}
