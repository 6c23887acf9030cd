//! Restart from disk: a replica crashed at an arbitrary moment and
//! restarted from what it had written to its store (`crash` with `until`)
//! stays an honest replica — the oracle checks every decision it makes,
//! before and after — resumes at the tip it had committed (its ledger
//! continues, no slot twice) and commits again.

use super::{PROTOCOLS, scenario};
use bft_core::NodeId;
use bft_sim::{Fault, FaultKind, Fsync, Simulation};
use bftbench::protocols::BenchProtocol;
use bftbench::run::sim_config;
use bftbench::scenario::Scenario;
use std::time::Duration;

/// Runs `s` with ledgers kept; the report, `node`'s whole ledger (every
/// incarnation) and the decisions of its last incarnation.
fn run_restart<P: BenchProtocol>(
    s: &Scenario,
    node: NodeId,
) -> (bft_sim::SimReport, Vec<u64>, u64) {
    let mut cfg = sim_config(s);
    cfg.keep_ledgers = true;
    let mut sim = Simulation::<P>::new(cfg, P::config(s)).unwrap();
    let report = sim.run();
    let slots = sim.ledger(node).iter().map(|d| d.slot).collect();
    (report, slots, sim.node(node).stats().decisions)
}

#[test]
fn a_replica_restarted_from_disk_resumes_at_its_tip_and_commits_again() {
    for protocol in PROTOCOLS {
        for seed in 1..=8u64 {
            // Crash moments and downtimes spread over the run, each replica
            // (the first leader too) in turn.
            let node = NodeId((seed % 4) as u16);
            let at = Duration::from_millis(40 + 73 * seed);
            let down = Duration::from_millis(20 + (131 * seed) % 500);
            let mut s = scenario(protocol, seed, 600);
            s.storage.audit = true;
            s.faults = vec![Fault {
                node,
                kind: FaultKind::Crash { amnesia: false },
                start: at,
                end: Some(at + down),
            }];
            let (report, slots, after_restart) =
                bftbench::with_protocol!(protocol, P => run_restart::<P>(&s, node));
            let what = format!("{protocol} seed {seed}: {node} down {at:?} + {down:?}");
            assert!(
                report.violations.is_empty(),
                "{what}: {:?}",
                report.violations
            );
            assert_eq!(report.requests_committed, 600, "{what}");
            let expected: Vec<u64> = (1..=slots.len() as u64).collect();
            assert_eq!(
                slots, expected,
                "{what}: its ledger continues across the restart"
            );
            assert!(after_restart > 0, "{what}: commits after the restart");
        }
    }
}

/// `fsync = "always"` makes every step that persists wait for the disk:
/// the same run takes longer per request than with `never`, which charges
/// only the write.
#[test]
fn fsync_always_charges_the_disk_wait_on_every_persisting_step() {
    for protocol in PROTOCOLS {
        let latency = |fsync: Fsync| {
            let mut s = scenario(protocol, 3, 200);
            s.storage.fsync = fsync;
            s.cost.store_fsync = Duration::from_millis(2);
            let (report, _, _) =
                bftbench::with_protocol!(protocol, P => run_restart::<P>(&s, NodeId(0)));
            assert!(report.violations.is_empty(), "{protocol}");
            report.latency.mean
        };
        let (never, always) = (latency(Fsync::Never), latency(Fsync::Always));
        assert!(always > never, "{protocol}: {always:?} vs {never:?}");
    }
}

/// `persist = false`: no replica keeps anything, so no step pays for the
/// store and a run is faster per request than with a store; a crash that
/// would restart from the store is refused, naming the fault.
#[test]
fn persist_false_charges_no_store_and_refuses_a_restart_from_it() {
    for protocol in PROTOCOLS {
        let latency = |persist: bool| {
            let mut s = scenario(protocol, 3, 200);
            s.storage.persist = persist;
            s.cost.store_write = Duration::from_millis(1);
            let (report, _, _) =
                bftbench::with_protocol!(protocol, P => run_restart::<P>(&s, NodeId(0)));
            report.latency.mean
        };
        let (with, without) = (latency(true), latency(false));
        assert!(without < with, "{protocol}: {without:?} vs {with:?}");

        let mut s = scenario(protocol, 3, 200);
        s.storage.persist = false;
        s.faults = vec![Fault {
            node: NodeId(1),
            kind: FaultKind::Crash { amnesia: false },
            start: Duration::from_millis(50),
            end: Some(Duration::from_millis(80)),
        }];
        let e = s
            .validate(std::path::Path::new("test.toml"))
            .expect_err("refused");
        assert!(e.to_string().contains("faults[0].until"), "{e}");
        let e = bftbench::with_protocol!(protocol, P => {
            Simulation::<P>::new(sim_config(&s), P::config(&s)).err().expect("refused")
        });
        assert!(e.to_string().contains("persist = false"), "{e}");
    }
}

/// Catch-up is counted apart, by one definition for every protocol: the
/// kinds the protocol names as catch-up, summed from the record's own
/// per-kind counts; on a network that does not reorder, a run with a
/// replica down for half a second has more of it than the same run without
/// (where PBFT may fetch a little too, when a replica sees a checkpoint
/// before it has executed that far). With reordering, HotStuff replicas
/// fetch parents that a later block overtook, and the crash removes the down
/// replica's share of those.
#[test]
fn a_restarted_replica_catches_up_and_the_record_counts_it_apart() {
    for protocol in PROTOCOLS {
        let kinds =
            bftbench::with_protocol!(protocol, P => <P as bft_core::Protocol>::CATCH_UP_KINDS);
        let summed = |r: &bftbench::record::Record| {
            kinds
                .iter()
                .filter_map(|k| r.messages_by_kind.get(*k))
                .fold((0, 0), |(m, b), k| (m + k.count, b + k.bytes))
        };
        let mut s = scenario(protocol, 5, 600);
        // No reordering: in the quiet run no block overtakes its parent.
        s.network = bft_sim::NetworkConfig::fixed(Duration::from_millis(2));
        let quiet = bftbench::run::run(&s, &mut |_| {}).unwrap();
        assert_eq!(
            (quiet.catch_up_messages, quiet.catch_up_bytes),
            summed(&quiet),
            "{protocol}"
        );
        s.faults = vec![Fault {
            node: NodeId(2),
            kind: FaultKind::Crash { amnesia: false },
            start: Duration::from_millis(100),
            end: Some(Duration::from_millis(600)),
        }];
        let r = bftbench::run::run(&s, &mut |_| {}).unwrap();
        assert!(r.safety_violations.is_empty(), "{protocol}");
        assert_eq!(
            (r.catch_up_messages, r.catch_up_bytes),
            summed(&r),
            "{protocol}"
        );
        assert!(
            r.catch_up_messages > quiet.catch_up_messages,
            "{protocol}: {} vs {}",
            r.catch_up_messages,
            quiet.catch_up_messages
        );
        assert!(
            r.catch_up_messages <= r.retransmitted_messages,
            "{protocol}: catch-up is part of the retransmitted figure"
        );
    }
}
