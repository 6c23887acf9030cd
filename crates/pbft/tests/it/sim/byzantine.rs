//! Byzantine primaries and every attack by one replica: equivocation,
//! censorship, and the protocol-aware attacks.

use super::*;

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
        let (seed, kind) = (cfg.seed, cfg.crypto);
        let mut sim = Simulation::<Pbft>::new(cfg, pbft).unwrap();
        let crypto = sim.crypto(NodeId(0));
        let clients = move |c| bft_crypto::ClientSigner::seeded(kind, seed, c);
        sim.set_outbound_filter(NodeId(0), move |_, to, msg| match &msg {
            PbftMessage::PrePrepare(pp) if pp.view == 0 => match to.0 {
                3 => Some(PbftMessage::PrePrepare(equivocate(
                    crypto.as_ref(),
                    &clients,
                    pp,
                    0x33,
                ))),
                2 if three_way => Some(PbftMessage::PrePrepare(equivocate(
                    crypto.as_ref(),
                    &clients,
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
    let censored = |r: &Request| r.id().client.is_multiple_of(2);
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
        let (seed, kind) = (cfg.seed, cfg.crypto);
        let mut sim = Simulation::<Pbft>::new(cfg, pbft).unwrap();
        let crypto = sim.crypto(NodeId(0));
        let clients = move |c| bft_crypto::ClientSigner::seeded(kind, seed, c);
        sim.set_outbound_filter(NodeId(0), move |_, to, msg| match &msg {
            PbftMessage::PrePrepare(pp) if pp.view == 0 && (pp.seq + u64::from(to.0)) % 2 == 0 => {
                Some(PbftMessage::PrePrepare(equivocate(
                    crypto.as_ref(),
                    &clients,
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

/// Every attack by one replica — the view-0 primary, or a backup that is
/// the primary of view 2 — under random delays and an early partition that
/// forces view changes (so VIEW-CHANGE and NEW-VIEW are tampered too): the
/// honest replicas stay safe, commit again within the liveness bound after
/// the partition heals, and keep their memory bounded.
#[test]
fn every_attack_by_one_replica_is_safe_live_and_bounded() {
    use bft_core::Adversarial;
    for node in [0u16, 2] {
        for attack in bft_core::Attack::every() {
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
