//! Votes and aggregation at the next leader.

use super::*;

/// Node 2 leads view 2: it gets block b1 of view 1 (its own vote is local),
/// then votes from 0 and 1 complete n−f = 3; it forms QC(1) and proposes at
/// once (b1 is uncommitted and non-empty, so an empty block drives it on).
#[test]
fn next_leader_forms_the_qc_from_n_minus_f_votes_and_proposes() {
    let fx = Signer::new(4);
    let mut r = fx.replica(2);
    let b1 = fx.child(&genesis(), 1, vec![request(0)]);
    let (_, out) = fx.propose(&mut r, &b1);
    assert!(votes_sent(&out).is_empty(), "own vote is handled in place");
    let (res, out) = deliver(&mut r, 0, fx.vote(0, 1, b1.hash));
    assert_eq!(reason(res), "ok");
    assert!(
        proposals_sent(&out).is_empty(),
        "two votes are not a quorum"
    );
    let (res, out) = deliver(&mut r, 1, fx.vote(1, 1, b1.hash));
    assert_eq!(reason(res), "ok");
    let proposals = proposals_sent(&out);
    assert_eq!(proposals.len(), 1);
    let b2 = &proposals[0];
    assert_eq!(
        (b2.view, b2.parent, b2.height),
        (View(2), b1.hash, Height(2))
    );
    assert_eq!(b2.justify.signature.signers.count(), 3);
    assert_eq!(
        verify_qc(&fx.committee, &*fx.cryptos[3], &b2.justify),
        Ok(())
    );
    assert_eq!(r.view(), View(2));
    // The fourth vote is late and harmless.
    let (res, out) = deliver(&mut r, 3, fx.vote(3, 1, b1.hash));
    assert_eq!(reason(res), "ok");
    assert!(proposals_sent(&out).is_empty());
}

#[test]
fn optimistic_aggregation_drops_a_bad_vote_and_waits_for_a_good_one() {
    let fx = Signer::new(4);
    let mut r = fx.replica(2);
    let b1 = fx.child(&genesis(), 1, vec![request(0)]);
    must(fx.propose(&mut r, &b1));
    // Node 0's signature is a valid curve point over the wrong block: it
    // passes the subgroup check, and fails only inside the aggregate.
    let forged = Message::Vote(Vote {
        view: View(1),
        block: b1.hash,
        signature: fx.sign(0, 1, Digest([3; 32])),
    });
    assert_eq!(reason(deliver(&mut r, 0, forged).0), "ok");
    let (res, out) = deliver(&mut r, 1, fx.vote(1, 1, b1.hash));
    assert_eq!(reason(res), "bad-vote-signature");
    assert_eq!(r.bad_votes_dropped(), 1);
    assert!(proposals_sent(&out).is_empty(), "two good votes only");
    let (res, out) = deliver(&mut r, 3, fx.vote(3, 1, b1.hash));
    assert_eq!(reason(res), "ok");
    let proposals = proposals_sent(&out);
    assert_eq!(proposals.len(), 1);
    let signers: Vec<_> = proposals[0].justify.signature.signers.iter().collect();
    assert_eq!(signers, vec![NodeId(1), NodeId(2), NodeId(3)]);
}

#[test]
fn vote_checks_reject_duplicates_equivocation_garbage_and_misdirection() {
    let fx = Signer::new(4);
    let mut r = fx.replica(2);
    let b1 = fx.child(&genesis(), 1, vec![request(0)]);
    must(fx.propose(&mut r, &b1));
    assert_eq!(reason(deliver(&mut r, 0, fx.vote(0, 1, b1.hash)).0), "ok");
    assert_eq!(
        reason(deliver(&mut r, 0, fx.vote(0, 1, b1.hash)).0),
        "duplicate-vote"
    );
    assert_eq!(
        reason(deliver(&mut r, 0, fx.vote(0, 1, Digest([4; 32]))).0),
        "equivocating-vote"
    );
    let garbage = Message::Vote(Vote {
        view: View(1),
        block: b1.hash,
        signature: BlsSignature([0xff; 48]),
    });
    assert_eq!(reason(deliver(&mut r, 1, garbage).0), "malformed-vote");
    // View 2's votes go to leader(3) = node 3, not to us.
    assert_eq!(
        reason(deliver(&mut r, 1, fx.vote(1, 2, b1.hash)).0),
        "not-next-leader"
    );
    // View 1 + 4k is led... votes for view 5 go to leader(6) = node 2: us,
    // but far beyond the window of buffered views.
    assert_eq!(
        reason(deliver(&mut r, 1, fx.vote(1, 1 + 4 * 10, b1.hash)).0),
        "view-too-far"
    );
}
