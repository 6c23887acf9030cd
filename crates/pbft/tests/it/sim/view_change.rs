//! Crashes and view changes: a crashed primary, restarts, prepared requests
//! carried into the new view, dead primaries in a row, and what a view
//! change costs.

use super::*;

#[test]
fn primary_crash_mid_run_changes_view_and_every_request_commits_without_gaps() {
    let mut cfg = sim_config(4, LoadConfig::closed(2, 2, 128).with_total(300));
    cfg.faults = vec![Fault::crash(NodeId(0), Duration::from_millis(150))];
    let mut sim = Simulation::<Pbft>::new(cfg, PbftConfig::default()).unwrap();
    let report = sim.run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.requests_committed, 300, "before and after the crash");
    assert!(report.view_changes >= 1);
    for i in 1..4u16 {
        let st = sim.node(NodeId(i)).status();
        assert_eq!(st.view, 1, "replica {i}");
        assert!(!sim.node(NodeId(i)).protocol().is_changing_view());
        // Every request exactly once in the ledger.
        let ids: Vec<RequestId> = sim
            .ledger(NodeId(i))
            .iter()
            .flat_map(|d| d.requests.clone())
            .collect();
        let distinct: BTreeSet<_> = ids.iter().copied().collect();
        assert_eq!((ids.len(), distinct.len()), (300, 300), "replica {i}");
    }
    assert_ledgers_agree(&sim, &[1, 2, 3]);
}

#[test]
fn view_change_at_n_7_sends_no_extra_new_view_for_slow_view_changes() {
    // 6 live replicas, quorum 5: one VIEW-CHANGE reaches the new primary
    // after its NEW-VIEW. That replica gets the broadcast NEW-VIEW anyway,
    // so nothing is re-sent.
    let mut cfg = sim_config(7, LoadConfig::closed(1, 1, 128).with_total(5));
    cfg.faults = vec![Fault::crash(NodeId(0), Duration::ZERO)];
    let report = Simulation::<Pbft>::new(cfg, PbftConfig::default())
        .unwrap()
        .run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.requests_committed, 5);
    assert_eq!(sent(&report, "view-change"), 6 * 6);
    assert_eq!(sent(&report, "new-view"), 6);
}

#[test]
fn crashed_primary_view_change_costs_exactly_n_minus_1_squared_view_changes() {
    // Primary 0 is down from the start: one view change, then view 1.
    const K: u64 = 10;
    let mut cfg = sim_config(4, LoadConfig::closed(1, 1, 128).with_total(K));
    cfg.faults = vec![Fault::crash(NodeId(0), Duration::ZERO)];
    let report = Simulation::<Pbft>::new(cfg, PbftConfig::default())
        .unwrap()
        .run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.requests_committed, K);
    assert_eq!(report.view_changes, 1);
    // 3 live replicas multicast VIEW-CHANGE; the new primary one NEW-VIEW.
    assert_eq!(sent(&report, "view-change"), 3 * 3);
    assert_eq!(sent(&report, "new-view"), 3);
    // Per decision in view 1: 3 pre-prepares, PREPAREs from the 2 live
    // backups, COMMITs from the 3 live replicas (sends to the dead one count).
    assert_eq!(sent(&report, "pre-prepare"), K * 3);
    assert_eq!(sent(&report, "prepare"), K * 2 * 3);
    assert_eq!(sent(&report, "commit"), K * 3 * 3);
}

/// The primary crashes, the others move to view 1, and the old primary comes
/// back with its view-0 state: it rejoins view 1 (it sees f+1 replicas in
/// it and gets the NEW-VIEW re-sent) and catches up by state transfer.
#[test]
fn restarted_old_primary_rejoins_the_new_view_and_catches_up() {
    let pbft = PbftConfig {
        checkpoint_interval: 16,
        window: 64,
        state_transfer_depth: 512,
        ..PbftConfig::default()
    };
    let mut cfg = sim_config(4, LoadConfig::closed(2, 2, 64).with_total(400));
    cfg.faults =
        vec![Fault::crash(NodeId(0), Duration::from_millis(50)).until(Duration::from_millis(400))];
    let mut sim = Simulation::<Pbft>::new(cfg, pbft).unwrap();
    // Mid-run, 200 ms after the restart: back in view 1 and caught up to
    // within a checkpoint interval.
    sim.run_until(Time::from_duration(Duration::from_millis(600)));
    let old = sim.node(NodeId(0));
    assert_eq!(old.status().view, 1, "rejoined view 1");
    assert!(!old.protocol().is_changing_view());
    let others = sim.node(NodeId(1)).status().committed;
    let caught_up = old.status().committed;
    assert!(
        caught_up + 16 >= others && caught_up > 100,
        "{caught_up} vs {others}"
    );
    let report = sim.run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.requests_committed, 400);
    assert!(sent(&report, "state") >= 1);
    assert_ledgers_agree(&sim, &[0, 1, 2, 3]);
}

/// Primary 0 (Byzantine only in what it withholds) pre-prepares A at seq 1
/// and B at seq 2 in view 0, but seq 1 reaches nobody and seq 2 reaches only
/// backups 1 and 2; its own COMMIT for seq 2 is dropped. So seq 2 is prepared
/// at 1 and 2 and committed nowhere, and seq 1 has no certificate at all.
/// Replica 3 never received B: NEW-VIEW names it by digest, 3 votes for it
/// and executes it once a peer's committed tail brings the batch.
#[test]
fn prepared_request_is_carried_into_the_new_view_and_an_empty_slot_becomes_null() {
    let mut cfg = sim_config(4, LoadConfig::none());
    cfg.duration = Duration::from_secs(5);
    let mut sim = Simulation::<Pbft>::new(cfg, PbftConfig::default()).unwrap();
    sim.set_outbound_filter(NodeId(0), |_, to, msg| match &msg {
        PbftMessage::PrePrepare(pp) if pp.view == 0 && pp.seq == 1 => None,
        PbftMessage::PrePrepare(pp) if pp.view == 0 && pp.seq == 2 && to == NodeId(3) => None,
        PbftMessage::Commit(c) if c.view == 0 && c.seq == 2 => None,
        _ => Some(msg),
    });
    let (a, b) = (request(&sim, 1, 0, 0xa), request(&sim, 1, 1, 0xb));
    sim.submit(Time::ZERO, a.clone());
    sim.submit(Time::ZERO, b.clone());
    let report = sim.run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.requests_committed, 2);
    assert!(sent(&report, "state") >= 1, "3 fetched B's batch");
    for i in 1..4u16 {
        let l = sim.ledger(NodeId(i));
        assert_eq!(l.len(), 3, "replica {i}: null, B, then A re-proposed");
        assert_eq!(
            (l[0].slot, l[0].view, l[0].requests.len()),
            (1, 1, 0),
            "null"
        );
        assert_eq!(l[1].requests, vec![b.id()], "B carried by O at its slot");
        assert_eq!(l[1].view, 1);
        assert_eq!(l[2].requests, vec![a.id()]);
        assert_eq!(sim.node(NodeId(i)).status().view, 1);
    }
    assert_ledgers_agree(&sim, &[1, 2, 3]);
}

/// Random delays reorder messages (a PREPARE may overtake its PRE-PREPARE,
/// a view's messages may overtake its NEW-VIEW); with a primary crash on top,
/// every seed must stay safe and commit everything.
#[test]
fn random_delays_and_a_crashed_primary_stay_safe_and_live_across_seeds() {
    for seed in 1..=12u64 {
        for n in [4usize, 6] {
            let mut cfg = sim_config(n, LoadConfig::closed(2, 2, 64).with_total(120));
            cfg.seed = seed;
            cfg.network =
                NetworkConfig::uniform(Duration::from_micros(200), Duration::from_millis(4));
            cfg.faults = vec![Fault::crash(NodeId(0), Duration::from_millis(40))];
            let report = Simulation::<Pbft>::new(cfg, PbftConfig::default())
                .unwrap()
                .run();
            assert!(
                report.violations.is_empty(),
                "seed {seed} n={n}: {:?}",
                report.violations
            );
            assert_eq!(report.requests_committed, 120, "seed {seed} n={n}");
            assert!(report.view_changes >= 1, "seed {seed} n={n}");
        }
    }
}

/// n = 7 (f = 2): the primary of view 0 and the primary of view 1 both
/// crash. View 1 never starts (its NEW-VIEW timer expires), view 2 does.
#[test]
fn two_consecutive_dead_primaries_are_skipped_at_n_7() {
    for seed in 1..=4u64 {
        let mut cfg = sim_config(7, LoadConfig::closed(2, 2, 64).with_total(150));
        cfg.seed = seed;
        cfg.network = NetworkConfig::uniform(Duration::from_micros(500), Duration::from_millis(2));
        cfg.faults = vec![
            Fault::crash(NodeId(0), Duration::from_millis(30)),
            Fault::crash(NodeId(1), Duration::from_millis(30)),
        ];
        let mut sim = Simulation::<Pbft>::new(cfg, PbftConfig::default()).unwrap();
        let report = sim.run();
        assert!(
            report.violations.is_empty(),
            "seed {seed}: {:?}",
            report.violations
        );
        assert_eq!(report.requests_committed, 150, "seed {seed}");
        for i in 2..7u16 {
            assert_eq!(
                sim.node(NodeId(i)).status().view,
                2,
                "seed {seed} replica {i}"
            );
        }
        assert_ledgers_agree(&sim, &[2, 3, 4, 5, 6]);
    }
}

/// One view change after the primary crashes mid-run at n = 16: the new
/// primary's NEW-VIEW broadcast, n−1 = 15 messages, is the protocol's cost;
/// every other NEW-VIEW sent is a retransmission (to a replica that asked)
/// and is counted apart, under `resent`. Regression: every backup's
/// re-multicast VIEW-CHANGE, sent while the NEW-VIEW was in flight, drew a
/// relay from every replica that already had it: 196 relays of a
/// multi-megabyte message, then 14, now none (see below).
#[test]
fn crashed_primary_at_n_16_sends_n_minus_1_new_views_and_counts_relays_apart() {
    let mut cfg = sim_config(16, LoadConfig::closed(1, 1, 128));
    cfg.duration = Duration::from_secs(6);
    // A slow machine (9 times the cost model before calibration): building
    // and verifying the NEW-VIEW outlasts the VIEW-CHANGE re-multicast
    // timer, which is what drew the relays. (Since certificates met again
    // are not re-verified, the old model's 2–4x no longer made them cross.)
    cfg.cost = toml::from_str(
        r#"
sign = "36us"
verify = "172us"
batch_verify_per_sig = "43us"
bls_sign = "493us"
bls_verify = "1998us"
bls_check = "119us"
bls_aggregate_per_sig = "32us"
bls_verify_aggregate = "2408us"
handling = "2us"
"#,
    )
    .unwrap();
    cfg.faults = vec![Fault::crash(NodeId(0), Duration::from_secs(1))];
    let report = Simulation::<Pbft>::new(cfg, PbftConfig::default())
        .unwrap()
        .run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.view_changes, 1);
    let relays = resent(&report, "new-view");
    assert_eq!(sent(&report, "new-view") - relays, 15);
    // Since certificates met again are not verified again, the NEW-VIEW
    // (11 VIEW-CHANGEs with their certificates) is built and accepted before
    // any backup's VIEW-CHANGE re-multicast timer fires: no re-multicast,
    // so no ask and no relay (it drew 196 relays before they were limited,
    // 14 after, under these costs). The relay rule's bound is tested at the
    // replica: `a_replica_asking_every_10_ms_draws_logarithmically_many_new_views`.
    assert_eq!(relays, 0);
    assert_eq!(sent(&report, "view-change"), 15 * 15);
    assert_eq!(resent(&report, "view-change"), 0);
}
