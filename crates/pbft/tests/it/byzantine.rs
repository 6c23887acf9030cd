//! `<Pbft as Adversarial>::tamper`, attack by attack: what a Byzantine
//! replica's tampered messages do to honest replicas. Invalid ones are
//! rejected under the expected reason; well-signed conflicting ones
//! (equivocation, double votes, view inflation) never make honest replicas
//! commit different blocks, and their memory stays bounded.

use crate::common::{Net, ONE, Signer, cfg, feed, msg, request};
use bft_core::{
    Adversarial, Attack, BatchConfig, CryptoKind, Forgery, ForkChoice, GENESIS, Mutation, NodeId,
    Protocol, TamperContext, Time, batch_digest,
};
use bft_pbft::{
    ExecutedBatch, NewView, Pbft, PbftConfig, PbftMessage, PbftTimer, StateTransfer, ViewChange,
    block_hash, domain, new_view_payload, plan_new_view, view_change_payload,
};
use std::time::Duration;

/// What Byzantine replica `me` sends to `to` in place of `m`.
fn tamper(s: &Signer, me: u16, to: u16, attack: Attack, m: &PbftMessage) -> Vec<PbftMessage> {
    let ctx = TamperContext {
        me: NodeId(me),
        to: NodeId(to),
        now: Time(1),
        committee: &s.committee,
        crypto: s.cryptos[usize::from(me)].as_ref(),
        entropy: 99,
    };
    <Pbft as Adversarial>::tamper(attack, m, &ctx)
        .unwrap_or_else(|| panic!("{attack:?} applies to {m:?}"))
}

/// The one message `me` sends to `to` in place of `m`.
fn tamper_one(s: &Signer, me: u16, to: u16, attack: Attack, m: &PbftMessage) -> PbftMessage {
    let mut v = tamper(s, me, to, attack, m);
    assert_eq!(v.len(), 1, "{attack:?}");
    v.remove(0)
}

/// Feeds `m` from `from` to a fresh backup 1 in view 0; its rejection reason.
fn verdict(s: &Signer, from: u16, m: PbftMessage) -> Option<&'static str> {
    let mut r = s.replica(1, &cfg(), ONE);
    feed(&mut r, msg(from, m)).1
}

fn new_view(s: &Signer, view: u64, v: Vec<ViewChange>) -> NewView {
    let o: Vec<_> = plan_new_view(&v)
        .entries
        .into_iter()
        .map(|(seq, digest)| s.pre_prepare_by_digest(view, seq, digest))
        .collect();
    let sig =
        s.cryptos[s.primary(view).index()].sign(domain::NEW_VIEW, &new_view_payload(view, &v, &o));
    NewView {
        view,
        view_changes: v,
        pre_prepares: o,
        sig,
    }
}

/// The ledger of four single-request slots, its chain head, and the
/// checkpoint proof for slot 4 from replicas 0, 2, 3.
fn four_slots(
    s: &Signer,
) -> (
    Vec<ExecutedBatch>,
    bft_core::Digest,
    Vec<bft_pbft::Checkpoint>,
) {
    let batches: Vec<ExecutedBatch> = (0..4)
        .map(|k| ExecutedBatch {
            seq: k + 1,
            view: 0,
            batch: vec![request(1, k)],
        })
        .collect();
    let state = batches.iter().fold(GENESIS, |h, b| {
        block_hash(&h, b.seq, &batch_digest(&b.batch))
    });
    let proof = [0u16, 2, 3]
        .iter()
        .map(|&i| s.checkpoint(i, 4, state))
        .collect();
    (batches, state, proof)
}

/// VIEW-CHANGE from `by` for `new_view` claiming stable checkpoint 4.
fn view_change_at_checkpoint(s: &Signer, by: u16, new_view: u64) -> ViewChange {
    let (_, state, proof) = four_slots(s);
    let replica = NodeId(by);
    let sig = s.cryptos[usize::from(by)].sign(
        domain::VIEW_CHANGE,
        &view_change_payload(new_view, 4, &state, &[], replica),
    );
    ViewChange {
        new_view,
        stable_seq: 4,
        stable_state: state,
        checkpoint_proof: proof,
        prepared: Vec::new(),
        replica,
        sig,
    }
}

// ----- Forge ------------------------------------------------------------------

#[test]
fn forged_prepared_certificates_in_a_view_change_are_rejected() {
    let s = Signer::new(4, CryptoKind::Real);
    // Replica 2's VIEW-CHANGE for view 2 with a view-0 certificate for slot 1.
    let honest = PbftMessage::ViewChange(s.view_change(
        2,
        2,
        vec![s.cert(0, 1, vec![request(1, 0), request(1, 1)])],
    ));
    let mut r = s.replica(1, &cfg(), BatchConfig { max_size: 2, ..ONE });
    assert_eq!(feed(&mut r, msg(2, honest.clone())).1, None, "control");
    for (forgery, reason) in [
        (Forgery::BelowQuorum, "bad-prepared-cert"),
        (Forgery::DuplicateSigners, "bad-prepared-cert"),
        // Relabelled to view 1, whose primary is replica 1: its PREPARE in
        // the certificate now comes from the primary.
        (Forgery::WrongRound, "bad-prepared-cert"),
        (Forgery::WrongDigest, "bad-signature"),
    ] {
        let forged = tamper_one(&s, 2, 1, Attack::Forge(forgery), &honest);
        let mut r = s.replica(1, &cfg(), BatchConfig { max_size: 2, ..ONE });
        assert_eq!(feed(&mut r, msg(2, forged)).1, Some(reason), "{forgery:?}");
    }
}

#[test]
fn forged_checkpoint_proofs_in_a_view_change_are_rejected() {
    let s = Signer::new(4, CryptoKind::Real);
    let honest = PbftMessage::ViewChange(view_change_at_checkpoint(&s, 2, 1));
    assert_eq!(verdict(&s, 2, honest.clone()), None, "control");
    for (forgery, reason) in [
        (Forgery::BelowQuorum, "bad-checkpoint-proof"),
        (Forgery::DuplicateSigners, "bad-checkpoint-proof"),
        (Forgery::WrongRound, "bad-signature"),
        (Forgery::WrongDigest, "bad-signature"),
    ] {
        let forged = tamper_one(&s, 2, 1, Attack::Forge(forgery), &honest);
        assert_eq!(verdict(&s, 2, forged), Some(reason), "{forgery:?}");
    }
    // Nothing to forge in a VIEW-CHANGE without certificates.
    let bare = PbftMessage::ViewChange(s.view_change(2, 1, Vec::new()));
    let ctx_none = {
        let ctx = TamperContext {
            me: NodeId(2),
            to: NodeId(1),
            now: Time(1),
            committee: &s.committee,
            crypto: s.cryptos[2].as_ref(),
            entropy: 0,
        };
        <Pbft as Adversarial>::tamper(Attack::Forge(Forgery::BelowQuorum), &bare, &ctx)
    };
    assert_eq!(ctx_none, None);
}

#[test]
fn forged_view_change_sets_in_a_new_view_are_rejected() {
    let s = Signer::new(4, CryptoKind::Real);
    // Byzantine primary 2 of view 2; V from 0, 1, 3, replica 0 with a
    // view-0 certificate.
    let v = vec![
        s.view_change(0, 2, vec![s.cert(0, 1, vec![request(1, 0)])]),
        s.view_change(1, 2, Vec::new()),
        s.view_change(3, 2, Vec::new()),
    ];
    let honest = PbftMessage::NewView(new_view(&s, 2, v));
    assert_eq!(verdict(&s, 2, honest.clone()), None, "control");
    for (forgery, reason) in [
        (Forgery::BelowQuorum, "bad-new-view"),
        (Forgery::DuplicateSigners, "bad-new-view"),
        // Relabelled to view 1, whose primary (1) is among the preparers.
        (Forgery::WrongRound, "bad-prepared-cert"),
        // O recomputed from the relabelled V and re-signed: only replica
        // 0's VIEW-CHANGE signature gives it away.
        (Forgery::WrongDigest, "bad-signature"),
    ] {
        let forged = tamper_one(&s, 2, 1, Attack::Forge(forgery), &honest);
        assert_eq!(verdict(&s, 2, forged), Some(reason), "{forgery:?}");
    }
}

#[test]
fn forged_checkpoint_proofs_in_a_state_transfer_are_rejected() {
    let s = Signer::new(4, CryptoKind::Real);
    let (batches, state, proof) = four_slots(&s);
    let honest = PbftMessage::State(StateTransfer {
        seq: 4,
        state,
        proof,
        batches,
        committed: Vec::new(),
    });
    assert_eq!(verdict(&s, 2, honest.clone()), None, "control");
    for (forgery, reason) in [
        (Forgery::BelowQuorum, "bad-checkpoint-proof"),
        (Forgery::DuplicateSigners, "bad-checkpoint-proof"),
        (Forgery::WrongRound, "bad-state"),
        (Forgery::WrongDigest, "bad-state"),
    ] {
        let forged = tamper_one(&s, 2, 1, Attack::Forge(forgery), &honest);
        assert_eq!(verdict(&s, 2, forged), Some(reason), "{forgery:?}");
    }
}

// ----- Mutate and BadSignature ------------------------------------------------

#[test]
fn mutated_messages_are_rejected_or_harmless() {
    let s = Signer::new(4, CryptoKind::Real);
    let pp = PbftMessage::PrePrepare(s.pre_prepare(0, 1, vec![request(1, 0)]));
    let prepare = PbftMessage::Prepare(s.prepare(2, 0, 1, batch_digest(&[])));
    let commit = PbftMessage::Commit(s.commit(2, 0, 1, batch_digest(&[])));
    let checkpoint = PbftMessage::Checkpoint(s.checkpoint(2, 4, GENESIS));
    let vc_cp = PbftMessage::ViewChange(view_change_at_checkpoint(&s, 2, 1));
    let vc_cert =
        PbftMessage::ViewChange(s.view_change(2, 2, vec![s.cert(1, 1, vec![request(1, 0)])]));
    let nv = PbftMessage::NewView(new_view(
        &s,
        1,
        vec![
            s.view_change(0, 1, vec![s.cert(0, 1, vec![request(1, 0)])]),
            s.view_change(2, 1, Vec::new()),
            s.view_change(3, 1, Vec::new()),
        ],
    ));
    use Mutation::*;
    let cases: Vec<(u16, Mutation, &PbftMessage, Option<&str>)> = vec![
        // Round ± 1.
        (0, RoundPlusOne, &pp, None), // view 1: waits (bounded) for its NEW-VIEW
        (
            2,
            RoundMinusOne,
            &checkpoint,
            Some("checkpoint-off-interval"),
        ),
        (
            2,
            RoundPlusOne,
            &checkpoint,
            Some("checkpoint-off-interval"),
        ),
        (2, RoundMinusOne, &vc_cert, Some("bad-view-change")), // cert from view 1 ≥ 1
        // A NEW-VIEW may be relayed (checked against primary(v)): here its
        // VIEW-CHANGEs are for another view.
        (1, RoundPlusOne, &nv, Some("bad-new-view")),
        // Stale digest: GENESIS instead of the digest.
        (0, StaleDigest, &pp, Some("digest-mismatch")),
        (2, StaleDigest, &vc_cp, Some("bad-checkpoint-proof")),
        (1, StaleDigest, &nv, Some("new-view-mismatch")),
        // Swapped author: signed by 2, naming 3.
        (2, SwapSender, &prepare, Some("sender-mismatch")),
        (2, SwapSender, &commit, Some("sender-mismatch")),
        (2, SwapSender, &checkpoint, Some("sender-mismatch")),
        (2, SwapSender, &vc_cp, Some("sender-mismatch")),
    ];
    for (by, mutation, m, reason) in cases {
        let mutated = tamper_one(&s, by, 3, Attack::Mutate(mutation), m);
        // NEW-VIEW's receiver is backup 3 (backup 1 is view 1's primary).
        let mut r = s.replica(3, &cfg(), ONE);
        assert_eq!(
            feed(&mut r, msg(by, mutated)).1,
            reason,
            "{mutation:?} on {m:?}"
        );
        assert_eq!(r.last_executed(), 0);
    }
}

#[test]
fn corrupted_signatures_are_rejected() {
    let s = Signer::new(4, CryptoKind::Real);
    let nv = new_view(
        &s,
        1,
        vec![
            s.view_change(0, 1, vec![s.cert(0, 1, vec![request(1, 0)])]),
            s.view_change(2, 1, Vec::new()),
            s.view_change(3, 1, Vec::new()),
        ],
    );
    for (by, m) in [
        (
            0,
            PbftMessage::PrePrepare(s.pre_prepare(0, 1, vec![request(1, 0)])),
        ),
        (2, PbftMessage::Prepare(s.prepare(2, 0, 1, GENESIS))),
        (2, PbftMessage::Commit(s.commit(2, 0, 1, GENESIS))),
        (2, PbftMessage::Checkpoint(s.checkpoint(2, 4, GENESIS))),
        (2, PbftMessage::ViewChange(s.view_change(2, 1, Vec::new()))),
        (1, PbftMessage::NewView(nv)),
    ] {
        let mut r = s.replica(3, &cfg(), ONE);
        assert_eq!(feed(&mut r, msg(by, m.clone())).1, None, "control {m:?}");
        let bad = tamper_one(&s, by, 3, Attack::BadSignature, &m);
        let mut r = s.replica(3, &cfg(), ONE);
        assert_eq!(feed(&mut r, msg(by, bad)).1, Some("bad-signature"), "{m:?}");
    }
}

// ----- well-signed conflicting messages, whole committees -------------------

/// Fires every armed timer once at the honest replicas, then delivers.
fn fire_all(net: &mut Net, honest: &[NodeId]) {
    for t in [PbftTimer::Request, PbftTimer::NewView, PbftTimer::Fetch] {
        net.fire(t, honest);
    }
}

fn honest_ledgers_agree_and_commit(net: &Net, honest: &[NodeId], requests: usize) {
    net.assert_safe();
    for &i in honest {
        let ids: Vec<_> = net.ledgers[i.index()]
            .iter()
            .flat_map(|d| d.requests.clone())
            .collect();
        assert_eq!(
            ids.len(),
            requests,
            "replica {i}: {:?}",
            net.ledgers[i.index()]
        );
    }
}

#[test]
fn equivocating_primary_splits_nobody_and_is_replaced() {
    let s = Signer::new(4, CryptoKind::Real);
    let mut net = s.net(&cfg(), ONE);
    net.byzantine = Some((NodeId(0), Attack::Equivocate));
    let honest = [NodeId(1), NodeId(2), NodeId(3)];
    for k in 0..3 {
        net.request_all(&request(1, k));
    }
    net.run();
    net.assert_safe();
    // 1 and 3 got the null batch for slot 1, 2 the request: no quorum of
    // COMMITs for either, nobody executes.
    for &i in &honest {
        assert!(net.ledgers[i.index()].is_empty(), "replica {i}");
    }
    // Request timers expire: view 1 (primary 1) re-proposes what was
    // prepared and orders the rest.
    for _ in 0..4 {
        fire_all(&mut net, &honest);
    }
    honest_ledgers_agree_and_commit(&net, &honest, 3);
    for &i in &honest {
        assert!(net.nodes[i.index()].status().view >= 1);
        assert!(net.nodes[i.index()].log_len() <= 40);
    }
}

#[test]
fn double_votes_are_rejected_as_duplicates_and_change_nothing() {
    let s = Signer::new(4, CryptoKind::Real);
    let mut net = s.net(&cfg(), ONE);
    net.byzantine = Some((NodeId(1), Attack::DoubleVote));
    let honest = [NodeId(0), NodeId(2), NodeId(3)];
    for k in 0..10 {
        net.request_all(&request(1, k));
        net.run();
    }
    honest_ledgers_agree_and_commit(&net, &honest, 10);
    // Replica 1 sends each PREPARE and COMMIT twice, the second for
    // another digest; odd-numbered receivers (3) get the conflicting one
    // first. Every receiver keeps the first PREPARE of a sender and rejects
    // the second, in either order. Replica 3 kept 1's conflicting PREPARE,
    // so it prepares (and sends its COMMIT) later, and 0 and 2 commit each
    // slot on 1's first COMMIT: its second is a duplicate there. Replica 3
    // has committed the slot before 1's COMMITs reach it (late votes are
    // neither stored nor counted).
    let expected = [
        ((NodeId(0), "duplicate-commit"), 10),
        ((NodeId(0), "duplicate-prepare"), 10),
        ((NodeId(2), "duplicate-commit"), 10),
        ((NodeId(2), "duplicate-prepare"), 10),
        ((NodeId(3), "duplicate-prepare"), 10),
    ];
    assert_eq!(
        net.rejected_at
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(net.sent("prepare"), 10 * (9 + 3), "3 extra per slot from 1");
    for &i in &honest {
        assert_eq!(net.nodes[i.index()].status().view, 0);
        assert!(net.nodes[i.index()].log_len() <= 40);
    }
}

#[test]
fn view_inflation_by_one_replica_moves_nobody_and_stays_bounded() {
    let s = Signer::new(4, CryptoKind::Real);
    let mut net = s.net(&cfg(), ONE);
    net.byzantine = Some((NodeId(3), Attack::InflateView(1_000_000)));
    let honest = [NodeId(0), NodeId(1), NodeId(2)];
    for k in 0..20 {
        net.request_all(&request(1, k));
        net.run();
    }
    honest_ledgers_agree_and_commit(&net, &honest, 20);
    assert!(net.sent("view-change") > 0);
    for &i in &honest {
        let st = net.nodes[i.index()].status();
        assert_eq!((st.view, st.view_changes), (0, 0), "replica {i}");
        assert!(!net.nodes[i.index()].is_changing_view());
        assert!(st.retained <= 60, "replica {i}: {}", st.retained);
    }
}

#[test]
fn tamper_leaves_messages_it_does_not_apply_to_alone() {
    let s = Signer::new(4, CryptoKind::Model);
    let prepare = PbftMessage::Prepare(s.prepare(1, 0, 1, GENESIS));
    let pp = PbftMessage::PrePrepare(s.pre_prepare(0, 1, vec![request(1, 0)]));
    let ctx = |me: u16, to: u16| TamperContext {
        me: NodeId(me),
        to: NodeId(to),
        now: Time(1),
        committee: &s.committee,
        crypto: s.cryptos[usize::from(me)].as_ref(),
        entropy: 1,
    };
    let t = <Pbft as Adversarial>::tamper;
    assert_eq!(t(Attack::Equivocate, &prepare, &ctx(1, 3)), None);
    assert_eq!(
        t(Attack::Equivocate, &pp, &ctx(0, 2)),
        None,
        "even recipient"
    );
    assert_eq!(t(Attack::DoubleVote, &pp, &ctx(0, 1)), None);
    assert_eq!(
        t(Attack::Forge(Forgery::WrongDigest), &pp, &ctx(0, 1)),
        None
    );
    assert_eq!(
        t(
            Attack::Mutate(Mutation::RoundMinusOne),
            &prepare,
            &ctx(1, 2)
        ),
        None,
        "no view below 0"
    );
    let fetch = PbftMessage::Fetch(bft_pbft::Fetch { from_seq: 3 });
    assert_eq!(t(Attack::BadSignature, &fetch, &ctx(1, 2)), None);
}

#[test]
fn liveness_bound_is_3_capped_timeouts_per_view_for_n_plus_1_views() {
    // T = 200 ms · 2^6 (the default max_backoff_exponent) = 12.8 s; n = 4, f = 1:
    // T + 5 · 3T + 2 · 200 ms + 1 s = 12.8 + 192 + 0.4 + 1 = 206.2 s.
    let cfg = PbftConfig::default();
    assert_eq!(
        bft_pbft::capped_timeout(&cfg),
        Duration::from_millis(12_800)
    );
    assert_eq!(
        <Pbft as Adversarial>::liveness_bound(&cfg, 4),
        Duration::from_millis(206_200)
    );
}

/// `fork(plan)`: the primary's PRE-PREPARE(v, n) goes with another batch
/// exactly to the recipients the plan's choice for (v, n) picks — over 64
/// plans, every recipient both gets it and does not — and unchanged to
/// the rest.
#[test]
fn fork_plan_sends_the_other_batch_to_the_recipients_its_choice_picks() {
    let s = Signer::new(4, CryptoKind::Model);
    let pp = PbftMessage::PrePrepare(s.pre_prepare(0, 1, vec![request(1, 0), request(1, 1)]));
    let (mut forked, mut kept) = ([0; 4], [0; 4]);
    for plan in 0..64 {
        let choice = ForkChoice::of(plan, 4, 0, 1);
        for to in 1..4u16 {
            let ctx = TamperContext {
                me: NodeId(0),
                to: NodeId(to),
                now: Time(1),
                committee: &s.committee,
                crypto: s.cryptos[0].as_ref(),
                entropy: 1,
            };
            let out = <Pbft as Adversarial>::tamper(Attack::Fork(plan), &pp, &ctx);
            if choice.forks_to(NodeId(to)) {
                let out = out.expect("a forked recipient gets a message");
                assert_eq!(out.len(), 1);
                let (PbftMessage::PrePrepare(other), PbftMessage::PrePrepare(honest)) =
                    (&out[0], &pp)
                else {
                    panic!("{out:?}")
                };
                assert_eq!((other.view, other.seq), (honest.view, honest.seq));
                assert_ne!(other.batch, honest.batch);
                forked[usize::from(to)] += 1;
            } else {
                assert_eq!(out, None, "plan {plan}, recipient {to}");
                kept[usize::from(to)] += 1;
            }
        }
    }
    assert!(
        (1..4).all(|i| forked[i] > 0 && kept[i] > 0),
        "{forked:?} {kept:?}"
    );
}
