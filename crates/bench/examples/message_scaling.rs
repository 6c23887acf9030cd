//! Messages and bytes per decision as n grows, per protocol, in the
//! simulator with model crypto, fault-free, one client with one request
//! outstanding: the tables the protocol crates' docs cite. Each run also
//! checks its count against the protocol's formula and stops with an error
//! if they differ.
//!
//! `cargo run --release -p bftbench --example message_scaling -- PROTOCOL`
//! with PROTOCOL one of:
//!
//! - `pbft`: n = 4 … 64, 20 decisions of one request (batch size 1),
//!   against 2n(n−1); plus what one view change after a crashed primary
//!   costs (VIEW-CHANGE messages, VIEW-CHANGE + NEW-VIEW bytes).
//! - `qbft`: n = 4 … 64, 20 blocks, against (n−1)(2n+1).
//! - `hotstuff`: n = 4 … 256, 50 requests, against 2(n−1) per decision
//!   (n−1 proposals and n−1 votes per block, three blocks at the end
//!   proposed and voted on but not committed).

use anyhow::{Context, Result, bail, ensure};
use bft_core::{BatchConfig, NodeId};
use bft_crypto::CostModel;
use bft_hotstuff::{HotStuff, HotStuffConfig};
use bft_pbft::{Pbft, PbftConfig};
use bft_qbft::{Qbft, QbftConfig};
use bft_sim::{Fault, LoadConfig, SimConfig, SimReport, Simulation};
use std::time::Duration;

fn main() -> Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("pbft") => pbft(),
        Some("qbft") => qbft(),
        Some("hotstuff") => hotstuff(),
        other => bail!("expected one argument, pbft | qbft | hotstuff; got {other:?}"),
    }
}

fn safe(report: &SimReport, n: usize) -> Result<()> {
    ensure!(
        report.violations.is_empty(),
        "n = {n}: {:?}",
        report.violations
    );
    Ok(())
}

fn sent(report: &SimReport, kind: &str) -> Result<u64> {
    report
        .stats
        .sent
        .get(kind)
        .map(|c| c.count)
        .with_context(|| format!("no {kind} was sent"))
}

/// PBFT's setting: seed 42, batches of one request.
fn pbft_config(nodes: usize, requests: u64) -> SimConfig {
    SimConfig {
        nodes,
        seed: 42,
        load: LoadConfig::closed(1, 1, 128).with_total(requests),
        batch: BatchConfig {
            max_size: 1,
            max_delay: Duration::from_millis(1),
        },
        ..SimConfig::default()
    }
}

fn pbft() -> Result<()> {
    const K: u64 = 20;
    println!("n  msgs/decision  2n(n-1)  bytes/decision  p50-latency  vc-msgs  vc+nv-bytes");
    for n in [4usize, 8, 16, 32, 64] {
        let report = Simulation::<Pbft>::new(pbft_config(n, K), PbftConfig::default())?.run();
        safe(&report, n)?;
        ensure!(
            report.decisions == K,
            "n = {n}: {} decisions",
            report.decisions
        );
        let total = report.stats.total_sent();
        let formula = 2 * n as u64 * (n as u64 - 1);
        ensure!(
            total.count == K * formula,
            "n = {n}: {} messages, 2n(n-1) per decision gives {}",
            total.count,
            K * formula
        );
        let mut cfg = pbft_config(n, 1);
        cfg.faults = vec![Fault::crash(NodeId(0), Duration::ZERO)];
        let vc = Simulation::<Pbft>::new(cfg, PbftConfig::default())?.run();
        safe(&vc, n)?;
        let kind = |k: &str| vc.stats.sent.get(k).copied().unwrap_or_default();
        println!(
            "{n:<3}{:>14}{:>9}{:>16}{:>13?}{:>9}{:>13}",
            total.count / K,
            formula,
            total.bytes / K,
            report.latency.p50,
            kind("view-change").count,
            kind("view-change").bytes + kind("new-view").bytes,
        );
    }
    Ok(())
}

fn qbft() -> Result<()> {
    const BLOCKS: u64 = 20;
    for n in [4u64, 8, 16, 32, 64] {
        let cfg = SimConfig {
            nodes: n as usize,
            cost: CostModel::default(),
            load: LoadConfig::closed(1, 1, 128).with_total(BLOCKS),
            ..SimConfig::default()
        };
        let report = Simulation::<Qbft>::new(cfg, QbftConfig::default())?.run();
        safe(&report, n as usize)?;
        let formula = (n - 1) * (2 * n + 1);
        let total = report.stats.total_sent();
        ensure!(
            report.decisions == BLOCKS && total.count == BLOCKS * formula,
            "n = {n}: {} messages for {} blocks, (n-1)(2n+1) per block gives {}",
            total.count,
            report.decisions,
            BLOCKS * formula
        );
        println!(
            "n={n:3} decisions={} msgs/decision={:.1} formula={formula} bytes/decision={:.0} p50={:?}",
            report.decisions,
            total.count as f64 / report.decisions as f64,
            total.bytes as f64 / report.decisions as f64,
            report.latency.p50,
        );
    }
    Ok(())
}

fn hotstuff() -> Result<()> {
    let requests = 50u64;
    println!(
        "| n | decisions | proposal | vote | msgs/decision | 2(n-1) | bytes/decision | p50 latency |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for n in [4usize, 8, 16, 32, 64, 128, 256] {
        let cfg = SimConfig {
            nodes: n,
            seed: 1,
            load: LoadConfig::closed(1, 1, 128).with_total(requests),
            keep_ledgers: false,
            ..SimConfig::default()
        };
        let report = Simulation::<HotStuff>::new(cfg, HotStuffConfig::default())?.run();
        safe(&report, n)?;
        ensure!(
            report.requests_committed == requests,
            "n = {n}: {} of {requests} requests committed",
            report.requests_committed
        );
        let d = report.decisions;
        let proposals = sent(&report, "proposal")?;
        let votes = sent(&report, "vote")?;
        let peers = n as u64 - 1;
        ensure!(
            proposals == peers * (d + 3) && votes == peers * (d + 3),
            "n = {n}: {proposals} proposals and {votes} votes for {d} decisions"
        );
        let total = report.stats.total_sent();
        println!(
            "| {n} | {d} | {proposals} | {votes} | {:.2} | {} | {:.0} | {:?} |",
            (proposals + votes) as f64 / d as f64,
            2 * peers,
            total.bytes as f64 / d as f64,
            report.latency.p50,
        );
    }
    Ok(())
}
