//! A 4-node loopback QUIC cluster commits a fixed number of requests, and its
//! messages per decision by kind equal the simulator's for the same scenario
//! (n = 4, seed 1, one closed-loop client with one request outstanding,
//! 128-byte requests, batches of one, `total` requests).

use bft_core::{BatchConfig, Protocol};
use bft_hotstuff::{HotStuff, HotStuffConfig};
use bft_net::{LocalClusterConfig, QuicReport, run_local_cluster};
use bft_pbft::{Pbft, PbftConfig};
use bft_qbft::{Qbft, QbftConfig};
use bft_sim::{LoadConfig, SimConfig, SimReport, Simulation};
use std::collections::BTreeMap;
use std::time::Duration;

/// Timers far above any loopback view, so that a machine busy with other
/// builds cannot turn the fault-free path into a view change; the simulator
/// gets the same configs (its fault-free counts do not depend on them).
const PATIENT: Duration = Duration::from_secs(10);

fn pbft_cfg() -> PbftConfig {
    PbftConfig {
        view_change_timeout: PATIENT,
        ..PbftConfig::default()
    }
}

fn qbft_cfg() -> QbftConfig {
    QbftConfig {
        round_timeout: PATIENT,
        ..QbftConfig::default()
    }
}

fn hotstuff_cfg() -> HotStuffConfig {
    HotStuffConfig {
        view_timeout: PATIENT,
        max_view_timeout: PATIENT * 2,
        ..HotStuffConfig::default()
    }
}

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

fn sim<P: bft_core::Adversarial>(proto: P::Config, total: u64) -> SimReport {
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
    assert_eq!(
        q.view_changes,
        0,
        "sent {:?} statuses {:?}",
        q.stats.sent.to_sorted(),
        q.statuses
    );
    // (`dropped_link` is not asserted: a replica that commits after the
    // client already has f+1 replies and has hung up loses its reply write.)
    assert_eq!(q.dropped_overload, 0);
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
    let q = quic::<Pbft>(pbft_cfg(), 10).await;
    let s = sim::<Pbft>(pbft_cfg(), 10);
    assert_complete(&q, 10);
    assert_same_as_sim(&q, &s);
    assert!(q.decisions >= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qbft_quic_counts_equal_sim() {
    let q = quic::<Qbft>(qbft_cfg(), 10).await;
    let s = sim::<Qbft>(qbft_cfg(), 10);
    assert_complete(&q, 10);
    assert_same_as_sim(&q, &s);
    assert_eq!(q.decisions, 10);
}

/// HotStuff: a request commits three blocks after its own, so the run's
/// tail (the last three blocks, proposed and voted but never committed) is
/// the pipeline tolerance. Over real QUIC a replica can also receive view
/// v+1's proposal (from one leader) before view v's (from another): it
/// rejects it as `unknown-parent` and fetches the block, which the fixed-delay
/// simulator never does. Asserted:
/// - every request committed, and the same number of decisions as the sim;
/// - `proposal` and `vote` counts each within 3(n−1) of the sim's (the
///   pipeline tail), i.e. per decision within 9/D;
/// - any other kind is block synchronisation: at most one `block-request`
///   per `unknown-parent` rejection and at most one `block-response` per
///   request; no other rejection reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hotstuff_quic_counts_match_sim_within_pipeline() {
    let total = 8;
    let q = quic::<HotStuff>(hotstuff_cfg(), total).await;
    let s = sim::<HotStuff>(hotstuff_cfg(), total);
    assert_eq!(q.requests_committed, total);
    assert_eq!(q.decisions, s.decisions, "4k−3 blocks");
    assert_eq!(q.decisions, q.max_decisions);
    assert_eq!(q.view_changes, 0);
    let (qk, sk) = (by_kind(&q.stats), by_kind(&s.stats));
    let tolerance = 3 * 3;
    for kind in ["proposal", "vote"] {
        let (qc, sc) = (qk[kind].0, sk[kind].0);
        assert!(qc.abs_diff(sc) <= tolerance, "{kind}: quic {qc} sim {sc}");
    }
    let unknown_parent = q.stats.rejected.get("unknown-parent").copied().unwrap_or(0);
    assert_eq!(
        q.stats.total_rejected(),
        unknown_parent,
        "{:?}",
        q.stats.rejected
    );
    let requests = qk.get("block-request").map_or(0, |c| c.0);
    let responses = qk.get("block-response").map_or(0, |c| c.0);
    assert!(requests <= unknown_parent, "{qk:?}");
    assert!(responses <= requests, "{qk:?}");
    for kind in qk.keys() {
        assert!(
            ["proposal", "vote", "block-request", "block-response"].contains(&kind.as_str()),
            "unexpected kind {kind}"
        );
    }
}
