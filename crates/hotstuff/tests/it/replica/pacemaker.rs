//! The pacemaker: the view timer, NEW-VIEWs, rebuilding a lost QC, and
//! bounded memory for what NEW-VIEWs carry.

use super::*;

/// Pacemaker rule 1: an expired view timer broadcasts NEW-VIEW for the
/// view and the replica stays in it; each further expiry re-sends it, the
/// timer doubling each time. Leaving the view takes n−f NEW-VIEWs (rule 2),
/// so a replica alone never moves, and no view change is counted.
#[test]
fn view_timer_runs_only_with_work_and_backs_off() {
    let fx = Signer::new(4);
    let mut r = fx.replica(0);
    let (_, out) = step(&mut r, Input::Start);
    assert!(out.is_empty(), "idle: no timer, no message");
    let (_, out) = step(&mut r, Input::Request(request(0)));
    assert_eq!(
        timers(&out),
        vec![(Timer::View, Duration::from_millis(500))]
    );
    for after in [1000, 2000, 4000] {
        let (_, out) = step(&mut r, Input::Timeout(Timer::View));
        assert_eq!(
            timers(&out),
            vec![(Timer::View, Duration::from_millis(after))]
        );
        assert_eq!(new_views_broadcast(&out), vec![1]);
        // The first expiry sends NEW-VIEW(1); each later one re-sends it: a
        // retransmission, counted apart from the view change.
        let first = after == 1000;
        assert!(
            matches!(
                (&out[0], first),
                (Action::Broadcast(Message::NewView(_)), true)
                    | (Action::Rebroadcast(Message::NewView(_)), false)
            ),
            "expiry {after}: {out:?}"
        );
        // The first also persists that the replica timed out of view 1.
        let persisted = out.iter().any(|a| matches!(a, Action::Persist));
        assert_eq!(persisted, first, "{out:?}");
        assert_eq!(
            out.len(),
            2 + usize::from(first),
            "the broadcast and the timer: {out:?}"
        );
        assert_eq!(r.view(), View(1));
    }
    assert_eq!(r.status().view_changes, 0);
}

/// Node 2 leads view 2. After view 1 fails it proposes once n−f = 3
/// NEW-VIEWs for view 1 are in, extending the highest QC among them. One
/// NEW-VIEW moves nothing, and its re-send counts once; a second sender
/// makes f+1, so node 2 gives up on view 1 itself (pacemaker rule 3), and
/// its own NEW-VIEW is the third (rule 2).
#[test]
fn leader_proposes_after_n_minus_f_new_views_on_the_highest_qc() {
    let fx = Signer::new(4);
    let mut r = fx.replica(2);
    must(step(&mut r, Input::Request(request(0))));
    let (res, out) = deliver(&mut r, 0, new_view(1));
    assert_eq!(reason(res), "ok");
    assert!(out.is_empty());
    assert_eq!(r.view(), View(1), "one sender (≤ f) moves no one");
    let (res, out) = deliver(&mut r, 0, new_view(1));
    assert_eq!(reason(res), "ok", "a re-send is not an offence");
    assert!(out.is_empty(), "and counts once");
    let (_, out) = deliver(&mut r, 1, new_view(1));
    assert_eq!(new_views_broadcast(&out), vec![1], "joined on f+1");
    let proposals = proposals_sent(&out);
    assert_eq!(proposals.len(), 1, "f+1 others, then our own NEW-VIEW");
    assert_eq!(proposals[0].view, View(2));
    assert!(proposals[0].justify.is_genesis());
    assert_eq!(proposals[0].batch, vec![request(0)]);
    let (res, out) = deliver(&mut r, 3, new_view(1));
    assert_eq!(reason(res), "ok");
    assert!(proposals_sent(&out).is_empty(), "already proposed");
    assert_eq!(r.status().view_changes, 1);
}

/// A NEW-VIEW far beyond the window carrying a vote for its own view, sent
/// where we lead the view after it: the vote is ignored (the collector
/// would keep an entry per view it is given), so a flood of them takes no
/// memory and moves no one.
#[test]
fn far_new_views_carrying_votes_take_no_memory() {
    let fx = Signer::new(4);
    let mut r = fx.replica(2);
    let retained = r.status().retained;
    for k in 1..=50u64 {
        // leader(v + 1) = node 2 for v ≡ 1 (mod 4).
        let v = 1 + 4 * (1000 + k);
        let Message::Vote(vote) = fx.vote(0, v, Digest([7; 32])) else {
            unreachable!()
        };
        let msg = Message::NewView(NewView {
            view: View(v),
            high_qc: QuorumCert::genesis(),
            last_vote: Some(vote),
        });
        assert_eq!(reason(deliver(&mut r, 0, msg).0), "ok");
    }
    assert_eq!(r.status().retained, retained);
    assert_eq!(r.view(), View(1));
}

/// Pacemaker rule 5: node 1 moved to view 2 on n−f NEW-VIEW(1)s; node 0's
/// NEW-VIEW(1) arrives, then again (its timer fired again: it is stuck in
/// view 1, having missed some of them). The first is not answered, the
/// re-send is, once, with node 1's own NEW-VIEW(1), which can complete node
/// 0's n−f.
#[test]
fn a_replica_stuck_behind_gets_one_answer_per_view() {
    let fx = Signer::new(4);
    let mut r = fx.replica(1);
    must(step(&mut r, Input::Request(request(0))));
    fail_view(&mut r, 1, &[2, 3]);
    let answers = |out: &Actions| -> Vec<(u16, u64)> {
        out.iter()
            .filter_map(|a| match a {
                Action::Resend {
                    to,
                    msg: Message::NewView(nv),
                } => Some((to.0, nv.view.0)),
                _ => None,
            })
            .collect()
    };
    let (res, out) = deliver(&mut r, 0, new_view(1));
    assert_eq!(reason(res), "ok");
    assert!(answers(&out).is_empty(), "a first NEW-VIEW is not answered");
    let (_, out) = deliver(&mut r, 0, new_view(1));
    assert_eq!(answers(&out), vec![(0, 1)]);
    let (_, out) = deliver(&mut r, 0, new_view(1));
    assert!(answers(&out).is_empty(), "once per view");
    assert_eq!(r.view(), View(2));
}

#[test]
fn new_view_inflation_and_bad_qcs_move_no_one() {
    let fx = Signer::new(4);
    let mut r = fx.replica(2);
    let retained = r.status().retained;
    let far = new_view(1 + 4 * 1_000_000);
    assert_eq!(reason(deliver(&mut r, 0, far).0), "ok");
    assert_eq!(r.view(), View(1), "one sender far ahead moves no one");
    assert_eq!(r.status().retained, retained, "and is not buffered");
    let weak = Message::NewView(NewView {
        view: View(5),
        high_qc: fx.qc(4, Digest([1; 32]), &[0, 1]),
        last_vote: None,
    });
    assert_eq!(reason(deliver(&mut r, 0, weak).0), "qc-too-few-signers");
    let ahead = Message::NewView(NewView {
        view: View(1),
        high_qc: fx.qc(4, Digest([1; 32]), &[0, 1, 3]),
        last_vote: None,
    });
    assert_eq!(reason(deliver(&mut r, 0, ahead).0), "new-view-qc-ahead");
    assert_eq!(r.view(), View(1));
    assert!(r.high_qc().is_genesis());
}

/// Node 2 (leader of view 2) is dead, so the votes for b1 (view 1) went
/// nowhere and views 1 and 2 time out. Node 3 leads view 3: the NEW-VIEWs
/// for view 2 carry each sender's vote for b1, and from n−f of them node 3
/// rebuilds QC(b1) and extends b1 instead of falling back to genesis.
#[test]
fn leader_rebuilds_a_lost_qc_from_votes_carried_in_new_views() {
    let fx = Signer::new(4);
    let mut r = fx.replica(3);
    must(step(&mut r, Input::Request(request(0))));
    let b1 = fx.child(&genesis(), 1, vec![request(0)]);
    let out = must(fx.propose(&mut r, &b1));
    assert_eq!(votes_sent(&out)[0].0, NodeId(2), "vote to the dead leader");
    fail_view(&mut r, 1, &[0, 1]);
    let out = must(step(&mut r, Input::Timeout(Timer::View)));
    assert_eq!(new_views_broadcast(&out), vec![2]);
    assert!(proposals_sent(&out).is_empty(), "own NEW-VIEW only: 1 of 3");
    let nv = |from: u16| {
        let Message::Vote(vote) = fx.vote(from, 1, b1.hash) else {
            unreachable!()
        };
        Message::NewView(NewView {
            view: View(2),
            high_qc: QuorumCert::genesis(),
            last_vote: Some(vote),
        })
    };
    let out = must(deliver(&mut r, 0, nv(0)));
    assert!(proposals_sent(&out).is_empty());
    let out = must(deliver(&mut r, 1, nv(1)));
    let proposals = proposals_sent(&out);
    assert_eq!(proposals.len(), 1);
    let b3 = &proposals[0];
    assert_eq!(
        (b3.view, b3.parent, b3.justify.view),
        (View(3), b1.hash, View(1))
    );
    assert_eq!(
        verify_qc(&fx.committee, &*fx.cryptos[0], &b3.justify),
        Ok(())
    );
}

/// n = 7, replica 0 (leads view 7): b1..b6 commit b1..b3, highQC is QC(5).
/// A peer replays 30 genuine QCs of views 1 and 2 inside NEW-VIEW(6)s.
/// None can raise highQC or move the view, so none is cached, and only the
/// first, which counts towards n−f, is verified (only aggregate
/// verification is charged here: 1 ms in all). Before the fix each cost a pairing and a cache entry that no
/// commit in an idle cluster would ever prune. A newer QC is still checked
/// and adopted.
#[test]
fn replayed_old_qcs_in_new_views_cost_no_verification_and_no_memory() {
    let cost = CostModel {
        bls_verify_aggregate: Duration::from_millis(1),
        ..CostModel::zero()
    };
    let fx = Signer::with_cost(7, cost);
    let mut r = fx.replica(0);
    let chain: Vec<Link> = (1..=6).fold(vec![genesis()], |mut c, v| {
        let next = fx.child(c.last().unwrap(), v, vec![]);
        c.push(next);
        c
    });
    for b in &chain[1..] {
        must(fx.propose(&mut r, b));
    }
    assert_eq!(r.committed_tip().view, View(3));
    assert_eq!(r.high_qc().view, View(5));
    let old: Vec<QuorumCert> = (0..30u8)
        .map(|k| fx.qc(1 + u64::from(k % 2), Digest([k; 32]), &fx.quorum()))
        .collect();
    let cached = r.verified_qcs_len();
    fx.cryptos[0].take_cpu();
    for qc in old {
        let _ = deliver(
            &mut r,
            1,
            Message::NewView(NewView {
                view: View(6),
                high_qc: qc,
                last_vote: None,
            }),
        );
    }
    // The first counts towards n−f, so its QC is checked (QC rule: a
    // NEW-VIEW with a forged QC must not count, see `fuzz_findings.rs`);
    // the 29 replays are duplicates and cost nothing.
    assert_eq!(
        fx.cryptos[0].take_cpu(),
        Duration::from_millis(1),
        "one pairing paid"
    );
    assert!(
        r.verified_qcs_len() <= cached,
        "cache grew from {cached} to {}",
        r.verified_qcs_len()
    );
    // A QC newer than highQC is still verified and raises highQC.
    let fresh = fx.qc(6, chain[6].hash, &fx.quorum());
    let (res, _) = deliver(
        &mut r,
        2,
        Message::NewView(NewView {
            view: View(6),
            high_qc: fresh,
            last_vote: None,
        }),
    );
    assert_eq!(reason(res), "ok");
    assert_eq!(fx.cryptos[0].take_cpu(), Duration::from_millis(1));
    assert_eq!(r.high_qc().view, View(6));
}

/// The QC cache is bounded even when every QC is new and genuine: 300 QCs
/// of rising views arrive in NEW-VIEWs (n = 4, replica 0 leads views
/// 4k; each QC moves it on), with no commit to prune the cache. At most
/// 256 stay cached.
#[test]
fn verified_qc_cache_is_bounded_without_commits() {
    let fx = Signer::new(4);
    let mut r = fx.replica(0);
    for v in 1..=300u64 {
        let qc = fx.qc(v, Digest([(v % 251) as u8; 32]), &fx.quorum());
        // The first view ≥ v whose next view replica 0 leads.
        let view = v / 4 * 4 + 3;
        let from = 1 + (v % 3) as u16;
        let _ = deliver(
            &mut r,
            from,
            Message::NewView(NewView {
                view: View(view),
                high_qc: qc,
                last_vote: None,
            }),
        );
    }
    assert_eq!(r.high_qc().view, View(300), "every QC was adopted");
    assert!(r.verified_qcs_len() <= 256, "{}", r.verified_qcs_len());
}

/// Replica 1 holds node 3's proposal b3 (view 3) while still in view 1,
/// then jumps to view 5 on pacemaker rules 3 and 2 (f+1 NEW-VIEW(4)s: it
/// gives up on view 4 too, and its own is the n−f-th). It never
/// voted in view 3, so the vote rule still allows b3: the vote goes to
/// leader(4), node 0, instead of the proposal being dropped unvoted with
/// the views it skipped (seen in `bftbench fuzz --protocol hotstuff
/// --nodes 4 --seed 1` case 3471: the only honest replica missing from a
/// QC had jumped past the proposal it held).
#[test]
fn replica_jumping_past_a_held_proposal_still_votes_for_it() {
    let fx = Signer::new(4);
    let mut r = fx.replica(1);
    must(step(&mut r, Input::Request(request(0))));
    let b3 = fx.child(&genesis(), 3, vec![request(0)]);
    let out = must(fx.propose(&mut r, &b3));
    assert!(votes_sent(&out).is_empty(), "view 3 not entered yet");
    let nv = Message::NewView(NewView {
        view: View(4),
        high_qc: QuorumCert::genesis(),
        last_vote: None,
    });
    must(deliver(&mut r, 0, nv.clone()));
    let out = must(deliver(&mut r, 2, nv));
    assert_eq!(r.view(), View(5));
    let votes: Vec<_> = votes_sent(&out)
        .into_iter()
        .filter(|(_, v)| v.view == View(3))
        .map(|(to, v)| (to, v.block))
        .collect();
    assert_eq!(votes, vec![(NodeId(0), b3.hash)]);
}
