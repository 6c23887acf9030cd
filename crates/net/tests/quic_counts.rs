//! A 4-node loopback QUIC cluster commits a fixed number of requests, and its
//! messages per decision by kind equal the simulator's for the same scenario
//! (n = 4, seed 1, one closed-loop client with one request outstanding,
//! 128-byte requests, batches of one, `total` requests).
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use bft_core::{BatchConfig, Protocol};
use bft_hotstuff::{HotStuff, HotStuffConfig};
use bft_net::{LocalClusterConfig, QuicReport, run_local_cluster};
use bft_pbft::{Pbft, PbftConfig};
use bft_qbft::{Qbft, QbftConfig};
use bft_sim::{LoadConfig, SimConfig, SimReport, Simulation};
use std::collections::BTreeMap;
use std::time::Duration;

fn load(total: u64) -> LoadConfig {
    LoadConfig::closed(1, 1, 128).with_total(total)
}

async fn quic<P: Protocol>(proto: P::Config, total: u64) -> QuicReport {
    let cfg = LocalClusterConfig {
        nodes: 4,
        seed: 1,
        load: load(total),
        batch: BatchConfig::default(),
        duration: Duration::from_secs(20),
        ..LocalClusterConfig::default()
    };
    run_local_cluster::<P>(cfg, proto).await.unwrap()
}

fn sim<P: Protocol>(proto: P::Config, total: u64) -> SimReport {
    let cfg = SimConfig {
        nodes: 4,
        seed: 1,
        load: load(total),
        batch: BatchConfig::default(),
        duration: Duration::from_secs(60),
        ..SimConfig::default()
    };
    let report = Simulation::<P>::new(cfg, proto).unwrap().run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    report
}

/// (count, bytes) sent per kind.
fn by_kind(stats: &bft_core::MsgStats) -> BTreeMap<String, (u64, u64)> {
    stats
        .sent
        .to_sorted()
        .into_iter()
        .map(|(k, c)| (k, (c.count, c.bytes)))
        .collect()
}

fn assert_complete(q: &QuicReport, total: u64) {
    assert_eq!(q.requests_committed, total, "every request committed");
    assert_eq!(
        q.decisions, q.max_decisions,
        "every replica at the same height"
    );
    assert_eq!(q.stats.total_rejected(), 0, "{:?}", q.stats.rejected);
    assert_eq!(q.view_changes, 0);
    assert_eq!(q.dropped_overload + q.dropped_link, 0);
}

/// PBFT and QBFT: the same decisions and, kind by kind, exactly the same
/// messages and bytes (hence the same per decision).
fn assert_same_as_sim(q: &QuicReport, s: &SimReport) {
    assert_eq!(q.decisions, s.decisions, "decisions");
    assert_eq!(by_kind(&q.stats), by_kind(&s.stats), "sent by kind");
    assert_eq!(
        q.stats.received.to_sorted(),
        s.stats.received.to_sorted(),
        "received by kind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbft_quic_counts_equal_sim() {
    let q = quic::<Pbft>(PbftConfig::default(), 10).await;
    let s = sim::<Pbft>(PbftConfig::default(), 10);
    assert_complete(&q, 10);
    assert_same_as_sim(&q, &s);
    assert!(q.decisions >= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qbft_quic_counts_equal_sim() {
    let q = quic::<Qbft>(QbftConfig::default(), 10).await;
    let s = sim::<Qbft>(QbftConfig::default(), 10);
    assert_complete(&q, 10);
    assert_same_as_sim(&q, &s);
    assert_eq!(q.decisions, 10);
}

/// HotStuff: a request commits three blocks after its own, so the run's
/// tail (the last three blocks, proposed and voted but never committed) is
/// the pipeline tolerance. Asserted: the same kinds are sent; every kind's
/// count per decision differs from the sim's by at most 3(n−1)/D (those
/// three blocks' messages); and in this fault-free run it is in fact exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hotstuff_quic_counts_match_sim_within_pipeline() {
    let total = 8;
    let q = quic::<HotStuff>(HotStuffConfig::default(), total).await;
    let s = sim::<HotStuff>(HotStuffConfig::default(), total);
    assert_complete(&q, total);
    assert_eq!(q.decisions, s.decisions, "4k−3 blocks");
    let (qk, sk) = (by_kind(&q.stats), by_kind(&s.stats));
    assert_eq!(
        qk.keys().collect::<Vec<_>>(),
        sk.keys().collect::<Vec<_>>(),
        "same kinds"
    );
    let d = q.decisions as f64;
    for (kind, (qc, _)) in &qk {
        let sc = sk[kind].0;
        let diff = (*qc as f64 - sc as f64).abs() / d;
        assert!(diff <= 3.0 * 3.0 / d, "{kind}: quic {qc} sim {sc}");
    }
    assert_eq!(qk, sk, "fault-free: exactly the sim's messages and bytes");
}
