//! Round changes, the round timer and its quorum rule, future heights and
//! authorship.

use super::*;

/// Replica 2 of four, prepared in round 0 of height 1: the proposal of
/// validator 0 and PREPAREs from 0 and 1 (with its own, a quorum).
fn prepared_in_round_0() -> (Signer, Qbft, Block) {
    let net = Signer::new(4, CryptoKind::Real);
    let mut replica = net.replica(2);
    let block = block1(0, 1);
    let d = block.hash();
    deliver(&mut replica, 0, net.proposal(0, 0, &block, vec![], vec![]))
        .0
        .unwrap();
    for s in [0, 1] {
        deliver(
            &mut replica,
            s,
            QbftMessage::Prepare(net.prepare(s, 1, 0, d)),
        )
        .0
        .unwrap();
    }
    (net, replica, block)
}

#[test]
fn round_timeout_sends_round_change_carrying_the_prepared_certificate() {
    let (_, mut replica, block) = prepared_in_round_0();
    let d = block.hash();
    let out = fire_round_timer(&mut replica);
    assert_eq!(replica.round(), 1);
    let rc = out
        .iter()
        .find_map(|a| match a {
            Action::Broadcast(QbftMessage::RoundChange(rc)) => Some(rc.clone()),
            _ => None,
        })
        .expect("round change broadcast");
    assert_eq!(rc.signed.payload.round, 1);
    assert_eq!(rc.signed.payload.prepared(), Some((0, d)));
    assert_eq!(rc.prepared_block.as_ref(), Some(&block));
    assert_eq!(rc.prepares.len(), 3);
    assert_eq!(replica.status().view_changes, 1);
}

/// The durable state writes the prepared block once (it is the accepted
/// one), and a replica restarted from it has the same state and still
/// sends the prepared certificate with its block.
#[test]
fn a_replica_restarted_from_its_durable_state_still_carries_its_prepared_certificate() {
    let (net, replica, block) = prepared_in_round_0();
    let d = block.hash();
    let durable = replica.durable();
    let bytes = bft_core::codec::encode(&durable, usize::MAX).unwrap();
    let decoded = bft_core::codec::decode(&bytes, usize::MAX).unwrap();
    let ctx = bft_testkit::context(
        &net.committee,
        &net.cryptos,
        NodeId(2),
        bft_core::BatchConfig::default(),
    );
    let batches = bft_core::durable::batches_of(&replica, &durable).unwrap();
    assert_eq!(
        batches.len(),
        1,
        "the prepared block is the accepted one: one batch"
    );
    let mut restarted = Qbft::recover(ctx, &QbftConfig::default(), decoded, &batches);
    assert_eq!(restarted.durable(), durable);
    let mut started = Vec::new();
    restarted.handle(at(0), Input::Start, &mut started).unwrap();
    let out = fire_round_timer(&mut restarted);
    let rc = out
        .iter()
        .find_map(|a| match a {
            Action::Broadcast(QbftMessage::RoundChange(rc)) => Some(rc.clone()),
            _ => None,
        })
        .expect("round change broadcast");
    assert_eq!(rc.signed.payload.prepared(), Some((0, d)));
    assert_eq!(rc.prepared_block.as_ref(), Some(&block));
    assert_eq!(rc.prepares.len(), 3);
}

/// Rejoin rule: a replica restarted from its store with nothing pending
/// still runs its round timer at the height it restarted at, so it asks
/// for what was decided while it was down even if nothing reaches it; a
/// fresh idle replica runs none. Regression: over QUIC a restarted QBFT
/// replica whose clients had not reconnected yet, in a cluster waiting out
/// a round, heard nothing and asked nothing for 690 ms
/// (scripts/kill-restart.sh).
#[test]
fn a_restarted_replica_with_nothing_pending_runs_its_round_timer() {
    let net = Signer::new(4, CryptoKind::Real);
    let round_timer_set = |out: &Actions| {
        out.iter().any(|a| {
            matches!(
                a,
                Action::SetTimer {
                    timer: QbftTimer::Round,
                    ..
                }
            )
        })
    };
    let mut fresh = net.replica(2);
    let mut started = Vec::new();
    fresh.handle(at(0), Input::Start, &mut started).unwrap();
    assert!(!round_timer_set(&started), "an idle fresh replica waits");
    let recover = || {
        let durable = fresh.durable();
        let batches = bft_core::durable::batches_of(&fresh, &durable).unwrap();
        let ctx = bft_testkit::context(
            &net.committee,
            &net.cryptos,
            NodeId(2),
            bft_core::BatchConfig::default(),
        );
        Qbft::recover(ctx, &QbftConfig::default(), durable, &batches)
    };
    let mut restarted = recover();
    let mut started = Vec::new();
    restarted.handle(at(0), Input::Start, &mut started).unwrap();
    assert!(round_timer_set(&started), "a restarted replica asks");
    let out = fire_round_timer(&mut restarted);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Broadcast(QbftMessage::RoundChange(_)))),
        "its round timeout announces a round change"
    );
    // Hearing a peer at its height ends the rule: an idle replica waits.
    let mut heard = recover();
    let mut started = Vec::new();
    heard.handle(at(0), Input::Start, &mut started).unwrap();
    let (_, out) = deliver(&mut heard, 0, net.commit(0, 1, 0, block1(0, 1).hash()));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::CancelTimer(QbftTimer::Round))),
        "a peer at its height: the rejoin rule is over"
    );
}

#[test]
fn new_leader_reproposes_the_highest_prepared_block_not_its_own() {
    let net = Signer::new(4, CryptoKind::Real);
    let mut leader = net.replica(1);
    give_request(&mut leader, 2); // its own candidate value
    let prepared = block1(0, 1);
    let rcs = [
        net.round_change(0, 1, 1, Some((0, &prepared)), &[0, 2, 3]),
        net.round_change(2, 1, 1, None, &[]),
        net.round_change(3, 1, 1, None, &[]),
    ];
    let mut outs = Vec::new();
    for (from, rc) in [0, 2, 3].into_iter().zip(rcs) {
        let (r, out) = deliver(&mut leader, from, rc);
        r.unwrap();
        outs.extend(out);
    }
    let proposal = outs
        .iter()
        .find_map(|a| match a {
            Action::Broadcast(QbftMessage::Proposal(p)) => Some(p.clone()),
            _ => None,
        })
        .expect("leader of round 1 proposes after q round changes");
    assert_eq!(proposal.signed.payload.round, 1);
    assert_eq!(
        proposal.block, prepared,
        "the prepared value, not the leader's own"
    );
    assert_eq!(proposal.signed.payload.digest, prepared.hash());
    assert_eq!(proposal.round_changes.len(), 3);
    assert_eq!(proposal.prepares.len(), 3);
    // The proposal it built passes another replica's checks.
    let (r, _, _) = offer_to_node3(&net, QbftMessage::Proposal(proposal));
    r.unwrap();
}

#[test]
fn round_change_with_a_forged_prepared_certificate_is_filtered_and_cannot_block_the_leader() {
    let net = Signer::new(4, CryptoKind::Real);
    let mut leader = net.replica(1);
    // Node 3 claims a prepared value backed by only 2 prepares.
    let fake = block1(3, 9);
    let (r, _) = deliver(
        &mut leader,
        3,
        net.round_change(3, 1, 1, Some((0, &fake)), &[0, 3]),
    );
    assert_eq!(r.unwrap_err().reason(), "insufficient-prepares");
    // Node 3 claims a prepared block that does not hash to its value.
    let mut mismatched = net.round_change(3, 1, 1, Some((0, &fake)), &[0, 2, 3]);
    if let QbftMessage::RoundChange(rc) = &mut mismatched {
        rc.prepared_block = Some(block1(3, 10));
    }
    let (r, _) = deliver(&mut leader, 3, mismatched);
    assert_eq!(r.unwrap_err().reason(), "prepared-block-mismatch");
    // Had a forged round change been kept, node 0's would make f+1 = 2
    // senders above round 0 and move the leader; it does not.
    give_request(&mut leader, 1);
    let (r, out) = deliver(&mut leader, 0, net.round_change(0, 1, 1, None, &[]));
    r.unwrap();
    assert!(
        broadcast_kinds(&out).is_empty(),
        "one valid round change moves nobody"
    );
    assert_eq!(leader.round(), 0);
    // Node 2's makes f+1: the leader joins round 1 with its own round change,
    // which completes q valid ones, and proposes a new block of its own.
    let (r, out) = deliver(&mut leader, 2, net.round_change(2, 1, 1, None, &[]));
    r.unwrap();
    assert_eq!(
        broadcast_kinds(&out),
        vec!["round-change", "proposal", "prepare"]
    );
    let proposal = out
        .iter()
        .find_map(|a| match a {
            Action::Broadcast(QbftMessage::Proposal(p)) => Some(p.clone()),
            _ => None,
        })
        .expect("proposal once q valid round changes are in");
    assert_eq!(proposal.round_changes.len(), 3);
    assert_eq!(proposal.block.proposer, NodeId(1));
    assert!(proposal.prepares.is_empty());
}

#[test]
fn f_round_changes_for_far_rounds_move_nobody_and_memory_stays_bounded() {
    let net = Signer::new(4, CryptoKind::Model);
    let mut replica = net.replica(0);
    for round in 5..2_005 {
        let (r, out) = deliver(&mut replica, 3, net.round_change(3, 1, round, None, &[]));
        r.unwrap();
        assert!(out.is_empty(), "a single (f = 1) validator moves nobody");
    }
    assert_eq!(replica.round(), 0);
    assert_eq!(replica.status().view_changes, 0);
    assert!(
        replica.status().retained <= 1,
        "one round change kept per sender"
    );
    // f + 1 = 2 validators above us: jump to the smaller of their rounds.
    let (r, out) = deliver(&mut replica, 2, net.round_change(2, 1, 7, None, &[]));
    r.unwrap();
    assert_eq!(replica.round(), 7);
    assert_eq!(broadcast_kinds(&out), vec!["round-change"]);
}

#[test]
fn future_heights_are_buffered_within_a_bound_and_replayed() {
    let net = Signer::new(4, CryptoKind::Model);
    let mut replica = net.replica(2);
    let d = block1(0, 1).hash();
    let mut full = 0;
    for i in 0..10_000u64 {
        let height = 2 + i % 8;
        let (r, _) = deliver(
            &mut replica,
            3,
            QbftMessage::Prepare(net.prepare(3, height, i, d)),
        );
        if r == Err(QbftError::FutureBufferFull(NodeId(3))) {
            full += 1;
        }
    }
    assert!(full > 9_000, "the flood beyond the per-peer cap is refused");
    let (r, _) = deliver(
        &mut replica,
        3,
        QbftMessage::Prepare(net.prepare(3, 1_000, 0, d)),
    );
    assert_eq!(r.unwrap_err().reason(), "too-far-in-future");
    assert!(
        replica.status().retained <= 64,
        "retained = {}",
        replica.status().retained
    );

    // Height-2 messages from an honest peer, buffered at height 1, are
    // replayed once height 1 is decided.
    let mut other = net.replica(3);
    let b1 = block1(0, 1);
    let d1 = b1.hash();
    let b2 = Block {
        height: 2,
        parent: d1,
        proposer: NodeId(1),
        requests: vec![request(2)],
    };
    let (r, _) = deliver(&mut other, 1, net.proposal(1, 0, &b2, vec![], vec![]));
    r.unwrap();
    assert_eq!(other.height(), 1);
    deliver(&mut other, 0, net.proposal(0, 0, &b1, vec![], vec![]))
        .0
        .unwrap();
    for s in [0, 1] {
        deliver(
            &mut other,
            s,
            QbftMessage::Prepare(net.prepare(s, 1, 0, d1)),
        )
        .0
        .unwrap();
    }
    let mut out = Vec::new();
    for s in [0, 1] {
        let (r, o) = deliver(&mut other, s, net.commit(s, 1, 0, d1));
        r.unwrap();
        out.extend(o);
    }
    assert_eq!(other.height(), 2);
    assert!(
        broadcast_prepares(&out)
            .iter()
            .any(|p| p.height == 2 && p.digest == b2.hash()),
        "the buffered height-2 proposal was replayed and prepared"
    );
}

#[test]
fn message_signed_by_another_validator_than_the_sender_is_rejected() {
    let net = Signer::new(4, CryptoKind::Real);
    let mut replica = net.replica(2);
    let (r, _) = deliver(
        &mut replica,
        3,
        QbftMessage::Prepare(net.prepare(1, 1, 0, block1(0, 1).hash())),
    );
    assert_eq!(r.unwrap_err().reason(), "author-not-sender");
}

#[test]
fn check_config_is_wired_into_the_protocol() {
    let bad = bft_qbft::QbftConfig {
        round_timeout: std::time::Duration::ZERO,
        ..Default::default()
    };
    assert_eq!(
        <Qbft as Protocol>::check_config(&bad).map_err(|i| i.key),
        Err("round_timeout")
    );
}

/// Round-timer rule (`Qbft::note_round_quorum`): round 0 is left on its
/// timeout; round 1, which only this replica has reached, is not — the
/// timeout re-sends the same ROUND-CHANGE, counted as a retransmission —
/// until q replicas are known to have reached it; the quorum's arrival
/// restarts the timer, and the next timeout leaves for round 2.
#[test]
fn a_round_is_left_on_timeout_only_after_a_quorum_has_reached_it() {
    let net = Signer::new(4, CryptoKind::Real);
    let mut replica = net.replica(3);
    give_request(&mut replica, 1);
    let out = fire_round_timer(&mut replica);
    assert_eq!(replica.round(), 1, "round 0 is left on its timeout");
    assert_eq!(broadcast_kinds(&out), vec!["round-change"]);

    let out = fire_round_timer(&mut replica);
    assert_eq!(replica.round(), 1, "no quorum in round 1: it stays");
    assert!(broadcast_kinds(&out).is_empty());
    let resent: Vec<u64> = out
        .iter()
        .filter_map(|a| match a {
            Action::Rebroadcast(QbftMessage::RoundChange(rc)) => Some(rc.signed.payload.round),
            _ => None,
        })
        .collect();
    assert_eq!(resent, vec![1], "its ROUND-CHANGE for round 1, again");
    assert_eq!(replica.status().view_changes, 1);

    // Replica 0's ROUND-CHANGE for round 1 makes two of q = 3; replica 2's
    // for round 2 (a higher round counts: it has passed round 1) the third.
    let (r, out) = deliver(&mut replica, 0, net.round_change(0, 1, 1, None, &[]));
    r.unwrap();
    assert!(!out.iter().any(|a| matches!(a, Action::SetTimer { .. })));
    let (r, out) = deliver(&mut replica, 2, net.round_change(2, 1, 2, None, &[]));
    r.unwrap();
    assert!(
        out.iter().any(|a| matches!(
            a,
            Action::SetTimer {
                timer: QbftTimer::Round,
                after,
            } if *after == QbftConfig::default().timeout_for_round(1)
        )),
        "the quorum restarts round 1's timer: {out:?}"
    );
    assert_eq!(replica.round(), 1, "one replica above is not f+1");

    let out = fire_round_timer(&mut replica);
    assert_eq!(replica.round(), 2, "a quorum reached round 1: it is left");
    assert_eq!(broadcast_kinds(&out), vec!["round-change"]);
}
