//! QBFT in the deterministic simulator: exact message counts, round changes
//! under faults, re-proposal of a prepared value, round inflation, an
//! equivocating proposer. Every run must leave the safety oracle silent.

use bft_core::{CryptoKind, Digest, NodeId, Time};
use bft_qbft::messages::{
    Block, ProposalPayload, QbftMessage, RoundChange, RoundChangePayload, Signed,
};
use bft_qbft::{Qbft, QbftConfig};
use bft_sim::{Fault, LoadConfig, NetworkConfig, SimConfig, SimReport, Simulation};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

mod counts;
mod faults;
mod leaders;
mod round_change;

fn config(n: usize, total: u64) -> SimConfig {
    SimConfig {
        nodes: n,
        load: LoadConfig::closed(1, 1, 128).with_total(total),
        ..SimConfig::default()
    }
}

fn simulation(cfg: SimConfig) -> Simulation<Qbft> {
    Simulation::new(cfg, QbftConfig::default()).unwrap()
}

fn sent(report: &SimReport, kind: &str) -> u64 {
    report.stats.sent.get(kind).map_or(0, |c| c.count)
}

fn assert_safe(report: &SimReport) {
    assert!(
        report.violations.is_empty(),
        "seed {}: {:?}",
        report.seed,
        report.violations
    );
}

/// Per block, fault-free, one request per block: (n−1) PROPOSAL, n(n−1)
/// PREPARE, n(n−1) COMMIT, no ROUND-CHANGE.
fn assert_exact_counts(report: &SimReport, n: u64, blocks: u64) {
    assert_eq!(report.decisions, blocks, "n = {n}");
    assert_eq!(report.requests_committed, blocks, "n = {n}");
    assert_eq!(
        sent(report, "proposal"),
        blocks * (n - 1),
        "proposal, n = {n}"
    );
    assert_eq!(
        sent(report, "prepare"),
        blocks * n * (n - 1),
        "prepare, n = {n}"
    );
    assert_eq!(
        sent(report, "commit"),
        blocks * n * (n - 1),
        "commit, n = {n}"
    );
    assert_eq!(sent(report, "round-change"), 0, "round-change, n = {n}");
    assert_eq!(
        report.stats.total_sent().count,
        blocks * (n - 1) * (2 * n + 1),
        "(n-1)(2n+1) per block, n = {n}"
    );
    assert_eq!(report.view_changes, 0);
}

fn far_round_change(sim: &Simulation<Qbft>, from: NodeId, round: u64) -> QbftMessage {
    let crypto = sim.crypto(from);
    QbftMessage::RoundChange(Box::new(RoundChange {
        signed: Signed::sign(
            crypto.as_ref(),
            RoundChangePayload {
                height: 1,
                round,
                prepared_round: None,
                prepared_value: None,
            },
        ),
        prepared_block: None,
        prepares: Vec::new(),
    }))
}

/// A signed round-0 PROPOSAL of `block` at height 1 by `signer`'s node.
fn forged_proposal(signer: &dyn bft_core::Crypto, block: Block) -> QbftMessage {
    let signed = Signed::sign(
        signer,
        ProposalPayload {
            height: block.height,
            round: 0,
            digest: block.hash(),
        },
    );
    QbftMessage::Proposal(Box::new(bft_qbft::messages::Proposal {
        signed,
        block,
        round_changes: Vec::new(),
        prepares: Vec::new(),
    }))
}

/// PROPOSALs node `id` sent (n − 1 per block it proposed, fault-free).
fn proposals_by(sim: &Simulation<Qbft>, id: NodeId) -> u64 {
    sim.node(id)
        .stats()
        .sent
        .get("proposal")
        .map_or(0, |c| c.count)
}
