#![cfg(feature = "mutants")]
//! The planted PBFT bugs (feature `mutants`) are found by the simulator's
//! oracle in scenarios a fuzzer can generate, and the same scenarios with
//! the real rules are safe and live. Run with
//! `cargo test -p bft-pbft --features mutants --test mutants`.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use bft_core::{Adversarial, BatchConfig, NodeId, Time};
use bft_pbft::{Pbft, PbftConfig, PbftMutant};
use bft_sim::{LoadConfig, NetworkConfig, Partition, SimConfig, SimReport, Simulation};
use std::time::Duration;

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

fn nodes(ids: &[u16]) -> Vec<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

fn pbft(mutant: Option<PbftMutant>) -> PbftConfig {
    PbftConfig {
        mutant,
        ..PbftConfig::default()
    }
}

/// What a run found: the oracle's violations and, from the heal on, the
/// replicas that committed nothing new within the liveness bound.
struct Outcome {
    report: SimReport,
    stuck: Vec<String>,
}

fn run(cfg: SimConfig, proto: PbftConfig, heal: Duration) -> Outcome {
    let bound = <Pbft as Adversarial>::liveness_bound(&proto, cfg.nodes);
    let mut sim = Simulation::<Pbft>::new(cfg, proto).unwrap();
    let stuck = sim.check_liveness(Time::from_duration(heal), bound);
    sim.run();
    Outcome {
        report: sim.report(),
        stuck,
    }
}

// ----- quorum-2f ----------------------------------------------------------------

/// n = 4, open load (100 tx/s from 4 clients), uniform 1–20 ms delays,
/// batches of up to 4, and the partition {0,1} | {2,3} from 0.5 s to 2 s.
/// With quorum 2f = 2 each half commits on its own: {0,1} in view 0, {2,3}
/// after two view changes in view 2 (primary 2), with different batches at
/// the same slots.
fn split_halves(seed: u64) -> SimConfig {
    let mut network = NetworkConfig::uniform(ms(1), ms(20));
    network.partitions = vec![Partition {
        start: ms(500),
        end: ms(2000),
        groups: vec![nodes(&[0, 1]), nodes(&[2, 3])],
    }];
    SimConfig {
        nodes: 4,
        seed,
        duration: Duration::from_secs(6),
        network,
        load: LoadConfig::open(100.0, 4, 64),
        batch: BatchConfig {
            max_size: 4,
            max_delay: ms(5),
        },
        ..SimConfig::default()
    }
}

#[test]
fn quorum_2f_splits_the_halves_of_a_partition_and_the_real_quorum_does_not() {
    for seed in [1, 2, 3] {
        let bug = run(
            split_halves(seed),
            pbft(Some(PbftMutant::Quorum2f)),
            ms(2000),
        );
        assert!(
            bug.report
                .violations
                .iter()
                .any(|v| v.contains("agreement")),
            "seed {seed}: {:?}",
            bug.report.violations
        );
        let real = run(split_halves(seed), pbft(None), ms(2000));
        assert!(
            real.report.violations.is_empty(),
            "seed {seed}: {:?}",
            real.report.violations
        );
        assert!(real.stuck.is_empty(), "seed {seed}: {:?}", real.stuck);
        assert!(real.report.decisions > 0);
    }
}

/// Hit rates over seeds for the report (not part of the suite: slow).
#[test]
#[ignore]
fn sweep_quorum_2f() {
    let (mut bug_hits, mut real_bad) = (0, 0);
    for seed in 0..100 {
        let bug = run(
            split_halves(seed),
            pbft(Some(PbftMutant::Quorum2f)),
            ms(2000),
        );
        bug_hits += usize::from(!bug.report.violations.is_empty());
        let real = run(split_halves(seed), pbft(None), ms(2000));
        real_bad += usize::from(!real.report.violations.is_empty() || !real.stuck.is_empty());
    }
    println!("quorum-2f split halves: {bug_hits}/100 violate; control bad in {real_bad}/100");
}
