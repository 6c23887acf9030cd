//! `bftbench diff OLD NEW [--threshold 10%]`: the regression gate. Two
//! result directories are compared record by record (matched by their path
//! inside the directory) and knee by knee (`saturation.json`), figure by
//! figure; a figure that got worse by more than the threshold is a
//! regression, and `bftbench diff` then exits with 1.
//!
//! The figures and which way is better are [`METRICS`]; a change is
//! (new − old) / old. Two records are compared only when they ran the same
//! scenario (the resolved scenario in the record, cost model included);
//! otherwise the record is listed as a changed setup, since its figures
//! answer a different question. A figure missing on either side (nothing
//! committed, no view change, a QUIC record without view-change counts) is
//! not compared. A safety violation in NEW where OLD had none is always a
//! regression. QUIC records are wall-clock figures of the machine they ran
//! on and move by tens of percent between runs on a shared machine:
//! `--runtime sim` gates on the deterministic simulated figures only.

use crate::BenchError;
use crate::record::Record;
use crate::saturate::Knee;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Which way a figure improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// One compared figure of a record.
pub struct Metric {
    pub name: &'static str,
    pub better: Better,
    /// None: the record has no such figure.
    pub value: fn(&Record) -> Option<f64>,
}

fn committed(r: &Record) -> bool {
    r.requests_committed > 0
}

fn per_view_change(r: &Record, total: Option<u64>) -> Option<f64> {
    let k = r.view_changes.filter(|&k| k > 0)?;
    Some(total? as f64 / k as f64)
}

/// Every figure the gate compares, with the same definition for every
/// protocol (those of [`Record`]).
pub const METRICS: &[Metric] = &[
    Metric {
        name: "throughput tx/s",
        better: Better::Higher,
        value: |r| committed(r).then_some(r.throughput_tx_s),
    },
    Metric {
        name: "p50 ms",
        better: Better::Lower,
        value: |r| (r.latency_ms.count > 0).then_some(r.latency_ms.p50),
    },
    Metric {
        name: "p99 ms",
        better: Better::Lower,
        value: |r| (r.latency_ms.count > 0).then_some(r.latency_ms.p99),
    },
    Metric {
        name: "messages/request",
        better: Better::Lower,
        value: |r| committed(r).then_some(r.messages_per_request),
    },
    Metric {
        name: "bytes/request",
        better: Better::Lower,
        value: |r| committed(r).then_some(r.bytes_per_request),
    },
    Metric {
        name: "messages/view change",
        better: Better::Lower,
        value: |r| per_view_change(r, r.view_change_messages),
    },
    Metric {
        name: "bytes/view change",
        better: Better::Lower,
        value: |r| per_view_change(r, r.view_change_bytes),
    },
    Metric {
        name: "view change s",
        better: Better::Lower,
        value: |r| r.view_changes.filter(|&k| k > 0).and(r.view_change_s),
    },
];

/// One compared figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The record's path, or `<dir>/saturation.json protocol n=N runtime`.
    pub what: String,
    pub runtime: String,
    pub metric: &'static str,
    pub old: f64,
    pub new: f64,
    /// (new − old) / old, signed so that positive is worse.
    pub worse_by: f64,
}

/// The comparison of two directories.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub threshold: f64,
    pub compared: usize,
    pub changes: Vec<Change>,
    pub only_old: Vec<String>,
    pub only_new: Vec<String>,
    /// Records on both sides whose scenarios differ: not compared.
    pub changed_setup: Vec<String>,
}

impl Report {
    pub fn regressions(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.worse_by > self.threshold)
    }

    pub fn improvements(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| -c.worse_by > self.threshold)
    }
}

/// How much worse `new` is than `old`, as a fraction of `old` (negative:
/// better). None when `old` is 0 (no ratio), unless both are 0.
pub fn worse_by(better: Better, old: f64, new: f64) -> Option<f64> {
    if old == new {
        return Some(0.0);
    }
    if old == 0.0 || !old.is_finite() || !new.is_finite() {
        return None;
    }
    let change = (new - old) / old.abs();
    Some(match better {
        Better::Higher => -change,
        Better::Lower => change,
    })
}

/// Parses `10%` or `0.1` into 0.1.
pub fn parse_threshold(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| {
        format!("--threshold {s}: expected a percentage like 10% or a fraction like 0.1")
    })?;
    if !(v.is_finite() && v >= 0.0) || (!t.ends_with('%') && v > 1.0) {
        return Err(format!(
            "--threshold {s}: expected a percentage like 10% or a fraction in [0, 1]"
        ));
    }
    Ok(v)
}

/// Compares records (matched by name) and knees (matched by directory,
/// protocol, n and runtime), of one runtime when `runtime` says so.
pub fn compare(
    old: &[(String, Record)],
    new: &[(String, Record)],
    old_knees: &[(String, Knee)],
    new_knees: &[(String, Knee)],
    threshold: f64,
    runtime: Option<&str>,
) -> Report {
    let mut report = Report {
        threshold,
        ..Report::default()
    };
    let wanted = |r: &Record| runtime.is_none_or(|rt| r.runtime == rt);
    let by = |rs: &'_ [(String, Record)]| -> BTreeMap<String, Record> {
        rs.iter()
            .filter(|(_, r)| wanted(r))
            .map(|(f, r)| (f.clone(), r.clone()))
            .collect()
    };
    let (old_by, new_by) = (by(old), by(new));
    for (file, o) in &old_by {
        let Some(n) = new_by.get(file) else {
            report.only_old.push(file.to_string());
            continue;
        };
        if o.scenario != n.scenario {
            report.changed_setup.push(file.to_string());
            continue;
        }
        report.compared += 1;
        for m in METRICS {
            let (Some(a), Some(b)) = ((m.value)(o), (m.value)(n)) else {
                continue;
            };
            if let Some(w) = worse_by(m.better, a, b) {
                report.changes.push(Change {
                    what: file.to_string(),
                    runtime: n.runtime.clone(),
                    metric: m.name,
                    old: a,
                    new: b,
                    worse_by: w,
                });
            }
        }
        let (a, b) = (o.safety_violations.len(), n.safety_violations.len());
        if a == 0 && b > 0 {
            report.changes.push(Change {
                what: file.to_string(),
                runtime: n.runtime.clone(),
                metric: "safety violations",
                old: 0.0,
                new: b as f64,
                worse_by: f64::INFINITY,
            });
        }
    }
    report.only_new = new_by
        .keys()
        .filter(|f| !old_by.contains_key(*f))
        .map(|f| f.to_string())
        .collect();
    let key = |(dir, k): &(String, Knee)| format!("{dir} {} n={} {}", k.protocol, k.n, k.runtime);
    let old_k: BTreeMap<String, &Knee> = old_knees.iter().map(|e| (key(e), &e.1)).collect();
    for e in new_knees
        .iter()
        .filter(|e| runtime.is_none_or(|rt| e.1.runtime == rt))
    {
        let Some(o) = old_k.get(&key(e)) else {
            continue;
        };
        let (Some(a), Some(b)) = (o.knee_rate, e.1.knee_rate) else {
            continue;
        };
        if let Some(w) = worse_by(Better::Higher, a, b) {
            report.changes.push(Change {
                what: key(e),
                runtime: e.1.runtime.clone(),
                metric: "knee tx/s",
                old: a,
                new: b,
                worse_by: w,
            });
        }
    }
    report
}

/// Knees of every `saturation.json` under `dir`, with the directory they
/// are in (relative to `dir`).
pub fn knees_in(dir: &Path) -> Vec<(String, Knee)> {
    let mut out = Vec::new();
    for sub in std::iter::once(dir.to_path_buf()).chain(subdirs(dir)) {
        let file = sub.join(crate::saturate::FILE);
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Ok(knees) = serde_json::from_str::<Vec<Knee>>(&text) else {
            continue;
        };
        let rel = sub
            .strip_prefix(dir)
            .map_or_else(|_| sub.display().to_string(), |p| p.display().to_string());
        out.extend(knees.into_iter().map(|k| (rel.clone(), k)));
    }
    out
}

fn subdirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if p.is_dir() {
                out.extend(subdirs(&p));
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Reads both directories and compares them.
pub fn diff_dirs(
    old: &Path,
    new: &Path,
    threshold: f64,
    runtime: Option<&str>,
) -> Result<Report, BenchError> {
    let (o, n) = (
        crate::sweep::read_records(old)?,
        crate::sweep::read_records(new)?,
    );
    Ok(compare(
        &o,
        &n,
        &knees_in(old),
        &knees_in(new),
        threshold,
        runtime,
    ))
}

/// The table `bftbench diff` prints: every change past the threshold
/// (regressions first), or every compared figure with `all`, then a summary.
pub fn table(r: &Report, all: bool) -> String {
    let mut out = String::new();
    let pct = r.threshold * 100.0;
    let mut rows: Vec<&Change> = if all {
        r.changes.iter().collect()
    } else {
        r.regressions().chain(r.improvements()).collect()
    };
    rows.sort_by(|a, b| b.worse_by.total_cmp(&a.worse_by));
    if !rows.is_empty() {
        let _ = writeln!(
            out,
            "{:<44}{:>8}{:>22}{:>14}{:>14}{:>10}  verdict",
            "record", "runtime", "figure", "old", "new", "change"
        );
    }
    for c in rows {
        let verdict = if c.worse_by > r.threshold {
            "REGRESSION"
        } else if -c.worse_by > r.threshold {
            "better"
        } else {
            ""
        };
        let change = if c.worse_by.is_finite() {
            format!("{:+.1}%", (c.new - c.old) / c.old.abs() * 100.0)
        } else {
            "new".into()
        };
        let _ = writeln!(
            out,
            "{:<44}{:>8}{:>22}{:>14.4}{:>14.4}{:>10}  {verdict}",
            c.what, c.runtime, c.metric, c.old, c.new, change
        );
    }
    let _ = writeln!(
        out,
        "compared {} records ({} figures): {} regressions and {} improvements beyond {pct}%; not compared: {} records whose scenario changed, {} only in OLD, {} only in NEW",
        r.compared,
        r.changes.len(),
        r.regressions().count(),
        r.improvements().count(),
        r.changed_setup.len(),
        r.only_old.len(),
        r.only_new.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tput: f64, p99: f64, msgs: f64) -> Record {
        let mut r = Record {
            runtime: "sim".into(),
            requests_committed: 100,
            throughput_tx_s: tput,
            messages_per_request: msgs,
            bytes_per_request: 1000.0,
            ..Record::default()
        };
        r.latency_ms.count = 100;
        r.latency_ms.p50 = 1.0;
        r.latency_ms.p99 = p99;
        r
    }

    fn one(name: &str, r: Record) -> Vec<(String, Record)> {
        vec![(name.to_string(), r)]
    }

    #[test]
    fn a_throughput_drop_past_the_threshold_is_a_regression_and_a_smaller_one_is_not() {
        let old = one("load/pbft-r1000.json", record(1000.0, 10.0, 24.0));
        let slower = one("load/pbft-r1000.json", record(850.0, 10.0, 24.0));
        let r = compare(&old, &slower, &[], &[], 0.10, None);
        let reg: Vec<_> = r.regressions().map(|c| (c.metric, c.worse_by)).collect();
        assert_eq!(reg.len(), 1);
        assert_eq!(reg[0].0, "throughput tx/s");
        assert!((reg[0].1 - 0.15).abs() < 1e-12);
        let close = one("load/pbft-r1000.json", record(950.0, 10.0, 24.0));
        assert_eq!(
            compare(&old, &close, &[], &[], 0.10, None)
                .regressions()
                .count(),
            0
        );
    }

    #[test]
    fn fewer_messages_and_lower_latency_are_improvements_not_regressions() {
        let old = one("s/x.json", record(1000.0, 10.0, 24.0));
        let new = one("s/x.json", record(1000.0, 5.0, 12.0));
        let r = compare(&old, &new, &[], &[], 0.10, None);
        assert_eq!(r.regressions().count(), 0);
        let better: Vec<_> = r.improvements().map(|c| c.metric).collect();
        assert_eq!(better, ["p99 ms", "messages/request"]);
    }

    #[test]
    fn a_new_safety_violation_is_always_a_regression() {
        let old = one("s/x.json", record(1000.0, 10.0, 24.0));
        let mut bad = record(1000.0, 10.0, 24.0);
        bad.safety_violations.push("two values at slot 3".into());
        let r = compare(&old, &one("s/x.json", bad), &[], &[], 0.5, None);
        let reg: Vec<_> = r.regressions().map(|c| c.metric).collect();
        assert_eq!(reg, ["safety violations"]);
    }

    #[test]
    fn records_on_one_side_only_are_listed_not_compared() {
        let old = one("a.json", record(1.0, 1.0, 1.0));
        let new = one("b.json", record(1.0, 1.0, 1.0));
        let r = compare(&old, &new, &[], &[], 0.1, None);
        assert_eq!((r.compared, r.only_old.len(), r.only_new.len()), (0, 1, 1));
        assert_eq!(r.regressions().count(), 0);
    }

    #[test]
    fn a_lower_knee_is_a_regression() {
        let knee = |rate: f64| Knee {
            protocol: "qbft".into(),
            n: 4,
            runtime: "quic".into(),
            rule: String::new(),
            config: crate::saturate::SearchConfig::default(),
            knee_rate: Some(rate),
            first_unsustained: None,
            probes: Vec::new(),
        };
        let old = vec![("quic".to_string(), knee(50_000.0))];
        let new = vec![("quic".to_string(), knee(40_000.0))];
        let r = compare(&[], &[], &old, &new, 0.1, None);
        let reg: Vec<_> = r.regressions().map(|c| c.what.as_str()).collect();
        assert_eq!(reg, ["quic qbft n=4 quic"]);
    }

    #[test]
    fn records_of_a_different_scenario_are_not_compared() {
        let old = one("load/x.json", record(1000.0, 10.0, 24.0));
        let mut other = record(500.0, 10.0, 24.0);
        other.scenario = serde_json::json!({"load": {"rate": 500.0}});
        let r = compare(&old, &one("load/x.json", other), &[], &[], 0.1, None);
        assert_eq!((r.compared, r.changed_setup.len()), (0, 1));
        assert_eq!(r.regressions().count(), 0);
    }

    #[test]
    fn a_runtime_filter_leaves_the_other_runtime_out() {
        let old = one("quic/x.json", record(1000.0, 10.0, 24.0));
        let mut slow = record(500.0, 10.0, 24.0);
        slow.runtime = "quic".into();
        let mut old_quic = old.clone();
        old_quic[0].1.runtime = "quic".into();
        let new = one("quic/x.json", slow);
        assert_eq!(
            compare(&old_quic, &new, &[], &[], 0.1, None)
                .regressions()
                .count(),
            1
        );
        let sim_only = compare(&old_quic, &new, &[], &[], 0.1, Some("sim"));
        assert_eq!((sim_only.compared, sim_only.regressions().count()), (0, 0));
    }

    #[test]
    fn thresholds_read_as_percent_or_fraction() {
        assert_eq!(parse_threshold("10%"), Ok(0.1));
        assert_eq!(parse_threshold("0.25"), Ok(0.25));
        assert!(parse_threshold("10").is_err());
        assert!(parse_threshold("ten").is_err());
    }
}
