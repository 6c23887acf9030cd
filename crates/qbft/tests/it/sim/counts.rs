//! Exact message counts, same-seed replay, batching, the block period, and
//! the scaling sweep for the report.

use super::*;

#[test]
fn fault_free_message_counts_are_exact_per_block_for_n_4_5_6_7_10_16() {
    for n in [4usize, 5, 6, 7, 10, 16] {
        let report = simulation(config(n, 5)).run();
        assert_safe(&report);
        assert_exact_counts(&report, n as u64, 5);
    }
}

#[test]
fn fault_free_message_counts_are_exact_with_real_crypto_and_seals_verify() {
    let cfg = SimConfig {
        crypto: CryptoKind::Real,
        ..config(4, 3)
    };
    let mut sim = simulation(cfg);
    let report = sim.run();
    assert_safe(&report);
    assert_exact_counts(&report, 4, 3);
    let committee = sim.committee();
    for id in committee.ids() {
        let cert = sim.node(id).protocol().last_certificate().unwrap();
        assert_eq!(cert.block.height, 3);
        assert!(cert.seals.len() >= committee.quorum_two_thirds());
        cert.verify(sim.crypto(NodeId(0)).as_ref(), &committee)
            .unwrap();
        assert_eq!(sim.ledger(id).last().unwrap().block, cert.digest);
    }
}

#[test]
fn retained_state_stays_bounded_over_a_long_run() {
    let cfg = SimConfig {
        load: LoadConfig::closed(4, 4, 32).with_total(2_000),
        batch: bft_core::BatchConfig {
            max_size: 8,
            max_delay: Duration::from_millis(1),
        },
        duration: Duration::from_secs(60),
        ..SimConfig::default()
    };
    let mut sim = simulation(cfg);
    let mut peak = 0;
    for step in 1..=40u64 {
        sim.run_until(Time::from_duration(Duration::from_millis(50 * step)));
        for id in sim.committee().ids() {
            peak = peak.max(sim.node(id).status().retained);
        }
    }
    let report = sim.run();
    assert_safe(&report);
    assert_eq!(report.requests_committed, 2_000);
    // Pool (≤ 16 in flight + 4 client windows), O(n) per-height state and
    // the archive of the last 64 decided heights kept for lagging peers.
    assert!(peak <= 64 + 64, "peak retained {peak}");
}

/// Timeouts shorter than the network's worst delay force round changes with
/// prepared certificates in flight, re-proposals and late commits from older
/// rounds. Safety must hold on every seed; the doubling timeout must still
/// get every request committed, at every replica (none left behind by a
/// decision it saw the COMMITs of but not the proposal).
#[test]
fn jittery_network_with_short_timeouts_never_forks_and_still_commits() {
    let mut round_changes = 0;
    for seed in 1..=24u64 {
        let n = 4 + (seed % 4) as usize;
        let cfg = SimConfig {
            nodes: n,
            seed,
            network: NetworkConfig::uniform(Duration::from_micros(100), Duration::from_millis(8)),
            load: LoadConfig::closed(2, 2, 64).with_total(30),
            duration: Duration::from_secs(120),
            ..SimConfig::default()
        };
        let proto = QbftConfig {
            round_timeout: Duration::from_millis(6),
            ..QbftConfig::default()
        };
        let report = Simulation::<Qbft>::new(cfg, proto).unwrap().run();
        assert_safe(&report);
        assert_eq!(report.requests_committed, 30, "seed {seed}, n = {n}");
        assert_eq!(
            report.decisions, 30,
            "every replica decided every block, seed {seed}"
        );
        round_changes += sent(&report, "round-change");
    }
    assert!(
        round_changes > 0,
        "the short timeout did provoke round changes"
    );
}

#[test]
fn batches_hold_at_most_max_size_requests_and_fill_under_load() {
    let cfg = SimConfig {
        load: LoadConfig::closed(8, 1, 64).with_total(80),
        batch: bft_core::BatchConfig {
            max_size: 4,
            max_delay: Duration::from_millis(2),
        },
        ..SimConfig::default()
    };
    let mut sim = simulation(cfg);
    let report = sim.run();
    assert_safe(&report);
    assert_eq!(report.requests_committed, 80);
    for id in sim.committee().ids() {
        let ledger = sim.ledger(id);
        assert!(ledger.iter().all(|d| d.requests.len() <= 4));
        assert_eq!(ledger.iter().map(|d| d.requests.len()).sum::<usize>(), 80);
        assert!(
            ledger.len() < 80,
            "requests were batched: {} blocks",
            ledger.len()
        );
    }
}

#[test]
fn block_period_delays_the_next_proposal_in_virtual_time() {
    let run = |period_ms: u64| {
        let proto = QbftConfig {
            block_period: Duration::from_millis(period_ms),
            ..QbftConfig::default()
        };
        let report = Simulation::<Qbft>::new(config(4, 5), proto).unwrap().run();
        assert_safe(&report);
        assert_eq!(report.decisions, 5);
        assert_eq!(
            report.view_changes, 0,
            "the period is below the round timeout"
        );
        report.latency
    };
    let (fast, spaced) = (run(0), run(50));
    // Without a period a request commits in a few network hops (1 ms each);
    // with one, requests 2..=5 wait for the period after the previous commit.
    assert!(fast.p50 < Duration::from_millis(10), "{fast:?}");
    assert!(spaced.p50 >= Duration::from_millis(45), "{spaced:?}");
}
