//! Checkpoints, watermarks, state transfer and bounded memory.

use super::*;

#[test]
fn checkpoint_off_the_interval_or_duplicated_is_rejected() {
    let (s, mut r) = backup();
    let (_, err) = feed(
        &mut r,
        msg(2, PbftMessage::Checkpoint(s.checkpoint(2, 3, GENESIS))),
    );
    assert_eq!(err, Some("checkpoint-off-interval"));
    let (_, err) = feed(
        &mut r,
        msg(2, PbftMessage::Checkpoint(s.checkpoint(2, 4, GENESIS))),
    );
    assert_eq!(err, None);
    let (_, err) = feed(
        &mut r,
        msg(2, PbftMessage::Checkpoint(s.checkpoint(2, 4, GENESIS))),
    );
    assert_eq!(err, Some("duplicate-checkpoint"));
}

#[test]
fn stable_checkpoint_moves_the_low_watermark_and_discards_the_log() {
    let s = Signer::new(4, CryptoKind::Model);
    let mut net = s.net(&cfg(), ONE);
    for k in 0..10 {
        net.request_all(&request(1, k));
        net.run();
    }
    net.assert_safe();
    for (i, node) in net.nodes.iter().enumerate() {
        assert_eq!(node.last_executed(), 10, "replica {i}");
        assert_eq!(node.low_watermark(), 8, "checkpoints at 4 and 8 are stable");
        assert_eq!(node.log_len(), 2, "only seqs 9 and 10 remain");
    }
    // K = 4: checkpoints after 4 and 8, each multicast by all n replicas.
    assert_eq!(net.sent("checkpoint"), 2 * 4 * 3);
}

#[test]
fn primary_stops_at_the_high_watermark_until_a_checkpoint_is_stable() {
    let s = Signer::new(4, CryptoKind::Model);
    let mut net = s.net(&cfg(), ONE);
    // Nobody's CHECKPOINT gets through: h stays 0, so H = 8.
    net.drop = Some(Box::new(|_, _, m| matches!(m, PbftMessage::Checkpoint(_))));
    for k in 0..12 {
        net.request_all(&request(1, k));
    }
    net.run();
    for node in &net.nodes {
        assert_eq!(node.last_executed(), 8, "proposals stop at H = h + L");
        assert_eq!(node.low_watermark(), 0);
    }
    net.drop = None;
    // The lost CHECKPOINTs for 4 arrive late (by hand): h = 4, H = 12.
    for i in 0..4u16 {
        let state = net.ledgers[0][3].block;
        let cp = s.checkpoint(i, 4, state);
        for to in (0..4u16).filter(|&t| t != i) {
            net.queue
                .push_back((NodeId(i), NodeId(to), PbftMessage::Checkpoint(cp.clone())));
        }
    }
    net.run();
    for node in &net.nodes {
        assert_eq!(node.last_executed(), 12, "window moved: the rest commits");
        assert_eq!(node.low_watermark(), 12, "and checkpoint 12 became stable");
    }
    net.assert_safe();
}

/// f+1 matching CHECKPOINTs (a weak certificate: one signer is correct)
/// tell a replica it is behind; f do not. (It used to take 2f+1, which a
/// replica that hears only 2f of the others — one faulty replica omitting to
/// it — never gets; see `replica_alone_in_a_higher_view_catches_up_by_state_transfer`
/// in tests/it/sim/.)
#[test]
fn checkpoints_above_the_window_from_f_plus_1_replicas_start_a_fetch() {
    let (s, mut r) = backup();
    let far = cfg().window + cfg().checkpoint_interval;
    let state = batch_digest(&[request(5, 5)]);
    let (out, err) = feed(
        &mut r,
        msg(0, PbftMessage::Checkpoint(s.checkpoint(0, far, state))),
    );
    assert_eq!(err, None);
    assert!(out.is_empty(), "f is not a proof");
    assert_eq!(r.behind_to(), None);
    let (out, err) = feed(
        &mut r,
        msg(2, PbftMessage::Checkpoint(s.checkpoint(2, far, state))),
    );
    assert_eq!(err, None);
    assert_eq!(r.behind_to(), Some(far));
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Resend { msg: PbftMessage::Fetch(f), .. } if f.from_seq == 1
    )));
}

#[test]
fn lagging_replica_catches_up_by_state_transfer_to_the_stable_checkpoint() {
    let s = Signer::new(4, CryptoKind::Real);
    let mut net = s.net(&cfg(), ONE);
    // Replica 3 hears nothing while slots 1..=6 are decided by 0, 1, 2.
    net.drop = Some(Box::new(|_, to, _| to == NodeId(3)));
    for k in 0..6 {
        net.request_all(&request(1, k));
        net.run();
    }
    assert!(net.ledgers[3].is_empty());
    assert_eq!(net.nodes[0].last_executed(), 6);
    net.drop = None;
    for k in 6..12 {
        net.request_all(&request(1, k));
        net.run();
    }
    // Checkpoint 8 became stable; replica 3 fetched slots 1..=8 and took
    // part in the rest normally.
    assert!(net.sent("fetch") >= 1);
    assert!(net.sent("state") >= 1);
    for (i, node) in net.nodes.iter().enumerate() {
        assert_eq!(node.last_executed(), 12, "replica {i}");
        assert_eq!(node.behind_to(), None, "replica {i}");
    }
    assert_eq!(net.ledgers[3].len(), 12);
    net.assert_safe();
}

#[test]
fn state_transfer_that_does_not_reach_the_proven_state_is_rejected() {
    let s = Signer::new(4, CryptoKind::Real);
    // Slot 4's true chain: four single-request batches.
    let batches: Vec<bft_pbft::ExecutedBatch> = (0..4)
        .map(|k| bft_pbft::ExecutedBatch {
            seq: k + 1,
            view: 0,
            batch: vec![request(1, k)],
        })
        .collect();
    let state = batches.iter().fold(GENESIS, |h, b| {
        bft_pbft::block_hash(&h, b.seq, &batch_digest(&b.batch))
    });
    let proof: Vec<_> = (0..3u16).map(|i| s.checkpoint(i, 4, state)).collect();
    let mut r = s.replica(3, &cfg(), ONE);
    let st = |b: Vec<bft_pbft::ExecutedBatch>, proof: Vec<_>| {
        PbftMessage::State(bft_pbft::StateTransfer {
            seq: 4,
            state,
            proof,
            batches: b,
            committed: Vec::new(),
        })
    };
    // A responder swaps one request: the chain no longer reaches `state`.
    let mut forged = batches.clone();
    forged[2].batch = vec![request(9, 9)];
    assert_eq!(
        feed(&mut r, msg(0, st(forged, proof.clone()))).1,
        Some("bad-state")
    );
    assert_eq!(
        feed(&mut r, msg(0, st(batches[1..].to_vec(), proof.clone()))).1,
        Some("bad-state"),
        "must start right after the replica's last executed slot"
    );
    assert_eq!(
        feed(&mut r, msg(0, st(batches.clone(), proof[..2].to_vec()))).1,
        Some("bad-checkpoint-proof")
    );
    assert_eq!(r.last_executed(), 0);
    let (out, err) = feed(&mut r, msg(0, st(batches, proof)));
    assert_eq!(err, None);
    assert_eq!(
        out.iter()
            .filter(|a| matches!(a, Action::Commit(_)))
            .count(),
        4
    );
    assert_eq!((r.last_executed(), r.low_watermark()), (4, 4));
}

#[test]
fn memory_stays_bounded_by_the_window_over_10_000_decisions() {
    let s = Signer::new(4, CryptoKind::Model);
    let cfg = PbftConfig {
        checkpoint_interval: 16,
        window: 32,
        ..PbftConfig::default()
    };
    let mut net = s.net(&cfg, ONE);
    let mut peak = 0;
    let mut peak_after_first_thousand = 0;
    for k in 0..10_000u64 {
        net.request_all(&request(1, k));
        net.run();
        let worst = net.nodes.iter().map(|r| r.status().retained).max().unwrap();
        peak = peak.max(worst);
        if k >= 1_000 {
            peak_after_first_thousand = peak_after_first_thousand.max(worst);
        }
    }
    for node in &net.nodes {
        assert_eq!(node.last_executed(), 10_000);
        assert_eq!(node.low_watermark(), 10_000, "10 000 is a checkpoint");
        assert!(node.log_len() as u64 <= cfg.window);
    }
    // Per slot in the window: the pre-prepare, n prepares, n commits and a
    // certificate (1 + 2f); per checkpoint in the window n votes; plus the
    // executed history (state_transfer_depth below h, up to L above) and
    // small constants.
    let (n, f, l, k) = (4usize, 1usize, 32usize, 16usize);
    let history = cfg.state_transfer_depth as usize + l;
    let bound = l * (1 + 2 * n + 2 + 2 * f) + (l / k + 1) * (n + 1) + history + 4 * n + 16;
    assert!(peak <= bound, "peak retained {peak} > bound {bound}");
    assert_eq!(
        peak, peak_after_first_thousand,
        "no growth after the first 1 000"
    );
    net.assert_safe();
}

/// Serve budget: a peer that asks for state transfers again and again gets
/// `SERVE_BURST` (2) at once, then one per fetch timeout
/// (`view_change_timeout`); the rest are refused as `serve-limited`, so it
/// cannot make a replica send unbounded data. Another peer is not charged
/// for it.
#[test]
fn repeated_fetches_are_served_within_the_peers_budget() {
    let s = Signer::new(4, CryptoKind::Real);
    let mut net = s.net(&cfg(), ONE);
    for k in 0..8 {
        net.request_all(&request(1, k));
        net.run();
    }
    assert_eq!(net.nodes[0].low_watermark(), 8);
    let fetch = || PbftMessage::Fetch(bft_pbft::Fetch { from_seq: 1 });
    let served = |net: &mut bft_testkit::Net<bft_pbft::Pbft>, from: u16, now: Time| {
        net.now = now;
        let before = net.sent("state");
        net.input(NodeId(0), msg(from, fetch()));
        net.queue.clear();
        net.sent("state") - before
    };
    let t0 = Time(1_000);
    let period = cfg().view_change_timeout;
    let got: Vec<u64> = (0..5).map(|_| served(&mut net, 3, t0)).collect();
    assert_eq!(got, [1, 1, 0, 0, 0]);
    assert_eq!(net.rejected_at[&(NodeId(0), "serve-limited")], 3);
    assert_eq!(served(&mut net, 2, t0), 1, "replica 2 has its own budget");
    // One fetch timeout later, one more; then none until the next.
    assert_eq!(served(&mut net, 3, t0.saturating_add(period)), 1);
    assert_eq!(served(&mut net, 3, t0.saturating_add(period)), 0);
    assert_eq!(served(&mut net, 3, t0.saturating_add(period * 2)), 1);
}

/// A snapshot is installed only at a stable checkpoint: f+1 members
/// offering the same state at 4 with fewer than q CHECKPOINTs behind it
/// (a Byzantine one computed it, an honest one executed slot 4 but has not
/// seen it stable) move nothing, because installing would discard prepared
/// certificates below 4 that a view change may still need; with the q-proof
/// the replica jumps to 4 and makes it its low watermark. (Regression: the
/// first version installed at any checkpoint the offers agreed on, and a
/// Byzantine offer could so make an honest replica drop a prepared
/// certificate and let a view change commit another batch at its slot.)
#[test]
fn a_snapshot_is_installed_only_at_a_proven_stable_checkpoint() {
    let s = Signer::new(4, CryptoKind::Real);
    let head = (1..=4u64).fold(GENESIS, |h, seq| {
        bft_pbft::block_hash(&h, seq, &batch_digest(&[request(1, seq - 1)]))
    });
    let mut executed = bft_core::Executed::new();
    for k in 0..4 {
        executed.insert(bft_core::RequestId {
            client: 1,
            number: k,
        });
    }
    let offer = |proof: Vec<bft_pbft::Checkpoint>| {
        PbftMessage::Snapshot(vec![bft_core::Snapshot {
            slot: 4,
            block: head,
            tip: bft_pbft::StableProof(proof),
            executed: executed.clone(),
        }])
    };
    let proof: Vec<_> = (0..3u16).map(|i| s.checkpoint(i, 4, head)).collect();
    let installed = |out: &[Action<PbftMessage, bft_pbft::PbftTimer>]| {
        out.iter()
            .any(|a| matches!(a, Action::InstallSnapshot { slot: 4, .. }))
    };

    let mut r = s.replica(3, &cfg(), ONE);
    let (out, _) = feed(&mut r, msg(0, offer(proof[..2].to_vec())));
    assert!(!installed(&out));
    let (out, _) = feed(&mut r, msg(1, offer(proof[..2].to_vec())));
    assert!(
        !installed(&out),
        "f+1 alike, but two CHECKPOINTs are no proof"
    );
    assert_eq!((r.last_executed(), r.low_watermark()), (0, 0));

    let mut r = s.replica(3, &cfg(), ONE);
    feed(&mut r, msg(0, offer(proof[..2].to_vec())));
    let (out, err) = feed(&mut r, msg(1, offer(proof.clone())));
    assert_eq!(err, None);
    assert!(installed(&out), "one copy carries the q-proof");
    assert_eq!((r.last_executed(), r.low_watermark()), (4, 4));
}

/// A committed tail starts where the asker is, not at the responder's
/// stable checkpoint: tails are capped at `TAIL_BYTES` (8 MiB) of
/// requests, and a replica missing slot 9 of ten 1.3 MB slots got slots
/// 1–7 from every peer, every time, and never reached 9 until a later
/// checkpoint (found in review of the view change by digest).
#[test]
fn a_committed_tail_starts_at_the_slot_asked_for() {
    let s = Signer::new(4, CryptoKind::Model);
    let pbft = PbftConfig {
        checkpoint_interval: 32,
        window: 64,
        ..PbftConfig::default()
    };
    let mut r = s.large_replica(1, &pbft);
    for seq in 1..=10u64 {
        let d = s.prepare_at(&mut r, seq, large_batch(seq));
        s.commit_at(&mut r, seq, d);
    }
    assert_eq!(r.last_executed(), 10);
    let (out, err) = feed(
        &mut r,
        msg(3, PbftMessage::Fetch(bft_pbft::Fetch { from_seq: 9 })),
    );
    assert_eq!(err, None);
    let tail: Vec<u64> = out
        .iter()
        .find_map(|a| match a {
            Action::Resend {
                msg: PbftMessage::State(st),
                ..
            } => Some(st.committed.iter().map(|c| c.pre_prepare.seq).collect()),
            _ => None,
        })
        .expect("a STATE answer");
    assert_eq!(tail, vec![9, 10]);
}

/// A state transfer must reach the proven checkpoint whole, and one
/// carrying more than `TRANSFER_BYTES` (16 MiB) of batches is answered with
/// the replica's snapshots instead: sixteen slots of 1.3 MB below the stable
/// checkpoint would have made a STATE of about 20 MB, and with 2000-request
/// batches a whole history (256 slots, 330 MB) outgrew the 64 MiB frame and
/// was never sent, so the lagging replica never caught up.
#[test]
fn a_state_transfer_larger_than_its_budget_is_offered_as_snapshots() {
    let s = Signer::new(4, CryptoKind::Model);
    let pbft = PbftConfig {
        checkpoint_interval: 8,
        window: 16,
        ..PbftConfig::default()
    };
    let mut r = s.large_replica(1, &pbft);
    for seq in 1..=16u64 {
        let d = s.prepare_at(&mut r, seq, large_batch(seq));
        let out = s.commit_at(&mut r, seq, d);
        let own = broadcasts(&out).into_iter().find_map(|m| match m {
            PbftMessage::Checkpoint(cp) => Some(cp.state),
            _ => None,
        });
        if let Some(state) = own {
            for by in [0, 2] {
                feed(
                    &mut r,
                    msg(by, PbftMessage::Checkpoint(s.checkpoint(by, seq, state))),
                );
            }
        }
    }
    assert_eq!((r.last_executed(), r.low_watermark()), (16, 16));
    let (out, err) = feed(
        &mut r,
        msg(3, PbftMessage::Fetch(bft_pbft::Fetch { from_seq: 1 })),
    );
    assert_eq!(err, None);
    let answers: Vec<&str> = out
        .iter()
        .filter_map(|a| match a {
            Action::Resend { msg, .. } => Some(bft_core::WireMessage::kind(msg)),
            _ => None,
        })
        .collect();
    assert_eq!(answers, vec!["snapshot"]);
}
