//! Every attack of `<Qbft as Adversarial>::tamper`, mounted by one Byzantine
//! replica (node 1 of 4, f = 1) through the simulator's fault layer: the
//! honest replicas stay safe and live, count the expected rejection reason
//! for the invalid messages, and keep bounded state.

use bft_core::{Attack, Forgery, Mutation, NodeId};
use bft_qbft::{Qbft, QbftConfig};
use bft_sim::{Fault, LoadConfig, NetworkConfig, Partition, SimConfig, SimReport, Simulation};
use std::time::Duration;

const REQUESTS: u64 = 20;
/// Generous cap on what an honest replica retains (pool, per-height state,
/// future buffer, archive) at the end of a run.
const RETAINED_CAP: usize = 200;

/// The Byzantine replica: node 1, the proposer of heights 2, 6, … in the
/// fault-free runs and, with round changes, of round 1 of height 1, the
/// first round that gathers q ROUND-CHANGEs after the split (no replica
/// leaves round 1 before a quorum has reached it).
fn byzantine(_round_changes: bool) -> NodeId {
    NodeId(1)
}

fn honest(round_changes: bool) -> Vec<NodeId> {
    let b = byzantine(round_changes);
    (0..4).map(NodeId).filter(|&id| id != b).collect()
}

/// n = 4, one node mounting `attack` from the start, 1–5 ms delays, 20
/// requests. With `round_changes`, a 2 | 2 split for the first 600 ms makes
/// round 0 of height 1 fail, so round 1 is led with a justification.
fn run(attack: Attack, round_changes: bool, seed: u64) -> (SimReport, Simulation<Qbft>) {
    let mut network = NetworkConfig::uniform(Duration::from_millis(1), Duration::from_millis(5));
    if round_changes {
        network.partitions = vec![Partition {
            start: Duration::ZERO,
            end: Duration::from_millis(600),
            groups: vec![vec![NodeId(0), NodeId(1)], vec![NodeId(2), NodeId(3)]],
        }];
    }
    let cfg = SimConfig {
        seed,
        network,
        load: LoadConfig::closed(2, 1, 64).with_total(REQUESTS),
        faults: vec![Fault::attack(
            byzantine(round_changes),
            attack,
            Duration::ZERO,
        )],
        duration: Duration::from_secs(120),
        ..SimConfig::default()
    };
    let mut sim = Simulation::<Qbft>::new(cfg, QbftConfig::default()).unwrap();
    (sim.run(), sim)
}

/// How often the honest replicas rejected something for `reason`.
fn rejected(sim: &Simulation<Qbft>, round_changes: bool, reason: &str) -> u64 {
    honest(round_changes)
        .iter()
        .map(|&id| {
            sim.node(id)
                .stats()
                .rejected
                .get(reason)
                .copied()
                .unwrap_or(0)
        })
        .sum()
}

fn assert_safe_live_bounded(
    attack: Attack,
    round_changes: bool,
    report: &SimReport,
    sim: &Simulation<Qbft>,
) {
    assert!(
        report.violations.is_empty(),
        "{attack:?}: {:?}",
        report.violations
    );
    assert_eq!(report.requests_committed, REQUESTS, "{attack:?}: live");
    for id in honest(round_changes) {
        let retained = sim.node(id).status().retained;
        assert!(
            retained <= RETAINED_CAP,
            "{attack:?}: {id} retains {retained}"
        );
    }
}

#[test]
fn invalid_tampering_is_rejected_with_its_reason_and_the_rest_stay_safe_and_live() {
    let cases = [
        (Attack::BadSignature, false, "bad-signature"),
        (
            Attack::Mutate(Mutation::RoundPlusOne),
            false,
            "not-proposer",
        ),
        (
            Attack::Mutate(Mutation::StaleDigest),
            false,
            "digest-mismatch",
        ),
        (
            Attack::Mutate(Mutation::SwapSender),
            false,
            "author-not-sender",
        ),
        (
            Attack::Mutate(Mutation::RoundMinusOne),
            true,
            "not-proposer",
        ),
        (
            Attack::Forge(Forgery::BelowQuorum),
            true,
            "insufficient-round-changes",
        ),
        (
            Attack::Forge(Forgery::DuplicateSigners),
            true,
            "duplicate-signer",
        ),
        (
            Attack::Forge(Forgery::WrongRound),
            true,
            "round-change-mismatch",
        ),
    ];
    for (attack, round_changes, reason) in cases {
        let (report, sim) = run(attack, round_changes, 3);
        assert_safe_live_bounded(attack, round_changes, &report, &sim);
        assert!(
            rejected(&sim, round_changes, reason) > 0,
            "{attack:?}: no {reason}; rejected {:?}",
            report.stats.rejected.to_sorted()
        );
    }
}

#[test]
fn well_signed_conflicting_messages_never_split_the_honest_replicas() {
    for attack in [
        Attack::Equivocate,
        Attack::DoubleVote,
        Attack::InflateView(1),
        Attack::InflateView(1_000_000),
        Attack::Forge(Forgery::WrongDigest),
    ] {
        for round_changes in [false, true] {
            for seed in 1..=3 {
                let (report, sim) = run(attack, round_changes, seed);
                assert_safe_live_bounded(attack, round_changes, &report, &sim);
            }
        }
    }
    let (report, sim) = run(Attack::DoubleVote, false, 1);
    assert!(
        rejected(&sim, false, "equivocation") > 0,
        "{:?}",
        report.stats.rejected.to_sorted()
    );
}
