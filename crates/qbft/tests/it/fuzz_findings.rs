//! Regressions from `bftbench fuzz` findings, each the shrunk scenario
//! rebuilt as a `SimConfig` (same seed, network, load and faults, the
//! simulator's default costs), so the run is the one `bftbench run`
//! replayed.

use bft_core::{Adversarial, BatchConfig, LeaderSchedule, NodeId, Time};
use bft_qbft::{Qbft, QbftConfig};
use bft_sim::{Fault, FaultKind, LoadConfig, NetworkConfig, Partition, SimConfig, Simulation};
use std::time::Duration;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// What differs between the shrunk fuzz cases; the rest is the fuzzer's
/// fixed setting (see [`FuzzCase::replay`]).
struct FuzzCase {
    seed: u64,
    duration: Duration,
    /// Uniform one-way delays from 1 ms to this.
    max_delay: Duration,
    partitions: Vec<Partition>,
    batch_size: usize,
    faults: Vec<Fault>,
    leaders: Option<LeaderSchedule>,
    /// Where liveness is checked from.
    heal: Duration,
}

impl FuzzCase {
    /// Runs the case as the fuzzer did at n = 4 (open load 50 tx/s from 2
    /// clients, 2 ms batch delay, 200 ms round timeouts capped at 2^3),
    /// asserts every honest replica commits again within the fuzzer's
    /// liveness bound for the leader schedule after `heal` and the oracle
    /// finds nothing.
    fn replay(self) {
        let nodes = 4;
        let leaders = self
            .leaders
            .clone()
            .unwrap_or_else(|| LeaderSchedule::round_robin(nodes));
        let cfg = SimConfig {
            nodes,
            seed: self.seed,
            duration: self.duration,
            network: NetworkConfig {
                partitions: self.partitions,
                ..NetworkConfig::uniform(ms(1), self.max_delay)
            },
            load: LoadConfig::open(50.0, 2, 32),
            batch: BatchConfig {
                max_size: self.batch_size,
                max_delay: ms(2),
            },
            faults: self.faults,
            leaders: self.leaders,
            ..SimConfig::default()
        };
        let proto = QbftConfig {
            round_timeout: ms(200),
            max_timeout_exponent: 3,
            ..QbftConfig::default()
        };
        let bound = Qbft::liveness_bound_for(&proto, nodes, &leaders);
        let mut sim = Simulation::<Qbft>::new(cfg, proto).unwrap();
        let stuck = sim.check_liveness(Time::from_duration(self.heal), bound);
        assert!(stuck.is_empty(), "{stuck:?}");
        let report = sim.report();
        assert!(report.violations.is_empty(), "{:?}", report.violations);
    }
}

/// `bftbench fuzz --protocol qbft --nodes 4 --seed 97161217727336` case
/// 393914, shrunk: node 3 cut off 439–490 ms, node 0 cut off 589 ms–1.358 s,
/// node 2 omitting every message to nodes 1 and 3 from 461 ms; 200 ms round
/// timeouts capped at 2^3. After the heal nodes 0 and 2 sat one round ahead
/// of nodes 1 and 3 and left each round about 15 ms after 1 and 3 entered
/// it, before its COMMITs could gather; node 2's ROUND-CHANGEs reached node
/// 0 only, so 1 and 3 never saw the f+1 that would pull them up. With every
/// round capped at the same length the phase never changed: no decision
/// after 15. Now a round's timer starts when a quorum has reached it.
#[test]
fn replicas_a_round_apart_with_capped_timeouts_decide_once_healed() {
    FuzzCase {
        seed: 1004361809839957193,
        duration: ms(9658),
        max_delay: ms(22),
        partitions: vec![
            Partition::between(ms(589), ms(1358), &[&[1, 2, 3]]),
            Partition::between(ms(439), ms(490), &[&[0, 1, 2]]),
        ],
        batch_size: 1,
        faults: vec![Fault::new(
            NodeId(2),
            FaultKind::Omission {
                peers: vec![NodeId(1), NodeId(3)],
            },
            ms(461),
        )],
        leaders: None,
        heal: ms(1358),
    }
    .replay();
}

/// `bftbench fuzz --protocol qbft --nodes 4 --seed 180860453357822` case
/// 136491 against a first fix (the round timer restarted on a ROUND-CHANGE
/// quorum, but a round still left at its timeout without one), shrunk:
/// {0, 1} cut off from {2, 3} from 39 to 733 ms, node 2 silent from 427 ms
/// and the favoured proposer of 4 rounds in 7. After the heal node 3 sat a
/// whole round ahead of nodes 0 and 1 and left each round about 7 ms
/// before they entered it, so no round ever held a quorum: node 3 stuck at
/// 1 decision for the 25.8 s bound. Now a replica never leaves a round by
/// timeout before q replicas have reached it; it waits, sending its
/// ROUND-CHANGE again.
#[test]
fn a_replica_a_whole_round_ahead_waits_for_a_quorum_before_leaving_it() {
    FuzzCase {
        seed: 5845718685853507681,
        duration: ms(26633),
        max_delay: ms(22),
        partitions: vec![Partition::between(ms(39), ms(733), &[&[0, 1]])],
        batch_size: 4,
        faults: vec![Fault::new(
            NodeId(2),
            FaultKind::Omission {
                peers: vec![NodeId(0), NodeId(1), NodeId(3)],
            },
            ms(427),
        )],
        leaders: Some(LeaderSchedule::favouring(4, NodeId(2), 4)),
        heal: ms(733),
    }
    .replay();
}

/// `bftbench fuzz --protocol qbft --nodes 4 --seed 115722834399035` case
/// 773441 against the round-timer rule before its relay rule: node 0
/// paused 28–240 ms, then cut off until 338 ms. It came back at height 1
/// while the others were far ahead, left round 0 and waited in round 1 for
/// a quorum that could only come from a relay; its helpers had answered
/// its ROUND-CHANGE for (1, 1) once, into the partition, and answered the
/// same ROUND-CHANGE re-sent every timeout never again: node 0 stuck at 0
/// decisions for the 9.8 s bound. Now a helper answers the same round
/// change again once half its round's timeout has passed.
#[test]
fn a_lagging_replica_waiting_in_its_round_is_relayed_again() {
    FuzzCase {
        seed: 973899686874072568,
        duration: ms(10238),
        max_delay: ms(20),
        partitions: vec![Partition::between(ms(241), ms(338), &[&[0]])],
        batch_size: 4,
        faults: vec![Fault::crash(NodeId(0), ms(28)).until(ms(240))],
        leaders: None,
        heal: ms(338),
    }
    .replay();
}
