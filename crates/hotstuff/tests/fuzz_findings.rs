//! Regressions from `bftbench fuzz` findings, each the shrunk scenario
//! rebuilt as a `SimConfig` (same seed, costs, network, load and faults), so
//! the run is the one `bftbench run` replayed.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use bft_core::{Adversarial, Attack, BatchConfig, Forgery, LeaderSchedule, Mutation, NodeId, Time};
use bft_crypto::CostModel;
use bft_hotstuff::{HotStuff, HotStuffConfig};
use bft_sim::{
    Fault, FaultKind, LoadConfig, NetworkConfig, Partition, SimConfig, SimReport, Simulation,
};
use std::time::Duration;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// The fuzzer's default cost table.
fn fuzz_costs() -> CostModel {
    toml::from_str(
        r#"
sign = "36us"
verify = "172us"
batch_verify_per_sig = "43us"
bls_sign = "493us"
bls_verify = "1ms 998us"
bls_check = "119us"
bls_aggregate_per_sig = "32us"
bls_verify_aggregate = "2ms 408us"
"#,
    )
    .unwrap()
}

/// Uniform 1 ms to `max_delay` one-way delays with `partitions` on top.
fn network(max_delay: Duration, partitions: Vec<Partition>) -> NetworkConfig {
    NetworkConfig {
        partitions,
        ..NetworkConfig::uniform(ms(1), max_delay)
    }
}

/// What differs between the shrunk fuzz cases; the rest is the fuzzer's
/// fixed setting (see [`FuzzCase::replay`]).
struct FuzzCase {
    seed: u64,
    duration: Duration,
    network: NetworkConfig,
    batch_size: usize,
    faults: Vec<Fault>,
    leaders: Option<LeaderSchedule>,
    /// Where liveness is checked from.
    heal: Duration,
}

impl FuzzCase {
    /// Runs the case as the fuzzer did (n = 4, its cost table, open load
    /// 50 tx/s from 2 clients, 2 ms batch delay, 500 ms–4 s view timeouts),
    /// asserts every replica commits again within the liveness bound after
    /// `heal` and the oracle finds nothing, and returns the report.
    fn replay(self) -> SimReport {
        let cfg = SimConfig {
            nodes: 4,
            seed: self.seed,
            cost: fuzz_costs(),
            duration: self.duration,
            network: self.network,
            load: LoadConfig::open(50.0, 2, 32),
            batch: BatchConfig {
                max_size: self.batch_size,
                max_delay: ms(2),
            },
            faults: self.faults,
            leaders: self.leaders,
            keep_ledgers: false,
            ..SimConfig::default()
        };
        let proto = HotStuffConfig {
            view_timeout: ms(500),
            max_view_timeout: ms(4000),
            ..HotStuffConfig::default()
        };
        let bound = <HotStuff as Adversarial>::liveness_bound(&proto, 4);
        let mut s = Simulation::<HotStuff>::new(cfg, proto).unwrap();
        let stuck = s.check_liveness(Time::from_duration(self.heal), bound);
        assert!(stuck.is_empty(), "{stuck:?}");
        let report = s.report();
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        report
    }
}

/// `bftbench fuzz --protocol hotstuff --nodes 4 --seed 1` case 103, shrunk:
/// node 1 forges wrong-round QCs from 208 ms, partition {0,1}|{2,3} from
/// 358 to 713 ms. Node 1's NEW-VIEW carried its QC(v) relabelled as view
/// v−1, no newer than the next leader's highQC, so it was not checked and
/// counted towards n−f; with the catch-up rule it and one honest NEW-VIEW
/// made the leader propose before the third honest NEW-VIEW's vote rebuilt
/// QC(v). Every rotation lost its three-chain: stuck at 9 decisions for the
/// whole 52 s bound. Now a NEW-VIEW counts only with a valid QC.
#[test]
fn forged_new_view_qc_does_not_count_towards_n_minus_f() {
    let report = FuzzCase {
        seed: 4459152149998560713,
        duration: ms(52813),
        network: network(
            ms(16),
            vec![Partition::between(ms(358), ms(713), &[&[0, 1], &[2, 3]])],
        ),
        batch_size: 1,
        faults: vec![Fault::attack(
            NodeId(1),
            Attack::Forge(Forgery::WrongRound),
            ms(208),
        )],
        leaders: None,
        heal: ms(713),
    }
    .replay();
    assert!(report.decisions > 9, "{}", report.decisions);
}

/// Found by the mutant hunt (`cargo test -p bftbench --test mutants`,
/// `bftbench fuzz --protocol hotstuff --nodes 4 --seed 11` case 207), and
/// failing with the real rules too: node 0 omits everything it sends to
/// node 3 from 7 ms on. Node 3 never gets node 0's blocks and fetched each
/// from the first voter of the QC certifying it, node 0, which never
/// answered; the fetch was retried only after a view timeout, and node 3,
/// following the others' QCs, never timed out: it committed nothing in the
/// 52 s bound. Now an unanswered fetch is re-sent in a later view, to the
/// next voter.
#[test]
fn fetch_from_a_peer_that_omits_to_us_is_retried_elsewhere() {
    FuzzCase {
        seed: 6895275012450390002,
        duration: ms(52107),
        network: network(ms(23), Vec::new()),
        batch_size: 1,
        faults: vec![Fault::new(
            NodeId(0),
            FaultKind::Omission {
                peers: vec![NodeId(3)],
            },
            ms(7),
        )],
        leaders: None,
        heal: ms(7),
    }
    .replay();
}

/// Found by the mutant hunt (`bftbench fuzz --protocol hotstuff --nodes 4
/// --seed 11` case 1226), failing with the real rules too (the
/// `PartitionsCrash` stall): node 0 cut off from 61 to 451 ms, node 3
/// crashed for good at 445 ms. Node 0 timed out first in isolation and
/// stayed one view ahead of nodes 1 and 2: every proposal reached it after
/// it had timed out of that view, was refused as stale and never got its
/// vote, and without node 0 and node 3 no QC forms. Stuck at 1 decision for
/// the whole bound. Now a late proposal whose view is above the last voted
/// view gets the vote the vote rule allows.
#[test]
fn replica_one_view_ahead_votes_for_late_proposals() {
    FuzzCase {
        seed: 5034972086308459273,
        duration: ms(52551),
        network: network(
            ms(12),
            vec![Partition::between(ms(61), ms(451), &[&[1, 2, 3], &[0]])],
        ),
        batch_size: 1,
        faults: vec![Fault::crash(NodeId(3), ms(445))],
        leaders: None,
        heal: ms(451),
    }
    .replay();
}

/// `cargo test -p bftbench --test fuzz` (FUZZ_SCALE=0.1) case 12, shrunk:
/// node 1 forges wrong-round QCs from 291 ms and is the favoured leader of
/// two consecutive views; node 0 cut off 587–934 ms. NEW-VIEWs after the
/// two faulty views carried the honest votes of the view before them, but
/// the leader took last votes of the failed view or the one before only:
/// the last honest QC was never rebuilt, stuck at 16 decisions.
#[test]
fn last_votes_survive_two_consecutive_faulty_leaders() {
    FuzzCase {
        seed: 64364061667843437,
        duration: ms(53034),
        network: network(
            ms(16),
            vec![Partition::between(ms(587), ms(934), &[&[0], &[1, 2, 3]])],
        ),
        batch_size: 1,
        faults: vec![Fault::attack(
            NodeId(1),
            Attack::Forge(Forgery::WrongRound),
            ms(291),
        )],
        leaders: Some(LeaderSchedule::favouring(4, NodeId(1), 2)),
        heal: ms(934),
    }
    .replay();
}

/// `bftbench fuzz --protocol hotstuff --nodes 4 --seed 1` case 3471, shrunk:
/// node 3 mutates stale digests from 462 ms and is the favoured leader of
/// two consecutive views (rotation 3,3,0,1,2); partitions {0}|{1,2,3}
/// 272–869 ms and {1}|rest 161–561 ms. Node 3 formed the QC of the last
/// honest block but proposed only blocks on genesis, so the honest replicas
/// learnt that QC from its NEW-VIEWs alone, one backed-off timeout apart,
/// and each reset its backoff on it at another time: node 0, leading the
/// first honest view after the faulty run, timed out of it exactly when the
/// last NEW-VIEW it needed arrived, and a replica that jumped past a view
/// dropped the proposal it held for it unvoted. Stuck at 19 decisions after
/// the heal. Now a QC from a NEW-VIEW keeps the backoff, and a skipped
/// view's proposal still gets the vote the rule allows.
#[test]
fn stale_digest_favoured_leader_does_not_stall_commits() {
    let report = FuzzCase {
        seed: 779536800843369739,
        duration: ms(52969),
        network: network(
            ms(2),
            vec![
                Partition::between(ms(272), ms(869), &[&[1, 2, 3], &[0]]),
                Partition::between(ms(161), ms(561), &[&[1], &[0, 2, 3]]),
            ],
        ),
        batch_size: 4,
        faults: vec![Fault::attack(
            NodeId(3),
            Attack::Mutate(Mutation::StaleDigest),
            ms(462),
        )],
        leaders: Some(LeaderSchedule::favouring(4, NodeId(3), 2)),
        heal: ms(869),
    }
    .replay();
    assert!(report.decisions > 19, "{}", report.decisions);
}
