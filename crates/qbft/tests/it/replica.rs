//! One QBFT replica driven directly through `handle` with hand-built,
//! really signed messages: the normal case step by step, and every way a
//! proposal for round > 0 must be rejected.

use crate::common::{
    Actions, TestNet, block1, broadcast_kinds, broadcast_prepares, deliver, request,
};
use bft_core::{Action, CryptoKind, GENESIS, Input, NodeId, Protocol, Rejection, Time};
use bft_qbft::messages::{Block, PreparePayload, QbftMessage, RoundChangePayload, Signed};
use bft_qbft::{Qbft, QbftConfig, QbftError, QbftTimer};

fn at(ms: u64) -> Time {
    Time::from_duration(std::time::Duration::from_millis(ms))
}

fn give_request(replica: &mut Qbft, number: u64) -> Actions {
    let mut out = Vec::new();
    replica
        .handle(at(0), Input::Request(request(number)), &mut out)
        .unwrap();
    out
}

fn fire_round_timer(replica: &mut Qbft) -> Actions {
    let mut out = Vec::new();
    replica
        .handle(at(500), Input::Timeout(QbftTimer::Round), &mut out)
        .unwrap();
    out
}

fn decisions(out: &Actions) -> Vec<bft_core::Decision> {
    out.iter()
        .filter_map(|a| match a {
            Action::Commit(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

/// Unprepared ROUND-CHANGE payloads for (1, `round`) from `signers`.
fn unprepared_rcs(net: &TestNet, signers: &[u16], round: u64) -> Vec<Signed<RoundChangePayload>> {
    signers
        .iter()
        .map(|&s| net.rc_payload(s, 1, round, None))
        .collect()
}

/// Delivers `msg` from the round-1 proposer (node 1) to node 3 at height 1
/// and returns what happened.
fn offer_to_node3(net: &TestNet, msg: QbftMessage) -> (Result<(), QbftError>, Actions, Qbft) {
    let mut replica = net.replica(3);
    let from = match &msg {
        QbftMessage::Proposal(p) => p.signed.author.0,
        _ => 1,
    };
    let (r, out) = deliver(&mut replica, from, msg);
    (r, out, replica)
}

fn assert_rejected(result: (Result<(), QbftError>, Actions, Qbft), reason: &str) {
    let (r, out, replica) = result;
    let err = r.expect_err("proposal must be rejected");
    assert_eq!(err.reason(), reason, "{err}");
    assert!(
        broadcast_prepares(&out).is_empty(),
        "no PREPARE for a rejected proposal"
    );
    assert_eq!(replica.round(), 0, "a rejected proposal moves nobody");
}

#[test]
fn quorum_sizes_are_two_thirds_ceiling_for_n_4_to_7() {
    for (n, q) in [(4, 3), (5, 4), (6, 4), (7, 5)] {
        let net = TestNet::new(n, CryptoKind::Model);
        assert_eq!(net.committee.quorum_qbft(), q, "n = {n}");
    }
}

#[test]
fn round0_proposer_proposes_prepares_and_arms_round_timer_on_request() {
    let net = TestNet::new(4, CryptoKind::Real);
    let mut leader = net.replica(0);
    assert_eq!(
        leader.proposer_of(0),
        NodeId(0),
        "proposer(1, 0) rotates from genesis to 0"
    );
    let out = give_request(&mut leader, 1);
    assert_eq!(broadcast_kinds(&out), vec!["proposal", "prepare"]);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::SetTimer {
            timer: QbftTimer::Round,
            ..
        }
    )));
}

#[test]
fn backup_prepares_commits_on_q_prepares_and_decides_on_q_commits() {
    let net = TestNet::new(4, CryptoKind::Real);
    let mut backup = net.replica(2);
    let block = block1(0, 1);
    let d = block.hash();
    let (r, out) = deliver(&mut backup, 0, net.proposal(0, 0, &block, vec![], vec![]));
    r.unwrap();
    assert_eq!(
        broadcast_prepares(&out),
        vec![PreparePayload {
            height: 1,
            round: 0,
            digest: d
        }]
    );
    // Own prepare + node 0's: 2 < q = 3, no commit yet.
    let (r, out) = deliver(
        &mut backup,
        0,
        QbftMessage::Prepare(net.prepare(0, 1, 0, d)),
    );
    r.unwrap();
    assert!(broadcast_kinds(&out).is_empty());
    let (r, out) = deliver(
        &mut backup,
        1,
        QbftMessage::Prepare(net.prepare(1, 1, 0, d)),
    );
    r.unwrap();
    assert_eq!(broadcast_kinds(&out), vec!["commit"]);
    assert_eq!(backup.prepared(), Some((0, d)));
    // Own commit + one: not yet; the third decides.
    let (r, out) = deliver(&mut backup, 0, net.commit(0, 1, 0, d));
    r.unwrap();
    assert!(decisions(&out).is_empty());
    let (r, out) = deliver(&mut backup, 3, net.commit(3, 1, 0, d));
    r.unwrap();
    let decided = decisions(&out);
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].slot, 1);
    assert_eq!(decided[0].block, d);
    assert_eq!(decided[0].parent, GENESIS);
    assert_eq!(decided[0].requests, vec![request(1).id]);
    assert_eq!(backup.height(), 2);
    let cert = backup.last_certificate().unwrap();
    assert_eq!(cert.seals.len(), 3);
    cert.verify(net.crypto(2), &net.committee).unwrap();
    // The next height's round-0 proposer rotates from block 1's proposer.
    assert_eq!(backup.proposer_of(0), NodeId(1));
    // A late commit for the decided height is dropped, not counted against it.
    let (r, out) = deliver(&mut backup, 1, net.commit(1, 1, 0, d));
    assert!(r.is_ok() && out.iter().all(|a| !matches!(a, Action::Commit(_))));
}

#[test]
fn commit_certificate_rejects_tampered_or_short_seals() {
    let net = TestNet::new(4, CryptoKind::Real);
    let mut backup = net.replica(3);
    let block = block1(0, 1);
    let d = block.hash();
    deliver(&mut backup, 0, net.proposal(0, 0, &block, vec![], vec![]))
        .0
        .unwrap();
    for s in [0, 1] {
        deliver(
            &mut backup,
            s,
            QbftMessage::Prepare(net.prepare(s, 1, 0, d)),
        )
        .0
        .unwrap();
    }
    for s in [0, 1] {
        deliver(&mut backup, s, net.commit(s, 1, 0, d)).0.unwrap();
    }
    let cert = backup.last_certificate().unwrap().clone();
    cert.verify(net.crypto(0), &net.committee).unwrap();
    let mut short = cert.clone();
    short.seals.pop();
    assert!(matches!(
        short.verify(net.crypto(0), &net.committee),
        Err(QbftError::InsufficientSeals { got: 2, need: 3 })
    ));
    let mut forged = cert.clone();
    forged.seals[0].1 = forged.seals[1].1;
    assert_eq!(
        forged.verify(net.crypto(0), &net.committee),
        Err(QbftError::BadSignature)
    );
    let mut other_block = cert;
    other_block.block.requests.clear();
    assert_eq!(
        other_block.verify(net.crypto(0), &net.committee),
        Err(QbftError::DigestMismatch)
    );
}

#[test]
fn n6_quorum_is_four_so_three_commits_do_not_decide() {
    let net = TestNet::new(6, CryptoKind::Model);
    let mut backup = net.replica(5);
    let block = block1(0, 1);
    let d = block.hash();
    deliver(&mut backup, 0, net.proposal(0, 0, &block, vec![], vec![]))
        .0
        .unwrap();
    // Own prepare + 2 others = 3 = 2f+1 at n = 6, but q = 4.
    for s in [0, 1] {
        let (r, out) = deliver(
            &mut backup,
            s,
            QbftMessage::Prepare(net.prepare(s, 1, 0, d)),
        );
        r.unwrap();
        assert!(
            broadcast_kinds(&out).is_empty(),
            "3 prepares must not commit at n = 6"
        );
    }
    let (_, out) = deliver(
        &mut backup,
        2,
        QbftMessage::Prepare(net.prepare(2, 1, 0, d)),
    );
    assert_eq!(broadcast_kinds(&out), vec!["commit"]);
    // Own commit + 2 = 3: no decision; the 4th decides.
    for s in [0, 1] {
        let (_, out) = deliver(&mut backup, s, net.commit(s, 1, 0, d));
        assert!(
            decisions(&out).is_empty(),
            "3 commits must not decide at n = 6"
        );
    }
    let (_, out) = deliver(&mut backup, 2, net.commit(2, 1, 0, d));
    assert_eq!(decisions(&out).len(), 1);
}

#[test]
fn second_proposal_in_the_same_round_is_rejected() {
    let net = TestNet::new(4, CryptoKind::Real);
    let mut backup = net.replica(2);
    deliver(
        &mut backup,
        0,
        net.proposal(0, 0, &block1(0, 1), vec![], vec![]),
    )
    .0
    .unwrap();
    let (r, out) = deliver(
        &mut backup,
        0,
        net.proposal(0, 0, &block1(0, 2), vec![], vec![]),
    );
    assert_eq!(r, Err(QbftError::DuplicateProposal));
    assert!(broadcast_prepares(&out).is_empty());
}

#[test]
fn proposal_from_a_validator_that_is_not_the_proposer_is_rejected() {
    let net = TestNet::new(4, CryptoKind::Real);
    let msg = net.proposal(2, 0, &block1(2, 1), vec![], vec![]);
    assert_rejected(offer_to_node3(&net, msg), "not-proposer");
}

#[test]
fn round0_proposal_with_a_justification_is_rejected() {
    let net = TestNet::new(4, CryptoKind::Real);
    let msg = net.proposal(
        0,
        0,
        &block1(0, 1),
        unprepared_rcs(&net, &[0, 1, 2], 1),
        vec![],
    );
    assert_rejected(offer_to_node3(&net, msg), "unexpected-justification");
}

#[test]
fn round1_proposal_with_q_unprepared_round_changes_is_accepted() {
    let net = TestNet::new(4, CryptoKind::Real);
    let msg = net.proposal(
        1,
        1,
        &block1(1, 1),
        unprepared_rcs(&net, &[0, 1, 2], 1),
        vec![],
    );
    let (r, out, replica) = offer_to_node3(&net, msg);
    r.unwrap();
    assert_eq!(
        replica.round(),
        1,
        "a justified proposal for a higher round moves the replica"
    );
    assert_eq!(broadcast_prepares(&out)[0].round, 1);
}

#[test]
fn round1_proposal_rejected_with_fewer_than_q_round_changes() {
    let net = TestNet::new(4, CryptoKind::Real);
    let msg = net.proposal(
        1,
        1,
        &block1(1, 1),
        unprepared_rcs(&net, &[0, 1], 1),
        vec![],
    );
    assert_rejected(offer_to_node3(&net, msg), "insufficient-round-changes");
}

#[test]
fn round1_proposal_rejected_with_duplicate_round_change_senders() {
    let net = TestNet::new(4, CryptoKind::Real);
    let msg = net.proposal(
        1,
        1,
        &block1(1, 1),
        unprepared_rcs(&net, &[0, 1, 1], 1),
        vec![],
    );
    assert_rejected(offer_to_node3(&net, msg), "duplicate-signer");
}

#[test]
fn round1_proposal_rejected_with_round_changes_for_another_round() {
    let net = TestNet::new(4, CryptoKind::Real);
    let mut rcs = unprepared_rcs(&net, &[0, 1], 1);
    rcs.push(net.rc_payload(2, 1, 2, None));
    let msg = net.proposal(1, 1, &block1(1, 1), rcs, vec![]);
    assert_rejected(offer_to_node3(&net, msg), "round-change-mismatch");
}

#[test]
fn round1_proposal_rejected_when_a_prepared_round_is_not_below_r() {
    let net = TestNet::new(4, CryptoKind::Real);
    let block = block1(0, 1);
    let d = block.hash();
    let mut rcs = unprepared_rcs(&net, &[1, 2], 1);
    rcs.push(net.rc_payload(0, 1, 1, Some((1, d))));
    let msg = net.proposal(1, 1, &block, rcs, net.prepares(&[0, 1, 2], 1, 1, d));
    assert_rejected(offer_to_node3(&net, msg), "prepared-round-not-below");
}

#[test]
fn round1_proposal_rejected_when_prepared_round_and_value_are_not_both_present() {
    let net = TestNet::new(4, CryptoKind::Real);
    let mut rcs = unprepared_rcs(&net, &[1, 2], 1);
    let mut half = net.rc_payload(0, 1, 1, Some((0, block1(0, 1).hash())));
    half.payload.prepared_value = None;
    half = Signed::sign(net.crypto(0), half.payload);
    rcs.push(half);
    let msg = net.proposal(1, 1, &block1(1, 1), rcs, vec![]);
    assert_rejected(offer_to_node3(&net, msg), "prepared-fields-inconsistent");
}

#[test]
fn round1_proposal_rejected_when_leader_proposes_its_own_block_over_a_prepared_one() {
    let net = TestNet::new(4, CryptoKind::Real);
    let prepared = block1(0, 1);
    let mut rcs = unprepared_rcs(&net, &[1, 2], 1);
    rcs.push(net.rc_payload(0, 1, 1, Some((0, prepared.hash()))));
    let own = block1(1, 2);
    let msg = net.proposal(1, 1, &own, rcs, vec![]);
    assert_rejected(offer_to_node3(&net, msg), "not-highest-prepared");
}

#[test]
fn round2_proposal_must_carry_the_highest_prepared_value_not_a_lower_one() {
    let net = TestNet::new(4, CryptoKind::Real);
    let (a, b) = (block1(0, 1), block1(1, 2));
    let rcs = vec![
        net.rc_payload(0, 1, 2, Some((0, a.hash()))),
        net.rc_payload(1, 1, 2, Some((1, b.hash()))),
        net.rc_payload(3, 1, 2, None),
    ];
    // proposer(1, 2) = node 2; offer to node 3.
    let lower = net.proposal(
        2,
        2,
        &a,
        rcs.clone(),
        net.prepares(&[0, 1, 2], 1, 0, a.hash()),
    );
    assert_rejected(offer_to_node3(&net, lower), "not-highest-prepared");
    let highest = net.proposal(2, 2, &b, rcs, net.prepares(&[0, 1, 3], 1, 1, b.hash()));
    let (r, out, replica) = offer_to_node3(&net, highest);
    r.unwrap();
    assert_eq!(replica.round(), 2);
    assert_eq!(
        broadcast_prepares(&out)[0].digest,
        b.hash(),
        "same hash as when first proposed"
    );
}

#[test]
fn round1_proposal_rejected_with_prepares_for_the_wrong_round_or_digest() {
    let net = TestNet::new(4, CryptoKind::Real);
    let block = block1(0, 1);
    let d = block.hash();
    let rcs = || {
        let mut rcs = unprepared_rcs(&net, &[1, 2], 1);
        rcs.push(net.rc_payload(0, 1, 1, Some((0, d))));
        rcs
    };
    let wrong_round = net.proposal(1, 1, &block, rcs(), net.prepares(&[0, 1, 2], 1, 1, d));
    assert_rejected(offer_to_node3(&net, wrong_round), "prepare-mismatch");
    let other = block1(0, 9).hash();
    let wrong_digest = net.proposal(1, 1, &block, rcs(), net.prepares(&[0, 1, 2], 1, 0, other));
    assert_rejected(offer_to_node3(&net, wrong_digest), "prepare-mismatch");
    let too_few = net.proposal(1, 1, &block, rcs(), net.prepares(&[0, 1], 1, 0, d));
    assert_rejected(offer_to_node3(&net, too_few), "insufficient-prepares");
    let duplicate = net.proposal(1, 1, &block, rcs(), net.prepares(&[0, 1, 1], 1, 0, d));
    assert_rejected(offer_to_node3(&net, duplicate), "duplicate-signer");
    // Control: the same proposal with a correct certificate is accepted.
    let good = net.proposal(1, 1, &block, rcs(), net.prepares(&[0, 1, 2], 1, 0, d));
    offer_to_node3(&net, good).0.unwrap();
}

#[test]
fn round1_proposal_rejected_with_a_forged_round_change_signature() {
    let net = TestNet::new(4, CryptoKind::Real);
    let mut rcs = unprepared_rcs(&net, &[0, 1, 2], 1);
    rcs[2].signature = rcs[0].signature;
    let msg = net.proposal(1, 1, &block1(1, 1), rcs, vec![]);
    assert_rejected(offer_to_node3(&net, msg), "bad-signature");
}

#[test]
fn round_timeout_sends_round_change_carrying_the_prepared_certificate() {
    let net = TestNet::new(4, CryptoKind::Real);
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

#[test]
fn new_leader_reproposes_the_highest_prepared_block_not_its_own() {
    let net = TestNet::new(4, CryptoKind::Real);
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
    let net = TestNet::new(4, CryptoKind::Real);
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
    let net = TestNet::new(4, CryptoKind::Model);
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
    let net = TestNet::new(4, CryptoKind::Model);
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
    let net = TestNet::new(4, CryptoKind::Real);
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

/// Decides height 1 at `replica` (not node 0) with the proposal from node 0
/// and prepares/commits from `others` (plus its own).
fn decide_height_1(net: &TestNet, replica: &mut Qbft, others: [u16; 2]) -> bft_core::Digest {
    let block = block1(0, 1);
    let d = block.hash();
    deliver(replica, 0, net.proposal(0, 0, &block, vec![], vec![]))
        .0
        .unwrap();
    for s in others {
        deliver(replica, s, QbftMessage::Prepare(net.prepare(s, 1, 0, d)))
            .0
            .unwrap();
    }
    for s in others {
        deliver(replica, s, net.commit(s, 1, 0, d)).0.unwrap();
    }
    assert_eq!(replica.height(), 2);
    d
}

#[test]
fn relayed_proposal_and_commits_are_checked_against_their_authors_and_decide() {
    let net = TestNet::new(4, CryptoKind::Real);
    let mut lagging = net.replica(3);
    let block = block1(0, 1);
    let d = block.hash();
    // Node 1 relays node 0's proposal and the commits of nodes 0, 1, 2.
    deliver(&mut lagging, 1, net.proposal(0, 0, &block, vec![], vec![]))
        .0
        .unwrap();
    let mut out = Vec::new();
    for s in [0, 1, 2] {
        let (r, o) = deliver(&mut lagging, 1, net.commit(s, 1, 0, d));
        r.unwrap();
        out.extend(o);
    }
    assert_eq!(decisions(&out).len(), 1);
    assert_eq!(lagging.height(), 2);
    // A relayed commit with a forged seal is still refused.
    let mut forged = bft_qbft::messages::signed_commit(net.crypto(2), 2, 0, d);
    forged.payload.seal = forged.signature;
    let (r, _) = deliver(&mut lagging, 1, QbftMessage::Commit(forged));
    assert!(r.is_err());
}

#[test]
fn stale_round_change_is_answered_once_by_designated_helpers_with_the_decided_height() {
    let net = TestNet::new(4, CryptoKind::Real);
    let mut helper = net.replica(1);
    let d = decide_height_1(&net, &mut helper, [0, 2]);
    // Node 3 is still at height 1; its f+1 = 2 successors 0 and 1 help.
    let (r, out) = deliver(&mut helper, 3, net.round_change(3, 1, 1, None, &[]));
    r.unwrap();
    let sent: Vec<(u16, &'static str)> = out
        .iter()
        .filter_map(|a| match a {
            Action::Resend { to, msg } => Some((to.0, bft_core::WireMessage::kind(msg))),
            _ => None,
        })
        .collect();
    // COMMITs first, so the peer holds the seals when the block arrives.
    assert_eq!(
        sent,
        vec![(3, "commit"), (3, "commit"), (3, "commit"), (3, "proposal")]
    );
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Resend { msg: QbftMessage::Commit(c), .. } if c.payload.digest == d
    )));
    // The same announcement again: nothing more.
    let (_, out) = deliver(&mut helper, 3, net.round_change(3, 1, 1, None, &[]));
    assert!(out.is_empty());
    // Node 2's successors are 3 and 0: node 1 does not answer it.
    let (_, out) = deliver(&mut helper, 2, net.round_change(2, 1, 1, None, &[]));
    assert!(out.is_empty());
}

/// Review finding 6: node 1 learns block V first from ROUND-CHANGEs for
/// round 1 that carry it prepared in round 0 (no PROPOSAL), then re-proposes
/// it as proposer of (1, 1) and decides it in round 1. The archived height
/// must keep the round-1 PROPOSAL, so a lagging peer asking for height 1 is
/// sent the block and not only COMMITs it could never use.
#[test]
fn height_decided_on_a_block_first_seen_in_a_round_change_is_relayed_with_its_proposal() {
    let net = TestNet::new(4, CryptoKind::Real);
    let mut helper = net.replica(1);
    let block = block1(0, 1);
    let d = block.hash();
    for s in [0, 2, 3] {
        let rc = net.round_change(s, 1, 1, Some((0, &block)), &[0, 2, 3]);
        deliver(&mut helper, s, rc).0.unwrap();
    }
    assert_eq!(helper.round(), 1, "node 1 leads round 1");
    for s in [0, 2] {
        deliver(
            &mut helper,
            s,
            QbftMessage::Prepare(net.prepare(s, 1, 1, d)),
        )
        .0
        .unwrap();
    }
    for s in [0, 2] {
        deliver(&mut helper, s, net.commit(s, 1, 1, d)).0.unwrap();
    }
    assert_eq!(helper.height(), 2, "decided V in round 1");
    // Node 0 is still at height 1; node 1 is one of its f+1 helpers.
    let (r, out) = deliver(&mut helper, 0, net.round_change(0, 1, 2, None, &[]));
    r.unwrap();
    let relayed_proposal = out.iter().any(|a| {
        matches!(
            a,
            Action::Resend { to, msg: QbftMessage::Proposal(p) }
                if to.0 == 0 && p.block.hash() == d
        )
    });
    assert!(relayed_proposal, "the decided block's PROPOSAL is relayed");
}

/// Review finding 1, second route: node 3 holds q COMMITs for block V of
/// round 0 but not V, and has moved on to round 40; the Byzantine proposer of
/// rounds 4, 8, …, 36 (node 0) floods it with 18 validly signed stale
/// blocks, more than the 16 kept. When V's PROPOSAL is finally relayed, the
/// COMMITs pointing to it must keep it over the flood, so node 3 decides.
#[test]
fn committed_block_is_kept_and_decided_despite_a_flood_of_later_round_blocks() {
    let net = TestNet::new(4, CryptoKind::Real);
    let mut lagging = net.replica(3);
    let block = block1(0, 1);
    let d = block.hash();
    for s in [1, 2] {
        let rc = net.round_change(s, 1, 40, None, &[]);
        deliver(&mut lagging, s, rc).0.unwrap();
    }
    assert_eq!(lagging.round(), 40);
    for s in [0, 1, 2] {
        deliver(&mut lagging, s, net.commit(s, 1, 0, d)).0.unwrap();
    }
    for round in (4..40).step_by(4) {
        for number in [1_000 + 2 * round, 1_001 + 2 * round] {
            let stale = net.proposal(0, round, &block1(0, number), vec![], vec![]);
            deliver(&mut lagging, 0, stale).0.unwrap();
        }
    }
    assert_eq!(lagging.height(), 1);
    let relayed = net.proposal(0, 0, &block, vec![], vec![]);
    let (r, out) = deliver(&mut lagging, 1, relayed);
    r.unwrap();
    assert_eq!(decisions(&out).len(), 1, "V decided");
    assert_eq!(lagging.height(), 2);
    assert_eq!(lagging.tip_hash(), d);
}

/// Round-timer rule (`Qbft::note_round_quorum`): round 0 is left on its
/// timeout; round 1, which only this replica has reached, is not — the
/// timeout re-sends the same ROUND-CHANGE, counted as a retransmission —
/// until q replicas are known to have reached it; the quorum's arrival
/// restarts the timer, and the next timeout leaves for round 2.
#[test]
fn a_round_is_left_on_timeout_only_after_a_quorum_has_reached_it() {
    let net = TestNet::new(4, CryptoKind::Real);
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
