//! The commit and lock rules on chains of blocks, inside the state machine
//! (n = 7: views 1..6 are led by others, replica 0 leads view 7).

use super::*;

#[test]
fn direct_three_chain_commits_the_first_block_with_slot_and_parent() {
    let fx = Signer::new(7);
    let mut r = fx.replica(0);
    must(step(&mut r, Input::Request(request(0))));
    let b1 = fx.child(&genesis(), 1, vec![request(0)]);
    let b2 = fx.child(&b1, 2, vec![]);
    let b3 = fx.child(&b2, 3, vec![]);
    let b4 = fx.child(&b3, 4, vec![]);
    let b5 = fx.child(&b4, 5, vec![]);
    for b in [&b1, &b2, &b3] {
        let (res, out) = fx.propose(&mut r, b);
        assert_eq!(reason(res), "ok");
        assert!(commits(&out).is_empty());
    }
    assert_eq!(
        r.safety_state().locked.hash,
        b1.hash,
        "two-chain head locked"
    );
    let (_, out) = fx.propose(&mut r, &b4);
    let decided = commits(&out);
    assert_eq!(decided.len(), 1);
    assert_eq!(
        (decided[0].slot, decided[0].block, decided[0].parent),
        (1, b1.hash, GENESIS)
    );
    assert_eq!(decided[0].requests, vec![request(0).id()]);
    let (_, out) = fx.propose(&mut r, &b5);
    let decided = commits(&out);
    assert_eq!(decided.len(), 1);
    assert_eq!(
        (
            decided[0].slot,
            decided[0].parent,
            decided[0].requests.len()
        ),
        (2, b1.hash, 0)
    );
    assert_eq!(r.tree_len(), 4, "pruned below the committed block");
    let safety = r.safety_state();
    assert_eq!(safety.last_voted_view, View(5), "voted in every view");
    assert_eq!(safety.locked.hash, b3.hash);
}

/// b1 (view 1) ← b2 (view 2) ← b3 (view 4) ← b4 (view 5) ← b5 (view 6):
/// parent links are direct all the way but view 3 failed. No block may
/// commit: at b4 the chain b3 → b2 → b1 has a view gap, at b5 the chain
/// b4 → b3 → b2 has one too. A commit rule checking parent links only
/// would commit b1 at b4.
#[test]
fn indirect_chain_with_a_view_gap_commits_nothing() {
    let fx = Signer::new(7);
    let mut r = fx.replica(0);
    must(step(&mut r, Input::Request(request(0))));
    let b1 = fx.child(&genesis(), 1, vec![request(0)]);
    let b2 = fx.child(&b1, 2, vec![]);
    let b3 = fx.child(&b2, 4, vec![]);
    let b4 = fx.child(&b3, 5, vec![]);
    let b5 = fx.child(&b4, 6, vec![]);
    for b in [&b1, &b2, &b3, &b4, &b5] {
        let (res, out) = fx.propose(&mut r, b);
        assert_eq!(reason(res), "ok", "view {}", b.view);
        assert!(commits(&out).is_empty(), "view {}", b.view);
    }
    assert_eq!(r.committed_tip().height, Height(0));
    assert_eq!(r.safety_state().locked.hash, b3.hash, "locks still move");
}

/// Locked on b1 (view 1) after b1 ← b2 ← b3. After a timeout, the leader of
/// view 4 proposes a block conflicting with b1 whose QC (genesis, view 0)
/// is older than the lock: refused.
#[test]
fn locked_replica_refuses_a_conflicting_block_with_an_older_qc() {
    let fx = Signer::new(7);
    let mut r = fx.replica(0);
    must(step(&mut r, Input::Request(request(0))));
    let b1 = fx.child(&genesis(), 1, vec![request(0)]);
    let b2 = fx.child(&b1, 2, vec![]);
    let b3 = fx.child(&b2, 3, vec![]);
    for b in [&b1, &b2, &b3] {
        must(fx.propose(&mut r, b));
    }
    assert_eq!(r.safety_state().locked.hash, b1.hash);
    fail_view(&mut r, 3, &[1, 2, 3, 4]);
    let conflicting = fx.child(&genesis(), 4, vec![request(1)]);
    let (res, out) = fx.propose(&mut r, &conflicting);
    assert_eq!(reason(res), "ok", "a valid block, stored");
    assert!(votes_sent(&out).is_empty(), "but not voted for");
    assert_eq!(r.votes_refused(), 1);
}

/// Locked on b1 (view 1). A fork f of view 2, conflicting with b1, gathered
/// a QC (n−f others voted for it). The leader of view 4 extends f with
/// QC(f, view 2) > lock view 1: the replica votes (liveness disjunct of the
/// vote rule). With AND instead of OR in safeNode it would refuse.
#[test]
fn locked_replica_follows_a_newer_qc_on_another_branch() {
    let fx = Signer::new(7);
    let mut r = fx.replica(0);
    must(step(&mut r, Input::Request(request(0))));
    let b1 = fx.child(&genesis(), 1, vec![request(0)]);
    let b2 = fx.child(&b1, 2, vec![]);
    let b3 = fx.child(&b2, 3, vec![]);
    for b in [&b1, &b2, &b3] {
        must(fx.propose(&mut r, b));
    }
    fail_view(&mut r, 3, &[1, 2, 3, 4]);
    let fork = fx.child(&genesis(), 2, vec![request(1)]);
    let d = fx.child(&fork, 4, vec![]);
    let (res, out) = fx.propose(&mut r, &d);
    assert_eq!(reason(res), "unknown-parent");
    let peer = out
        .iter()
        .find_map(|a| match a {
            Action::Resend {
                to,
                msg: Message::BlockRequest { .. },
            } => Some(to.0),
            _ => None,
        })
        .unwrap();
    let (res, out) = deliver(
        &mut r,
        peer,
        Message::BlockResponse(vec![fork.block.clone()]),
    );
    assert_eq!(reason(res), "ok");
    let votes = votes_sent(&out);
    assert_eq!(votes.len(), 1, "voted for d");
    assert_eq!((votes[0].0, votes[0].1.block), (NodeId(5), d.hash));
}
