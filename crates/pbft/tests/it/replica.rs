//! Replica-level tests: one or a few replicas driven directly through
//! `Protocol::handle` with hand-built, signed messages.

use crate::common::{Net, Signer, broadcasts, feed, msg, replica, request};
use bft_core::{
    Action, BatchConfig, CryptoKind, GENESIS, Input, NodeId, Protocol, Signature, Time,
    batch_digest,
};
use bft_pbft::{
    NewView, Pbft, PbftConfig, PbftMessage, PbftTimer, PrePrepare, domain, new_view_payload,
    plan_new_view,
};
use std::time::Duration;

const ONE: BatchConfig = BatchConfig {
    max_size: 1,
    max_delay: Duration::from_millis(1),
};

fn cfg() -> PbftConfig {
    PbftConfig {
        checkpoint_interval: 4,
        window: 8,
        ..PbftConfig::default()
    }
}

/// Backup 1 of a 4-replica committee in view 0 (primary 0), real crypto.
fn backup() -> (Signer, Pbft) {
    let s = Signer::new(4, CryptoKind::Real);
    let r = replica(&s, 1, &cfg(), ONE);
    (s, r)
}

// ----- normal case ----------------------------------------------------------

#[test]
fn one_request_costs_2n_n_minus_1_messages_and_commits_everywhere() {
    for (n, kind) in [
        (4, CryptoKind::Real),
        (5, CryptoKind::Model),
        (7, CryptoKind::Model),
    ] {
        let s = Signer::new(n, kind);
        let mut net = Net::new(&s, &cfg(), ONE);
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
            assert_eq!(l[0].requests, vec![request(1, 0).id]);
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
    assert_eq!(decided[0].requests, vec![request(1, 0).id]);
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

// ----- rejections, each under its own reason --------------------------------

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
    let mut r = replica(&s, 2, &cfg(), ONE);
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

// ----- checkpoints ----------------------------------------------------------

#[test]
fn checkpoint_off_the_interval_or_duplicated_is_rejected() {
    let (s, mut r) = backup();
    let (_, err) = feed(
        &mut r,
        msg(2, PbftMessage::Checkpoint(s.checkpoint(2, 3, GENESIS))),
    );
    assert_eq!(err, Some("checkpoint-off-interval"));
    let (_, err) = feed(
        &mut r,
        msg(2, PbftMessage::Checkpoint(s.checkpoint(2, 4, GENESIS))),
    );
    assert_eq!(err, None);
    let (_, err) = feed(
        &mut r,
        msg(2, PbftMessage::Checkpoint(s.checkpoint(2, 4, GENESIS))),
    );
    assert_eq!(err, Some("duplicate-checkpoint"));
}

#[test]
fn stable_checkpoint_moves_the_low_watermark_and_discards_the_log() {
    let s = Signer::new(4, CryptoKind::Model);
    let mut net = Net::new(&s, &cfg(), ONE);
    for k in 0..10 {
        net.request_all(&request(1, k));
        net.run();
    }
    net.assert_safe();
    for (i, node) in net.nodes.iter().enumerate() {
        assert_eq!(node.last_executed(), 10, "replica {i}");
        assert_eq!(node.low_watermark(), 8, "checkpoints at 4 and 8 are stable");
        assert_eq!(node.log_len(), 2, "only seqs 9 and 10 remain");
    }
    // K = 4: checkpoints after 4 and 8, each multicast by all n replicas.
    assert_eq!(net.sent("checkpoint"), 2 * 4 * 3);
}

#[test]
fn primary_stops_at_the_high_watermark_until_a_checkpoint_is_stable() {
    let s = Signer::new(4, CryptoKind::Model);
    let mut net = Net::new(&s, &cfg(), ONE);
    // Nobody's CHECKPOINT gets through: h stays 0, so H = 8.
    net.drop = Some(Box::new(|_, _, m| matches!(m, PbftMessage::Checkpoint(_))));
    for k in 0..12 {
        net.request_all(&request(1, k));
    }
    net.run();
    for node in &net.nodes {
        assert_eq!(node.last_executed(), 8, "proposals stop at H = h + L");
        assert_eq!(node.low_watermark(), 0);
    }
    net.drop = None;
    // The lost CHECKPOINTs for 4 arrive late (by hand): h = 4, H = 12.
    for i in 0..4u16 {
        let state = net.ledgers[0][3].block;
        let cp = s.checkpoint(i, 4, state);
        for to in (0..4u16).filter(|&t| t != i) {
            net.queue
                .push_back((NodeId(i), NodeId(to), PbftMessage::Checkpoint(cp.clone())));
        }
    }
    net.run();
    for node in &net.nodes {
        assert_eq!(node.last_executed(), 12, "window moved: the rest commits");
        assert_eq!(node.low_watermark(), 12, "and checkpoint 12 became stable");
    }
    net.assert_safe();
}

// ----- view change ----------------------------------------------------------

fn new_view(s: &Signer, view: u64, v: Vec<bft_pbft::ViewChange>, o: Vec<PrePrepare>) -> NewView {
    let primary = s.primary(view);
    let sig = s.cryptos[primary.index()].sign(domain::NEW_VIEW, &new_view_payload(view, &v, &o));
    NewView {
        view,
        view_changes: v,
        pre_prepares: o,
        sig,
    }
}

/// V for view 2 (primary 2) where replica 0 prepared A at seq 1 in view 0 and
/// replica 3 prepared B at seq 1 in view 1; nobody prepared seq 2; replica 2
/// prepared C at seq 3 in view 0.
fn mixed_views() -> (Signer, Vec<bft_pbft::ViewChange>) {
    let s = Signer::new(4, CryptoKind::Real);
    let a = s.cert(0, 1, vec![request(1, 0)]);
    let b = s.cert(1, 1, vec![request(2, 0)]);
    let c = s.cert(0, 3, vec![request(3, 0)]);
    let v = vec![
        s.view_change(0, 2, vec![a]),
        s.view_change(2, 2, vec![c]),
        s.view_change(3, 2, vec![b]),
    ];
    (s, v)
}

#[test]
fn o_takes_the_highest_view_certificate_and_fills_gaps_with_nulls() {
    let (_, v) = mixed_views();
    let plan = plan_new_view(&v);
    assert_eq!((plan.min_s, plan.max_s), (0, 3));
    let digests: Vec<_> = plan.entries.iter().map(|(s, d, _)| (*s, *d)).collect();
    assert_eq!(
        digests,
        vec![
            (1, batch_digest(&[request(2, 0)])), // view 1 beats view 0
            (2, batch_digest(&[])),              // no certificate: null
            (3, batch_digest(&[request(3, 0)])),
        ]
    );
}

#[test]
fn new_view_with_correct_o_is_accepted_and_o_is_prepared() {
    let (s, v) = mixed_views();
    let mut r = replica(&s, 1, &cfg(), ONE);
    let o = vec![
        s.pre_prepare(2, 1, vec![request(2, 0)]),
        s.pre_prepare(2, 2, vec![]),
        s.pre_prepare(2, 3, vec![request(3, 0)]),
    ];
    let (out, err) = feed(&mut r, msg(2, PbftMessage::NewView(new_view(&s, 2, v, o))));
    assert_eq!(err, None);
    assert_eq!(r.status().view, 2);
    assert_eq!(r.status().view_changes, 1);
    assert!(!r.is_changing_view());
    let prepared: Vec<(u64, u64)> = broadcasts(&out)
        .iter()
        .filter_map(|m| match m {
            PbftMessage::Prepare(p) => Some((p.view, p.seq)),
            _ => None,
        })
        .collect();
    assert_eq!(prepared, vec![(2, 1), (2, 2), (2, 3)]);
}

#[test]
fn new_view_whose_o_uses_the_lowest_view_certificate_is_rejected() {
    let (s, v) = mixed_views();
    let mut r = replica(&s, 1, &cfg(), ONE);
    let o = vec![
        s.pre_prepare(2, 1, vec![request(1, 0)]), // view 0's A instead of view 1's B
        s.pre_prepare(2, 2, vec![]),
        s.pre_prepare(2, 3, vec![request(3, 0)]),
    ];
    let (out, err) = feed(&mut r, msg(2, PbftMessage::NewView(new_view(&s, 2, v, o))));
    assert_eq!(err, Some("new-view-mismatch"));
    assert!(broadcasts(&out).is_empty());
    assert_eq!(r.status().view, 0);
}

#[test]
fn new_view_whose_o_has_a_gap_instead_of_a_null_is_rejected() {
    let (s, v) = mixed_views();
    let gap = vec![
        s.pre_prepare(2, 1, vec![request(2, 0)]),
        s.pre_prepare(2, 3, vec![request(3, 0)]),
    ];
    let mut r = replica(&s, 1, &cfg(), ONE);
    let (_, err) = feed(
        &mut r,
        msg(2, PbftMessage::NewView(new_view(&s, 2, v.clone(), gap))),
    );
    assert_eq!(err, Some("new-view-mismatch"));
    // Filling the gap with a client request instead of a null is no better.
    let filled = vec![
        s.pre_prepare(2, 1, vec![request(2, 0)]),
        s.pre_prepare(2, 2, vec![request(4, 0)]),
        s.pre_prepare(2, 3, vec![request(3, 0)]),
    ];
    let (_, err) = feed(
        &mut r,
        msg(2, PbftMessage::NewView(new_view(&s, 2, v, filled))),
    );
    assert_eq!(err, Some("new-view-mismatch"));
    assert_eq!(r.status().view, 0);
}

#[test]
fn new_view_without_a_quorum_is_rejected_and_a_relayed_one_accepted() {
    let (s, mut v) = mixed_views();
    let mut r = replica(&s, 1, &cfg(), ONE);
    let o = vec![
        s.pre_prepare(2, 1, vec![request(2, 0)]),
        s.pre_prepare(2, 2, vec![]),
        s.pre_prepare(2, 3, vec![request(3, 0)]),
    ];
    let nv = new_view(&s, 2, v.clone(), o.clone());
    // Relayed by 3, it is still primary(2)'s NEW-VIEW (self-certifying,
    // TOCS 2002 §4.5): accepted, by a fresh replica so `r` stays in view 1.
    let mut relayed = replica(&s, 1, &cfg(), ONE);
    assert_eq!(feed(&mut relayed, msg(3, PbftMessage::NewView(nv))).1, None);
    v.pop();
    let short = new_view(&s, 2, v.clone(), o[..1].to_vec());
    assert_eq!(
        feed(&mut r, msg(2, PbftMessage::NewView(short))).1,
        Some("bad-new-view")
    );
    v.push(v[0].clone());
    let dup = new_view(&s, 2, v, o);
    assert_eq!(
        feed(&mut r, msg(2, PbftMessage::NewView(dup))).1,
        Some("bad-new-view")
    );
}

#[test]
fn view_change_with_a_forged_certificate_is_rejected() {
    let s = Signer::new(4, CryptoKind::Real);
    let mut r = replica(&s, 1, &cfg(), ONE);
    // Only f prepares: not a prepared certificate.
    let mut cert = s.cert(0, 1, vec![request(1, 0)]);
    cert.prepares.truncate(1);
    let vc = s.view_change(2, 1, vec![cert]);
    assert_eq!(
        feed(&mut r, msg(2, PbftMessage::ViewChange(vc))).1,
        Some("bad-prepared-cert")
    );
    // The primary's PREPARE counted as a backup's.
    let mut cert = s.cert(0, 1, vec![request(1, 0)]);
    cert.prepares[1] = s.prepare(0, 0, 1, cert.pre_prepare.digest);
    let vc = s.view_change(2, 1, vec![cert]);
    assert_eq!(
        feed(&mut r, msg(2, PbftMessage::ViewChange(vc))).1,
        Some("bad-prepared-cert")
    );
    // A certificate stripped after signing breaks the VIEW-CHANGE signature.
    let mut vc = s.view_change(2, 1, vec![s.cert(0, 1, vec![request(1, 0)])]);
    vc.prepared.clear();
    assert_eq!(
        feed(&mut r, msg(2, PbftMessage::ViewChange(vc))).1,
        Some("bad-signature")
    );
}

/// The memory of verified signatures (`verified.rs`) skips only exact
/// tuples it verified before: the same certificate in a second VIEW-CHANGE
/// costs no Ed25519 verification again, and one altered PREPARE signature
/// in an otherwise known certificate is still caught.
#[test]
fn a_certificate_met_again_is_not_reverified_and_an_altered_copy_still_fails() {
    let s = Signer::new(4, CryptoKind::Model);
    // Replica 1 with the same keys (seed 7) and a crypto that charges
    // verification only (whatever it signs in reply is not counted).
    let cost = bft_crypto::CostModel {
        sign: std::time::Duration::ZERO,
        ..bft_crypto::CostModel::default()
    };
    let (committee, cryptos) = bft_crypto::cluster(4, 7, CryptoKind::Model, cost).unwrap();
    let crypto = cryptos[1].clone();
    let ctx = bft_core::NodeContext {
        id: NodeId(1),
        committee,
        crypto: crypto.clone(),
        batch: ONE,
    };
    let mut r = Pbft::new(ctx, &cfg());
    let cert = s.cert(0, 1, vec![request(1, 0)]);
    let first = s.view_change(2, 1, vec![cert.clone()]);
    assert_eq!(feed(&mut r, msg(2, PbftMessage::ViewChange(first))).1, None);
    // The pre-prepare, 2f = 2 PREPAREs and the VIEW-CHANGE itself.
    let full = crypto.take_cpu();
    // Another replica, another view: one VIEW-CHANGE per view, so the
    // replica neither joins nor forms a NEW-VIEW (no signing).
    let again = s.view_change(3, 2, vec![cert.clone()]);
    assert_eq!(feed(&mut r, msg(3, PbftMessage::ViewChange(again))).1, None);
    // Only the second VIEW-CHANGE's own signature.
    let repeat = crypto.take_cpu();
    assert_eq!(repeat, cost.batch_verify_per_sig);
    assert_eq!(full, repeat * 4);
    // The same certificate with one PREPARE signature altered.
    let mut altered = cert;
    altered.prepares[0].sig = Signature([7u8; 64]);
    let vc = s.view_change(0, 3, vec![altered]);
    assert_eq!(
        feed(&mut r, msg(0, PbftMessage::ViewChange(vc))).1,
        Some("bad-signature")
    );
}

#[test]
fn view_change_carries_the_prepared_certificate() {
    let (s, mut r) = backup();
    let pp = s.pre_prepare(0, 1, vec![request(1, 0)]);
    let d = pp.digest;
    feed(&mut r, msg(0, PbftMessage::PrePrepare(pp)));
    feed(&mut r, msg(2, PbftMessage::Prepare(s.prepare(2, 0, 1, d))));
    let (out, err) = feed(&mut r, Input::Timeout(PbftTimer::Request));
    assert_eq!(err, None);
    assert!(r.is_changing_view());
    let vc = match broadcasts(&out)[..] {
        [PbftMessage::ViewChange(vc)] => vc.clone(),
        ref other => panic!("expected one VIEW-CHANGE, got {other:?}"),
    };
    assert_eq!((vc.new_view, vc.stable_seq), (1, 0));
    assert_eq!(vc.prepared.len(), 1);
    assert_eq!(vc.prepared[0].pre_prepare.digest, d);
    assert_eq!(vc.prepared[0].prepares.len(), 2);
    // Another replica accepts it.
    let mut other = replica(&s, 3, &cfg(), ONE);
    assert_eq!(
        feed(&mut other, msg(1, PbftMessage::ViewChange(vc))).1,
        None
    );
}

#[test]
fn f_plus_1_view_changes_make_a_replica_join_the_smallest_higher_view() {
    let s = Signer::new(4, CryptoKind::Real);
    let mut r = replica(&s, 3, &cfg(), ONE);
    let (out, _) = feed(
        &mut r,
        msg(1, PbftMessage::ViewChange(s.view_change(1, 2, vec![]))),
    );
    assert!(broadcasts(&out).is_empty(), "f VIEW-CHANGEs are not enough");
    let (out, _) = feed(
        &mut r,
        msg(2, PbftMessage::ViewChange(s.view_change(2, 5, vec![]))),
    );
    assert!(matches!(broadcasts(&out)[..], [PbftMessage::ViewChange(vc)] if vc.new_view == 2));
    assert_eq!(r.status().view, 2);
}

#[test]
fn view_inflation_by_f_replicas_moves_nobody_and_stays_bounded() {
    let s = Signer::new(4, CryptoKind::Model);
    let mut r = replica(&s, 3, &cfg(), ONE);
    for view in 1..200u64 {
        let (out, _) = feed(
            &mut r,
            msg(1, PbftMessage::ViewChange(s.view_change(1, view, vec![]))),
        );
        assert!(broadcasts(&out).is_empty());
    }
    assert_eq!(r.status().view, 0);
    assert!(
        r.status().retained <= 2,
        "two VIEW-CHANGEs kept per sender (its lowest and its newest)"
    );
}

#[test]
fn silent_primary_is_replaced_and_the_pending_request_commits() {
    let s = Signer::new(4, CryptoKind::Real);
    let mut net = Net::new(&s, &cfg(), ONE);
    net.silent.insert(NodeId(0));
    net.request_all(&request(1, 0));
    net.run();
    assert!(net.ledgers.iter().all(Vec::is_empty));
    let backups = [NodeId(1), NodeId(2), NodeId(3)];
    assert!(
        backups
            .iter()
            .all(|&b| net.timers.contains(&(b, PbftTimer::Request)))
    );
    net.fire(PbftTimer::Request, &backups);
    for &b in &backups {
        let st = net.nodes[b.index()].status();
        assert_eq!((st.view, st.view_changes, st.committed), (1, 1, 1), "{b:?}");
        assert_eq!(net.ledgers[b.index()][0].requests, vec![request(1, 0).id]);
    }
    assert_eq!(net.sent("view-change"), 3 * 3);
    assert_eq!(net.sent("new-view"), 3);
    net.assert_safe();
}

#[test]
fn unanswered_view_change_times_out_into_the_next_view_with_a_doubled_timer() {
    let s = Signer::new(4, CryptoKind::Model);
    let mut net = Net::new(&s, &cfg(), ONE);
    // Primary 0 and the next primary 1 are both silent: view 1 never starts.
    net.silent.extend([NodeId(0), NodeId(1)]);
    net.request_all(&request(1, 0));
    net.run();
    net.fire(PbftTimer::Request, &[NodeId(1), NodeId(2), NodeId(3)]);
    // 2 and 3 reach only 2 < 2f+1 VIEW-CHANGEs with 1 silent... the silent
    // node's own view change is not heard, so no new-view timer starts.
    assert!(!net.timers.contains(&(NodeId(2), PbftTimer::NewView)));
    // Let node 1 speak again: its VIEW-CHANGE completes the quorum at 2, 3,
    // and they arm the new-view timer (node 1 itself stays silent as primary).
    net.silent.remove(&NodeId(1));
    let vc1 = s.view_change(1, 1, vec![]);
    for to in [2u16, 3] {
        net.queue
            .push_back((NodeId(1), NodeId(to), PbftMessage::ViewChange(vc1.clone())));
    }
    net.silent.insert(NodeId(1));
    net.run();
    assert!(net.timers.contains(&(NodeId(2), PbftTimer::NewView)));
    net.fire(PbftTimer::NewView, &[NodeId(2), NodeId(3)]);
    for b in [2, 3] {
        assert_eq!(net.nodes[b].status().view, 2, "moved on to view 2");
        assert!(net.nodes[b].is_changing_view());
    }
}

/// A partition drops every VIEW-CHANGE for view 1: nobody has a quorum, so
/// no new-view timer runs. The retransmission timer re-multicasts each
/// replica's VIEW-CHANGE once the network is back, and view 1 starts.
#[test]
fn dropped_view_changes_are_retransmitted_until_a_quorum_hears_them() {
    let s = Signer::new(4, CryptoKind::Model);
    let mut net = Net::new(&s, &cfg(), ONE);
    net.silent.insert(NodeId(0));
    net.request_all(&request(1, 0));
    net.run();
    net.drop = Some(Box::new(|_, _, m| matches!(m, PbftMessage::ViewChange(_))));
    let backups = [NodeId(1), NodeId(2), NodeId(3)];
    net.fire(PbftTimer::Request, &backups);
    for &b in &backups {
        assert!(net.nodes[b.index()].is_changing_view());
        assert!(!net.timers.contains(&(b, PbftTimer::NewView)));
        assert!(net.timers.contains(&(b, PbftTimer::Resend)), "{b:?}");
    }
    assert_eq!(net.sent("view-change"), 3 * 3);
    // Healed: the retransmitted VIEW-CHANGEs reach everyone.
    net.drop = None;
    net.fire(PbftTimer::Resend, &backups);
    assert_eq!(net.sent("view-change"), 2 * 3 * 3);
    for &b in &backups {
        let st = net.nodes[b.index()].status();
        assert_eq!((st.view, st.committed), (1, 1), "{b:?}");
        assert!(!net.timers.contains(&(b, PbftTimer::Resend)), "cancelled");
    }
    net.assert_safe();
}

// ----- state transfer and memory --------------------------------------------

/// f+1 matching CHECKPOINTs (a weak certificate: one signer is correct)
/// tell a replica it is behind; f do not. (It used to take 2f+1, which a
/// replica that hears only 2f of the others — one faulty replica omitting to
/// it — never gets; see `replica_alone_in_a_higher_view_catches_up_by_state_transfer`
/// in tests/it/sim.rs.)
#[test]
fn checkpoints_above_the_window_from_f_plus_1_replicas_start_a_fetch() {
    let (s, mut r) = backup();
    let far = cfg().window + cfg().checkpoint_interval;
    let state = batch_digest(&[request(5, 5)]);
    let (out, err) = feed(
        &mut r,
        msg(0, PbftMessage::Checkpoint(s.checkpoint(0, far, state))),
    );
    assert_eq!(err, None);
    assert!(out.is_empty(), "f is not a proof");
    assert_eq!(r.behind_to(), None);
    let (out, err) = feed(
        &mut r,
        msg(2, PbftMessage::Checkpoint(s.checkpoint(2, far, state))),
    );
    assert_eq!(err, None);
    assert_eq!(r.behind_to(), Some(far));
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Resend { msg: PbftMessage::Fetch(f), .. } if f.from_seq == 1
    )));
}

#[test]
fn lagging_replica_catches_up_by_state_transfer_to_the_stable_checkpoint() {
    let s = Signer::new(4, CryptoKind::Real);
    let mut net = Net::new(&s, &cfg(), ONE);
    // Replica 3 hears nothing while slots 1..=6 are decided by 0, 1, 2.
    net.drop = Some(Box::new(|_, to, _| to == NodeId(3)));
    for k in 0..6 {
        net.request_all(&request(1, k));
        net.run();
    }
    assert!(net.ledgers[3].is_empty());
    assert_eq!(net.nodes[0].last_executed(), 6);
    net.drop = None;
    for k in 6..12 {
        net.request_all(&request(1, k));
        net.run();
    }
    // Checkpoint 8 became stable; replica 3 fetched slots 1..=8 and took
    // part in the rest normally.
    assert!(net.sent("fetch") >= 1);
    assert!(net.sent("state") >= 1);
    for (i, node) in net.nodes.iter().enumerate() {
        assert_eq!(node.last_executed(), 12, "replica {i}");
        assert_eq!(node.behind_to(), None, "replica {i}");
    }
    assert_eq!(net.ledgers[3].len(), 12);
    net.assert_safe();
}

#[test]
fn state_transfer_that_does_not_reach_the_proven_state_is_rejected() {
    let s = Signer::new(4, CryptoKind::Real);
    // Slot 4's true chain: four single-request batches.
    let batches: Vec<bft_pbft::ExecutedBatch> = (0..4)
        .map(|k| bft_pbft::ExecutedBatch {
            seq: k + 1,
            view: 0,
            batch: vec![request(1, k)],
        })
        .collect();
    let state = batches.iter().fold(GENESIS, |h, b| {
        bft_pbft::block_hash(&h, b.seq, &batch_digest(&b.batch))
    });
    let proof: Vec<_> = (0..3u16).map(|i| s.checkpoint(i, 4, state)).collect();
    let mut r = replica(&s, 3, &cfg(), ONE);
    let st = |b: Vec<bft_pbft::ExecutedBatch>, proof: Vec<_>| {
        PbftMessage::State(bft_pbft::StateTransfer {
            seq: 4,
            state,
            proof,
            batches: b,
        })
    };
    // A responder swaps one request: the chain no longer reaches `state`.
    let mut forged = batches.clone();
    forged[2].batch = vec![request(9, 9)];
    assert_eq!(
        feed(&mut r, msg(0, st(forged, proof.clone()))).1,
        Some("bad-state")
    );
    assert_eq!(
        feed(&mut r, msg(0, st(batches[1..].to_vec(), proof.clone()))).1,
        Some("bad-state"),
        "must start right after the replica's last executed slot"
    );
    assert_eq!(
        feed(&mut r, msg(0, st(batches.clone(), proof[..2].to_vec()))).1,
        Some("bad-checkpoint-proof")
    );
    assert_eq!(r.last_executed(), 0);
    let (out, err) = feed(&mut r, msg(0, st(batches, proof)));
    assert_eq!(err, None);
    assert_eq!(
        out.iter()
            .filter(|a| matches!(a, Action::Commit(_)))
            .count(),
        4
    );
    assert_eq!((r.last_executed(), r.low_watermark()), (4, 4));
}

#[test]
fn memory_stays_bounded_by_the_window_over_10_000_decisions() {
    let s = Signer::new(4, CryptoKind::Model);
    let cfg = PbftConfig {
        checkpoint_interval: 16,
        window: 32,
        ..PbftConfig::default()
    };
    let mut net = Net::new(&s, &cfg, ONE);
    let mut peak = 0;
    let mut peak_after_first_thousand = 0;
    for k in 0..10_000u64 {
        net.request_all(&request(1, k));
        net.run();
        let worst = net.nodes.iter().map(|r| r.status().retained).max().unwrap();
        peak = peak.max(worst);
        if k >= 1_000 {
            peak_after_first_thousand = peak_after_first_thousand.max(worst);
        }
    }
    for node in &net.nodes {
        assert_eq!(node.last_executed(), 10_000);
        assert_eq!(node.low_watermark(), 10_000, "10 000 is a checkpoint");
        assert!(node.log_len() as u64 <= cfg.window);
    }
    // Per slot in the window: the pre-prepare, n prepares, n commits and a
    // certificate (1 + 2f); per checkpoint in the window n votes; plus the
    // executed history (state_transfer_depth below h, up to L above) and
    // small constants.
    let (n, f, l, k) = (4usize, 1usize, 32usize, 16usize);
    let history = cfg.state_transfer_depth as usize + l;
    let bound = l * (1 + 2 * n + 2 + 2 * f) + (l / k + 1) * (n + 1) + history + 4 * n + 16;
    assert!(peak <= bound, "peak retained {peak} > bound {bound}");
    assert_eq!(
        peak, peak_after_first_thousand,
        "no growth after the first 1 000"
    );
    net.assert_safe();
}

#[test]
fn timeouts_double_per_failed_view() {
    let s = Signer::new(4, CryptoKind::Model);
    let base = cfg().view_change_timeout;
    let mut r = replica(&s, 3, &cfg(), ONE);
    let timer_after = |out: &[Action<PbftMessage, PbftTimer>], which: PbftTimer| {
        out.iter().find_map(|a| match a {
            Action::SetTimer { timer, after } if *timer == which => Some(*after),
            _ => None,
        })
    };
    // A waiting request arms the request timer at the base timeout.
    let (out, _) = feed(&mut r, Input::Request(request(1, 0)));
    assert_eq!(timer_after(&out, PbftTimer::Request), Some(base));
    // It expires: VIEW-CHANGE for view 1. With 2f+1 VIEW-CHANGEs for view 1
    // the new-view timer starts at twice the base.
    feed(&mut r, Input::Timeout(PbftTimer::Request));
    feed(
        &mut r,
        msg(0, PbftMessage::ViewChange(s.view_change(0, 1, vec![]))),
    );
    let (out, _) = feed(
        &mut r,
        msg(2, PbftMessage::ViewChange(s.view_change(2, 1, vec![]))),
    );
    assert_eq!(timer_after(&out, PbftTimer::NewView), Some(base * 2));
    // No NEW-VIEW: on to view 2, where the timer doubles again.
    let (out, _) = feed(&mut r, Input::Timeout(PbftTimer::NewView));
    assert!(matches!(broadcasts(&out)[..], [PbftMessage::ViewChange(vc)] if vc.new_view == 2));
    feed(
        &mut r,
        msg(0, PbftMessage::ViewChange(s.view_change(0, 2, vec![]))),
    );
    let (out, _) = feed(
        &mut r,
        msg(1, PbftMessage::ViewChange(s.view_change(1, 2, vec![]))),
    );
    assert_eq!(timer_after(&out, PbftTimer::NewView), Some(base * 4));
}

#[test]
fn early_prepare_for_the_next_view_is_replayed_after_its_new_view() {
    let s = Signer::new(4, CryptoKind::Real);
    let mut r = replica(&s, 2, &cfg(), ONE);
    let pp = s.pre_prepare(1, 1, vec![]);
    // Replica 3's PREPARE for view 1 overtakes the NEW-VIEW.
    let (out, err) = feed(
        &mut r,
        msg(3, PbftMessage::Prepare(s.prepare(3, 1, 1, pp.digest))),
    );
    assert_eq!(err, None);
    assert!(out.is_empty());
    // V: replica 0 had prepared a null at seq 1 in view 0, so O = [null].
    let v = vec![
        s.view_change(0, 1, vec![s.cert(0, 1, vec![])]),
        s.view_change(1, 1, vec![]),
        s.view_change(3, 1, vec![]),
    ];
    let (out, err) = feed(
        &mut r,
        msg(1, PbftMessage::NewView(new_view(&s, 1, v, vec![pp]))),
    );
    assert_eq!(err, None);
    // Own PREPARE + the replayed one = 2f: prepared, COMMIT multicast.
    let kinds: Vec<&str> = broadcasts(&out)
        .iter()
        .map(|m| bft_core::WireMessage::kind(*m))
        .collect();
    assert_eq!(kinds, vec!["prepare", "commit"]);
}

#[test]
fn config_is_the_pbft_table_and_impossible_values_name_their_key() {
    let cfg: PbftConfig =
        toml::from_str("checkpoint_interval = 64\nwindow = 128\nview_change_timeout = \"150ms\"")
            .unwrap();
    assert_eq!(cfg.checkpoint_interval, 64);
    assert_eq!(cfg.window, 128);
    assert_eq!(cfg.view_change_timeout, Duration::from_millis(150));
    assert_eq!(cfg.pool_capacity, PbftConfig::default().pool_capacity);
    assert!(
        toml::from_str::<PbftConfig>("windw = 3").is_err(),
        "unknown key"
    );
    assert_eq!(
        <Pbft as Protocol>::check_config(&PbftConfig::default()),
        Ok(())
    );
    let bad = |c: PbftConfig| <Pbft as Protocol>::check_config(&c).unwrap_err().key;
    let d = PbftConfig::default;
    assert_eq!(
        bad(PbftConfig {
            window: 10,
            checkpoint_interval: 20,
            ..d()
        }),
        "window"
    );
    assert_eq!(
        bad(PbftConfig {
            checkpoint_interval: 0,
            ..d()
        }),
        "checkpoint_interval"
    );
    assert_eq!(
        bad(PbftConfig {
            view_change_timeout: Duration::ZERO,
            ..d()
        }),
        "view_change_timeout"
    );
    assert_eq!(
        bad(PbftConfig {
            pool_capacity: 0,
            ..d()
        }),
        "pool_capacity"
    );
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
    let mut r = replica(&s, 1, &cfg(), ONE);
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

#[test]
fn replica_that_missed_the_new_view_rejoins_when_f_plus_1_replicas_are_in_it() {
    let s = Signer::new(4, CryptoKind::Real);
    let mut net = Net::new(&s, &cfg(), ONE);
    net.silent.insert(NodeId(0));
    // The first NEW-VIEW to replica 3 is lost.
    let mut lost = false;
    net.drop = Some(Box::new(move |_, to, m| {
        let hit = !lost && to == NodeId(3) && matches!(m, PbftMessage::NewView(_));
        lost |= hit;
        hit
    }));
    net.request_all(&request(1, 0));
    net.run();
    net.fire(PbftTimer::Request, &[NodeId(1), NodeId(2), NodeId(3)]);
    // Replica 3 saw view 1's PRE-PREPARE (from 1) and PREPARE (from 2):
    // f+1 senders, so it re-sent its VIEW-CHANGE to primary 1, which
    // re-sent the NEW-VIEW; replica 3 then replayed what it had buffered.
    for i in 1..4 {
        let st = net.nodes[i].status();
        assert_eq!((st.view, st.committed), (1, 1), "replica {i}");
        assert!(!net.nodes[i].is_changing_view());
    }
    assert_eq!(
        net.sent("new-view"),
        3 + 1,
        "one NEW-VIEW broadcast, one re-send"
    );
    assert_eq!(net.ledgers[3][0].requests, vec![request(1, 0).id]);
    net.assert_safe();
}

// ----- retransmission bounds --------------------------------------------------

/// NEW-VIEWs `out` sends `to` as retransmissions.
fn new_view_resends(out: &[Action<PbftMessage, PbftTimer>], to: u16) -> usize {
    out.iter()
        .filter(
            |a| matches!(a, Action::Resend { to: t, msg: PbftMessage::NewView(_) } if t.0 == to),
        )
        .count()
}

/// Delivers `m` from `from` to `r` every 10 ms for 10 s of virtual time from
/// `start`; the NEW-VIEWs `r` re-sent to `from`, and whether any was a
/// first-time send.
fn flood(r: &mut Pbft, start: Time, from: u16, m: &PbftMessage) -> (usize, bool) {
    let mut resent = 0;
    let mut fresh = false;
    for k in 0..1000u64 {
        let now = start.saturating_add(Duration::from_millis(10 * k));
        let mut out = Vec::new();
        let _ = r.handle(now, msg(from, m.clone()), &mut out);
        resent += new_view_resends(&out, from);
        fresh |= out.iter().any(|a| {
            matches!(
                a,
                Action::Send {
                    msg: PbftMessage::NewView(_),
                    ..
                }
            )
        });
    }
    (resent, fresh)
}

/// The rate limit on NEW-VIEW answers: with timeout T = 200 ms, the k-th
/// answer to one requester comes at least T·2^k after the one before, so in
/// a 10 s view answers go out at 0, 0.2, 0.6, 1.4, 3.0 and 6.2 s: six,
/// however often it asks (here every 10 ms, a thousand times); at most
/// 1 + log2(1 + D/T) in a view of length D. Only the
/// primary answers a stale normal-case message with its NEW-VIEW; a backup
/// that accepted it relays it only to a replica that asks (its VIEW-CHANGE
/// for the current view, again).
#[test]
fn a_replica_asking_every_10_ms_draws_logarithmically_many_new_views() {
    let s = Signer::new(4, CryptoKind::Real);
    let v: Vec<_> = [0u16, 1, 3]
        .iter()
        .map(|&i| s.view_change(i, 1, vec![]))
        .collect();
    let nv = new_view(&s, 1, v, vec![]);
    let start = Time::from_duration(Duration::from_secs(1));
    let d = batch_digest(&[request(1, 0)]);
    let stale = PbftMessage::Prepare(s.prepare(3, 0, 1, d));
    let ask = PbftMessage::ViewChange(s.view_change(3, 1, vec![]));

    // Backup 2 holds NEW-VIEW(1), relayed: stale PREPAREs draw nothing.
    let mut backup = replica(&s, 2, &cfg(), ONE);
    assert_eq!(
        feed(&mut backup, msg(1, PbftMessage::NewView(nv.clone()))).1,
        None
    );
    assert_eq!(flood(&mut backup, start, 3, &stale), (0, false));
    // Repeated VIEW-CHANGE(1)s ask for it: six answers in 10 s.
    let mut backup = replica(&s, 2, &cfg(), ONE);
    assert_eq!(
        feed(&mut backup, msg(1, PbftMessage::NewView(nv.clone()))).1,
        None
    );
    assert_eq!(flood(&mut backup, start, 3, &ask), (6, false));

    // Primary 1 of view 1, once it sent NEW-VIEW(1): stale PREPAREs draw
    // its NEW-VIEW. It changed view itself (joining on f+1 VIEW-CHANGEs), so
    // its timeout doubled to T = 400 ms: answers at 0, 0.4, 1.2, 2.8 and
    // 6.0 s, five.
    let mut primary = replica(&s, 1, &cfg(), ONE);
    for i in [0u16, 2, 3] {
        let vc = s.view_change(i, 1, vec![]);
        let _ = feed(&mut primary, msg(i, PbftMessage::ViewChange(vc)));
    }
    assert_eq!(primary.status().view, 1, "primary 1 entered view 1");
    assert_eq!(flood(&mut primary, start, 3, &stale), (5, false));
}

/// A NEW-VIEW at n = 64 after a crash, as the compare suite's crashed
/// primary produces it: 2f+1 = 43 VIEW-CHANGEs, each with a prepared
/// certificate (pre-prepare and 42 PREPAREs) for the 128 slots since the
/// stable checkpoint. About 21 MB: more than the old 16 MiB frame cap, so
/// the new primary could not send it and PBFT never changed view at n = 64;
/// it must fit the frame cap.
#[test]
fn a_new_view_at_n_64_fits_in_one_frame() {
    use bft_core::codec::{DEFAULT_MAX_FRAME, encode};
    let s = Signer::new(64, CryptoKind::Model);
    let certs: Vec<_> = (1..=128)
        .map(|seq| s.cert(0, seq, vec![request(1, seq)]))
        .collect();
    let v: Vec<_> = (1..=43u16)
        .map(|i| s.view_change(i, 1, certs.clone()))
        .collect();
    let o: Vec<PrePrepare> = plan_new_view(&v)
        .entries
        .into_iter()
        .map(|(seq, _, batch)| s.pre_prepare(1, seq, batch))
        .collect();
    let nv = PbftMessage::NewView(new_view(&s, 1, v, o));
    let body = encode(&nv, DEFAULT_MAX_FRAME).expect("fits one frame");
    assert!(body.len() > 16 << 20, "{} bytes", body.len());
}
