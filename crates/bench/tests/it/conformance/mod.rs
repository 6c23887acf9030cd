//! The conformance suite: properties every protocol must have, checked for
//! each of them by the same generic code (`P: BenchProtocol`, chosen by
//! `with_protocol!`):
//!
//! - same-seed replay, fault-free and with the first leader crashed (here);
//! - bounded memory: retained state does not grow with the decisions (here);
//! - the fault vocabulary, [`behaviours`]: f replicas (the first leader, a
//!   backup, and two at n = 7) crashed, restarted, silent, omitting,
//!   delaying, replaying, censoring, and mounting every attack (an
//!   equivocating leader among them): safe, and live within the protocol's
//!   bound after the network is stable.
//!
//! - client signatures, [`client_signatures`]: a leader that swaps a
//!   request's payload under its id is refused and counted, and the same
//!   run with signature checks planted away is caught by the oracle.
//!
//! - commit certificates, [`certificates`]: every decision carries one the
//!   cluster's public keys verify offline (`bftbench ledger verify
//!   --cluster`), and an altered, moved or missing one is found, there and
//!   by the oracle.
//!
//! Exact fault-free message counts are each protocol's own formula and live
//! with it (`crates/*/tests/it/sim`); the fuzzer's fixed seeds are `fuzz`.

mod behaviours;
mod certificates;
mod client_signatures;
mod restart;
mod state_sync;

use bft_core::NodeId;
use bft_sim::{Fault, LoadConfig, NetworkConfig, SimReport, Simulation};
use bftbench::protocols::BenchProtocol;
use bftbench::run::sim_config;
use bftbench::scenario::{ProtocolName, Scenario};
use std::path::Path;
use std::time::Duration;

const PROTOCOLS: [ProtocolName; 3] = [
    ProtocolName::Pbft,
    ProtocolName::Qbft,
    ProtocolName::Hotstuff,
];

/// n = 4, model crypto, 1–10 ms uniform delays (so the seed matters), two
/// closed-loop clients with two requests each in flight.
fn scenario(protocol: ProtocolName, seed: u64, requests: u64) -> Scenario {
    let text = format!(
        "protocol = \"{protocol}\"\nnodes = 4\nseed = {seed}\ncrypto = \"model\"\nduration = \"600s\"\n"
    );
    let mut s = Scenario::parse(&text, Path::new("conformance.toml")).unwrap();
    s.load = LoadConfig::closed(2, 2, 64).with_total(requests);
    s.network = NetworkConfig::uniform(Duration::from_millis(1), Duration::from_millis(10));
    s
}

/// Runs `s` to the end; the report and what each replica retains then.
fn simulate<P: BenchProtocol>(s: &Scenario) -> (SimReport, Vec<usize>) {
    let mut sim = Simulation::<P>::new(sim_config(s), P::config(s)).unwrap();
    let report = sim.run();
    let retained = (0..s.nodes)
        .map(|i| sim.node(NodeId(i as u16)).status().retained)
        .collect();
    (report, retained)
}

fn run(protocol: ProtocolName, seed: u64, requests: u64) -> (SimReport, Vec<usize>) {
    let s = scenario(protocol, seed, requests);
    let (report, retained) = bftbench::with_protocol!(protocol, P => simulate::<P>(&s));
    assert!(
        report.violations.is_empty(),
        "{protocol} seed {seed}: {:?}",
        report.violations
    );
    assert_eq!(
        report.requests_committed, requests,
        "{protocol} seed {seed}"
    );
    (report, retained)
}

/// Determinism: the same scenario and seed give the same run (trace hash,
/// every count), and another seed another run.
#[test]
fn the_same_seed_replays_the_same_run_and_another_seed_does_not() {
    for protocol in PROTOCOLS {
        let (a, _) = run(protocol, 7, 200);
        let (b, _) = run(protocol, 7, 200);
        let (c, _) = run(protocol, 8, 200);
        assert_eq!(a.trace_hash, b.trace_hash, "{protocol}");
        assert_eq!(a.stats, b.stats, "{protocol}");
        assert_eq!(a.decisions, b.decisions, "{protocol}");
        assert_ne!(a.trace_hash, c.trace_hash, "{protocol}");
    }
}

/// Determinism under a fault: with the first leader crashed 30 ms in (a
/// view change, timers, retransmissions), the same seed still gives the
/// same run, and every request commits.
#[test]
fn a_run_with_a_crashed_leader_replays_exactly() {
    for protocol in PROTOCOLS {
        let crashed = || {
            let mut s = scenario(protocol, 11, 100);
            s.faults = vec![Fault::crash(NodeId(0), Duration::from_millis(30))];
            let (report, _) = bftbench::with_protocol!(protocol, P => simulate::<P>(&s));
            assert!(
                report.violations.is_empty(),
                "{protocol}: {:?}",
                report.violations
            );
            assert_eq!(report.requests_committed, 100, "{protocol}");
            report
        };
        let (a, b) = (crashed(), crashed());
        assert_eq!(a.trace_hash, b.trace_hash, "{protocol}");
        assert_eq!(a.stats, b.stats, "{protocol}");
        assert!(
            a.view_changes >= 1,
            "{protocol}: the crash forced no view change"
        );
    }
}

/// Bounded memory: what a replica retains at the end of a fault-free run
/// (log, certificates, archives, executed-request records) does not grow
/// with the number of decisions: four times the requests, no more state.
#[test]
fn retained_state_does_not_grow_with_the_number_of_decisions() {
    for protocol in PROTOCOLS {
        let (_, short) = run(protocol, 3, 1_000);
        let (_, long) = run(protocol, 3, 4_000);
        for (id, (s, l)) in short.iter().zip(&long).enumerate() {
            assert!(
                l <= s,
                "{protocol} node {id}: retains {l} after 4 000 requests, {s} after 1 000"
            );
        }
    }
}
