//! Signed client requests, for every protocol: node 0 (the first leader of
//! each) swaps the payload of the first request of every proposal it
//! sends, keeping the request id and the client's signature
//! (`Attack::SwapPayload`).
//!
//! - With the checks in place, every honest replica refuses those
//!   proposals (`bad-client-signature`), the oracle finds nothing, and
//!   every request commits with the payload its client signed.
//! - With the mutant `skip-client-signatures` planted in every replica,
//!   the same run commits swapped payloads, and the oracle's validity
//!   check (by payload digest, not by id) catches it: the control that
//!   shows the check above can fail.

use super::PROTOCOLS;
use bft_core::{Attack, NodeId};
use bft_sim::{Fault, LoadConfig, NetworkConfig, SimReport, Simulation};
use bftbench::protocols::BenchProtocol;
use bftbench::run::sim_config;
use bftbench::scenario::{ProtocolName, Scenario};
use std::path::Path;
use std::time::Duration;

const REQUESTS: u64 = 60;

fn scenario(protocol: ProtocolName) -> Scenario {
    let text = format!(
        "protocol = \"{protocol}\"\nnodes = 4\nseed = 23\ncrypto = \"model\"\nduration = \"120s\"\n"
    );
    let mut s = Scenario::parse(&text, Path::new("swap-payload.toml")).unwrap();
    s.load = LoadConfig::closed(2, 2, 64).with_total(REQUESTS);
    s.network = NetworkConfig::uniform(Duration::from_millis(1), Duration::from_millis(5));
    s.faults = vec![Fault::attack(
        NodeId(0),
        Attack::SwapPayload,
        Duration::ZERO,
    )];
    s
}

/// The run's report and each honest replica's `bad-client-signature`
/// count; `skip_checks` plants the mutant first.
fn simulate<P: BenchProtocol>(s: &Scenario, skip_checks: bool) -> (SimReport, Vec<u64>) {
    let mut sim = Simulation::<P>::new(sim_config(s), P::config(s)).unwrap();
    if skip_checks {
        sim.skip_client_signatures();
    }
    let report = sim.run();
    let refused = (1..4u16)
        .map(|i| {
            let rejected = &sim.node(NodeId(i)).stats().rejected;
            rejected.get("bad-client-signature").copied().unwrap_or(0)
        })
        .collect();
    (report, refused)
}

#[test]
fn a_leader_swapping_a_payload_under_a_real_request_id_is_refused_and_counted() {
    for protocol in PROTOCOLS {
        let s = scenario(protocol);
        let (report, refused) = bftbench::with_protocol!(protocol, P => simulate::<P>(&s, false));
        assert!(
            report.violations.is_empty(),
            "{protocol}: {:?}",
            report.violations
        );
        assert_eq!(report.requests_committed, REQUESTS, "{protocol}");
        assert!(
            refused.iter().all(|&r| r > 0),
            "{protocol}: every honest replica refused a swapped proposal: {refused:?}"
        );
    }
}

#[test]
fn the_oracle_catches_replicas_that_skip_client_signature_checks() {
    for protocol in PROTOCOLS {
        let s = scenario(protocol);
        let (report, refused) = bftbench::with_protocol!(protocol, P => simulate::<P>(&s, true));
        assert_eq!(
            refused,
            vec![0, 0, 0],
            "{protocol}: the mutant checks nothing"
        );
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.starts_with("validity") && v.contains("its client signed")),
            "{protocol}: {:?}",
            report.violations
        );
    }
}

/// `[load] signed = false`: clients send no signature, replicas check none
/// (nothing is refused), and the record says so. Each request a client
/// sends to each of the n replicas is exactly one signature (64 bytes)
/// shorter than in the signed run of the same scenario.
#[test]
fn unsigned_requests_are_not_checked_and_the_record_says_so() {
    for protocol in PROTOCOLS {
        let mut s = scenario(protocol);
        s.faults.clear();
        let signed = bftbench::run::run(&s, &mut |_| {}).unwrap();
        s.load.signed = false;
        let unsigned = bftbench::run::run(&s, &mut |_| {}).unwrap();
        for r in [&signed, &unsigned] {
            assert!(
                r.safety_violations.is_empty(),
                "{protocol}: {:?}",
                r.safety_violations
            );
            assert_eq!(r.requests_committed, REQUESTS, "{protocol}");
            assert!(r.rejected.is_empty(), "{protocol}: {:?}", r.rejected);
        }
        assert!(
            signed.signed_requests && !unsigned.signed_requests,
            "{protocol}"
        );
        assert_eq!(
            signed.requests_issued, unsigned.requests_issued,
            "{protocol}"
        );
        let requests_sent = signed.requests_issued * s.nodes as u64;
        assert_eq!(
            signed.client_bytes - unsigned.client_bytes,
            64 * requests_sent,
            "{protocol}"
        );
    }
}
