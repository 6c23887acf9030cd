//! The short table `bftbench compare` prints.

use crate::plot::{Series, Setting, fit_loglog_slope, scaling_series};
use crate::record::Record;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Messages per committed request per protocol and n with fitted slopes
/// (every block full, then one request in flight), then the best throughput
/// per protocol and runtime, then view-change cost.
pub fn table(records: &[(String, Record)]) -> String {
    let mut out = String::new();
    for (which, about) in [
        (
            Setting::Pipelined,
            "every block full: several requests in flight, batch size 1",
        ),
        (Setting::Lone, "one request in flight"),
    ] {
        let msgs = scaling_series(records, which, |r| r.messages_per_request);
        let bytes = scaling_series(records, which, |r| r.bytes_per_request);
        scaling_table(&mut out, about, &msgs, &bytes);
    }
    let mut best: BTreeMap<(String, usize, String), &Record> = BTreeMap::new();
    for (_, r) in records
        .iter()
        .filter(|(_, r)| r.scenario["load"]["mode"].as_str() == Some("open"))
    {
        let key = (r.protocol.clone(), r.n, r.runtime.clone());
        if best
            .get(&key)
            .is_none_or(|b| r.throughput_tx_s > b.throughput_tx_s)
        {
            best.insert(key, r);
        }
    }
    if !best.is_empty() {
        let _ = writeln!(out, "\nhighest measured throughput under open-loop load");
        let _ = writeln!(
            out,
            "{:<10}{:>5}{:>8}{:>12}{:>10}{:>10}",
            "protocol", "n", "runtime", "tx/s", "p50 ms", "p99 ms"
        );
        for ((p, n, rt), r) in &best {
            let _ = writeln!(
                out,
                "{p:<10}{n:>5}{rt:>8}{:>12.0}{:>10.2}{:>10.2}",
                r.throughput_tx_s, r.latency_ms.p50, r.latency_ms.p99
            );
        }
    }
    let vc: Vec<&Record> = records
        .iter()
        .map(|(_, r)| r)
        .filter(|r| {
            r.scenario["faults"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
                && r.view_changes.is_some_and(|k| k > 0)
        })
        .collect();
    if !vc.is_empty() {
        let _ = writeln!(
            out,
            "\nrecovering from a crashed leader (per view change: first honest timeout to the first decision in a later view)"
        );
        let _ = writeln!(
            out,
            "{:<10}{:>5}{:>14}{:>10}{:>14}{:>14}{:>16}",
            "protocol", "n", "view changes", "mean ms", "messages", "bytes", "retransmitted"
        );
        for r in vc {
            let count = r.view_changes.unwrap_or(0).max(1);
            let per = |x: Option<u64>| x.unwrap_or(0) as f64 / count as f64;
            let _ = writeln!(
                out,
                "{:<10}{:>5}{:>14}{:>10.0}{:>14.0}{:>14.0}{:>16.0}",
                r.protocol,
                r.n,
                count,
                r.view_change_s.unwrap_or(0.0) * 1e3,
                per(r.view_change_messages),
                per(r.view_change_bytes),
                per(r.view_change_retransmitted)
            );
        }
    }
    out
}

/// One table of messages per committed request over n, with the fitted
/// log–log slopes of messages and bytes.
fn scaling_table(out: &mut String, about: &str, msgs: &[Series], bytes: &[Series]) {
    if !msgs.is_empty() {
        let mut ns: Vec<u64> = msgs
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0 as u64))
            .collect();
        ns.sort_unstable();
        ns.dedup();
        let _ = write!(
            out,
            "\nmessages per committed request (fault-free, {about})\n{:<10}",
            "protocol"
        );
        for n in &ns {
            let _ = write!(out, "{:>9}", format!("n={n}"));
        }
        let _ = writeln!(out, "{:>10}{:>12}", "slope", "bytes slope");
        for (m, b) in msgs.iter().zip(bytes) {
            let name = m.label.split(' ').next().unwrap_or("");
            let _ = write!(out, "{name:<10}");
            for n in &ns {
                match m.points.iter().find(|p| p.0 as u64 == *n) {
                    Some(p) => {
                        let _ = write!(out, "{:>9.1}", p.1);
                    }
                    None => {
                        let _ = write!(out, "{:>9}", "-");
                    }
                }
            }
            let slope = |pts: &[(f64, f64)]| {
                fit_loglog_slope(pts)
                    .map(|k| format!("{k:.2}"))
                    .unwrap_or("-".into())
            };
            let _ = writeln!(out, "{:>10}{:>12}", slope(&m.points), slope(&b.points));
        }
    }
}
