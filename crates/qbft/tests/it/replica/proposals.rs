//! Proposal checks and round > 0 justifications, each rejection under its
//! own reason.

use super::*;

#[test]
fn second_proposal_in_the_same_round_is_rejected() {
    let net = Signer::new(4, CryptoKind::Real);
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
    let net = Signer::new(4, CryptoKind::Real);
    let msg = net.proposal(2, 0, &block1(2, 1), vec![], vec![]);
    assert_rejected(offer_to_node3(&net, msg), "not-proposer");
}

#[test]
fn round0_proposal_with_a_justification_is_rejected() {
    let net = Signer::new(4, CryptoKind::Real);
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
    let net = Signer::new(4, CryptoKind::Real);
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
    let net = Signer::new(4, CryptoKind::Real);
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
    let net = Signer::new(4, CryptoKind::Real);
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
    let net = Signer::new(4, CryptoKind::Real);
    let mut rcs = unprepared_rcs(&net, &[0, 1], 1);
    rcs.push(net.rc_payload(2, 1, 2, None));
    let msg = net.proposal(1, 1, &block1(1, 1), rcs, vec![]);
    assert_rejected(offer_to_node3(&net, msg), "round-change-mismatch");
}

#[test]
fn round1_proposal_rejected_when_a_prepared_round_is_not_below_r() {
    let net = Signer::new(4, CryptoKind::Real);
    let block = block1(0, 1);
    let d = block.hash();
    let mut rcs = unprepared_rcs(&net, &[1, 2], 1);
    rcs.push(net.rc_payload(0, 1, 1, Some((1, d))));
    let msg = net.proposal(1, 1, &block, rcs, net.prepares(&[0, 1, 2], 1, 1, d));
    assert_rejected(offer_to_node3(&net, msg), "prepared-round-not-below");
}

#[test]
fn round1_proposal_rejected_when_prepared_round_and_value_are_not_both_present() {
    let net = Signer::new(4, CryptoKind::Real);
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
    let net = Signer::new(4, CryptoKind::Real);
    let prepared = block1(0, 1);
    let mut rcs = unprepared_rcs(&net, &[1, 2], 1);
    rcs.push(net.rc_payload(0, 1, 1, Some((0, prepared.hash()))));
    let own = block1(1, 2);
    let msg = net.proposal(1, 1, &own, rcs, vec![]);
    assert_rejected(offer_to_node3(&net, msg), "not-highest-prepared");
}

#[test]
fn round2_proposal_must_carry_the_highest_prepared_value_not_a_lower_one() {
    let net = Signer::new(4, CryptoKind::Real);
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
    let net = Signer::new(4, CryptoKind::Real);
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
    let net = Signer::new(4, CryptoKind::Real);
    let mut rcs = unprepared_rcs(&net, &[0, 1, 2], 1);
    rcs[2].signature = rcs[0].signature;
    let msg = net.proposal(1, 1, &block1(1, 1), rcs, vec![]);
    assert_rejected(offer_to_node3(&net, msg), "bad-signature");
}
