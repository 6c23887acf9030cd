//! QBFT in the deterministic simulator: exact message counts, round changes
//! under faults, re-proposal of a prepared value, round inflation, an
//! equivocating proposer. Every run must leave the safety oracle silent.

use bft_core::{CryptoKind, Digest, NodeId, Time};
use bft_crypto::CostModel;
use bft_qbft::messages::{
    Block, ProposalPayload, QbftMessage, RoundChange, RoundChangePayload, Signed,
};
use bft_qbft::{Qbft, QbftConfig};
use bft_sim::{Fault, LoadConfig, NetworkConfig, SimConfig, SimReport, Simulation};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

fn config(n: usize, total: u64) -> SimConfig {
    SimConfig {
        nodes: n,
        load: LoadConfig::closed(1, 1, 128).with_total(total),
        ..SimConfig::default()
    }
}

fn simulation(cfg: SimConfig) -> Simulation<Qbft> {
    Simulation::new(cfg, QbftConfig::default()).unwrap()
}

fn sent(report: &SimReport, kind: &str) -> u64 {
    report.stats.sent.get(kind).map_or(0, |c| c.count)
}

fn assert_safe(report: &SimReport) {
    assert!(
        report.violations.is_empty(),
        "seed {}: {:?}",
        report.seed,
        report.violations
    );
}

/// Per block, fault-free, one request per block: (n−1) PROPOSAL, n(n−1)
/// PREPARE, n(n−1) COMMIT, no ROUND-CHANGE.
fn assert_exact_counts(report: &SimReport, n: u64, blocks: u64) {
    assert_eq!(report.decisions, blocks, "n = {n}");
    assert_eq!(report.requests_committed, blocks, "n = {n}");
    assert_eq!(
        sent(report, "proposal"),
        blocks * (n - 1),
        "proposal, n = {n}"
    );
    assert_eq!(
        sent(report, "prepare"),
        blocks * n * (n - 1),
        "prepare, n = {n}"
    );
    assert_eq!(
        sent(report, "commit"),
        blocks * n * (n - 1),
        "commit, n = {n}"
    );
    assert_eq!(sent(report, "round-change"), 0, "round-change, n = {n}");
    assert_eq!(
        report.stats.total_sent().count,
        blocks * (n - 1) * (2 * n + 1),
        "(n-1)(2n+1) per block, n = {n}"
    );
    assert_eq!(report.view_changes, 0);
}

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
        assert!(cert.seals.len() >= committee.quorum_qbft());
        cert.verify(sim.crypto(NodeId(0)).as_ref(), &committee)
            .unwrap();
        assert_eq!(sim.ledger(id).last().unwrap().block, cert.digest);
    }
}

#[test]
fn same_seed_gives_the_same_trace_under_a_jittery_network() {
    let cfg = || SimConfig {
        seed: 42,
        network: NetworkConfig::uniform(Duration::from_micros(200), Duration::from_millis(3)),
        load: LoadConfig::closed(3, 2, 64).with_total(40),
        ..SimConfig::default()
    };
    let (a, b) = (simulation(cfg()).run(), simulation(cfg()).run());
    assert_safe(&a);
    assert_eq!(a.requests_committed, 40);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.stats, b.stats);
}

#[test]
fn silent_proposer_is_replaced_by_round_change_and_next_proposers_block_commits() {
    let cfg = SimConfig {
        faults: vec![Fault::silent(NodeId(0), Duration::ZERO)],
        ..config(4, 1)
    };
    let mut sim = simulation(cfg);
    let report = sim.run();
    assert_safe(&report);
    assert_eq!(report.requests_committed, 1);
    assert!(report.view_changes >= 1);
    assert!(
        sent(&report, "round-change") >= 3,
        "honest replicas announced round 1"
    );
    for id in [1, 2, 3].map(NodeId) {
        let decided = &sim.ledger(id)[0];
        assert_eq!(decided.view, 1, "decided in round 1");
        let cert = sim.node(id).protocol().last_certificate().unwrap();
        assert_eq!(
            cert.block.proposer,
            NodeId(1),
            "proposer(1, 1) built the block"
        );
        assert_eq!(cert.digest, decided.block);
    }
}

#[test]
fn value_prepared_in_round_0_is_reproposed_in_round_1_with_the_same_hash() {
    // Node 0, proposer of (1, 0), shows its proposal and PREPARE to nodes 1
    // and 2 only and never lets a COMMIT out: 0, 1 and 2 prepare its block,
    // but only 2 < q commits exist, so round 0 times out.
    let mut sim = simulation(config(4, 1));
    let proposed: Rc<RefCell<Option<Digest>>> = Rc::default();
    let seen = proposed.clone();
    sim.set_outbound_filter(NodeId(0), move |_, to, msg| match &msg {
        QbftMessage::Proposal(p) if p.signed.payload.round == 0 => {
            *seen.borrow_mut() = Some(p.signed.payload.digest);
            (to == NodeId(1) || to == NodeId(2)).then_some(msg)
        }
        QbftMessage::Prepare(p) if p.payload.round == 0 => {
            (to == NodeId(1) || to == NodeId(2)).then_some(msg)
        }
        QbftMessage::Commit(_) => None,
        _ => Some(msg),
    });
    let report = sim.run();
    assert_safe(&report);
    assert_eq!(report.requests_committed, 1);
    let original = proposed.borrow().expect("node 0 proposed");
    for id in [1, 2, 3].map(NodeId) {
        let decided = &sim.ledger(id)[0];
        assert_eq!(decided.view, 1, "decided after one round change");
        assert_eq!(decided.block, original, "the round-0 block, same hash");
        let cert = sim.node(id).protocol().last_certificate().unwrap();
        assert_eq!(
            cert.block.proposer,
            NodeId(0),
            "not the round-1 leader's own block"
        );
    }
}

fn far_round_change(sim: &Simulation<Qbft>, from: NodeId, round: u64) -> QbftMessage {
    let crypto = sim.crypto(from);
    QbftMessage::RoundChange(Box::new(RoundChange {
        signed: Signed::sign(
            crypto.as_ref(),
            RoundChangePayload {
                height: 1,
                round,
                prepared_round: None,
                prepared_value: None,
            },
        ),
        prepared_block: None,
        prepares: Vec::new(),
    }))
}

#[test]
fn f_byzantine_round_changes_for_round_5_do_not_move_honest_nodes() {
    let mut sim = simulation(config(4, 5));
    let msg = far_round_change(&sim, NodeId(3), 5);
    for to in [0, 1, 2].map(NodeId) {
        sim.inject(Time::ZERO, NodeId(3), to, msg.clone());
    }
    let report = sim.run();
    assert_safe(&report);
    assert_exact_counts(&report, 4, 5);
    for id in [0, 1, 2].map(NodeId) {
        assert_eq!(sim.node(id).status().view_changes, 0);
        assert!(sim.ledger(id).iter().all(|d| d.view == 0));
    }
}

#[test]
fn f_plus_1_round_changes_for_round_5_move_honest_nodes_to_round_5() {
    let cfg = SimConfig {
        load: LoadConfig::none(),
        duration: Duration::from_secs(5),
        ..config(4, 0)
    };
    let mut sim = simulation(cfg);
    for from in [2, 3].map(NodeId) {
        let msg = far_round_change(&sim, from, 5);
        for to in [0, 1].map(NodeId) {
            sim.inject(Time::ZERO, from, to, msg.clone());
        }
    }
    let report = sim.run();
    assert_safe(&report);
    for id in [0, 1].map(NodeId) {
        assert_eq!(
            sim.node(id).status().view_changes,
            1,
            "one jump, straight to 5"
        );
        // proposer(1, 5) = node 1 gathered q round changes for round 5 and
        // proposed (an empty block: no request was pending).
        let decided = &sim.ledger(id)[0];
        assert_eq!((decided.slot, decided.view), (1, 5));
        assert!(decided.requests.is_empty());
    }
}

#[test]
fn f_silent_validators_do_not_stop_progress() {
    let cfg = SimConfig {
        faults: vec![
            Fault::silent(NodeId(1), Duration::ZERO),
            Fault::silent(NodeId(4), Duration::ZERO),
        ],
        ..config(7, 12)
    };
    let report = simulation(cfg).run();
    assert_safe(&report);
    assert_eq!(report.requests_committed, 12);
    assert_eq!(report.decisions, 12);
    assert!(
        report.view_changes >= 1,
        "silent proposers were rotated out"
    );
}

#[test]
fn crashed_validator_does_not_stop_progress() {
    let cfg = SimConfig {
        faults: vec![Fault::crash(NodeId(2), Duration::from_millis(20))],
        ..config(4, 20)
    };
    let report = simulation(cfg).run();
    assert_safe(&report);
    assert_eq!(report.requests_committed, 20);
}

#[test]
fn equivocating_proposer_sending_two_proposals_in_one_round_causes_no_fork() {
    let mut sim = simulation(config(4, 3));
    let signer = sim.crypto(NodeId(0));
    let digests: Rc<RefCell<Vec<Digest>>> = Rc::default();
    let seen = digests.clone();
    // Node 1 and node 3 get block B, node 2 gets block A: A has 2 prepares
    // (0, 2), B has 2 (1, 3), neither reaches q = 3.
    sim.set_outbound_filter(NodeId(0), move |_, to, msg| match &msg {
        QbftMessage::Proposal(p) if p.signed.payload.height == 1 && p.signed.payload.round == 0 => {
            seen.borrow_mut().push(p.signed.payload.digest);
            if to == NodeId(2) {
                return Some(msg);
            }
            let other = Block {
                requests: Vec::new(),
                ..p.block.clone()
            };
            let mut forged = (**p).clone();
            forged.signed = Signed::sign(
                signer.as_ref(),
                ProposalPayload {
                    height: 1,
                    round: 0,
                    digest: other.hash(),
                },
            );
            forged.block = other;
            seen.borrow_mut().push(forged.signed.payload.digest);
            Some(QbftMessage::Proposal(Box::new(forged)))
        }
        _ => Some(msg),
    });
    let report = sim.run();
    assert_safe(&report);
    assert_eq!(report.requests_committed, 3);
    let equivocated = digests.borrow().clone();
    let first = &sim.ledger(NodeId(1))[0];
    assert_eq!(first.view, 1, "round 0 could not decide either block");
    assert!(!equivocated.contains(&first.block));
    for id in [2, 3].map(NodeId) {
        assert_eq!(sim.ledger(id), sim.ledger(NodeId(1)), "identical ledgers");
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

/// Messages per decision against (n−1)(2n+1), model crypto, n = 4…64.
/// `cargo test -p bft-qbft --test sim -- --ignored --nocapture`
#[test]
#[ignore]
fn sweep_messages_per_decision_n_4_to_64() {
    for n in [4u64, 8, 16, 32, 64] {
        let blocks = 20;
        let report = simulation(SimConfig {
            cost: CostModel::default(),
            ..config(n as usize, blocks)
        })
        .run();
        assert_safe(&report);
        let total = report.stats.total_sent();
        let per = total.count as f64 / report.decisions as f64;
        println!(
            "n={n:3} decisions={} msgs/decision={per:.1} formula={} bytes/decision={:.0} p50={:?}",
            report.decisions,
            (n - 1) * (2 * n + 1),
            total.bytes as f64 / report.decisions as f64,
            report.latency.p50,
        );
        assert_exact_counts(&report, n, blocks);
    }
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

/// Control: q = ⌈2n/3⌉ only protects against f Byzantine validators. With
/// f + 1 = 2 at n = 4 — the proposer showing block A to node 2 and block B to
/// node 3, both Byzantine validators voting A to node 2 and B to node 3 —
/// each honest replica sees a full quorum and they decide different blocks.
/// The oracle must catch it (so the other tests' silence means something).
#[test]
fn control_f_plus_1_byzantine_validators_can_fork_and_the_oracle_reports_it() {
    let mut sim = simulation(config(4, 1));
    let twin: Rc<RefCell<Option<(Digest, Digest)>>> = Rc::default();
    for byzantine in [0u16, 1] {
        let signer = sim.crypto(NodeId(byzantine));
        let twin = twin.clone();
        sim.set_outbound_filter(NodeId(byzantine), move |_, to, msg| {
            if to != NodeId(3) {
                return Some(msg);
            }
            let swap = |d: Digest| match *twin.borrow() {
                Some((a, b)) if a == d => b,
                _ => d,
            };
            Some(match msg {
                QbftMessage::Proposal(p) => {
                    let b = Block {
                        requests: Vec::new(),
                        ..p.block.clone()
                    };
                    *twin.borrow_mut() = Some((p.block.hash(), b.hash()));
                    let mut forged = (*p).clone();
                    forged.signed = Signed::sign(
                        signer.as_ref(),
                        ProposalPayload {
                            digest: b.hash(),
                            ..p.signed.payload.clone()
                        },
                    );
                    forged.block = b;
                    QbftMessage::Proposal(Box::new(forged))
                }
                QbftMessage::Prepare(p) => QbftMessage::Prepare(Signed::sign(
                    signer.as_ref(),
                    bft_qbft::messages::PreparePayload {
                        digest: swap(p.payload.digest),
                        ..p.payload
                    },
                )),
                QbftMessage::Commit(c) => QbftMessage::Commit(bft_qbft::messages::signed_commit(
                    signer.as_ref(),
                    c.payload.height,
                    c.payload.round,
                    swap(c.payload.digest),
                )),
                other => other,
            })
        });
    }
    let report = sim.run();
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.starts_with("agreement") && v.contains("slot 1")),
        "expected an agreement violation, got {:?}",
        report.violations
    );
    assert_ne!(
        sim.ledger(NodeId(2))[0].block,
        sim.ledger(NodeId(3))[0].block
    );
}

/// f Byzantine validators that equivocate in everything they send — a
/// different block to odd-numbered replicas whenever they propose, and
/// PREPAREs/COMMITs for that other block to those replicas — on a jittery
/// network with short timeouts, over many seeds and n = 4…7: never a fork,
/// and every request is still committed.
#[test]
fn f_equivocating_validators_on_a_jittery_network_never_fork() {
    for seed in 1..=16u64 {
        let n = 4 + (seed % 4) as usize;
        let cfg = SimConfig {
            nodes: n,
            seed,
            network: NetworkConfig::uniform(Duration::from_micros(100), Duration::from_millis(4)),
            load: LoadConfig::closed(2, 1, 64).with_total(20),
            duration: Duration::from_secs(300),
            ..SimConfig::default()
        };
        let proto = QbftConfig {
            round_timeout: Duration::from_millis(10),
            ..QbftConfig::default()
        };
        let mut sim = Simulation::<Qbft>::new(cfg, proto).unwrap();
        let f = sim.committee().f();
        let twins: Rc<RefCell<Vec<(Digest, Digest)>>> = Rc::default();
        for byzantine in 0..f {
            let signer = sim.crypto(NodeId(byzantine as u16));
            let twins = twins.clone();
            sim.set_outbound_filter(NodeId(byzantine as u16), move |_, to, msg| {
                if to.0 % 2 == 0 {
                    return Some(msg);
                }
                let swap = |d: Digest| {
                    twins
                        .borrow()
                        .iter()
                        .find(|(a, _)| *a == d)
                        .map_or(d, |(_, b)| *b)
                };
                Some(match msg {
                    QbftMessage::Proposal(p) => {
                        let other = Block {
                            requests: Vec::new(),
                            ..p.block.clone()
                        };
                        twins.borrow_mut().push((p.block.hash(), other.hash()));
                        let mut forged = (*p).clone();
                        forged.signed = Signed::sign(
                            signer.as_ref(),
                            ProposalPayload {
                                digest: other.hash(),
                                ..p.signed.payload.clone()
                            },
                        );
                        forged.block = other;
                        QbftMessage::Proposal(Box::new(forged))
                    }
                    QbftMessage::Prepare(p) => QbftMessage::Prepare(Signed::sign(
                        signer.as_ref(),
                        bft_qbft::messages::PreparePayload {
                            digest: swap(p.payload.digest),
                            ..p.payload
                        },
                    )),
                    QbftMessage::Commit(c) => {
                        QbftMessage::Commit(bft_qbft::messages::signed_commit(
                            signer.as_ref(),
                            c.payload.height,
                            c.payload.round,
                            swap(c.payload.digest),
                        ))
                    }
                    other => other,
                })
            });
        }
        let report = sim.run();
        assert_safe(&report);
        assert_eq!(report.requests_committed, 20, "seed {seed}, n = {n}");
        assert_eq!(
            report.decisions, report.max_decisions,
            "no honest replica left behind, seed {seed}"
        );
    }
}

/// A replica that crashes and restarts many heights behind gets the decided
/// PROPOSALs and COMMITs relayed when it announces a round change for its
/// stale height, and decides every block the others decided.
#[test]
fn restarted_replica_catches_up_from_relayed_proposals_and_commits() {
    let cfg = SimConfig {
        faults: vec![
            Fault::crash(NodeId(3), Duration::from_millis(10)).until(Duration::from_millis(400)),
        ],
        load: LoadConfig::closed(1, 1, 128).with_total(120),
        ..config(4, 0)
    };
    let mut sim = simulation(cfg);
    let report = sim.run();
    assert_safe(&report);
    assert_eq!(report.requests_committed, 120);
    let full = sim.ledger(NodeId(0)).len();
    assert_eq!(full, 120);
    assert_eq!(
        sim.ledger(NodeId(3)).len(),
        full,
        "the restarted replica caught up"
    );
    assert_eq!(sim.ledger(NodeId(3)), sim.ledger(NodeId(0)));
}

/// The same, far behind: short timeouts let the others decide several
/// relays' worth of heights (but fewer than the 64 archived) while the
/// replica is down, so it catches up over several relays, one per round
/// change at each new height.
#[test]
fn replica_far_behind_catches_up_over_several_relays() {
    let down = Duration::from_millis(200);
    let cfg = SimConfig {
        faults: vec![Fault::crash(NodeId(3), Duration::from_millis(10)).until(down)],
        load: LoadConfig::closed(1, 1, 128).with_total(300),
        duration: Duration::from_secs(60),
        ..config(4, 0)
    };
    let proto = QbftConfig {
        round_timeout: Duration::from_millis(10),
        ..QbftConfig::default()
    };
    let mut sim = Simulation::<Qbft>::new(cfg, proto).unwrap();
    sim.run_until(Time::from_duration(down));
    let behind = sim.ledger(NodeId(0)).len() - sim.ledger(NodeId(3)).len();
    assert!(
        (17..64).contains(&behind),
        "{behind} heights behind: adjust the test"
    );
    let report = sim.run();
    assert_safe(&report);
    assert_eq!(report.requests_committed, 300);
    assert_eq!(sim.ledger(NodeId(3)).len(), 300, "caught up");
    assert!(sim.ledger(NodeId(3)) == sim.ledger(NodeId(0)));
}

/// A 2|2 split at n = 4 leaves no side with q = 3: nothing is decided while
/// it lasts (safety), and once it heals the round changes re-align the
/// replicas and every request commits at every replica (liveness after GST).
#[test]
fn partition_without_quorum_stalls_safely_then_heals_and_commits_everything() {
    let split = bft_sim::Partition {
        start: Duration::from_millis(20),
        end: Duration::from_millis(1_500),
        groups: vec![vec![NodeId(0), NodeId(1)], vec![NodeId(2), NodeId(3)]],
    };
    let cfg = SimConfig {
        network: NetworkConfig {
            partitions: vec![split],
            ..NetworkConfig::fixed(Duration::from_millis(1))
        },
        load: LoadConfig::closed(2, 1, 64).with_total(40),
        duration: Duration::from_secs(120),
        ..SimConfig::default()
    };
    let mut sim = simulation(cfg);
    sim.run_until(Time::from_duration(Duration::from_millis(25)));
    let before: Vec<usize> = (0..4).map(|i| sim.ledger(NodeId(i)).len()).collect();
    sim.run_until(Time::from_duration(Duration::from_millis(1_400)));
    for i in 0..4u16 {
        assert!(
            sim.ledger(NodeId(i)).len() <= before[usize::from(i)] + 1,
            "replica {i} decided during the split"
        );
    }
    let report = sim.run();
    assert_safe(&report);
    assert_eq!(report.requests_committed, 40);
    assert_eq!(
        report.decisions, report.max_decisions,
        "no replica left behind"
    );
    assert!(report.view_changes >= 1);
}

/// A signed round-0 PROPOSAL of `block` at height 1 by `signer`'s node.
fn forged_proposal(signer: &dyn bft_core::Crypto, block: Block) -> QbftMessage {
    let signed = Signed::sign(
        signer,
        ProposalPayload {
            height: block.height,
            round: 0,
            digest: block.hash(),
        },
    );
    QbftMessage::Proposal(Box::new(bft_qbft::messages::Proposal {
        signed,
        block,
        round_changes: Vec::new(),
        prepares: Vec::new(),
    }))
}

/// Review finding 1: the Byzantine proposer of (1, 0) sends the real block V
/// to nodes 1 and 2 but two other validly signed blocks X and Y to node 3,
/// filling node 3's round-0 block slots; 0, 1 and 2 decide V, then node 0
/// goes silent. Node 3 holds q COMMITs for V and must still be able to
/// store V (relayed PROPOSAL) and decide it, or nodes 1 and 2 are 2 < q and
/// the cluster halts. Asserts every honest replica commits every request.
#[test]
fn equivocating_proposer_filling_a_round_with_two_blocks_cannot_strand_a_replica() {
    let total = 10;
    let cfg = SimConfig {
        duration: Duration::from_secs(120),
        ..config(4, total)
    };
    let mut sim = simulation(cfg);
    let signer = sim.crypto(NodeId(0));
    let x = Block {
        height: 1,
        parent: bft_core::GENESIS,
        proposer: NodeId(0),
        requests: Vec::new(),
    };
    let y = Block {
        requests: vec![bft_core::Request {
            id: bft_core::RequestId {
                client: 9_999,
                number: 1,
            },
            payload: bytes::Bytes::from_static(b"y"),
        }],
        ..x.clone()
    };
    assert_ne!(x.hash(), y.hash());
    sim.inject(
        Time::ZERO,
        NodeId(0),
        NodeId(3),
        forged_proposal(signer.as_ref(), y),
    );
    let silent = Rc::new(std::cell::Cell::new(false));
    sim.set_outbound_filter(NodeId(0), move |_, to, msg| {
        // Silent for good from its first message above height 1.
        if silent.get() || msg.height() >= 2 {
            silent.set(true);
            return None;
        }
        match &msg {
            QbftMessage::Proposal(p) if p.signed.payload.round == 0 && to == NodeId(3) => {
                Some(forged_proposal(signer.as_ref(), x.clone()))
            }
            _ => Some(msg),
        }
    });
    let report = sim.run();
    assert_safe(&report);
    let reference = sim.ledger(NodeId(1)).to_vec();
    assert_eq!(
        reference.len() as u64,
        total,
        "honest replicas kept committing"
    );
    for id in [2, 3].map(NodeId) {
        assert_eq!(sim.ledger(id), reference.as_slice(), "replica {id:?}");
    }
}

/// PROPOSALs node `id` sent (n − 1 per block it proposed, fault-free).
fn proposals_by(sim: &Simulation<Qbft>, id: NodeId) -> u64 {
    sim.node(id)
        .stats()
        .sent
        .get("proposal")
        .map_or(0, |c| c.count)
}

#[test]
fn favouring_schedule_makes_node_2_propose_three_heights_in_a_row_then_rotates() {
    use bft_core::LeaderSchedule;
    // Rotation [2, 2, 2, 3, 0, 1]: fault-free every height decides in round
    // 0, so heights 1..=12 are proposed by 2, 2, 2, 3, 0, 1, 2, 2, 2, 3, 0, 1.
    let schedule = LeaderSchedule::favouring(4, NodeId(2), 3);
    let cfg = SimConfig {
        leaders: Some(schedule.clone()),
        ..config(4, 12)
    };
    let mut sim = simulation(cfg);
    let report = sim.run();
    assert_safe(&report);
    assert_exact_counts(&report, 4, 12);
    assert_eq!(proposals_by(&sim, NodeId(2)), 6 * 3, "node 2 led 6 heights");
    for id in [0, 1, 3].map(NodeId) {
        assert_eq!(proposals_by(&sim, id), 2 * 3, "node {id} led 2 heights");
    }
    // The pure schedule function agrees, height by height.
    let committee = sim.committee();
    let mut slot = 0;
    let mut leaders = Vec::new();
    for _ in 0..12 {
        let leader = bft_qbft::proposer(&committee, slot, 0);
        leaders.push(leader.0);
        slot = bft_qbft::next_round0_slot(&committee, slot, leader);
    }
    assert_eq!(leaders, [2, 2, 2, 3, 0, 1, 2, 2, 2, 3, 0, 1]);

    // The favourite crashed: rounds walk the rotation past its three slots
    // (rounds 0, 1, 2 of height 1) to node 3, and the run stays safe and live.
    let cfg = SimConfig {
        leaders: Some(schedule),
        faults: vec![Fault::crash(NodeId(2), Duration::ZERO)],
        duration: Duration::from_secs(30),
        ..config(4, 4)
    };
    let mut sim = simulation(cfg);
    let report = sim.run();
    assert_safe(&report);
    assert_eq!(report.requests_committed, 4);
    assert_eq!(
        sim.ledger(NodeId(0))[0].view,
        3,
        "height 1 decided in round 3"
    );
    assert_eq!(proposals_by(&sim, NodeId(2)), 0);
}
