//! The view change: O, NEW-VIEW checks, certificates, joining higher
//! views, timers and retransmissions.

use super::*;

#[test]
fn o_takes_the_highest_view_certificate_and_fills_gaps_with_nulls() {
    let (_, v) = mixed_views();
    let plan = plan_new_view(&v);
    assert_eq!((plan.min_s, plan.max_s), (0, 3));
    let digests: Vec<_> = plan.entries.clone();
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
    let mut r = s.replica(1, &cfg(), ONE);
    let o = vec![
        s.pre_prepare_by_digest(2, 1, batch_digest(&[request(2, 0)])),
        s.pre_prepare_by_digest(2, 2, batch_digest(&[])),
        s.pre_prepare_by_digest(2, 3, batch_digest(&[request(3, 0)])),
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
    let mut r = s.replica(1, &cfg(), ONE);
    let o = vec![
        s.pre_prepare_by_digest(2, 1, batch_digest(&[request(1, 0)])), // view 0's A instead of view 1's B
        s.pre_prepare_by_digest(2, 2, batch_digest(&[])),
        s.pre_prepare_by_digest(2, 3, batch_digest(&[request(3, 0)])),
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
        s.pre_prepare_by_digest(2, 1, batch_digest(&[request(2, 0)])),
        s.pre_prepare_by_digest(2, 3, batch_digest(&[request(3, 0)])),
    ];
    let mut r = s.replica(1, &cfg(), ONE);
    let (_, err) = feed(
        &mut r,
        msg(2, PbftMessage::NewView(new_view(&s, 2, v.clone(), gap))),
    );
    assert_eq!(err, Some("new-view-mismatch"));
    // Filling the gap with a client request instead of a null is no better.
    let filled = vec![
        s.pre_prepare_by_digest(2, 1, batch_digest(&[request(2, 0)])),
        s.pre_prepare_by_digest(2, 2, batch_digest(&[request(4, 0)])),
        s.pre_prepare_by_digest(2, 3, batch_digest(&[request(3, 0)])),
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
    let mut r = s.replica(1, &cfg(), ONE);
    let o = vec![
        s.pre_prepare_by_digest(2, 1, batch_digest(&[request(2, 0)])),
        s.pre_prepare_by_digest(2, 2, batch_digest(&[])),
        s.pre_prepare_by_digest(2, 3, batch_digest(&[request(3, 0)])),
    ];
    let nv = new_view(&s, 2, v.clone(), o.clone());
    // Relayed by 3, it is still primary(2)'s NEW-VIEW (self-certifying,
    // TOCS 2002 §4.5): accepted, by a fresh replica so `r` stays in view 1.
    let mut relayed = s.replica(1, &cfg(), ONE);
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
    let mut r = s.replica(1, &cfg(), ONE);
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
    let mut other = s.replica(3, &cfg(), ONE);
    assert_eq!(
        feed(&mut other, msg(1, PbftMessage::ViewChange(vc))).1,
        None
    );
}

/// The durable state keeps a slot's batch once (the prepared certificate
/// names the slot's pre-prepare), and a replica restarted from it has it
/// all again: the same durable state, and a VIEW-CHANGE that carries the
/// certificate with its batch.
#[test]
fn a_replica_restarted_from_its_durable_state_still_carries_its_prepared_certificate() {
    let (s, mut r) = backup();
    let pp = s.pre_prepare(0, 1, vec![request(1, 0)]);
    let d = pp.digest;
    feed(&mut r, msg(0, PbftMessage::PrePrepare(pp)));
    feed(&mut r, msg(2, PbftMessage::Prepare(s.prepare(2, 0, 1, d))));
    let durable = r.durable();
    let bytes = bft_core::codec::encode(&durable, usize::MAX).unwrap();
    let decoded = bft_core::codec::decode(&bytes, usize::MAX).unwrap();
    let ctx = bft_testkit::context(&s.committee, &s.cryptos, NodeId(1), ONE);
    let batches = bft_core::durable::batches_of(&r, &durable).unwrap();
    assert_eq!(
        batches.len(),
        1,
        "the accepted pre-prepare's batch is named apart"
    );
    let mut restarted = Pbft::recover(ctx, &cfg(), decoded, &batches);
    assert_eq!(restarted.durable(), durable);
    let (out, err) = feed(&mut restarted, Input::Timeout(PbftTimer::Request));
    assert_eq!(err, None);
    let vc = match broadcasts(&out)[..] {
        [PbftMessage::ViewChange(vc)] => vc.clone(),
        ref other => panic!("expected one VIEW-CHANGE, got {other:?}"),
    };
    assert_eq!(vc.prepared.len(), 1);
    assert_eq!(vc.prepared[0].pre_prepare.digest, d);
    assert!(
        vc.prepared[0].pre_prepare.batch.is_empty(),
        "P names it by digest"
    );
    assert_eq!(vc.prepared[0].prepares.len(), 2);
}

/// A view change names batches by digest (TOCS 2002 §4.4): a VIEW-CHANGE
/// whose certificate carries its batch, and a NEW-VIEW whose O does, are
/// refused. With whole batches a VIEW-CHANGE outgrew the 64 MiB frame at
/// 2000-request batches, and PBFT could never change view under load.
#[test]
fn a_view_change_carrying_batches_is_refused() {
    let (s, v) = mixed_views();
    let mut r = s.replica(1, &cfg(), ONE);
    let mut vc = v[0].clone();
    vc.prepared = vec![s.cert(0, 1, vec![request(1, 0)])];
    let signer = s.cryptos[vc.replica.index()].clone();
    let vc = vc.signed_by(signer.as_ref());
    assert_eq!(
        feed(&mut r, msg(vc.replica.0, PbftMessage::ViewChange(vc))).1,
        Some("batch-not-by-digest")
    );
    let o = vec![
        s.pre_prepare(2, 1, vec![request(2, 0)]),
        s.pre_prepare_by_digest(2, 2, batch_digest(&[])),
        s.pre_prepare_by_digest(2, 3, batch_digest(&[request(3, 0)])),
    ];
    let (_, err) = feed(&mut r, msg(2, PbftMessage::NewView(new_view(&s, 2, v, o))));
    assert_eq!(err, Some("batch-not-by-digest"));
    assert_eq!(r.status().view, 0);
}

#[test]
fn f_plus_1_view_changes_make_a_replica_join_the_smallest_higher_view() {
    let s = Signer::new(4, CryptoKind::Real);
    let mut r = s.replica(3, &cfg(), ONE);
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
    let mut r = s.replica(3, &cfg(), ONE);
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
    let mut net = s.net(&cfg(), ONE);
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
        assert_eq!(net.ledgers[b.index()][0].requests, vec![request(1, 0).id()]);
    }
    assert_eq!(net.sent("view-change"), 3 * 3);
    assert_eq!(net.sent("new-view"), 3);
    net.assert_safe();
}

#[test]
fn unanswered_view_change_times_out_into_the_next_view_with_a_doubled_timer() {
    let s = Signer::new(4, CryptoKind::Model);
    let mut net = s.net(&cfg(), ONE);
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
    let mut net = s.net(&cfg(), ONE);
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

#[test]
fn timeouts_double_per_failed_view() {
    let s = Signer::new(4, CryptoKind::Model);
    let base = cfg().view_change_timeout;
    let mut r = s.replica(3, &cfg(), ONE);
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
    let mut r = s.replica(2, &cfg(), ONE);
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
fn replica_that_missed_the_new_view_rejoins_when_f_plus_1_replicas_are_in_it() {
    let s = Signer::new(4, CryptoKind::Real);
    let mut net = s.net(&cfg(), ONE);
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
    assert_eq!(net.ledgers[3][0].requests, vec![request(1, 0).id()]);
    net.assert_safe();
}

/// Regression: with batches of 2000 requests of 512 B a VIEW-CHANGE carried
/// about 1 MB per prepared slot above the stable checkpoint and, with 60 or
/// more such slots, outgrew the 64 MiB frame (`outbound-too-large`), so PBFT at
/// `bench-configs/perf/quic-n4.toml` could never change view. Named by
/// digest, its size no longer depends on the batches: 20 prepared slots of
/// 1 MB each make a VIEW-CHANGE of a few kilobytes.
#[test]
fn a_view_change_over_large_batches_stays_small() {
    let s = Signer::new(4, CryptoKind::Model);
    let pbft = PbftConfig {
        checkpoint_interval: 64,
        window: 128,
        ..PbftConfig::default()
    };
    let mut r = s.large_replica(1, &pbft);
    for seq in 1..=20u64 {
        s.prepare_at(&mut r, seq, large_batch(seq));
    }
    let (out, err) = feed(&mut r, Input::Timeout(PbftTimer::Request));
    assert_eq!(err, None);
    let vc = match broadcasts(&out)[..] {
        [PbftMessage::ViewChange(vc)] => vc.clone(),
        ref other => panic!("expected one VIEW-CHANGE, got {other:?}"),
    };
    assert_eq!(vc.prepared.len(), 20, "every prepared slot is in P");
    let body = bft_core::codec::encode(&PbftMessage::ViewChange(vc), usize::MAX).unwrap();
    assert!(body.len() < 64 << 10, "{} bytes", body.len());
}
