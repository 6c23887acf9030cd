//! One deterministic scenario per (protocol, behaviour): with at most f
//! faulty replicas doing it, the oracle finds nothing and every honest
//! replica commits again within the protocol's liveness bound after the
//! network is stable (the fault ended, or its faulty set is fixed).
//!
//! The fault hits node 0 — the first leader of every protocol — and, in a
//! second run, node 2, so both "leader does it" and "backup does it" are
//! covered; at n = 7 two replicas misbehave at once.

use bft_core::{Attack, Forgery, Mutation, NodeId};
use bft_sim::{Fault, FaultKind, LoadConfig, NetworkConfig};
use bftbench::fuzz::run_case;
use bftbench::scenario::{ProtocolName, Scenario};
use std::path::Path;
use std::time::Duration;

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

/// Every behaviour with a parameter, and whether it ends (a restart, a
/// healed omission) or lasts to the end of the run.
fn behaviours() -> Vec<(&'static str, FaultKind, Option<Duration>)> {
    let until = Some(ms(1_300));
    let mut v = vec![
        ("crash", FaultKind::Crash { amnesia: false }, None),
        ("crash-restart", FaultKind::Crash { amnesia: false }, until),
        (
            "crash-restart-amnesia",
            FaultKind::Crash { amnesia: true },
            until,
        ),
        ("silent", FaultKind::Silent, None),
        (
            "omission",
            FaultKind::Omission {
                peers: vec![NodeId(1), NodeId(3)],
            },
            None,
        ),
        ("delay", FaultKind::Delay { by: ms(150) }, until),
        ("stale-replay", FaultKind::StaleReplay, None),
        ("censor", FaultKind::Censor { clients: vec![0] }, None),
        ("equivocate", FaultKind::Attack(Attack::Equivocate), None),
        ("double-vote", FaultKind::Attack(Attack::DoubleVote), None),
        (
            "inflate-view",
            FaultKind::Attack(Attack::InflateView(1 << 40)),
            None,
        ),
        (
            "bad-signature",
            FaultKind::Attack(Attack::BadSignature),
            None,
        ),
        ("swap-payload", FaultKind::Attack(Attack::SwapPayload), None),
        ("fork", FaultKind::Attack(Attack::Fork(17)), None),
        ("fork", FaultKind::Attack(Attack::Fork(18)), None),
    ];
    for g in [
        Forgery::BelowQuorum,
        Forgery::DuplicateSigners,
        Forgery::WrongRound,
        Forgery::WrongDigest,
    ] {
        v.push(("forge", FaultKind::Attack(Attack::Forge(g)), None));
    }
    for m in [
        Mutation::RoundPlusOne,
        Mutation::RoundMinusOne,
        Mutation::StaleDigest,
        Mutation::SwapSender,
    ] {
        v.push(("mutate", FaultKind::Attack(Attack::Mutate(m)), None));
    }
    v
}

fn scenario(protocol: ProtocolName, n: usize, faults: Vec<Fault>) -> Scenario {
    let text = format!("protocol = \"{protocol}\"\nnodes = {n}\nseed = 17\n");
    let mut s = Scenario::parse(&text, Path::new("behaviour.toml")).unwrap();
    s.load = LoadConfig::open(50.0, 2, 32);
    s.network = NetworkConfig::uniform(ms(1), ms(10));
    s.faults = faults;
    // Long enough for the heal plus each protocol's bound: the check stops
    // as soon as every honest replica has committed again.
    s.duration = Duration::from_secs(600);
    s
}

fn check(protocol: ProtocolName, n: usize, faulty: &[u16]) {
    let mut failures = Vec::new();
    for (name, kind, until) in behaviours() {
        let faults = faulty
            .iter()
            .map(|&node| Fault {
                node: NodeId(node),
                kind: kind.clone(),
                start: ms(300),
                end: until,
            })
            .collect();
        let s = scenario(protocol, n, faults);
        s.validate(Path::new("behaviour.toml")).unwrap();
        let outcome = run_case(&s).unwrap();
        if !outcome.problems.is_empty() {
            failures.push(format!(
                "{name} {kind:?} on {faulty:?}: {:?}",
                outcome.problems
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{protocol} n={n}:\n{}",
        failures.join("\n")
    );
}

#[test]
fn pbft_survives_every_behaviour() {
    check(ProtocolName::Pbft, 4, &[0]);
    check(ProtocolName::Pbft, 4, &[2]);
    check(ProtocolName::Pbft, 7, &[0, 1]);
}

#[test]
fn qbft_survives_every_behaviour() {
    check(ProtocolName::Qbft, 4, &[0]);
    check(ProtocolName::Qbft, 4, &[2]);
    check(ProtocolName::Qbft, 7, &[0, 1]);
}

#[test]
fn hotstuff_survives_every_behaviour() {
    check(ProtocolName::Hotstuff, 4, &[0]);
    check(ProtocolName::Hotstuff, 4, &[2]);
    check(ProtocolName::Hotstuff, 7, &[0, 1]);
}
