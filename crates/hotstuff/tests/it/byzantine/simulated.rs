//! Every attack by one replica in the simulator: safe, live and bounded.

use super::*;

/// Every attack, by node 1 of 4, over a few seeds: no conflicting commits,
/// every request committed, the attack's signature rejection counted, and
/// the honest replicas' retained state small.
#[test]
fn every_attack_by_one_replica_is_safe_live_and_bounded() {
    let cases: Vec<(Attack, &[&str])> = vec![
        (
            Attack::Equivocate,
            &["equivocating-proposal", "unknown-parent", "ok"],
        ),
        (Attack::DoubleVote, &["equivocating-vote"]),
        (Attack::Forge(Forgery::BelowQuorum), &["qc-too-few-signers"]),
        (
            Attack::Forge(Forgery::DuplicateSigners),
            &["qc-bad-signature"],
        ),
        (Attack::Forge(Forgery::WrongRound), &["qc-bad-signature"]),
        (Attack::Forge(Forgery::WrongDigest), &["qc-bad-signature"]),
        (Attack::InflateView(1000), &["ok"]),
        (Attack::InflateView(3), &["ok"]),
        (Attack::Mutate(Mutation::RoundPlusOne), &["wrong-proposer"]),
        (Attack::Mutate(Mutation::RoundMinusOne), &["wrong-proposer"]),
        (Attack::Mutate(Mutation::StaleDigest), &["ok"]),
        (Attack::Mutate(Mutation::SwapSender), &["wrong-proposer"]),
        (
            Attack::BadSignature,
            &["qc-bad-signature", "bad-vote-signature"],
        ),
    ];
    for (attack, reasons) in cases {
        for seed in 1..=3 {
            let (report, sim) = attacked(attack, seed);
            assert!(
                report.violations.is_empty(),
                "{attack:?} seed {seed}: {:?}",
                report.violations
            );
            assert_eq!(
                report.requests_committed, REQUESTS,
                "{attack:?} seed {seed}"
            );
            let counted: u64 = reasons.iter().map(|r| rejected(&report, r)).sum();
            assert!(
                reasons.contains(&"ok") || counted > 0,
                "{attack:?} seed {seed}: {:?}",
                report.stats.rejected.to_sorted()
            );
            for id in [0u16, 2, 3] {
                let retained = sim.node(NodeId(id)).status().retained;
                assert!(retained < 200, "{attack:?} node {id}: {retained}");
            }
        }
    }
}
