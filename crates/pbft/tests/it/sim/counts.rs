//! Exact message counts, batching, and the scaling sweep for the report.

use super::*;

#[test]
fn fault_free_run_costs_exactly_2n_n_minus_1_messages_per_decision() {
    const K: u64 = 20;
    for n in [4usize, 5, 6, 7, 10, 16] {
        let cfg = sim_config(n, LoadConfig::closed(1, 1, 128).with_total(K));
        let mut sim = Simulation::<Pbft>::new(cfg, PbftConfig::default()).unwrap();
        let report = sim.run();
        assert!(
            report.violations.is_empty(),
            "n={n}: {:?}",
            report.violations
        );
        assert_eq!(report.decisions, K, "n={n}");
        assert_eq!(report.requests_committed, K, "n={n}");
        let n = n as u64;
        assert_eq!(sent(&report, "pre-prepare"), K * (n - 1), "n={n}");
        assert_eq!(sent(&report, "prepare"), K * (n - 1) * (n - 1), "n={n}");
        assert_eq!(sent(&report, "commit"), K * n * (n - 1), "n={n}");
        assert_eq!(
            report.stats.total_sent().count,
            K * 2 * n * (n - 1),
            "n={n}: nothing else is sent (K < checkpoint interval)"
        );
        assert_eq!(report.stats.total_rejected(), 0, "n={n}");
        assert_eq!(report.view_changes, 0, "n={n}");
    }
}

#[test]
fn fault_free_run_with_real_crypto_counts_exactly_and_checkpoints_every_k() {
    let pbft = PbftConfig {
        checkpoint_interval: 5,
        window: 10,
        ..PbftConfig::default()
    };
    let mut cfg = sim_config(4, LoadConfig::closed(1, 1, 128).with_total(20));
    cfg.crypto = CryptoKind::Real;
    let report = Simulation::<Pbft>::new(cfg, pbft).unwrap().run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.decisions, 20);
    assert_eq!(sent(&report, "pre-prepare"), 20 * 3);
    assert_eq!(sent(&report, "prepare"), 20 * 9);
    assert_eq!(sent(&report, "commit"), 20 * 12);
    // 4 checkpoints (5, 10, 15, 20), each multicast by all 4 replicas.
    assert_eq!(sent(&report, "checkpoint"), 4 * 4 * 3);
    assert_eq!(report.stats.total_rejected(), 0);
}

#[test]
fn batching_cuts_at_max_size_and_keeps_several_sequence_numbers_in_flight() {
    let mut cfg = sim_config(4, LoadConfig::closed(4, 8, 64).with_total(640));
    cfg.batch = BatchConfig {
        max_size: 8,
        max_delay: Duration::from_millis(2),
    };
    let report = Simulation::<Pbft>::new(cfg, PbftConfig::default())
        .unwrap()
        .run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.requests_committed, 640);
    // Fewer decisions than requests: batches of up to 8.
    assert!(
        report.decisions >= 80 && report.decisions < 640,
        "{}",
        report.decisions
    );
    // Still 2n(n-1) messages per decision.
    assert_eq!(
        sent(&report, "pre-prepare") + sent(&report, "prepare") + sent(&report, "commit"),
        report.decisions * 24
    );
}

#[test]
fn lone_request_is_cut_into_a_batch_after_max_delay() {
    let mut cfg = sim_config(4, LoadConfig::closed(1, 1, 64).with_total(20));
    cfg.batch = BatchConfig {
        max_size: 8,
        max_delay: Duration::from_millis(5),
    };
    let report = Simulation::<Pbft>::new(cfg, PbftConfig::default())
        .unwrap()
        .run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    // Never 8 waiting: every batch is cut by the timer, one request each.
    assert_eq!((report.requests_committed, report.decisions), (20, 20));
    assert!(
        report.latency.p50 >= Duration::from_millis(5),
        "waited for max_delay"
    );
}
