//! PBFT in the deterministic simulator: exact message counts, faults,
//! Byzantine primaries, and the oracle (agreement, contiguity, hash chain,
//! at-most-once, validity) checked in every run.

use bft_core::{
    BatchConfig, CryptoKind, GENESIS, NodeId, Request, RequestId, Time, WireMessage, batch_digest,
};
use bft_pbft::{Pbft, PbftConfig, PbftMessage, PrePrepare, Vote, domain, pre_prepare_payload};
use bft_sim::{
    Fault, FaultKind, LoadConfig, NetworkConfig, Partition, SimConfig, SimReport, Simulation,
};
use bytes::Bytes;
use std::collections::BTreeSet;
use std::time::Duration;

fn sim_config(nodes: usize, load: LoadConfig) -> SimConfig {
    SimConfig {
        nodes,
        seed: 42,
        load,
        batch: BatchConfig {
            max_size: 1,
            max_delay: Duration::from_millis(1),
        },
        ..SimConfig::default()
    }
}

fn sent(report: &SimReport, kind: &str) -> u64 {
    report.stats.sent.get(kind).map_or(0, |c| c.count)
}

fn rejected(sim: &Simulation<Pbft>, node: u16, reason: &str) -> u64 {
    sim.node(NodeId(node))
        .stats()
        .rejected
        .get(reason)
        .copied()
        .unwrap_or(0)
}

fn request(client: u32, number: u64, fill: u8) -> Request {
    Request {
        id: RequestId { client, number },
        payload: Bytes::from(vec![fill; 32]),
    }
}

/// Honest ledgers: each contiguous from slot 1 and hash-chained (the oracle
/// checks it too), and equal slot by slot where both have decided.
fn assert_ledgers_agree(sim: &Simulation<Pbft>, honest: &[u16]) {
    for &a in honest {
        let la = sim.ledger(NodeId(a));
        let mut parent = GENESIS;
        for (k, d) in la.iter().enumerate() {
            assert_eq!(d.slot, k as u64 + 1, "replica {a}: no gap");
            assert_eq!(d.parent, parent, "replica {a}: chain");
            parent = d.block;
        }
        for &b in honest {
            for (x, y) in la.iter().zip(sim.ledger(NodeId(b))) {
                assert_eq!(
                    x.block, y.block,
                    "replicas {a} and {b} differ at slot {}",
                    x.slot
                );
            }
        }
    }
}

// ----- exact counts ---------------------------------------------------------

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

// ----- crashes and view changes ----------------------------------------------

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
    let (a, b) = (request(1, 0, 0xa), request(1, 1, 0xb));
    sim.submit(Time::ZERO, a.clone());
    sim.submit(Time::ZERO, b.clone());
    let report = sim.run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.requests_committed, 2);
    for i in 1..4u16 {
        let l = sim.ledger(NodeId(i));
        assert_eq!(l.len(), 3, "replica {i}: null, B, then A re-proposed");
        assert_eq!(
            (l[0].slot, l[0].view, l[0].requests.len()),
            (1, 1, 0),
            "null"
        );
        assert_eq!(l[1].requests, vec![b.id], "B carried by O at its slot");
        assert_eq!(l[1].view, 1);
        assert_eq!(l[2].requests, vec![a.id]);
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

#[test]
fn same_seed_replays_the_same_run() {
    let run = || {
        let mut cfg = sim_config(4, LoadConfig::closed(2, 2, 64).with_total(60));
        cfg.network = NetworkConfig::uniform(Duration::from_micros(200), Duration::from_millis(4));
        cfg.faults = vec![Fault::crash(NodeId(0), Duration::from_millis(30))];
        Simulation::<Pbft>::new(cfg, PbftConfig::default())
            .unwrap()
            .run()
    };
    let (a, b) = (run(), run());
    assert!(a.violations.is_empty());
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.stats, b.stats);
}

// ----- Byzantine primary ------------------------------------------------------

/// Re-signs a pre-prepare from primary 0 over another batch (same request
/// ids, different payload), as an equivocating primary would.
fn equivocate(crypto: &dyn bft_core::Crypto, pp: &PrePrepare, fill: u8) -> PrePrepare {
    let batch: Vec<Request> = pp
        .batch
        .iter()
        .map(|r| Request {
            id: r.id,
            payload: Bytes::from(vec![fill; r.payload.len().max(1)]),
        })
        .collect();
    let digest = batch_digest(&batch);
    PrePrepare {
        view: pp.view,
        seq: pp.seq,
        digest,
        sig: crypto.sign(
            domain::PRE_PREPARE,
            &pre_prepare_payload(pp.view, pp.seq, &digest),
        ),
        batch,
    }
}

#[test]
fn equivocating_primary_cannot_make_honest_replicas_commit_different_batches() {
    // Two splits: {1,2} vs {3} (a quorum can form around one batch) and
    // {1} vs {2} vs {3} (none can: view change).
    for three_way in [false, true] {
        let pbft = PbftConfig {
            checkpoint_interval: 8,
            window: 16,
            ..PbftConfig::default()
        };
        let mut cfg = sim_config(4, LoadConfig::closed(1, 2, 64).with_total(60));
        cfg.duration = Duration::from_secs(30);
        let mut sim = Simulation::<Pbft>::new(cfg, pbft).unwrap();
        let crypto = sim.crypto(NodeId(0));
        sim.set_outbound_filter(NodeId(0), move |_, to, msg| match &msg {
            PbftMessage::PrePrepare(pp) if pp.view == 0 => match to.0 {
                3 => Some(PbftMessage::PrePrepare(equivocate(
                    crypto.as_ref(),
                    pp,
                    0x33,
                ))),
                2 if three_way => Some(PbftMessage::PrePrepare(equivocate(
                    crypto.as_ref(),
                    pp,
                    0x22,
                ))),
                _ => Some(msg),
            },
            _ => Some(msg),
        });
        let report = sim.run();
        assert!(
            report.violations.is_empty(),
            "three_way={three_way}: {:?}",
            report.violations
        );
        assert_ledgers_agree(&sim, &[1, 2, 3]);
        assert_eq!(report.requests_committed, 60, "three_way={three_way}");
        if three_way {
            assert!(
                report.view_changes >= 1,
                "nobody prepares: the primary is replaced"
            );
        }
        // The equivocation is visible in the receivers' rejection counters
        // only as prepares that do not match; never as a second commit.
        let committed_slots = sim.ledger(NodeId(1)).len();
        assert!(
            committed_slots >= 30,
            "three_way={three_way}: {committed_slots}"
        );
    }
}

/// Primary 0 orders everybody's requests except client 0's (it strips them
/// from its batches and re-signs). Backups time one waiting request at a
/// time, so the censored request's timer is not reset by the others'
/// progress: they replace the primary and client 0's requests commit.
#[test]
fn censoring_primary_is_replaced_by_the_request_timer() {
    // Unlimited load for 3 s: the other client never stops making progress.
    let mut cfg = sim_config(4, LoadConfig::closed(2, 1, 64));
    cfg.duration = Duration::from_secs(3);
    let mut sim = Simulation::<Pbft>::new(cfg, PbftConfig::default()).unwrap();
    let crypto = sim.crypto(NodeId(0));
    let censored = |r: &Request| r.id.client % 2 == 0;
    sim.set_outbound_filter(NodeId(0), move |_, _, msg| match &msg {
        PbftMessage::PrePrepare(pp) if pp.view == 0 && pp.batch.iter().any(censored) => {
            let batch: Vec<Request> = pp.batch.iter().filter(|r| !censored(r)).cloned().collect();
            let digest = batch_digest(&batch);
            Some(PbftMessage::PrePrepare(PrePrepare {
                view: 0,
                seq: pp.seq,
                digest,
                sig: crypto.sign(
                    domain::PRE_PREPARE,
                    &pre_prepare_payload(0, pp.seq, &digest),
                ),
                batch,
            }))
        }
        _ => Some(msg),
    });
    let report = sim.run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert!(report.requests_committed > 100);
    assert!(report.view_changes >= 1, "the censor was replaced");
    for i in 1..4u16 {
        assert!(sim.node(NodeId(i)).status().view >= 1);
        let censored_done = sim
            .ledger(NodeId(i))
            .iter()
            .flat_map(|d| &d.requests)
            .filter(|id| id.client % 2 == 0)
            .count();
        assert!(
            censored_done >= 1,
            "replica {i} executed the censored client's requests"
        );
    }
    assert_ledgers_agree(&sim, &[1, 2, 3]);
}

// ----- silent replicas ----------------------------------------------------------

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

// ----- rejections counted by the node -------------------------------------------

#[test]
fn crafted_bad_messages_are_rejected_and_counted_by_reason() {
    let mut cfg = sim_config(7, LoadConfig::none());
    cfg.duration = Duration::from_secs(1);
    let mut sim = Simulation::<Pbft>::new(cfg, PbftConfig::default()).unwrap();
    let (byz, primary) = (NodeId(6), NodeId(0));
    let (cb, cp) = (sim.crypto(byz), sim.crypto(primary));
    let d = batch_digest(&[request(1, 0, 1)]);
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

// ----- memory -----------------------------------------------------------------

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

// ----- sweep for the report (ignored by default) -------------------------------

/// Messages and bytes per decision for n = 4…64 with model crypto, checked
/// exactly against 2n(n−1); plus the cost of one view change after a
/// crashed primary. Run with
/// `cargo test -p bft-pbft --test sim -- --ignored --nocapture scaling`.
#[test]
#[ignore = "sweep for the report"]
fn scaling_messages_per_decision_n4_to_n64() {
    const K: u64 = 20;
    println!("n  msgs/decision  2n(n-1)  bytes/decision  p50-latency  vc-msgs  vc+nv-bytes");
    for n in [4usize, 8, 16, 32, 64] {
        let cfg = sim_config(n, LoadConfig::closed(1, 1, 128).with_total(K));
        let report = Simulation::<Pbft>::new(cfg, PbftConfig::default())
            .unwrap()
            .run();
        assert!(report.violations.is_empty());
        assert_eq!(report.decisions, K);
        let total = report.stats.total_sent();
        let formula = 2 * n as u64 * (n as u64 - 1);
        assert_eq!(total.count, K * formula, "n={n}");
        let mut cfg = sim_config(n, LoadConfig::closed(1, 1, 128).with_total(1));
        cfg.faults = vec![Fault::crash(NodeId(0), Duration::ZERO)];
        let vc = Simulation::<Pbft>::new(cfg, PbftConfig::default())
            .unwrap()
            .run();
        assert!(vc.violations.is_empty());
        let kind = |k: &str| vc.stats.sent.get(k).copied().unwrap_or_default();
        println!(
            "{n:<3}{:>14}{:>9}{:>16}{:>13?}{:>9}{:>13}",
            total.count / K,
            formula,
            total.bytes / K,
            report.latency.p50,
            kind("view-change").count,
            kind("view-change").bytes + kind("new-view").bytes,
        );
    }
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

/// Equivocation under random delays, several seeds: whatever order the
/// conflicting pre-prepares arrive in, honest ledgers never diverge.
#[test]
fn equivocation_under_random_delays_never_splits_honest_ledgers() {
    for seed in 1..=6u64 {
        let mut cfg = sim_config(4, LoadConfig::closed(2, 2, 64).with_total(100));
        cfg.seed = seed;
        cfg.duration = Duration::from_secs(30);
        cfg.network = NetworkConfig::uniform(Duration::from_micros(200), Duration::from_millis(3));
        let pbft = PbftConfig {
            checkpoint_interval: 8,
            window: 32,
            ..PbftConfig::default()
        };
        let mut sim = Simulation::<Pbft>::new(cfg, pbft).unwrap();
        let crypto = sim.crypto(NodeId(0));
        sim.set_outbound_filter(NodeId(0), move |_, to, msg| match &msg {
            PbftMessage::PrePrepare(pp) if pp.view == 0 && (pp.seq + u64::from(to.0)) % 2 == 0 => {
                Some(PbftMessage::PrePrepare(equivocate(
                    crypto.as_ref(),
                    pp,
                    to.0 as u8,
                )))
            }
            _ => Some(msg),
        });
        let report = sim.run();
        assert!(
            report.violations.is_empty(),
            "seed {seed}: {:?}",
            report.violations
        );
        assert_ledgers_agree(&sim, &[1, 2, 3]);
        assert_eq!(report.requests_committed, 100, "seed {seed}");
    }
}

// ----- leader schedule ------------------------------------------------------

fn sent_by(sim: &Simulation<Pbft>, node: u16, kind: &str) -> u64 {
    sim.node(NodeId(node))
        .stats()
        .sent
        .get(kind)
        .map_or(0, |c| c.count)
}

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

// ----- protocol-aware attacks (bft_core::Attack via the simulator) -----------

fn every_attack() -> Vec<bft_core::Attack> {
    use bft_core::{Attack, Forgery, Mutation};
    let mut all = vec![
        Attack::Equivocate,
        Attack::DoubleVote,
        Attack::InflateView(1),
        Attack::InflateView(1_000_000),
        Attack::BadSignature,
    ];
    for f in [
        Forgery::BelowQuorum,
        Forgery::DuplicateSigners,
        Forgery::WrongRound,
        Forgery::WrongDigest,
    ] {
        all.push(Attack::Forge(f));
    }
    for m in [
        Mutation::RoundPlusOne,
        Mutation::RoundMinusOne,
        Mutation::StaleDigest,
        Mutation::SwapSender,
    ] {
        all.push(Attack::Mutate(m));
    }
    all
}

/// The rejection reason an attack by `node` must show up under in
/// `every_attack_by_one_replica_is_safe_live_and_bounded` (None: its messages
/// are validly signed, or it never applies there).
fn expected_rejection(node: u16, attack: bft_core::Attack) -> Option<&'static str> {
    use bft_core::{Attack, Forgery, Mutation};
    match attack {
        Attack::DoubleVote => Some("duplicate-prepare"),
        Attack::BadSignature => Some("bad-signature"),
        Attack::Forge(Forgery::BelowQuorum | Forgery::DuplicateSigners) => {
            Some("bad-prepared-cert")
        }
        // Relabelled to view 1 in a VIEW-CHANGE for view 1.
        Attack::Forge(Forgery::WrongRound) => Some("bad-view-change"),
        Attack::Forge(Forgery::WrongDigest) => Some("bad-signature"),
        // CHECKPOINTs at seq ± 1 (pre-prepares and votes of view ± 1 are
        // mostly stale or buffered, not invalid).
        Attack::Mutate(Mutation::RoundPlusOne | Mutation::RoundMinusOne) => {
            Some("checkpoint-off-interval")
        }
        // Only the primary's pre-prepares are checked against their batch;
        // a vote for GENESIS is valid and merely useless.
        Attack::Mutate(Mutation::StaleDigest) if node == 0 => Some("digest-mismatch"),
        Attack::Mutate(Mutation::SwapSender) => Some("sender-mismatch"),
        _ => None,
    }
}

/// Every attack by one replica — the view-0 primary, or a backup that is
/// the primary of view 2 — under random delays and an early partition that
/// forces view changes (so VIEW-CHANGE and NEW-VIEW are tampered too): the
/// honest replicas stay safe, commit again within the liveness bound after
/// the partition heals, and keep their memory bounded.
#[test]
fn every_attack_by_one_replica_is_safe_live_and_bounded() {
    use bft_core::Adversarial;
    for node in [0u16, 2] {
        for attack in every_attack() {
            let mut network =
                NetworkConfig::uniform(Duration::from_millis(1), Duration::from_millis(10));
            network.partitions = vec![Partition {
                start: Duration::from_millis(300),
                end: Duration::from_millis(800),
                groups: vec![vec![NodeId(0), NodeId(1)], vec![NodeId(2), NodeId(3)]],
            }];
            let cfg = SimConfig {
                nodes: 4,
                seed: 7,
                duration: Duration::from_secs(4),
                network,
                load: LoadConfig::open(100.0, 4, 64),
                batch: BatchConfig {
                    max_size: 4,
                    max_delay: Duration::from_millis(5),
                },
                faults: vec![Fault {
                    node: NodeId(node),
                    kind: FaultKind::Attack(attack),
                    start: Duration::ZERO,
                    end: None,
                }],
                ..SimConfig::default()
            };
            let pbft = PbftConfig::default();
            let bound = <Pbft as Adversarial>::liveness_bound(&pbft, 4);
            let mut sim = Simulation::<Pbft>::new(cfg, pbft).unwrap();
            let stuck = sim.check_liveness(Time::from_duration(Duration::from_millis(800)), bound);
            let report = sim.run();
            let what = format!("node {node}, {attack:?}");
            // The tampered messages that are invalid are rejected, and counted
            // under their reason at the honest replicas.
            let expected = expected_rejection(node, attack);
            if let Some(reason) = expected {
                let count: u64 = (0..4u16)
                    .filter(|&i| i != node)
                    .map(|i| rejected(&sim, i, reason))
                    .sum();
                assert!(count > 0, "{what}: no {reason}");
            }
            assert!(
                report.violations.is_empty(),
                "{what}: {:?}",
                report.violations
            );
            assert!(stuck.is_empty(), "{what}: {stuck:?}");
            assert!(report.decisions > 0, "{what}");
            for i in (0..4u16).filter(|&i| i != node) {
                let st = sim.node(NodeId(i)).status();
                assert!(
                    st.retained < 4_000,
                    "{what}: replica {i} retains {}",
                    st.retained
                );
            }
        }
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// What differs between the shrunk `bftbench fuzz --protocol pbft` cases;
/// the rest is the fuzzer's fixed setting (see [`FuzzCase::replay`]).
struct FuzzCase {
    nodes: usize,
    seed: u64,
    duration: Duration,
    /// Upper bound of the uniform delays (from 1 ms).
    max_delay: Duration,
    partitions: Vec<bft_sim::Partition>,
    batch_size: usize,
    faults: Vec<Fault>,
    leaders: Option<bft_core::LeaderSchedule>,
    /// Where liveness is checked from.
    heal: Duration,
}

impl FuzzCase {
    /// Runs the case as the fuzzer did (`nodes` replicas, open load 50 tx/s from 2
    /// clients, 2 ms batch delay, view-change backoff capped at 2^3),
    /// asserts the oracle finds nothing and every replica that must be live
    /// commits again within the liveness bound for the leader schedule
    /// after `heal`, and returns the
    /// finished simulation and its report.
    fn replay(self) -> (Simulation<Pbft>, SimReport) {
        use bft_core::Adversarial;
        let mut network = NetworkConfig::uniform(ms(1), self.max_delay);
        network.partitions = self.partitions;
        let leaders = self
            .leaders
            .clone()
            .unwrap_or_else(|| bft_core::LeaderSchedule::round_robin(self.nodes));
        let cfg = SimConfig {
            nodes: self.nodes,
            seed: self.seed,
            duration: self.duration,
            network,
            load: LoadConfig::open(50.0, 2, 32),
            batch: BatchConfig {
                max_size: self.batch_size,
                max_delay: ms(2),
            },
            faults: self.faults,
            leaders: self.leaders,
            ..SimConfig::default()
        };
        let pbft = PbftConfig {
            max_backoff_exponent: 3,
            ..PbftConfig::default()
        };
        let bound = <Pbft as Adversarial>::liveness_bound_for(&pbft, self.nodes, &leaders);
        let mut sim = Simulation::<Pbft>::new(cfg, pbft).unwrap();
        let stuck = sim.check_liveness(Time::from_duration(self.heal), bound);
        let report = sim.run();
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        assert!(stuck.is_empty(), "{stuck:?}");
        (sim, report)
    }
}

/// Regression (fuzzer finding, `bftbench fuzz --protocol pbft --seed 1` case
/// 51): the view-0 primary omits everything to backups 1 and 2 from 267 ms,
/// and {0, 1, 3} | {2} are partitioned from 478 ms to 1188 ms. Replicas 0
/// and 3 collect VIEW-CHANGE(1) from {0, 1, 3}, time out and move on to view
/// 2; 1 and 2 (which never see 0's VIEW-CHANGEs) stay changing to view 1.
/// Replica 1, primary of view 1, had 3's VIEW-CHANGE(1) — but keeping only
/// each sender's newest, 3's VIEW-CHANGE(2) replaced it, so after the heal 1
/// held two VIEW-CHANGE(1)s (no NEW-VIEW) and one VIEW-CHANGE(2) (short of
/// the f+1 join rule): no replica ever completed a view change. Castro–Liskov
/// keep every valid VIEW-CHANGE (TOCS 2002 §4.4): 1 sends NEW-VIEW(1), 1 and
/// 2 time out in view 1 and join 0 and 3 in view 2, whose primary 2 gets all
/// the VIEW-CHANGEs it needs from 1, 2 and 3.
#[test]
fn omitting_primary_and_partition_do_not_split_the_view_change() {
    let (sim, report) = FuzzCase {
        nodes: 4,
        seed: 1_213_656_871_855_349_618,
        duration: ms(28_288),
        max_delay: ms(21),
        partitions: vec![Partition::between(ms(478), ms(1188), &[&[0, 1, 3]])],
        batch_size: 1,
        faults: vec![Fault::new(
            NodeId(0),
            FaultKind::Omission {
                peers: vec![NodeId(1), NodeId(2)],
            },
            ms(267),
        )],
        leaders: None,
        heal: ms(1188),
    }
    .replay();
    assert!(report.view_changes >= 1, "a view change completed");
    // Replicas 1, 2 and 3 keep committing under the new primary.
    for i in 1..4u16 {
        assert!(
            sim.node(NodeId(i)).status().committed > 100,
            "replica {i}: {:?}",
            sim.node(NodeId(i)).status()
        );
    }
    assert_ledgers_agree(&sim, &[1, 2, 3]);
}

/// Regression (fuzzer finding, `bftbench fuzz --protocol pbft --seed 1` case
/// 76): backup 1 omits everything to backup 2 from 2 ms, and 2 is cut off
/// from 345 ms to 1067 ms. Alone, 2's request timer moves it to view 1,
/// while 0, 1 and 3 go on committing in view 0. After the heal 2 stays
/// changing to view 1 (one VIEW-CHANGE, no NEW-VIEW; views never go back)
/// and could only catch up by state transfer — but it learned it was behind
/// only from q = 3 matching CHECKPOINTs, and it hears just 0's and 3's (1
/// omits, and 2 has no checkpoint of its own), so it never committed again.
/// f+1 matching CHECKPOINTs (a weak certificate, one signer correct) now
/// start the fetch; the transferred state is still checked against a q-proof.
#[test]
fn replica_alone_in_a_higher_view_catches_up_by_state_transfer() {
    let (sim, _) = FuzzCase {
        nodes: 4,
        seed: 2_253_024_251_820_114_659,
        duration: ms(28_167),
        max_delay: ms(17),
        partitions: vec![Partition::between(ms(345), ms(1067), &[&[2]])],
        batch_size: 4,
        faults: vec![Fault::new(
            NodeId(1),
            FaultKind::Omission {
                peers: vec![NodeId(2)],
            },
            ms(2),
        )],
        leaders: None,
        heal: ms(1067),
    }
    .replay();
    let st = sim.node(NodeId(2)).status();
    assert!(
        st.committed >= 128,
        "replica 2 fetched a checkpoint: {st:?}"
    );
    assert_ledgers_agree(&sim, &[0, 2, 3]);
}

/// Regression (fuzzer finding, `bftbench fuzz --protocol pbft --seed 1` case
/// 783): primary 0 is cut off from 172 ms to 735 ms and replica 3 goes
/// silent at 524 ms. 1, 2 and 3 enter view 1 without 0; then 2's request
/// timer (3 silent, so nothing prepares) sends it on to view 2. After the
/// heal 0 is still the active primary of view 0 (it missed NEW-VIEW(1)), 1
/// the active primary of view 1, and 2 waits in view 2 with one
/// VIEW-CHANGE: primaries run no request timer and nobody sees f+1 messages
/// of a higher view, so no honest timer ran again. A replica now answers a
/// normal-case message of an older view with its NEW-VIEW (as primary) or
/// its VIEW-CHANGE for the current view, once per timeout per replica
/// (retransmission, TOCS 2002 §4.4–4.5): 0 enters view 1 and its request
/// timer moves everyone on.
#[test]
fn stale_primary_missing_new_view_is_told_by_retransmission() {
    let (sim, _) = FuzzCase {
        nodes: 4,
        seed: 1_657_499_220_756_789_676,
        duration: ms(27_835),
        max_delay: ms(21),
        partitions: vec![Partition::between(ms(172), ms(735), &[&[0]])],
        batch_size: 2,
        faults: vec![Fault::silent(NodeId(3), ms(524))],
        leaders: None,
        heal: ms(735),
    }
    .replay();
    for id in [0, 1, 2] {
        let st = sim.node(NodeId(id)).status();
        assert!(st.view >= 2, "replica {id} left views 0 and 1: {st:?}");
        assert!(st.committed > 8, "replica {id} committed again: {st:?}");
    }
    assert_ledgers_agree(&sim, &[0, 1, 2]);
}

/// Regression (fuzzer finding, `bftbench fuzz --protocol pbft --seed 1` case
/// 3664): replica 2 leads views 0–3 and omits to 0 and 1 from 331 ms; two
/// partitions before that. 3 entered view 2 by accepting NEW-VIEW(2)
/// without ever sending VIEW-CHANGE(2) (0, 1 and 2 sent theirs), then its
/// request timer moved it on to view 3. 0 and 1, still changing to view 2
/// (2 omits the NEW-VIEW to them), held two VIEW-CHANGE(2)s (short of q, so
/// no new-view timer) and one VIEW-CHANGE(3) (short of f+1): stuck. 3 now
/// relays the NEW-VIEW(2) it accepted to a replica still changing to view 2
/// (it is self-certifying, signed by primary(2); retransmission, TOCS 2002
/// §4.5), and backups accept a relayed NEW-VIEW.
#[test]
fn accepted_new_view_is_relayed_to_a_replica_still_changing_to_it() {
    let (sim, _) = FuzzCase {
        nodes: 4,
        seed: 590_635_119_095_050_530,
        duration: ms(27_431),
        max_delay: ms(13),
        partitions: vec![
            Partition::between(ms(12), ms(122), &[&[1, 2]]),
            Partition::between(ms(100), ms(325), &[&[2, 3]]),
        ],
        batch_size: 2,
        faults: vec![Fault::new(
            NodeId(2),
            FaultKind::Omission {
                peers: vec![NodeId(0), NodeId(1)],
            },
            ms(331),
        )],
        leaders: Some(bft_core::LeaderSchedule::favouring(4, NodeId(2), 4)),
        heal: ms(331),
    }
    .replay();
    for id in [0, 1, 3] {
        let st = sim.node(NodeId(id)).status();
        assert!(st.committed > 0, "replica {id} committed: {st:?}");
    }
    assert_ledgers_agree(&sim, &[0, 1, 3]);
}

/// Regression (fresh-seed campaign, `bftbench fuzz --protocol pbft --seed
/// 151622106161200` case 396555, shrunk): {0} cut off 88–517 ms and again
/// 551–745 ms, replica 2 silent from 587 ms. Replica 0 changed to view 1
/// during the second cut; primary 1 answered its VIEW-CHANGE(1) with the
/// NEW-VIEW into the partition, where it was lost, and re-sent it at most
/// once per replica per view, so after the heal 0 re-sent VIEW-CHANGE(1)
/// for good and never entered view 1; 3 waited in view 2 for the silent
/// primary 2, short of the VIEW-CHANGEs that start its timer. Nobody
/// committed again (stuck at 2 and 18 decisions). Now the NEW-VIEW is
/// re-sent at most once per timeout per replica.
#[test]
fn lost_new_view_resend_is_resent_after_the_heal() {
    let (_, report) = FuzzCase {
        nodes: 4,
        seed: 8_669_260_247_687_337_960,
        duration: ms(27_845),
        max_delay: ms(25),
        partitions: vec![
            Partition::between(ms(88), ms(517), &[&[0], &[1, 2, 3]]),
            Partition::between(ms(551), ms(745), &[&[1, 2, 3], &[0]]),
        ],
        batch_size: 4,
        faults: vec![Fault::new(NodeId(2), FaultKind::Silent, ms(587))],
        leaders: None,
        heal: ms(745),
    }
    .replay();
    assert!(report.decisions > 18, "{}", report.decisions);
}

/// Regression (fresh-seed campaign, `bftbench fuzz --protocol pbft --seed
/// 151622106161200` case 435655, shrunk): the same shape with replica 3
/// corrupting every signature from 488 ms and {0} cut off 76–353 ms and
/// 372–933 ms: stuck at 3 and 16 decisions until the NEW-VIEW re-send was
/// rate-limited by time instead of once per view.
#[test]
fn lost_new_view_resend_with_a_corrupting_replica() {
    let (_, report) = FuzzCase {
        nodes: 4,
        seed: 4_629_706_775_649_873_571,
        duration: ms(28_033),
        max_delay: ms(9),
        partitions: vec![
            Partition::between(ms(372), ms(933), &[&[1, 2, 3], &[0]]),
            Partition::between(ms(76), ms(353), &[&[1, 2, 3], &[0]]),
        ],
        batch_size: 4,
        faults: vec![Fault::attack(
            NodeId(3),
            bft_core::Attack::BadSignature,
            ms(488),
        )],
        leaders: None,
        heal: ms(933),
    }
    .replay();
    assert!(report.decisions > 16, "{}", report.decisions);
}

/// Regression (fresh-seed campaign, `bftbench fuzz --protocol pbft --nodes
/// 7 --seed 172045626261112` case 1447, shrunk): n = 7, {5, 6} cut off
/// 361 ms–1.039 s, replica 4 (favoured primary of views 0–2) relabelling
/// its messages a view lower from 411 ms, replica 5 replaying stale
/// messages. Replica 6 fell behind at slot 18; with 4's CHECKPOINTs
/// malformed and 6 behind, no checkpoint became stable at the others until
/// view 3, but f+1 matching CHECKPOINTs made 6 fetch at once: it asked each
/// signer once, none could serve yet, and it gave up. When view 3 brought
/// the stable checkpoint 256 the others could serve, 6 asked nobody again,
/// and by the next proof (384) the batches it lacked were past the
/// transfer depth: stuck at 18 decisions for the 41.6 s bound. Now the
/// fetch goes round the signers, one per timeout, until it is served.
#[test]
fn a_fetch_nobody_could_serve_yet_is_asked_again_until_served() {
    use bft_core::{Attack, Mutation};
    let (sim, _) = FuzzCase {
        nodes: 7,
        seed: 5_556_343_017_806_469_896,
        duration: ms(42_739),
        max_delay: ms(6),
        partitions: vec![Partition::between(ms(361), ms(1039), &[&[5, 6]])],
        batch_size: 3,
        faults: vec![
            Fault::attack(NodeId(4), Attack::Mutate(Mutation::RoundMinusOne), ms(411)),
            Fault::new(NodeId(5), FaultKind::StaleReplay, ms(143)),
        ],
        leaders: Some(bft_core::LeaderSchedule::favouring(7, NodeId(4), 3)),
        heal: ms(1039),
    }
    .replay();
    assert!(sim.node(NodeId(6)).status().committed > 18);
}

fn resent(report: &SimReport, kind: &str) -> u64 {
    report.stats.resent.get(kind).map_or(0, |c| c.count)
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
