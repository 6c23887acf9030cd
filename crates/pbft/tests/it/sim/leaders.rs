//! The leader schedule: a favoured leader and its crash.

use super::*;

/// `favouring(4, 2, 3)` makes the primaries of views 0.. be 2, 2, 2, 3, 0, …:
/// node 2 proposes everything in view 0; when it crashes, views 1 and 2 (its
/// own again) fail too and view 3's primary, node 3, takes over.
#[test]
fn favoured_leader_proposes_and_its_crash_skips_its_repeated_views() {
    use bft_core::LeaderSchedule;
    let schedule = LeaderSchedule::favouring(4, NodeId(2), 3);

    // Fault-free: node 2 is the only proposer, counts as with round-robin.
    const K: u64 = 20;
    let mut cfg = sim_config(4, LoadConfig::closed(1, 1, 128).with_total(K));
    cfg.leaders = Some(schedule.clone());
    let mut sim = Simulation::<Pbft>::new(cfg, PbftConfig::default()).unwrap();
    let report = sim.run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.requests_committed, K);
    assert_eq!(sent_by(&sim, 2, "pre-prepare"), K * 3);
    for other in [0u16, 1, 3] {
        assert_eq!(sent_by(&sim, other, "pre-prepare"), 0, "node {other}");
    }
    assert_eq!(
        sent_by(&sim, 2, "prepare"),
        0,
        "the primary sends no PREPARE"
    );
    assert_eq!(report.stats.total_sent().count, K * 2 * 4 * 3);

    // The favourite crashes: the survivors walk past views 1 and 2.
    let mut cfg = sim_config(4, LoadConfig::closed(1, 1, 128).with_total(40));
    cfg.leaders = Some(schedule);
    cfg.faults = vec![Fault::crash(NodeId(2), Duration::from_millis(20))];
    let mut sim = Simulation::<Pbft>::new(cfg, PbftConfig::default()).unwrap();
    let report = sim.run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.requests_committed, 40);
    for i in [0u16, 1, 3] {
        assert_eq!(sim.node(NodeId(i)).status().view, 3, "replica {i}");
    }
    assert!(sent_by(&sim, 3, "new-view") > 0, "node 3 leads view 3");
    assert!(sent_by(&sim, 3, "pre-prepare") > 0);
    assert_eq!(sent_by(&sim, 0, "pre-prepare"), 0);
    assert_eq!(sent_by(&sim, 1, "pre-prepare"), 0);
    assert_ledgers_agree(&sim, &[0, 1, 3]);
}
