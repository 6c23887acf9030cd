//! Rejections, each under its own reason.

use super::*;

#[test]
fn pre_prepare_outside_the_watermarks_is_rejected() {
    let (s, mut r) = backup();
    for seq in [0, cfg().window + 1] {
        let pp = s.pre_prepare(0, seq, vec![request(1, 0)]);
        let (out, err) = feed(&mut r, msg(0, PbftMessage::PrePrepare(pp)));
        assert_eq!(err, Some("outside-watermarks"), "seq {seq}");
        assert!(broadcasts(&out).is_empty());
    }
    let pp = s.pre_prepare(0, cfg().window, vec![request(1, 0)]);
    assert_eq!(
        feed(&mut r, msg(0, PbftMessage::PrePrepare(pp))).1,
        None,
        "H itself is inside"
    );
}

#[test]
fn votes_outside_the_watermarks_are_rejected() {
    let (s, mut r) = backup();
    let d = batch_digest(&[request(1, 0)]);
    let far = cfg().window + 1;
    let (_, err) = feed(
        &mut r,
        msg(2, PbftMessage::Prepare(s.prepare(2, 0, far, d))),
    );
    assert_eq!(err, Some("outside-watermarks"));
    let (_, err) = feed(&mut r, msg(2, PbftMessage::Commit(s.commit(2, 0, far, d))));
    assert_eq!(err, Some("outside-watermarks"));
}

#[test]
fn bad_signatures_are_rejected() {
    let (s, mut r) = backup();
    let mut pp = s.pre_prepare(0, 1, vec![request(1, 0)]);
    let d = pp.digest;
    pp.sig.0[0] ^= 1;
    assert_eq!(
        feed(&mut r, msg(0, PbftMessage::PrePrepare(pp))).1,
        Some("bad-signature")
    );
    // Signed by the right key over another seq.
    let mut p = s.prepare(2, 0, 2, d);
    p.seq = 1;
    assert_eq!(
        feed(&mut r, msg(2, PbftMessage::Prepare(p))).1,
        Some("bad-signature")
    );
    let mut c = s.commit(2, 0, 1, d);
    c.sig = Signature::ZERO;
    assert_eq!(
        feed(&mut r, msg(2, PbftMessage::Commit(c))).1,
        Some("bad-signature")
    );
    // A PREPARE signature does not verify as a COMMIT (domain separation).
    let p = s.prepare(3, 0, 1, d);
    let as_commit = PbftMessage::Commit(p);
    assert_eq!(feed(&mut r, msg(3, as_commit)).1, Some("bad-signature"));
    let mut cp = s.checkpoint(2, 4, GENESIS);
    cp.state.0[0] ^= 1;
    assert_eq!(
        feed(&mut r, msg(2, PbftMessage::Checkpoint(cp))).1,
        Some("bad-signature")
    );
}

#[test]
fn prepare_from_the_primary_is_rejected() {
    let (s, mut r) = backup();
    let d = batch_digest(&[request(1, 0)]);
    let (_, err) = feed(&mut r, msg(0, PbftMessage::Prepare(s.prepare(0, 0, 1, d))));
    assert_eq!(err, Some("prepare-from-primary"));
}

#[test]
fn duplicate_prepares_and_commits_from_one_sender_are_rejected() {
    let (s, mut r) = backup();
    let d = batch_digest(&[request(1, 0)]);
    let other = batch_digest(&[request(2, 0)]);
    assert_eq!(
        feed(&mut r, msg(2, PbftMessage::Prepare(s.prepare(2, 0, 1, d)))).1,
        None
    );
    assert_eq!(
        feed(&mut r, msg(2, PbftMessage::Prepare(s.prepare(2, 0, 1, d)))).1,
        Some("duplicate-prepare")
    );
    assert_eq!(
        feed(
            &mut r,
            msg(2, PbftMessage::Prepare(s.prepare(2, 0, 1, other)))
        )
        .1,
        Some("duplicate-prepare"),
        "a second digest from one backup is no second vote"
    );
    assert_eq!(
        feed(&mut r, msg(3, PbftMessage::Commit(s.commit(3, 0, 1, d)))).1,
        None
    );
    assert_eq!(
        feed(&mut r, msg(3, PbftMessage::Commit(s.commit(3, 0, 1, d)))).1,
        Some("duplicate-commit")
    );
}

#[test]
fn relayed_vote_and_pre_prepare_from_a_backup_are_rejected() {
    let (s, mut r) = backup();
    let d = batch_digest(&[request(1, 0)]);
    let (_, err) = feed(&mut r, msg(3, PbftMessage::Prepare(s.prepare(2, 0, 1, d))));
    assert_eq!(err, Some("sender-mismatch"));
    let pp = s.pre_prepare(0, 1, vec![request(1, 0)]);
    assert_eq!(
        feed(&mut r, msg(2, PbftMessage::PrePrepare(pp))).1,
        Some("not-primary")
    );
}

#[test]
fn second_pre_prepare_for_a_slot_is_rejected_and_a_conflicting_one_too() {
    let (s, mut r) = backup();
    let a = s.pre_prepare(0, 1, vec![request(1, 0)]);
    let b = s.pre_prepare(0, 1, vec![request(2, 0)]);
    assert_eq!(
        feed(&mut r, msg(0, PbftMessage::PrePrepare(a.clone()))).1,
        None
    );
    assert_eq!(
        feed(&mut r, msg(0, PbftMessage::PrePrepare(b))).1,
        Some("conflicting-pre-prepare")
    );
    assert_eq!(
        feed(&mut r, msg(0, PbftMessage::PrePrepare(a))).1,
        Some("duplicate-pre-prepare")
    );
}

#[test]
fn pre_prepare_whose_digest_does_not_bind_its_batch_is_rejected() {
    let (s, mut r) = backup();
    let mut pp = s.pre_prepare(0, 1, vec![request(1, 0)]);
    pp.batch = vec![request(6, 6)];
    assert_eq!(
        feed(&mut r, msg(0, PbftMessage::PrePrepare(pp))).1,
        Some("digest-mismatch")
    );
    let big = s.pre_prepare(0, 1, vec![request(1, 0), request(1, 1)]);
    assert_eq!(
        feed(&mut r, msg(0, PbftMessage::PrePrepare(big))).1,
        Some("batch-too-large")
    );
}

#[test]
fn stale_view_messages_are_rejected_and_future_ones_wait_for_their_view() {
    let s = Signer::new(4, CryptoKind::Real);
    let mut r = s.replica(2, &cfg(), ONE);
    // Move replica 2 to view 1 via a NEW-VIEW from primary 1 (empty O).
    let v: Vec<_> = [0u16, 1, 3]
        .iter()
        .map(|&i| s.view_change(i, 1, vec![]))
        .collect();
    let nv = new_view(&s, 1, v, vec![]);
    assert_eq!(feed(&mut r, msg(1, PbftMessage::NewView(nv))).1, None);
    assert_eq!(r.status().view, 1);
    let d = batch_digest(&[request(1, 0)]);
    let (_, err) = feed(&mut r, msg(3, PbftMessage::Prepare(s.prepare(3, 0, 1, d))));
    assert_eq!(err, Some("stale-view"));
    // A PRE-PREPARE for view 2 waits; nothing is sent for it yet.
    let pp = s.pre_prepare(2, 1, vec![request(1, 0)]);
    let (out, err) = feed(&mut r, msg(2, PbftMessage::PrePrepare(pp)));
    assert_eq!(err, None);
    assert!(broadcasts(&out).is_empty());
}
