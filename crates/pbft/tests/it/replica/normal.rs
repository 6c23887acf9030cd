//! The normal case: message counts, prepared and committed quorums, and
//! the quorum at n other than 3f+1.

use super::*;

#[test]
fn one_request_costs_2n_n_minus_1_messages_and_commits_everywhere() {
    for (n, kind) in [
        (4, CryptoKind::Real),
        (5, CryptoKind::Model),
        (7, CryptoKind::Model),
    ] {
        let s = Signer::new(n, kind);
        let mut net = s.net(&cfg(), ONE);
        net.request_all(&request(1, 0));
        net.run();
        let n = n as u64;
        assert_eq!(net.sent("pre-prepare"), n - 1, "n={n}");
        assert_eq!(net.sent("prepare"), (n - 1) * (n - 1), "n={n}");
        assert_eq!(net.sent("commit"), n * (n - 1), "n={n}");
        assert_eq!(net.sent.values().sum::<u64>(), 2 * n * (n - 1), "n={n}");
        for l in &net.ledgers {
            assert_eq!(l.len(), 1);
            assert_eq!(l[0].slot, 1);
            assert_eq!(l[0].parent, GENESIS);
            assert_eq!(l[0].requests, vec![request(1, 0).id()]);
        }
        assert!(net.rejected.is_empty(), "{:?}", net.rejected);
        assert!(
            net.timers.is_empty(),
            "no timer left armed: {:?}",
            net.timers
        );
        net.assert_safe();
    }
}

#[test]
fn prepared_needs_2f_backup_prepares_and_commit_needs_2f_plus_1_commits() {
    let (s, mut r) = backup();
    let pp = s.pre_prepare(0, 1, vec![request(1, 0)]);
    let d = pp.digest;
    let (out, err) = feed(&mut r, msg(0, PbftMessage::PrePrepare(pp)));
    assert_eq!(err, None);
    assert!(matches!(broadcasts(&out)[..], [PbftMessage::Prepare(p)] if p.replica == NodeId(1)));
    // Commits arriving before the replica is prepared do not commit it.
    for i in [0, 2, 3] {
        let (out, err) = feed(&mut r, msg(i, PbftMessage::Commit(s.commit(i, 0, 1, d))));
        assert_eq!(err, None);
        assert!(
            out.iter().all(|a| !matches!(a, Action::Commit(_))),
            "not prepared yet"
        );
    }
    // Own PREPARE + one more backup's = 2f: prepared → COMMIT, and with the
    // three COMMITs already in, committed-local → execute.
    let (out, err) = feed(&mut r, msg(2, PbftMessage::Prepare(s.prepare(2, 0, 1, d))));
    assert_eq!(err, None);
    assert!(
        broadcasts(&out)
            .iter()
            .any(|m| matches!(m, PbftMessage::Commit(_)))
    );
    let decided: Vec<_> = out
        .iter()
        .filter_map(|a| match a {
            Action::Commit(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].requests, vec![request(1, 0).id()]);
    assert_eq!(r.last_executed(), 1);
}

#[test]
fn one_backup_prepare_short_of_2f_sends_no_commit() {
    let (s, mut r) = backup();
    let pp = s.pre_prepare(0, 1, vec![request(1, 0)]);
    let d = pp.digest;
    feed(&mut r, msg(0, PbftMessage::PrePrepare(pp)));
    // A PREPARE for another digest does not match.
    let (out, err) = feed(
        &mut r,
        msg(
            2,
            PbftMessage::Prepare(s.prepare(2, 0, 1, batch_digest(&[request(9, 9)]))),
        ),
    );
    assert_eq!(err, None);
    assert!(broadcasts(&out).is_empty());
    let (out, _) = feed(&mut r, msg(3, PbftMessage::Prepare(s.prepare(3, 0, 1, d))));
    assert!(matches!(broadcasts(&out)[..], [PbftMessage::Commit(_)]));
}

#[test]
fn quorum_is_2f_plus_1_at_3f_plus_1_and_intersects_in_an_honest_replica_otherwise() {
    for n in 4..=100usize {
        let f = (n - 1) / 3;
        let (committee, _) = crate::common::keys(n, CryptoKind::Model);
        let q = bft_pbft::quorum(&committee);
        assert!(2 * q > n + f, "n={n}: two quorums share f+1 replicas");
        assert!(q <= n - f, "n={n}: f silent replicas cannot block a quorum");
        if n == 3 * f + 1 {
            assert_eq!(q, 2 * f + 1, "n={n}");
        }
    }
}

#[test]
fn at_n_5_a_replica_needs_3_backup_prepares_not_2f() {
    let s = Signer::new(5, CryptoKind::Model);
    let mut r = s.replica(1, &cfg(), ONE);
    let pp = s.pre_prepare(0, 1, vec![request(1, 0)]);
    let d = pp.digest;
    feed(&mut r, msg(0, PbftMessage::PrePrepare(pp)));
    let (out, _) = feed(&mut r, msg(2, PbftMessage::Prepare(s.prepare(2, 0, 1, d))));
    assert!(
        broadcasts(&out).is_empty(),
        "2f = 2 backup prepares are not enough at n = 5"
    );
    let (out, _) = feed(&mut r, msg(3, PbftMessage::Prepare(s.prepare(3, 0, 1, d))));
    assert!(matches!(broadcasts(&out)[..], [PbftMessage::Commit(_)]));
}

#[test]
fn prepared_replica_with_2f_commits_does_not_execute_until_the_2f_plus_1st() {
    let (s, mut r) = backup();
    let pp = s.pre_prepare(0, 1, vec![request(1, 0)]);
    let d = pp.digest;
    feed(&mut r, msg(0, PbftMessage::PrePrepare(pp)));
    let (out, _) = feed(&mut r, msg(2, PbftMessage::Prepare(s.prepare(2, 0, 1, d))));
    assert!(
        matches!(broadcasts(&out)[..], [PbftMessage::Commit(_)]),
        "prepared"
    );
    // Own COMMIT + replica 2's = 2f: not committed-local.
    let (out, err) = feed(&mut r, msg(2, PbftMessage::Commit(s.commit(2, 0, 1, d))));
    assert_eq!(err, None);
    assert!(out.iter().all(|a| !matches!(a, Action::Commit(_))));
    // A COMMIT for another digest does not count either.
    let other = batch_digest(&[request(8, 8)]);
    let (out, _) = feed(
        &mut r,
        msg(3, PbftMessage::Commit(s.commit(3, 0, 1, other))),
    );
    assert!(out.iter().all(|a| !matches!(a, Action::Commit(_))));
    assert_eq!(r.last_executed(), 0);
    let (out, _) = feed(&mut r, msg(0, PbftMessage::Commit(s.commit(0, 0, 1, d))));
    assert_eq!(
        out.iter()
            .filter(|a| matches!(a, Action::Commit(_)))
            .count(),
        1
    );
    assert_eq!(r.last_executed(), 1);
}

/// Backup 1 commits `seq` (request `req` of client 1) in view 0: the
/// primary's PRE-PREPARE, PREPAREs from 2 and 3, COMMITs from 0, 2 and 3.
fn commit_slot(
    s: &Signer,
    r: &mut Pbft,
    seq: u64,
    req: u64,
) -> Vec<Action<PbftMessage, PbftTimer>> {
    let pp = s.pre_prepare(0, seq, vec![request(1, req)]);
    let d = pp.digest;
    let mut out = feed(r, msg(0, PbftMessage::PrePrepare(pp))).0;
    for by in [2, 3] {
        out.extend(feed(r, msg(by, PbftMessage::Prepare(s.prepare(by, 0, seq, d)))).0);
    }
    for by in [0, 2, 3] {
        out.extend(feed(r, msg(by, PbftMessage::Commit(s.commit(by, 0, seq, d)))).0);
    }
    out
}

/// Backup 1 restarted from `r`'s durable state as it is now (through the
/// codec, as a store keeps it), and the actions of its `Start`.
fn restarted(s: &Signer, r: &Pbft) -> (Pbft, Vec<Action<PbftMessage, PbftTimer>>) {
    let batches = bft_core::durable::batches_of(r, &r.durable()).unwrap();
    let durable = bft_core::codec::encode(&r.durable(), usize::MAX).unwrap();
    let ctx = bft_testkit::context(&s.committee, &s.cryptos, NodeId(1), ONE);
    let mut restarted = Pbft::recover(
        ctx,
        &cfg(),
        bft_core::codec::decode(&durable, usize::MAX).unwrap(),
        &batches,
    );
    let mut out = Vec::new();
    restarted.handle(Time(1), Input::Start, &mut out).unwrap();
    (restarted, out)
}

/// Regression (rejoin rule): a replica restarted from its durable state
/// that then sees a slot committed above a gap asks a peer for the
/// committed tail at once; one that never restarted waits a fetch timeout
/// first (a reordering may fill the gap). Over QUIC the restarted replica's
/// first commit waited for that timer or the next stable checkpoint
/// (scripts/kill-restart.sh).
#[test]
fn a_restarted_replica_asks_for_its_first_gap_at_once() {
    let (s, mut r) = backup();
    let fetches = |out: &[Action<PbftMessage, PbftTimer>]| -> Vec<u64> {
        out.iter()
            .filter_map(|a| match a {
                Action::Resend {
                    msg: PbftMessage::Fetch(f),
                    ..
                } => Some(f.from_seq),
                _ => None,
            })
            .collect()
    };
    commit_slot(&s, &mut r, 1, 0);
    assert_eq!(r.last_executed(), 1);
    let (mut restarted, out) = restarted(&s, &r);
    assert_eq!(fetches(&out), Vec::<u64>::new(), "no gap yet");

    // Never restarted: slot 3 committed above the missing slot 2 arms the
    // fetch timer and asks nobody yet.
    let out = commit_slot(&s, &mut r, 3, 2);
    assert_eq!(r.last_executed(), 1);
    assert_eq!(fetches(&out), Vec::<u64>::new());

    let out = commit_slot(&s, &mut restarted, 3, 2);
    assert_eq!(restarted.last_executed(), 1);
    assert_eq!(fetches(&out), vec![2], "asked at once for slot 2 on");
}

/// A slot committed before the one below it and the replica restarted in
/// between: once the gap fills, the slot executes with the COMMITs that
/// committed it as its ledger certificate, which checks (its durable state
/// kept them; a committed slot takes no more COMMITs).
#[test]
fn a_slot_committed_before_a_restart_executes_with_a_valid_certificate() {
    let (s, mut r) = backup();
    commit_slot(&s, &mut r, 2, 1);
    assert_eq!(r.status().committed, 0, "slot 1 is missing");
    let (mut restarted, _) = restarted(&s, &r);
    let pp = s.pre_prepare(0, 1, vec![request(1, 0)]);
    let d = pp.digest;
    let mut decided = Vec::new();
    for m in [PbftMessage::PrePrepare(pp)]
        .into_iter()
        .map(|m| msg(0, m))
        .chain([2, 3].map(|by| msg(by, PbftMessage::Prepare(s.prepare(by, 0, 1, d)))))
        .chain([0, 2, 3].map(|by| msg(by, PbftMessage::Commit(s.commit(by, 0, 1, d)))))
    {
        let (out, _) = feed(&mut restarted, m);
        decided.extend(out.into_iter().filter_map(|a| match a {
            Action::Commit(d) => Some(d),
            _ => None,
        }));
    }
    assert_eq!(
        decided.iter().map(|d| d.slot).collect::<Vec<_>>(),
        vec![1, 2]
    );
    for d in &decided {
        assert_eq!(
            Pbft::check_certificate(d, &s.committee, s.cryptos[0].as_ref()),
            Ok(bft_core::Certified::Quorum),
            "slot {}",
            d.slot
        );
    }
}
