//! Silent and lossy replicas, state transfer, rejections counted by
//! reason, and bounded memory.

use super::*;

#[test]
fn f_silent_backups_do_not_stop_progress() {
    for (n, silent) in [(4usize, vec![3u16]), (7, vec![5, 6])] {
        let mut cfg = sim_config(n, LoadConfig::closed(1, 1, 128).with_total(50));
        cfg.faults = silent
            .iter()
            .map(|&i| Fault::silent(NodeId(i), Duration::ZERO))
            .collect();
        let report = Simulation::<Pbft>::new(cfg, PbftConfig::default())
            .unwrap()
            .run();
        assert!(
            report.violations.is_empty(),
            "n={n}: {:?}",
            report.violations
        );
        assert_eq!(report.requests_committed, 50, "n={n}");
        assert_eq!(report.view_changes, 0, "n={n}: the primary is fine");
    }
}

#[test]
fn f_plus_1_silent_backups_stop_progress_without_a_safety_violation() {
    let mut cfg = sim_config(4, LoadConfig::closed(1, 1, 128).with_total(50));
    cfg.duration = Duration::from_secs(5);
    cfg.faults = vec![
        Fault::silent(NodeId(2), Duration::ZERO),
        Fault::silent(NodeId(3), Duration::ZERO),
    ];
    let mut sim = Simulation::<Pbft>::new(cfg, PbftConfig::default()).unwrap();
    let report = sim.run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.requests_committed, 0);
    assert_eq!(report.max_decisions, 0);
    // The live backup suspects the primary but cannot gather f+1.
    assert!(sim.node(NodeId(1)).protocol().is_changing_view());
    assert_eq!(sim.node(NodeId(0)).status().view, 0);
}

#[test]
fn crashed_backup_restarts_and_catches_up_by_state_transfer() {
    let pbft = PbftConfig {
        checkpoint_interval: 8,
        window: 32,
        ..PbftConfig::default()
    };
    let mut cfg = sim_config(4, LoadConfig::closed(1, 1, 128).with_total(200));
    cfg.faults =
        vec![Fault::crash(NodeId(3), Duration::from_millis(20)).until(Duration::from_millis(80))];
    let mut sim = Simulation::<Pbft>::new(cfg, pbft).unwrap();
    let report = sim.run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.requests_committed, 200);
    assert!(
        sent(&report, "state") >= 1,
        "replica 3 fetched what it missed"
    );
    let caught_up = sim.node(NodeId(3)).status().committed;
    assert!(
        caught_up >= 192,
        "replica 3 reached the last stable checkpoint: {caught_up}"
    );
    assert_ledgers_agree(&sim, &[0, 1, 2, 3]);
}

#[test]
fn crafted_bad_messages_are_rejected_and_counted_by_reason() {
    let mut cfg = sim_config(7, LoadConfig::none());
    cfg.duration = Duration::from_secs(1);
    let mut sim = Simulation::<Pbft>::new(cfg, PbftConfig::default()).unwrap();
    let (byz, primary) = (NodeId(6), NodeId(0));
    let (cb, cp) = (sim.crypto(byz), sim.crypto(primary));
    let d = batch_digest(&[request(&sim, 1, 0, 1)]);
    let vote = |c: &dyn bft_core::Crypto, who: NodeId, dom: &'static str, seq: u64| Vote {
        view: 0,
        seq,
        digest: d,
        replica: who,
        sig: c.sign(dom, &bft_pbft::vote_payload(0, seq, &d, who)),
    };
    let at = Time::from_duration(Duration::from_millis(10));
    let to = NodeId(1);
    let window = PbftConfig::default().window;
    // Outside the watermarks.
    sim.inject(
        at,
        byz,
        to,
        PbftMessage::Prepare(vote(cb.as_ref(), byz, domain::PREPARE, window + 1)),
    );
    // Bad signature: signed for seq 2, claims seq 1.
    let mut forged = vote(cb.as_ref(), byz, domain::COMMIT, 2);
    forged.seq = 1;
    sim.inject(at, byz, to, PbftMessage::Commit(forged));
    // A PREPARE from the primary.
    sim.inject(
        at,
        primary,
        to,
        PbftMessage::Prepare(vote(cp.as_ref(), primary, domain::PREPARE, 1)),
    );
    // The same PREPARE twice.
    let p = vote(cb.as_ref(), byz, domain::PREPARE, 3);
    sim.inject(at, byz, to, PbftMessage::Prepare(p.clone()));
    sim.inject(at, byz, to, PbftMessage::Prepare(p));
    let report = sim.run();
    assert!(report.violations.is_empty());
    assert_eq!(rejected(&sim, 1, "outside-watermarks"), 1);
    assert_eq!(rejected(&sim, 1, "bad-signature"), 1);
    assert_eq!(rejected(&sim, 1, "prepare-from-primary"), 1);
    assert_eq!(rejected(&sim, 1, "duplicate-prepare"), 1);
    assert_eq!(sim.node(NodeId(1)).stats().total_rejected(), 4);
    assert_eq!(
        PbftMessage::Prepare(vote(cb.as_ref(), byz, domain::PREPARE, 1)).kind(),
        "prepare"
    );
}

#[test]
fn retained_state_after_10_000_decisions_is_bounded_by_the_window() {
    let pbft = PbftConfig::default(); // K = 128, L = 256
    let mut cfg = sim_config(4, LoadConfig::closed(1, 1, 16).with_total(10_000));
    cfg.duration = Duration::from_secs(600);
    let mut sim = Simulation::<Pbft>::new(cfg, pbft.clone()).unwrap();
    sim.run_until(Time::from_duration(Duration::from_secs(2)));
    let early: Vec<usize> = (0..4)
        .map(|i| sim.node(NodeId(i)).status().retained)
        .collect();
    let report = sim.run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.decisions, 10_000);
    let (n, f, l, k) = (4usize, 1usize, 256usize, 128usize);
    let history = pbft.state_transfer_depth as usize + l;
    let bound = l * (1 + 2 * n + 2 + 2 * f) + (l / k + 1) * (n + 1) + history + 4 * n + 16;
    for i in 0..4u16 {
        let node = sim.node(NodeId(i));
        let retained = node.status().retained;
        assert!(retained <= bound, "replica {i}: {retained} > {bound}");
        assert!(
            node.protocol().log_len() as u64 <= pbft.window,
            "replica {i}"
        );
        assert!(
            node.protocol().low_watermark() >= 10_000 - 128,
            "replica {i}"
        );
        assert!(early[i as usize] <= bound);
    }
}

/// Message loss without retransmission: PBFT recovers through view changes,
/// NEW-VIEW re-sends and state transfer. Safety must hold on every seed.
#[test]
fn lossy_network_stays_safe_and_keeps_committing() {
    for seed in 1..=6u64 {
        let mut cfg = sim_config(4, LoadConfig::closed(2, 2, 64).with_total(200));
        cfg.seed = seed;
        cfg.duration = Duration::from_secs(60);
        cfg.network = NetworkConfig::uniform(Duration::from_micros(500), Duration::from_millis(2));
        cfg.network.loss = 0.02;
        let pbft = PbftConfig {
            checkpoint_interval: 8,
            window: 32,
            view_change_timeout: Duration::from_millis(50),
            ..PbftConfig::default()
        };
        let report = Simulation::<Pbft>::new(cfg, pbft).unwrap().run();
        assert!(
            report.violations.is_empty(),
            "seed {seed}: {:?}",
            report.violations
        );
        assert_eq!(report.requests_committed, 200, "seed {seed}");
    }
}
