//! Well-signed conflicting messages: double votes, equivocation, fork
//! plans, view inflation.

use super::*;

/// The second vote is node 1's own valid signature for another block in
/// the same view: `equivocating-vote`, and it counts for nothing.
#[test]
fn double_votes_are_refused_as_equivocation() {
    let fx = Signer::new(4);
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 1);
    let b1 = chain[1].hash();
    let both = tamper(&fx, Attack::DoubleVote, 1, 2, &fx.vote(1, 1, b1));
    assert_eq!(both.len(), 2);
    let Message::Vote(second) = &both[1] else {
        panic!("a vote")
    };
    assert_eq!(second.view, View(1));
    assert_ne!(second.block, b1);
    fx.cryptos[2]
        .bls_verify(
            NodeId(1),
            VOTE_DOMAIN,
            &vote_payload(second.view, &second.block),
            &second.signature,
        )
        .unwrap();
    assert_eq!(reasons(&mut r, 1, both), ["ok", "equivocating-vote"]);
}

/// Odd recipients get a second, different block for the same view with the
/// same parent and QC; even ones get nothing new. A replica receiving both
/// refuses the second.
#[test]
fn equivocation_sends_odd_recipients_another_block_for_the_view() {
    let fx = Signer::new(4);
    let mut r = fx.replica(3);
    let chain = fx.chain(&mut r, 4);
    let b5 = fx.child_block(&chain[4], 5, vec![request(5)]);
    let honest = Message::Proposal(b5.clone());
    let ctx = fx.ctx(1, 2);
    assert!(<HotStuff as Adversarial>::tamper(Attack::Equivocate, &honest, &ctx).is_none());
    let other = tamper(&fx, Attack::Equivocate, 1, 3, &honest);
    let Message::Proposal(b5x) = &other[0] else {
        panic!("a proposal")
    };
    assert_eq!(
        (b5x.view, b5x.parent, &b5x.justify, b5x.height),
        (b5.view, b5.parent, &b5.justify, b5.height)
    );
    assert_ne!(b5x.hash(), b5.hash());
    assert_eq!(reasons(&mut r, 1, other), ["ok"]);
    assert_eq!(reasons(&mut r, 1, vec![honest]), ["equivocating-proposal"]);
}

/// `fork(plan)` with the replica's state: over 64 plans, a recipient the
/// plan picks for view 5 gets b5 rebuilt on the QC `depth` below b5's own
/// among those the replica holds (QC(3), or QC(2) for depth 1: after
/// b1..b4 it holds QC(1..=3)), the others get b5; and its own vote for b5
/// goes to that fork exactly when the plan forks to at least half of its
/// peers.
#[test]
fn fork_plan_builds_on_an_older_held_qc_and_votes_with_the_majority() {
    let fx = Signer::new(4);
    let mut r = fx.replica(3);
    let chain = fx.chain(&mut r, 4);
    let b5 = fx.child_block(&chain[4], 5, vec![request(5)]);
    let proposal = Message::Proposal(b5.clone());
    let own_vote = fx.vote(3, 5, b5.hash());
    let sent = [proposal.clone()];
    let (mut forks, mut votes_moved) = (0, 0);
    for plan in 0..64 {
        let choice = ForkChoice::of(plan, 4, 5, 0);
        let fork_for =
            |to: u16| r.tamper_with_memory(Attack::Fork(plan), &proposal, &sent, &fx.ctx(3, to));
        let mut fork = None;
        for to in 0..3u16 {
            match fork_for(to) {
                None => assert!(!choice.forks_to(NodeId(to)), "plan {plan} to {to}"),
                Some(out) => {
                    assert!(choice.forks_to(NodeId(to)), "plan {plan} to {to}");
                    let [Message::Proposal(f)] = out.as_slice() else {
                        panic!("{out:?}")
                    };
                    let base = &chain[3 - choice.depth];
                    assert_eq!((f.view, f.parent), (View(5), base.hash()));
                    assert_eq!((f.justify.view, f.height), (base.view, base.height.next()));
                    assert_eq!(f.batch, b5.batch);
                    fork = Some(f.hash());
                    forks += 1;
                }
            }
        }
        let peers_forked = choice.forked_among([NodeId(0), NodeId(1), NodeId(2)]);
        let vote = r.tamper_with_memory(Attack::Fork(plan), &own_vote, &sent, &fx.ctx(3, 2));
        if peers_forked >= 2 {
            let Some([Message::Vote(v)]) = vote.as_deref() else {
                panic!("plan {plan}: {vote:?}")
            };
            assert_eq!((v.view, Some(v.block)), (View(5), fork));
            votes_moved += 1;
        } else {
            assert_eq!(vote, None, "plan {plan}");
        }
    }
    assert!(
        forks > 40 && votes_moved > 10,
        "{forks} forks, {votes_moved} votes moved"
    );
}

/// Besides the message, a valid NEW-VIEW far ahead: not buffered (beyond
/// the window only the sender's highest view is kept, one per member), and
/// alone (one sender, not f+1) it moves no one.
#[test]
fn inflated_new_views_move_no_one() {
    let fx = Signer::new(4);
    let mut r = fx.replica(2);
    let chain = fx.chain(&mut r, 1);
    let vote = fx.vote(1, 1, chain[1].hash());
    // 1 + 1_000_000 ≡ 1 (mod 4): its view after is led by node 2.
    let far = tamper(&fx, Attack::InflateView(1_000_000), 1, 2, &vote);
    let retained = r.status().retained;
    assert_eq!(reasons(&mut r, 1, far), ["ok", "ok"]);
    assert_eq!(r.status().retained, retained + 1, "the vote only");
    let near = tamper(&fx, Attack::InflateView(4), 1, 2, &vote);
    assert_eq!(reasons(&mut r, 1, near), ["duplicate-vote", "ok"]);
    assert_eq!(r.view(), View(1));
}
