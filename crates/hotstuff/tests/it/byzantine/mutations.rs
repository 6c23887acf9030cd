//! Off-by-one views, swapped proposers and stale digests.

use super::*;

/// View ±1 and a swapped proposer: the block names a view node 1 does not
/// lead (`wrong-proposer`); a re-signed vote for the view ±1 reaches a
/// replica that does not lead the view after it. A NEW-VIEW for the view ±1
/// is a claim like any other ("I gave up on that view"): one sender's moves
/// no one (pacemaker rule 3 needs f+1).
#[test]
fn off_by_one_views_and_swapped_proposers_are_rejected() {
    let fx = Signer::new(4);
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 4);
    let b5 = Message::Proposal(fx.child_block(&chain[4], 5, vec![request(5)]));
    for mutation in [
        Mutation::RoundPlusOne,
        Mutation::RoundMinusOne,
        Mutation::SwapSender,
    ] {
        let m = tamper(&fx, Attack::Mutate(mutation), 1, 2, &b5);
        assert_eq!(reasons(&mut r, 1, m), ["wrong-proposer"], "{mutation:?}");
    }
    // Node 1's vote for b1 goes to node 2 = leader(2).
    let b1 = chain[1].hash();
    let vote = fx.vote(1, 1, b1);
    for mutation in [Mutation::RoundPlusOne, Mutation::RoundMinusOne] {
        let mut r = fx.replica(2);
        let m = tamper(&fx, Attack::Mutate(mutation), 1, 2, &vote);
        let Message::Vote(v) = &m[0] else {
            panic!("a vote")
        };
        // Re-signed: the signature is valid for the mutated view.
        fx.cryptos[2]
            .bls_verify(
                NodeId(1),
                VOTE_DOMAIN,
                &vote_payload(v.view, &v.block),
                &v.signature,
            )
            .unwrap();
        assert_eq!(reasons(&mut r, 1, m), ["not-next-leader"], "{mutation:?}");
    }
    let nv = Message::NewView(NewView {
        view: View(5),
        high_qc: QuorumCert::genesis(),
        last_vote: None,
    });
    for mutation in [Mutation::RoundPlusOne, Mutation::RoundMinusOne] {
        let mut r = fx.replica(2);
        let m = tamper(&fx, Attack::Mutate(mutation), 1, 2, &nv);
        assert_eq!(reasons(&mut r, 1, m), ["ok"], "{mutation:?}");
        assert_eq!(r.view(), View(1), "{mutation:?}");
    }
    // Votes and NEW-VIEWs have no author field to swap.
    let ctx = fx.ctx(1, 2);
    let swap = Attack::Mutate(Mutation::SwapSender);
    assert!(<HotStuff as Adversarial>::tamper(swap, &vote, &ctx).is_none());
    assert!(<HotStuff as Adversarial>::tamper(swap, &nv, &ctx).is_none());
}

/// A stale digest: the proposal becomes a block on genesis. Before any
/// commit it is well-formed but conflicts with the lock, and the vote rule
/// refuses it; after a commit its parent is below the committed block
/// (`parent-below-commit`). The vote names genesis and joins no QC.
#[test]
fn stale_digests_get_no_vote_and_no_qc() {
    let fx = Signer::new(4);
    // b3 locks b1; nothing above genesis is committed yet. Node 0 leads view 4.
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 3);
    assert_eq!(r.safety_state().locked.view, View(1));
    let b4 = Message::Proposal(fx.child_block(&chain[3], 4, vec![request(4)]));
    let stale = tamper(&fx, Attack::Mutate(Mutation::StaleDigest), 0, 2, &b4);
    let Message::Proposal(block) = &stale[0] else {
        panic!("a proposal")
    };
    assert_eq!((block.parent, block.height), (GENESIS, Height(1)));
    let refused = r.votes_refused();
    assert_eq!(
        reasons(&mut r, 0, stale),
        ["ok"],
        "well-formed, buffered for view 4"
    );
    // View 3's timer fires (its leader's QC never came), and with nodes 1
    // and 3 giving up too (n−f NEW-VIEW(3)s): into view 4.
    let mut out = Vec::new();
    r.handle(Time(2), Input::Timeout(Timer::View), &mut out)
        .unwrap();
    for from in [1, 3] {
        let nv = NewView {
            view: View(3),
            high_qc: QuorumCert::genesis(),
            last_vote: None,
        };
        let msg = Message::NewView(nv);
        r.handle(
            Time(2),
            Input::Message {
                from: NodeId(from),
                msg,
            },
            &mut out,
        )
        .unwrap();
    }
    assert_eq!(r.view(), View(4));
    assert_eq!(votes_sent(&out), 0);
    assert_eq!(r.votes_refused(), refused + 1, "the vote rule refused it");
    assert_eq!(r.committed_tip().height, Height(0));

    // After b4 commits b1, node 1's stale block for view 5 cannot attach.
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 4);
    let b5 = Message::Proposal(fx.child_block(&chain[4], 5, vec![request(5)]));
    let stale = tamper(&fx, Attack::Mutate(Mutation::StaleDigest), 1, 2, &b5);
    assert_eq!(reasons(&mut r, 1, stale), ["parent-below-commit"]);
    assert_eq!(r.committed_tip().height, Height(1));

    // A stale vote for view 1 at leader(2) = node 2 joins no QC.
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 1);
    let b1 = chain[1].hash();
    let stale = tamper(
        &fx,
        Attack::Mutate(Mutation::StaleDigest),
        1,
        2,
        &fx.vote(1, 1, b1),
    );
    assert_eq!(reasons(&mut r, 1, stale), ["ok"]);
    assert_eq!(reason(deliver(&mut r, 0, fx.vote(0, 1, b1)).0), "ok");
    assert!(r.high_qc().is_genesis(), "node 1's vote is not for b1");
    assert_eq!(reason(deliver(&mut r, 3, fx.vote(3, 1, b1)).0), "ok");
    assert_eq!(r.high_qc().view, View(1));
}
