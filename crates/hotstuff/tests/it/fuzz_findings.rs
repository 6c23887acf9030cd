//! Regressions from `bftbench fuzz` findings, each the shrunk scenario
//! rebuilt as a `SimConfig` (same seed, costs, network, load and faults), so
//! the run is the one `bftbench run` replayed.

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
    /// Runs the case as the fuzzer did at n = 4 ([`FuzzCase::replay_with`]).
    fn replay(self) -> SimReport {
        self.replay_with(4)
    }

    /// Runs the case as the fuzzer did (`nodes` replicas, its cost table,
    /// open load 50 tx/s from 2 clients, 2 ms batch delay, 500 ms–4 s view
    /// timeouts), asserts every replica commits again within the fuzzer's
    /// liveness bound for the leader schedule after `heal` and the oracle
    /// finds nothing, and returns the report.
    fn replay_with(self, nodes: usize) -> SimReport {
        let leaders = self
            .leaders
            .clone()
            .unwrap_or_else(|| LeaderSchedule::round_robin(nodes));
        let cfg = SimConfig {
            nodes,
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
        let bound = <HotStuff as Adversarial>::liveness_bound_for(&proto, nodes, &leaders);
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
/// counted towards n−f; with the f+1 joining rule it and one honest NEW-VIEW
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

/// Found by the mutant hunt (`cargo test -p bftbench --test it mutants::`,
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

/// `cargo test -p bftbench --test it fuzz::` (FUZZ_SCALE=0.1) case 12, shrunk:
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

/// `bftbench fuzz --protocol hotstuff --nodes 4 --seed 90417` case 5009, the
/// shape every fresh-seed HotStuff finding of the healed-partition issue
/// had: {0, 2} cut off from {1, 3} 43–615 ms, node 2 (the favoured leader,
/// three views in a row) sending every message one view ahead from 161 ms.
/// With the paper's pacemaker (a replica enters v+1 on its own timer and
/// sends NEW-VIEW to leader(v+1) only) nodes 0/2 and 1/3 stayed two views
/// apart after the heal, timing out in step at the 4 s cap; the catch-up
/// rule needed f+1 NEW-VIEWs for one view at one leader, and node 2's were
/// for the wrong view. Nobody committed again (stuck at 0 decisions). Now
/// NEW-VIEWs are broadcast, a replica leaves a view only on a QC or n−f
/// NEW-VIEWs, and joins f+1 that are ahead (`bft_hotstuff::pacemaker`).
#[test]
fn healed_partition_with_a_mislabelling_leader_resynchronises_views() {
    let report = FuzzCase {
        seed: 8270610551839152045,
        duration: ms(68715),
        network: network(
            ms(15),
            vec![Partition::between(ms(43), ms(615), &[&[0, 2], &[1, 3]])],
        ),
        batch_size: 4,
        faults: vec![Fault::attack(
            NodeId(2),
            Attack::Mutate(Mutation::RoundPlusOne),
            ms(161),
        )],
        leaders: Some(LeaderSchedule::favouring(4, NodeId(2), 3)),
        heal: ms(615),
    }
    .replay();
    assert!(report.decisions > 0, "{}", report.decisions);
}

/// Found while building the pacemaker above (`bftbench fuzz --protocol
/// hotstuff --seed 90417` case 1380): {0, 3} cut off from {1, 2} 296 ms to
/// 1.04 s, node 1 crashed for good at 393 ms, favoured for two views. Node
/// 2 left view 18 on n−f NEW-VIEW(18)s, but nodes 0 and 3 had sent theirs
/// before the heal and never got node 2's: they re-sent NEW-VIEW(18) for a
/// minute while node 2 waited alone in view 19. Now a replica answers a
/// re-sent NEW-VIEW from a view it has left with its own (pacemaker rule
/// 5), which completes the stuck replicas' n−f.
#[test]
fn replicas_stuck_a_view_behind_are_answered() {
    FuzzCase {
        seed: 100841869067969844,
        duration: ms(61137),
        network: network(
            ms(13),
            vec![Partition::between(ms(296), ms(1037), &[&[0, 3], &[1, 2]])],
        ),
        batch_size: 4,
        faults: vec![Fault::crash(NodeId(1), ms(393))],
        leaders: Some(LeaderSchedule::favouring(4, NodeId(1), 2)),
        heal: ms(1037),
    }
    .replay();
}

/// `bftbench fuzz --protocol hotstuff --nodes 7 --seed 5550102` case 8529,
/// shrunk: node 1 forges QCs (duplicate signers) from 528 ms and leads five views in a
/// row; node 4 corrupts every signature it sends from 186 ms. The only run
/// of three honest leaders (views 41–43 of each rotation) is followed by
/// node 1, so QC(43) exists only as the votes the NEW-VIEW(48)s carry to
/// node 2, leader of view 49. Node 4's NEW-VIEW (its vote bad) completed
/// node 2's n−f before the fifth honest one arrived, node 2 proposed on
/// QC(42), and QC(43) formed a moment too late, every rotation: no commit
/// after 25 decisions. Now that leader waits up to `rebuild_wait` for the
/// missing NEW-VIEWs (pacemaker rule 6).
#[test]
fn leader_waits_for_new_views_that_rebuild_a_lost_qc() {
    let report = FuzzCase {
        seed: 41376614457169643,
        duration: ms(108628),
        network: network(
            ms(2),
            vec![Partition::between(
                ms(295),
                ms(512),
                &[&[0, 1, 2, 3, 4, 6], &[5]],
            )],
        ),
        batch_size: 3,
        faults: vec![
            Fault::attack(NodeId(1), Attack::Forge(Forgery::DuplicateSigners), ms(528)),
            Fault::attack(NodeId(4), Attack::BadSignature, ms(186)),
        ],
        leaders: Some(LeaderSchedule::favouring(7, NodeId(1), 5)),
        heal: ms(528),
    }
    .replay_with(7);
    assert!(report.decisions > 25, "{}", report.decisions);
}

/// `bftbench fuzz --protocol hotstuff --nodes 7 --seed 5550102` case 1573,
/// shrunk: node 0 omits everything to node 6 from 77 ms; node 1 corrupts every
/// signature it sends from 149 ms. The honest replicas had verified QC(6)
/// before node 1's block of view 8 arrived with a corrupted copy of it; the
/// cache check passed, and they stored and served those bytes. Node 6,
/// which missed the block (it came from node 1, but its child from node 0)
/// fetched it from each of them in turn, could never verify it, and never
/// voted or committed again (stuck at 3 decisions). Now a block keeps the
/// QC copy we verified.
#[test]
fn fetched_blocks_carry_verifiable_qcs() {
    let report = FuzzCase {
        seed: 8367534939828584165,
        duration: ms(76249),
        network: network(
            ms(8),
            vec![Partition::between(
                ms(16),
                ms(100),
                &[&[1, 2, 3, 4, 5, 6], &[0]],
            )],
        ),
        batch_size: 3,
        faults: vec![
            Fault::new(
                NodeId(0),
                FaultKind::Omission {
                    peers: vec![NodeId(6)],
                },
                ms(77),
            ),
            Fault::attack(NodeId(1), Attack::BadSignature, ms(149)),
        ],
        leaders: None,
        heal: ms(149),
    }
    .replay_with(7);
    assert!(report.decisions > 3, "{}", report.decisions);
}
