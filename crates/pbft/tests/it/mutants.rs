#![cfg(feature = "mutants")]
//! The planted PBFT bugs (feature `mutants`) are found by the simulator's
//! oracle in scenarios a fuzzer can generate, and the same scenarios with
//! the real rules are safe and live. Run with
//! `cargo test -p bft-pbft --features mutants --test it mutants::`.

use bft_core::{Adversarial, BatchConfig, Crypto, NodeId, Time};
use bft_pbft::{Pbft, PbftConfig, PbftMessage, PbftMutant, PreparedCert};
use bft_sim::{
    Fault, FaultKind, LoadConfig, NetworkConfig, Partition, SimConfig, SimReport, Simulation,
};
use std::collections::BTreeMap;
use std::sync::Arc;
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

/// The planted bug's run: the oracle found an agreement violation.
#[track_caller]
fn assert_agreement_violated(bug: &Outcome, seed: u64) {
    assert!(
        bug.report
            .violations
            .iter()
            .any(|v| v.contains("agreement")),
        "seed {seed}: {:?}",
        bug.report.violations
    );
}

/// The control run with the real rules: no violation, nobody stuck.
#[track_caller]
fn assert_safe_and_live(real: &Outcome, seed: u64) {
    assert!(
        real.report.violations.is_empty(),
        "seed {seed}: {:?}",
        real.report.violations
    );
    assert!(real.stuck.is_empty(), "seed {seed}: {:?}", real.stuck);
}

/// The setting every scenario here shares: open load from 4 clients at
/// `rate` tx/s, batches of up to 4 cut after 5 ms, on `network`.
fn open_load_config(
    nodes: usize,
    seed: u64,
    duration: Duration,
    rate: f64,
    network: NetworkConfig,
) -> SimConfig {
    SimConfig {
        nodes,
        seed,
        duration,
        network,
        load: LoadConfig::open(rate, 4, 64),
        batch: BatchConfig {
            max_size: 4,
            max_delay: ms(5),
        },
        ..SimConfig::default()
    }
}

fn run(cfg: SimConfig, proto: PbftConfig, heal: Duration) -> Outcome {
    run_with(cfg, proto, heal, |_| {})
}

fn run_with(
    cfg: SimConfig,
    proto: PbftConfig,
    heal: Duration,
    setup: impl FnOnce(&mut Simulation<Pbft>),
) -> Outcome {
    let bound = <Pbft as Adversarial>::liveness_bound(&proto, cfg.nodes);
    let mutated = proto.mutant.is_some();
    let mut sim = Simulation::<Pbft>::new(cfg, proto).unwrap();
    setup(&mut sim);
    // A planted bug is looked for by the oracle only (a run with a safety
    // violation may also stall, and would then run to the whole bound).
    let stuck = if mutated {
        Vec::new()
    } else {
        sim.check_liveness(Time::from_duration(heal), bound)
    };
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
    split_variant(seed, 4, ms(500), ms(2000))
}

/// [`split_halves`] with `n` replicas split into ids `0..n/2` and the rest,
/// from `start` to `end`.
fn split_variant(seed: u64, n: u16, start: Duration, end: Duration) -> SimConfig {
    let mut network = NetworkConfig::uniform(ms(1), ms(20));
    let (a, b): (Vec<u16>, Vec<u16>) = (0..n).partition(|&i| i < n / 2);
    network.partitions = vec![Partition {
        start,
        end,
        groups: vec![nodes(&a), nodes(&b)],
    }];
    open_load_config(usize::from(n), seed, Duration::from_secs(6), 100.0, network)
}

#[test]
fn quorum_2f_splits_the_halves_of_a_partition_and_the_real_quorum_does_not() {
    for seed in [1, 2, 3] {
        let bug = run(
            split_halves(seed),
            pbft(Some(PbftMutant::Quorum2f)),
            ms(2000),
        );
        assert_agreement_violated(&bug, seed);
        let real = run(split_halves(seed), pbft(None), ms(2000));
        assert_safe_and_live(&real, seed);
        assert!(real.report.decisions > 0);
    }
}

// ----- o-set-lowest-view --------------------------------------------------------

/// Byzantine replica 3 (f = 1), signing only with its own key:
/// - in view 0 it withholds its PREPAREs and COMMITs, so it alone collects
///   prepared certificates of view 0 (it hears replica 1's PREPAREs; nobody
///   hears its own);
/// - its VIEW-CHANGE for view 1 hides those certificates (re-signed);
/// - its VIEW-CHANGEs for later views carry them again in place of the
///   newer certificates its core holds for the same seqs: genuine but stale
///   certificates, as an honest replica that missed view 1 would send.
fn stale_certificate_replayer(
    crypto: Arc<dyn Crypto>,
) -> impl FnMut(Time, NodeId, PbftMessage) -> Option<PbftMessage> {
    let mut stash: BTreeMap<u64, PreparedCert> = BTreeMap::new();
    move |_, _, m| match m {
        PbftMessage::Prepare(v) | PbftMessage::Commit(v) if v.view == 0 => None,
        PbftMessage::ViewChange(mut vc) if vc.new_view == 1 => {
            for c in vc.prepared.drain(..) {
                if c.pre_prepare.view == 0 {
                    stash.insert(c.pre_prepare.seq, c);
                }
            }
            Some(PbftMessage::ViewChange(vc.signed_by(crypto.as_ref())))
        }
        PbftMessage::ViewChange(mut vc) if vc.new_view >= 2 => {
            for c in vc.prepared.iter_mut() {
                if let Some(old) = stash.get(&c.pre_prepare.seq) {
                    *c = old.clone();
                }
            }
            Some(PbftMessage::ViewChange(vc.signed_by(crypto.as_ref())))
        }
        other => Some(other),
    }
}

/// n = 4, open load 50 tx/s from 4 clients, batches of up to 4, uniform
/// delays 1 ms to `max_delay_ms`, replica 3 Byzantine
/// ([`stale_certificate_replayer`]), and two partitions:
/// {0,1,3} | {2} from 0 to 1.5 s (2 misses view 0 and view 1), then
/// {1} | {0,2,3} from 1.5 s to 3 s (view 1's primary cut off: view 2, led
/// by 2, is formed by V = {0, 2, 3}).
///
/// In view 0 only replica 3 prepares anything, so view 1's O is empty and
/// primary 1 batches afresh: slot 1 gets another batch B ≠ A, committed by 0,
/// 1, 3. View 2's V holds, for slot 1, replica 0's view-1 certificate (B)
/// and replica 3's view-0 one (A). The real rule re-proposes B; the mutant
/// re-proposes A, which replica 2 (which never executed slot 1) commits.
fn stale_certificate_scenario(seed: u64, max_delay_ms: u64) -> SimConfig {
    let mut network = NetworkConfig::uniform(ms(1), ms(max_delay_ms));
    network.partitions = vec![
        Partition {
            start: ms(0),
            end: ms(1500),
            groups: vec![nodes(&[0, 1, 3]), nodes(&[2])],
        },
        Partition {
            start: ms(1500),
            end: ms(3000),
            groups: vec![nodes(&[1]), nodes(&[0, 2, 3])],
        },
    ];
    open_load_config(4, seed, Duration::from_secs(8), 50.0, network)
}

fn run_stale_certificate(seed: u64, max_delay_ms: u64, mutant: Option<PbftMutant>) -> Outcome {
    run_with(
        stale_certificate_scenario(seed, max_delay_ms),
        pbft(mutant),
        ms(3000),
        |sim| {
            let crypto = sim.crypto(NodeId(3));
            sim.set_outbound_filter(NodeId(3), stale_certificate_replayer(crypto));
        },
    )
}

#[test]
fn o_set_lowest_view_re_proposes_a_stale_certificate_and_the_real_rule_does_not() {
    for seed in [1, 2, 3] {
        let bug = run_stale_certificate(seed, 1, Some(PbftMutant::OSetLowestView));
        assert_agreement_violated(&bug, seed);
        let real = run_stale_certificate(seed, 1, None);
        assert_safe_and_live(&real, seed);
    }
}

/// The same bug with benign faults only (what a fuzzer generating partitions
/// and silent replicas can hit): n = 4, open load 50 tx/s from 4 clients,
/// batches of up to 4, uniform delays 1 ms to `max_delay_ms`;
/// replica 3 silent from 0 to 150 ms; partitions {0,1,3} | {2} from 0 to
/// 150 ms, {0,1,2} | {3} from 150 ms to 1.5 s, {1} | {0,2,3} from 1.6 s to
/// 3 s. Replica 3 alone prepares slot 1 in view 0 (it hears 1's PREPARE,
/// nobody hears its own), misses view 1 (which fills slot 1 with a null
/// request or a fresh batch), and in view 2 (V = {0, 2, 3}) its stale
/// certificate wins under the mutant: replica 3 commits A at slot 1 where
/// the others committed the view-1 batch.
fn benign_stale_certificate(seed: u64, max_delay_ms: u64) -> SimConfig {
    benign_variant(seed, max_delay_ms, true, true)
}

/// [`benign_stale_certificate`] with the silent fault and the first
/// partition optional (which ingredients the bug needs).
fn benign_variant(seed: u64, max_delay_ms: u64, silent: bool, cut_2_first: bool) -> SimConfig {
    let mut network = NetworkConfig::uniform(ms(1), ms(max_delay_ms));
    if cut_2_first {
        network.partitions.push(Partition {
            start: ms(0),
            end: ms(150),
            groups: vec![nodes(&[0, 1, 3]), nodes(&[2])],
        });
    }
    network.partitions.extend([
        Partition {
            start: ms(150),
            end: ms(1500),
            groups: vec![nodes(&[0, 1, 2]), nodes(&[3])],
        },
        Partition {
            start: ms(1600),
            end: ms(3000),
            groups: vec![nodes(&[1]), nodes(&[0, 2, 3])],
        },
    ]);
    SimConfig {
        faults: if silent {
            vec![Fault {
                node: NodeId(3),
                kind: FaultKind::Silent,
                start: ms(0),
                end: Some(ms(150)),
            }]
        } else {
            Vec::new()
        },
        ..open_load_config(4, seed, Duration::from_secs(8), 50.0, network)
    }
}

#[test]
fn o_set_lowest_view_is_found_with_benign_faults_and_the_real_rule_is_safe_and_live() {
    for seed in [1, 2, 3] {
        let cfg = benign_stale_certificate(seed, 20);
        let bug = run(
            cfg.clone(),
            pbft(Some(PbftMutant::OSetLowestView)),
            ms(3000),
        );
        assert_agreement_violated(&bug, seed);
        let real = run(cfg, pbft(None), ms(3000));
        assert_safe_and_live(&real, seed);
        assert!(real.report.decisions > 0);
    }
}

#[test]
fn the_mutant_is_selected_by_the_pbft_table_of_a_scenario_file() {
    let cfg: PbftConfig = toml::from_str("mutant = \"quorum-2f\"").unwrap();
    assert_eq!(cfg.mutant, Some(PbftMutant::Quorum2f));
    let cfg: PbftConfig = toml::from_str("mutant = \"o-set-lowest-view\"").unwrap();
    assert_eq!(cfg.mutant, Some(PbftMutant::OSetLowestView));
    let cfg: PbftConfig = toml::from_str("").unwrap();
    assert_eq!(cfg, PbftConfig::default());
    assert!(!toml::to_string(&cfg).unwrap().contains("mutant"));
    assert!(toml::from_str::<PbftConfig>("mutant = \"quorum-2f1\"").is_err());
}
