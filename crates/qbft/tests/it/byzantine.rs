//! Each attack of `<Qbft as Adversarial>::tamper`, applied to an honest
//! message of a Byzantine replica and delivered to one honest replica
//! through `handle`: invalid results are rejected with the expected reason
//! (the label `Node` counts), well-signed conflicting ones are handled
//! without a conflicting vote and with bounded memory.

use crate::common::{Actions, Signer, block1, broadcast_prepares, deliver};
use bft_core::{
    Adversarial, Attack, CryptoKind, Forgery, ForkChoice, Mutation, NodeId, Rejection,
    TamperContext, Time,
};
use bft_qbft::messages::{Block, QbftMessage};
use bft_qbft::{Qbft, QbftError};

/// What Byzantine `me` sends to `to` in place of `msg`.
fn tamper(
    net: &Signer,
    attack: Attack,
    me: u16,
    to: u16,
    msg: &QbftMessage,
) -> Option<Vec<QbftMessage>> {
    let ctx = TamperContext {
        me: NodeId(me),
        to: NodeId(to),
        now: Time::ZERO,
        committee: &net.committee,
        crypto: net.crypto(me),
        entropy: 0,
    };
    Qbft::tamper(attack, msg, &ctx)
}

/// The single message `attack` makes of `msg` for `to`.
fn tampered_one(net: &Signer, attack: Attack, me: u16, to: u16, msg: &QbftMessage) -> QbftMessage {
    let mut out = tamper(net, attack, me, to, msg).expect("the attack applies");
    assert_eq!(out.len(), 1, "{attack:?}");
    out.remove(0)
}

/// Delivers `msg` from `from` to a fresh replica 3 and returns the rejection
/// reason, asserting nothing was voted for.
fn rejection(net: &Signer, from: u16, msg: QbftMessage) -> &'static str {
    let mut honest = net.replica(3);
    let (r, out) = deliver(&mut honest, from, msg);
    let err: QbftError = r.expect_err("must be rejected");
    assert!(
        broadcast_prepares(&out).is_empty(),
        "no PREPARE for a rejected message"
    );
    assert_eq!(honest.round(), 0, "a rejected message moves nobody");
    err.reason()
}

fn accepted(net: &Signer, from: u16, msg: QbftMessage) -> Actions {
    let mut honest = net.replica(3);
    let (r, out) = deliver(&mut honest, from, msg);
    r.unwrap();
    out
}

/// Node 0's round-0 PROPOSAL of height 1.
fn round0_proposal(net: &Signer) -> (QbftMessage, Block) {
    let block = block1(0, 1);
    (net.proposal(0, 0, &block, vec![], vec![]), block)
}

/// Node 1's round-1 PROPOSAL, justified by unprepared round changes of 0, 1, 2.
fn round1_proposal(net: &Signer) -> QbftMessage {
    let rcs = [0, 1, 2].map(|s| net.rc_payload(s, 1, 1, None)).to_vec();
    net.proposal(1, 1, &block1(1, 2), rcs, vec![])
}

/// Node 2's round-2 PROPOSAL re-proposing `block` prepared in round 1 by
/// 0, 1, 2 (node 0's round change carries it).
fn round2_reproposal(net: &Signer, block: &Block) -> QbftMessage {
    let d = block.hash();
    let rcs = vec![
        net.rc_payload(0, 1, 2, Some((1, d))),
        net.rc_payload(1, 1, 2, None),
        net.rc_payload(2, 1, 2, None),
    ];
    net.proposal(2, 2, block, rcs, net.prepares(&[0, 1, 2], 1, 1, d))
}

/// Node 0's ROUND-CHANGE for (1, 2) prepared in round 1 with `block`.
fn prepared_round_change(net: &Signer, block: &Block) -> QbftMessage {
    net.round_change(0, 1, 2, Some((1, block)), &[0, 1, 2])
}

#[test]
fn equivocate_sends_odd_recipients_another_validly_signed_block_for_the_same_slot() {
    let net = Signer::new(4, CryptoKind::Real);
    let (honest, block) = round0_proposal(&net);
    assert_eq!(
        tamper(&net, Attack::Equivocate, 0, 2, &honest),
        None,
        "even: honest one"
    );
    let other = tampered_one(&net, Attack::Equivocate, 0, 1, &honest);
    let QbftMessage::Proposal(p) = &other else {
        panic!("{other:?}")
    };
    assert_eq!((p.signed.payload.height, p.signed.payload.round), (1, 0));
    assert_ne!(p.block.hash(), block.hash());
    // The conflicting proposal is valid on its own: replica 3 prepares it...
    let mut honest_replica = net.replica(3);
    let (r, out) = deliver(&mut honest_replica, 0, other.clone());
    r.unwrap();
    assert_eq!(broadcast_prepares(&out)[0].digest, p.block.hash());
    // ...and then refuses the other one for the same round: one vote per round.
    let (r, out) = deliver(&mut honest_replica, 0, honest.clone());
    assert_eq!(r.unwrap_err().reason(), "duplicate-proposal");
    assert!(broadcast_prepares(&out).is_empty());
    // Relayed proposals (another author) and non-proposals pass unchanged.
    assert_eq!(tamper(&net, Attack::Equivocate, 2, 1, &honest), None);
    let prepare = QbftMessage::Prepare(net.prepare(0, 1, 0, block.hash()));
    assert_eq!(tamper(&net, Attack::Equivocate, 0, 1, &prepare), None);
    // A re-proposal's other block is not the highest prepared value.
    let prepared = block1(0, 9);
    let reproposal = round2_reproposal(&net, &prepared);
    let other = tampered_one(&net, Attack::Equivocate, 2, 3, &reproposal);
    assert_eq!(rejection(&net, 2, other), "not-highest-prepared");
}

#[test]
fn double_prepare_is_refused_as_equivocation_and_the_first_stays() {
    let net = Signer::new(4, CryptoKind::Real);
    let (proposal, block) = round0_proposal(&net);
    let vote = QbftMessage::Prepare(net.prepare(0, 1, 0, block.hash()));
    for to in [2u16, 3] {
        let pair = tamper(&net, Attack::DoubleVote, 0, to, &vote).unwrap();
        assert_eq!(pair.len(), 2);
        let honest_first = to % 2 == 0;
        assert_eq!(pair[usize::from(!honest_first)], vote);
        let mut replica = net.replica(to);
        deliver(&mut replica, 0, proposal.clone()).0.unwrap();
        deliver(&mut replica, 0, pair[0].clone()).0.unwrap();
        let (r, out) = deliver(&mut replica, 0, pair[1].clone());
        assert_eq!(r.unwrap_err().reason(), "equivocation");
        assert!(out.is_empty());
    }
    // Proposals and round changes are not votes.
    assert_eq!(tamper(&net, Attack::DoubleVote, 0, 1, &proposal), None);
}

/// A double-voting validator's conflicting COMMIT arriving first must not
/// shut out its COMMIT for the block a quorum decided: a replica that lags
/// behind gets exactly those q COMMITs relayed, and could otherwise never
/// decide that height (found by the simulator: honest replicas stranded at
/// three different heights). Both are kept; a third digest is refused.
#[test]
fn double_commit_keeps_both_digests_so_the_decided_one_still_counts() {
    let net = Signer::new(4, CryptoKind::Real);
    let (proposal, block) = round0_proposal(&net);
    let d = block.hash();
    let pair = tamper(&net, Attack::DoubleVote, 0, 3, &net.commit(0, 1, 0, d)).unwrap();
    let mut replica = net.replica(3);
    deliver(&mut replica, 0, proposal).0.unwrap();
    // The conflicting COMMIT first, then the real one: both kept.
    deliver(&mut replica, 0, pair[0].clone()).0.unwrap();
    deliver(&mut replica, 0, pair[1].clone()).0.unwrap();
    let third = net.commit(
        0,
        1,
        0,
        bft_qbft::byzantine::conflicting_digest(&pair_digest(&pair[0])),
    );
    let (r, _) = deliver(&mut replica, 0, third);
    assert_eq!(r.unwrap_err().reason(), "equivocation");
    // With node 0's real COMMIT counted, two more decide the block.
    deliver(&mut replica, 1, net.commit(1, 1, 0, d)).0.unwrap();
    let (r, out) = deliver(&mut replica, 2, net.commit(2, 1, 0, d));
    r.unwrap();
    assert!(
        out.iter()
            .any(|a| matches!(a, bft_core::Action::Commit(c) if c.block == d))
    );
    assert_eq!(replica.height(), 2);
}

fn pair_digest(msg: &QbftMessage) -> bft_core::Digest {
    match msg {
        QbftMessage::Commit(c) => c.payload.digest,
        other => panic!("{other:?}"),
    }
}

#[test]
fn double_commit_has_a_valid_seal_for_the_other_digest() {
    let net = Signer::new(4, CryptoKind::Real);
    let d = block1(0, 1).hash();
    let pair = tamper(&net, Attack::DoubleVote, 0, 3, &net.commit(0, 1, 0, d)).unwrap();
    let QbftMessage::Commit(other) = &pair[0] else {
        panic!()
    };
    assert_eq!(
        other.payload.digest,
        bft_qbft::byzantine::conflicting_digest(&d)
    );
    // Alone (no COMMIT from 0 before), the conflicting one is accepted: it is
    // validly signed and sealed — only quorum intersection keeps it harmless.
    accepted(&net, 0, pair[0].clone());
}

#[test]
fn forged_round_change_certificates_are_rejected_with_their_reason() {
    let net = Signer::new(4, CryptoKind::Real);
    let block = block1(0, 1);
    let rc = prepared_round_change(&net, &block);
    accepted(&net, 0, rc.clone());
    for (forgery, reason) in [
        (Forgery::BelowQuorum, "insufficient-prepares"),
        (Forgery::DuplicateSigners, "duplicate-signer"),
        (Forgery::WrongRound, "prepare-mismatch"),
        (Forgery::WrongDigest, "prepare-mismatch"),
    ] {
        let forged = tampered_one(&net, Attack::Forge(forgery), 0, 3, &rc);
        assert_eq!(rejection(&net, 0, forged), reason, "{forgery:?}");
    }
    // An unprepared round change carries no certificate.
    let bare = net.round_change(0, 1, 1, None, &[]);
    assert_eq!(
        tamper(&net, Attack::Forge(Forgery::BelowQuorum), 0, 3, &bare),
        None
    );
}

#[test]
fn forged_proposal_justifications_are_rejected_with_their_reason() {
    let net = Signer::new(4, CryptoKind::Real);
    let p1 = round1_proposal(&net);
    accepted(&net, 1, p1.clone());
    for (forgery, reason) in [
        (Forgery::BelowQuorum, "insufficient-round-changes"),
        (Forgery::DuplicateSigners, "duplicate-signer"),
        (Forgery::WrongRound, "round-change-mismatch"),
    ] {
        let forged = tampered_one(&net, Attack::Forge(forgery), 1, 3, &p1);
        assert_eq!(rejection(&net, 1, forged), reason, "{forgery:?}");
    }
    // No digest in an unprepared justification to get wrong.
    assert_eq!(
        tamper(&net, Attack::Forge(Forgery::WrongDigest), 1, 3, &p1),
        None
    );
    let p2 = round2_reproposal(&net, &block1(0, 9));
    accepted(&net, 2, p2.clone());
    for (forgery, reason) in [
        (Forgery::BelowQuorum, "insufficient-round-changes"),
        (Forgery::DuplicateSigners, "duplicate-signer"),
        (Forgery::WrongRound, "round-change-mismatch"),
        (Forgery::WrongDigest, "prepare-mismatch"),
    ] {
        let forged = tampered_one(&net, Attack::Forge(forgery), 2, 3, &p2);
        assert_eq!(rejection(&net, 2, forged), reason, "{forgery:?}");
    }
    // A round-0 proposal has no justification.
    let (p0, _) = round0_proposal(&net);
    assert_eq!(
        tamper(&net, Attack::Forge(Forgery::BelowQuorum), 0, 3, &p0),
        None
    );
}

#[test]
fn inflated_round_changes_are_valid_but_f_of_them_move_nobody_and_memory_stays_bounded() {
    let net = Signer::new(4, CryptoKind::Model);
    let (proposal, block) = round0_proposal(&net);
    let mut honest = net.replica(3);
    deliver(&mut honest, 0, proposal).0.unwrap();
    let baseline = honest.status().retained;
    for k in 1..=1_000u64 {
        let prepare = QbftMessage::Prepare(net.prepare(0, 1, 0, block.hash()));
        let out = tamper(&net, Attack::InflateView(k), 0, 3, &prepare).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], prepare);
        let QbftMessage::RoundChange(rc) = &out[1] else {
            panic!()
        };
        assert_eq!((rc.signed.payload.height, rc.signed.payload.round), (1, k));
        for msg in out {
            deliver(&mut honest, 0, msg).0.unwrap();
        }
        assert_eq!(
            honest.round(),
            0,
            "one validator's round changes move nobody"
        );
    }
    // One round change kept for node 0 (its latest), besides its prepare.
    assert!(
        honest.status().retained <= baseline + 2,
        "{}",
        honest.status().retained
    );
    // A prepared round change keeps its certificate in the inflated one.
    let rc = prepared_round_change(&net, &block);
    let out = tamper(&net, Attack::InflateView(5), 0, 3, &rc).unwrap();
    let QbftMessage::RoundChange(inflated) = &out[1] else {
        panic!()
    };
    assert_eq!(inflated.signed.payload.round, 7);
    assert_eq!(inflated.signed.payload.prepared(), Some((1, block.hash())));
    accepted(&net, 0, out[1].clone());
    assert_eq!(tamper(&net, Attack::InflateView(0), 0, 3, &rc), None);
}

#[test]
fn off_by_one_rounds_are_rejected_where_invalid_and_harmless_where_valid() {
    let net = Signer::new(4, CryptoKind::Real);
    let (p0, block) = round0_proposal(&net);
    let plus = Attack::Mutate(Mutation::RoundPlusOne);
    let minus = Attack::Mutate(Mutation::RoundMinusOne);
    // PROPOSAL: round 1 is node 1's.
    assert_eq!(
        rejection(&net, 0, tampered_one(&net, plus, 0, 3, &p0)),
        "not-proposer"
    );
    assert_eq!(tamper(&net, minus, 0, 3, &p0), None, "no round −1");
    let p1 = round1_proposal(&net);
    assert_eq!(
        rejection(&net, 1, tampered_one(&net, minus, 1, 3, &p1)),
        "not-proposer"
    );
    // ROUND-CHANGE: round 0 does not exist; prepared round 1 is not below 1.
    let bare = net.round_change(0, 1, 1, None, &[]);
    assert_eq!(
        rejection(&net, 0, tampered_one(&net, minus, 0, 3, &bare)),
        "round-change-for-round-zero"
    );
    let rc = prepared_round_change(&net, &block);
    assert_eq!(
        rejection(&net, 0, tampered_one(&net, minus, 0, 3, &rc)),
        "prepared-round-not-below"
    );
    // A round change one round up is valid (and alone moves nobody).
    let out = accepted(&net, 0, tampered_one(&net, plus, 0, 3, &rc));
    assert!(out.is_empty());
    // Votes for the next round are valid, and useless for this one.
    let prepare = QbftMessage::Prepare(net.prepare(0, 1, 0, block.hash()));
    let QbftMessage::Prepare(up) = tampered_one(&net, plus, 0, 3, &prepare) else {
        panic!()
    };
    assert_eq!(up.payload.round, 1);
    accepted(&net, 0, QbftMessage::Prepare(up));
}

#[test]
fn stale_digests_are_rejected() {
    let net = Signer::new(4, CryptoKind::Real);
    let stale = Attack::Mutate(Mutation::StaleDigest);
    let (p0, block) = round0_proposal(&net);
    assert_eq!(
        rejection(&net, 0, tampered_one(&net, stale, 0, 3, &p0)),
        "digest-mismatch"
    );
    let rc = prepared_round_change(&net, &block);
    assert_eq!(
        rejection(&net, 0, tampered_one(&net, stale, 0, 3, &rc)),
        "prepared-block-mismatch"
    );
    let prepare = QbftMessage::Prepare(net.prepare(0, 1, 0, block.hash()));
    assert_eq!(
        tamper(&net, stale, 0, 3, &prepare),
        None,
        "votes carry no parent hash"
    );
}

#[test]
fn swapped_senders_are_rejected() {
    let net = Signer::new(4, CryptoKind::Real);
    let swap = Attack::Mutate(Mutation::SwapSender);
    let (p0, block) = round0_proposal(&net);
    let d = block.hash();
    // Only a DECIDED block may come from another member than its author,
    // so every swapped author is caught before its signature is checked.
    let cases = [
        (p0, "author-not-sender"),
        (
            QbftMessage::Prepare(net.prepare(0, 1, 0, d)),
            "author-not-sender",
        ),
        (net.commit(0, 1, 0, d), "author-not-sender"),
        (prepared_round_change(&net, &block), "author-not-sender"),
    ];
    for (msg, reason) in cases {
        let swapped = tampered_one(&net, swap, 0, 3, &msg);
        assert_ne!(swapped.author(), Some(NodeId(0)));
        assert_eq!(rejection(&net, 0, swapped), reason, "{msg:?}");
    }
    let p1 = round1_proposal(&net);
    let swapped = tampered_one(&net, swap, 1, 3, &p1);
    assert_eq!(rejection(&net, 1, swapped), "author-not-sender");
}

#[test]
fn every_bad_signature_is_rejected_real_and_model_crypto() {
    for kind in [CryptoKind::Real, CryptoKind::Model] {
        let net = Signer::new(4, kind);
        let (p0, block) = round0_proposal(&net);
        let d = block.hash();
        let rc = prepared_round_change(&net, &block);
        for (from, msg) in [
            (0, p0),
            (1, round1_proposal(&net)),
            (2, round2_reproposal(&net, &block1(0, 9))),
            (0, QbftMessage::Prepare(net.prepare(0, 1, 0, d))),
            (0, net.commit(0, 1, 0, d)),
            (0, rc),
        ] {
            accepted(&net, from, msg.clone());
            let bad = tampered_one(&net, Attack::BadSignature, from, 3, &msg);
            assert_eq!(
                rejection(&net, from, bad),
                "bad-signature",
                "{kind:?} {msg:?}"
            );
        }
    }
}

/// `fork(plan)`: the proposer's PROPOSAL for (h, r) goes for another block
/// exactly to the recipients the plan's choice for (r, h) picks — over 64
/// plans, every recipient both gets it and does not — and unchanged to
/// the rest.
#[test]
fn fork_plan_sends_another_block_to_the_recipients_its_choice_picks() {
    let net = Signer::new(4, CryptoKind::Model);
    let (honest, block) = round0_proposal(&net);
    let (mut forked, mut kept) = ([0; 4], [0; 4]);
    for plan in 0..64 {
        let choice = ForkChoice::of(plan, 4, 0, 1);
        for to in 1..4u16 {
            if choice.forks_to(NodeId(to)) {
                let other = tampered_one(&net, Attack::Fork(plan), 0, to, &honest);
                let QbftMessage::Proposal(p) = &other else {
                    panic!("{other:?}")
                };
                assert_eq!((p.signed.payload.height, p.signed.payload.round), (1, 0));
                assert_ne!(p.block.hash(), block.hash());
                forked[usize::from(to)] += 1;
            } else {
                assert_eq!(tamper(&net, Attack::Fork(plan), 0, to, &honest), None);
                kept[usize::from(to)] += 1;
            }
        }
    }
    assert!(
        (1..4).all(|i| forked[i] > 0 && kept[i] > 0),
        "{forked:?} {kept:?}"
    );
}
