//! What any runtime measured (`Measured`), turned into a [`Record`]: the
//! one place each metric of a record is computed, the same definition for
//! every protocol and both runtimes. The simulator (`crate::run`) and the
//! QUIC runtime (`crate::quic`) both end here.

use crate::record::{Environment, KindRecord, LatencyMs, LivenessRecord, NodeRecord, Record};
use crate::scenario::Scenario;
use std::collections::BTreeMap;
use std::time::Duration;

/// What any runtime measured, before it becomes a [`Record`].
pub struct Measured {
    pub runtime: &'static str,
    pub stats: bft_core::MsgStats,
    /// Committed slots (the most any honest replica reached).
    pub decisions: u64,
    /// Of those (same replica), the ones that ordered no request.
    pub empty_decisions: u64,
    pub requests_issued: u64,
    /// [`Record::rejected_requests`].
    pub rejected_requests: u64,
    pub requests_committed: u64,
    pub duration_s: f64,
    pub throughput_tx_s: f64,
    pub latency: bft_sim::LatencySummary,
    pub latency_cdf: Vec<(f64, f64)>,
    pub client_messages: u64,
    pub client_bytes: u64,
    /// The protocol's own view-change counter.
    pub view_changes: u64,
    /// Leader replacements, where the runtime tracks them (the simulator).
    pub replacements: Option<bft_sim::Replacements>,
    pub violations: Vec<String>,
    /// The simulator's liveness check (None for real runs).
    pub liveness: Option<LivenessRecord>,
    pub nodes: Vec<NodeRecord>,
    pub events: u64,
    pub trace_hash: String,
    /// `Protocol::CATCH_UP_KINDS` of the protocol run.
    pub catch_up_kinds: &'static [&'static str],
    /// [`Record::store`] and [`Record::fsync`].
    pub store: &'static str,
    pub fsync: Option<&'static str>,
    /// [`Record::peak_rss_bytes`] and [`Record::start_rss_bytes`].
    pub peak_rss_bytes: Option<u64>,
    pub start_rss_bytes: Option<u64>,
    /// [`Record::over_time`].
    pub series: Vec<bft_load::SeriesPoint>,
    pub wall: Duration,
}

/// Up to ~200 (latency ms, cumulative fraction) points.
pub fn latency_cdf(h: &hdrhistogram::Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points = Vec::new();
    for i in 0..=200u32 {
        let q = f64::from(i) / 200.0;
        points.push((h.value_at_quantile(q) as f64 / 1e6, q));
    }
    points.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    points
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Divides, giving 0 for a run that decided nothing.
fn per(x: u64, decisions: u64) -> f64 {
    if decisions == 0 {
        0.0
    } else {
        x as f64 / decisions as f64
    }
}

/// Per-kind records of a tally, each divided by `decisions`.
fn by_kind(
    tally: &bft_core::Tally<bft_core::KindCount>,
    decisions: u64,
) -> BTreeMap<String, KindRecord> {
    tally
        .to_sorted()
        .into_iter()
        .map(|(k, c)| {
            let rec = KindRecord {
                count: c.count,
                bytes: c.bytes,
                per_decision: per(c.count, decisions),
                bytes_per_decision: per(c.bytes, decisions),
            };
            (k, rec)
        })
        .collect()
}

pub fn record(s: &Scenario, m: Measured) -> Record {
    let decisions = m.decisions;
    let total = m.stats.total_sent();
    let resent = m.stats.total_resent();
    let catch_up = m
        .stats
        .sent
        .iter()
        .filter(|(kind, _)| m.catch_up_kinds.contains(kind))
        .fold(bft_core::KindCount::default(), |mut sum, (_, c)| {
            sum.count += c.count;
            sum.bytes += c.bytes;
            sum
        });
    let messages_by_kind = by_kind(&m.stats.sent, decisions);
    let retransmissions_by_kind = by_kind(&m.stats.resent, decisions);
    let env = Environment::current();
    let l = m.latency;
    Record {
        scenario: serde_json::to_value(s).unwrap_or(serde_json::Value::Null),
        protocol: s.protocol.to_string(),
        n: s.nodes,
        f: s.f(),
        runtime: m.runtime.into(),
        crypto: match m.runtime {
            "sim" => s.crypto.as_str().into(),
            _ => "real".into(),
        },
        seed: s.seed,
        git_rev: env.git_rev.clone(),
        environment: env,
        decisions,
        requests_issued: m.requests_issued,
        rejected_requests: m.rejected_requests,
        requests_committed: m.requests_committed,
        duration_s: m.duration_s,
        warmup_s: s.load.warmup.as_secs_f64(),
        throughput_tx_s: m.throughput_tx_s,
        decisions_per_s: if m.duration_s > 0.0 {
            decisions as f64 / m.duration_s
        } else {
            0.0
        },
        latency_ms: LatencyMs {
            p50: ms(l.p50),
            p90: ms(l.p90),
            p99: ms(l.p99),
            p999: ms(l.p999),
            max: ms(l.max),
            mean: ms(l.mean),
            count: l.count,
        },
        empty_decisions: m.empty_decisions,
        messages_per_decision: per(total.count, decisions),
        bytes_per_decision: per(total.bytes, decisions),
        messages_per_request: per(total.count, m.requests_committed),
        bytes_per_request: per(total.bytes, m.requests_committed),
        messages_by_kind,
        retransmissions_by_kind,
        retransmitted_messages: resent.count,
        retransmitted_bytes: resent.bytes,
        catch_up_messages: catch_up.count,
        catch_up_bytes: catch_up.bytes,
        snapshots_installed: m.stats.snapshots_installed,
        client_messages: m.client_messages,
        client_bytes: m.client_bytes,
        rejected: m.stats.rejected.to_sorted(),
        view_changes: m.replacements.map(|r| r.count),
        view_change_messages: m.replacements.map(|r| r.messages),
        view_change_bytes: m.replacements.map(|r| r.bytes),
        view_change_retransmitted: m.replacements.map(|r| r.retransmitted),
        view_change_s: m
            .replacements
            .filter(|r| r.count > 0)
            .map(|r| r.time.as_secs_f64() / r.count as f64),
        protocol_view_changes: m.view_changes,
        safety_violations: m.violations,
        liveness: m.liveness,
        nodes: m.nodes,
        events: m.events,
        trace_hash: m.trace_hash,
        store: m.store.into(),
        fsync: m.fsync.map(String::from),
        signed_requests: s.load.signed,
        peak_rss_bytes: m.peak_rss_bytes,
        start_rss_bytes: m.start_rss_bytes,
        over_time: m.series,
        wall_s: m.wall.as_secs_f64(),
        latency_cdf: m.latency_cdf,
    }
}
