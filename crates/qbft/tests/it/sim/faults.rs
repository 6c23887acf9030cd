//! Silent, crashed, equivocating and partitioned validators, catch-up by
//! relays, and the f+1 control the oracle must catch.

use super::*;

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
        assert_eq!(
            blocks(&sim, id),
            blocks(&sim, NodeId(1)),
            "identical ledgers"
        );
    }
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

/// A replica that crashes and restarts many heights behind is sent the
/// decided blocks with their seals (DECIDED) when it announces a round
/// change for its stale height, and decides every block the others decided.
#[test]
fn restarted_replica_catches_up_from_decided_blocks() {
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
    assert_eq!(blocks(&sim, NodeId(3)), blocks(&sim, NodeId(0)));
    assert!(sent(&report, "decided") > 0, "caught up by DECIDED");
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
    assert!(blocks(&sim, NodeId(3)) == blocks(&sim, NodeId(0)));
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

/// Review finding 1: the Byzantine proposer of (1, 0) sends the real block V
/// to nodes 1 and 2 but two other validly signed blocks X and Y to node 3,
/// filling node 3's round-0 block slots; 0, 1 and 2 decide V, then node 0
/// goes silent. Node 3 holds q COMMITs for V and must still be able to
/// obtain V (a DECIDED from a helper) and decide it, or nodes 1 and 2 are 2 < q and
/// the cluster halts. Asserts every honest replica commits every request.
#[test]
fn equivocating_proposer_filling_a_round_with_two_blocks_cannot_strand_a_replica() {
    let total = 10;
    let cfg = SimConfig {
        duration: Duration::from_secs(120),
        ..config(4, total)
    };
    let client = bft_crypto::ClientSigner::seeded(cfg.crypto, cfg.seed, 9_999);
    let mut sim = simulation(cfg);
    let signer = sim.crypto(NodeId(0));
    let x = Block {
        height: 1,
        parent: bft_core::GENESIS,
        proposer: NodeId(0),
        requests: Vec::new(),
    };
    let y = Block {
        requests: vec![{
            // Signed by a client no load generator runs: a request honest
            // replicas accept, so only the block slots are at stake.
            let mut r = bft_core::Request::unsigned(
                bft_core::RequestId {
                    client: 9_999,
                    number: 1,
                },
                bytes::Bytes::from_static(b"y"),
            );
            client.sign(&mut r);
            r
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

/// Replica `id`'s ledger as (slot, block, requests): what agreement is on.
/// Certificates are each replica's own evidence (another quorum of seals
/// may prove the same block), and a block decided by catch-up reports the
/// helper's round.
fn blocks(sim: &Simulation<Qbft>, id: NodeId) -> Vec<(u64, Digest, Vec<bft_core::RequestId>)> {
    sim.ledger(id)
        .iter()
        .map(|d| (d.slot, d.block, d.requests.clone()))
        .collect()
}
