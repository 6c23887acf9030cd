//! What a Byzantine PBFT replica can do to the messages its honest core
//! emits ([`bft_core::Adversarial`]), and PBFT's liveness bound.

//!
//! A Byzantine replica signs with its own keys only (`ctx.crypto`). What each
//! attack does to PBFT's messages:
//!
//! - **Equivocate**: the primary's PRE-PREPARE(v, n) goes to odd-numbered
//!   recipients with another batch (the batch without its last request),
//!   properly signed. Rule 1 (one pre-prepare per (v, n)) and quorum
//!   intersection keep honest replicas from preparing both.
//! - **Fork(plan)**: the same, to the recipients the seeded plan picks for
//!   each (v, n) (`bft_core::ForkChoice`): nobody, some, or all of them.
//! - **DoubleVote**: each PREPARE/COMMIT is followed by one for another digest
//!   in the same (v, n): the second is a `duplicate-prepare`/`duplicate-commit`.
//! - **Forge**: the certificates it carries — VIEW-CHANGE's checkpoint proof C
//!   and prepared certificates P, NEW-VIEW's V (and the O recomputed from the
//!   forged V), STATE's checkpoint proof — lose a signature, repeat a signer,
//!   or are relabelled to another round or digest (keeping the signatures,
//!   which then cover something else); the envelope is re-signed.
//! - **InflateView(k)**: besides each message of view v, a valid VIEW-CHANGE
//!   for v + k with no certificates. One replica alone cannot move anybody
//!   (the f+1 rule); receivers keep at most two VIEW-CHANGEs per sender
//!   (the newest and the lowest still useful).
//! - **Mutate**: view ±1 (a CHECKPOINT's seq ±1, a FETCH's from-seq ±1),
//!   GENESIS as the digest (pre-prepare, votes, checkpoint state, VIEW-CHANGE
//!   stable state, NEW-VIEW's first O entry), or another replica as the
//!   author (votes, CHECKPOINT, VIEW-CHANGE); re-signed with its own key.
//! - **BadSignature**: one byte of every signature it makes is flipped.

use crate::config::PbftConfig;
use crate::messages::{
    Checkpoint, NewView, PbftMessage, PrePrepare, PreparedCert, StateTransfer, ViewChange, Vote,
    checkpoint_payload, domain, new_view_payload, pre_prepare_payload, view_change_payload,
    vote_payload,
};
use crate::replica::Pbft;
use crate::rules::plan_new_view;
use bft_core::{
    Adversarial, Attack, Crypto, Digest, Forgery, GENESIS, Mutation, NodeId, Request, Signature,
    TamperContext, batch_digest,
};
use std::time::Duration;

/// Slack for message delivery and batching after the last timer fires.
const DELIVERY_SLACK: Duration = Duration::from_secs(1);

/// The largest timeout a replica ever arms: `view_change_timeout ·
/// 2^max_backoff_exponent`
/// (timeouts double per failed view, the exponent capped, §4.5.2).
pub fn capped_timeout(cfg: &PbftConfig) -> Duration {
    cfg.view_change_timeout
        .saturating_mul(1u32 << cfg.max_backoff_exponent.min(16))
}

/// The liveness bound of PBFT, from the config's timeouts:
///
/// `bound = T + (n + 1) · 3T + (f + 1) · t₀ + 1 s`, with `t₀` =
/// `view_change_timeout`, `T = t₀ · 2^max_backoff_exponent` (the capped back-off), `f = ⌊(n−1)/3⌋`.
///
/// Derivation. When the network heals, every honest replica's armed timer
/// (request, VIEW-CHANGE retransmission or new-view) has at most T left:
/// that is the first T. From then on each failed view costs at most one
/// request timer (a backup suspects the primary), one retransmission of the
/// VIEW-CHANGEs a partition dropped (so q of them arrive) and one new-view
/// timer, each at most T: 3T per view. The f+1 join rule keeps honest
/// replicas within one view of each other, and the schedule reaches an
/// honest primary within n + 1 views (at most f faulty primaries in a row
/// under round-robin; a rotation naming every member, with a favourite
/// repeated at most n times, still reaches an honest one within n + 1),
/// whose NEW-VIEW every honest replica accepts. A replica that fell behind a
/// stable checkpoint fetches it by state transfer, asking at most f + 1
/// signers of the proof one after the other, each after the fetch timer t₀.
/// Then requests commit within a few message delays, covered by the final
/// second.
pub fn liveness_bound(cfg: &PbftConfig, n: usize) -> Duration {
    let capped = capped_timeout(cfg);
    let f = n.saturating_sub(1) / 3;
    let views = u32::try_from(n.saturating_add(1)).unwrap_or(u32::MAX);
    let fetches = u32::try_from(f.saturating_add(1)).unwrap_or(u32::MAX);
    capped
        .saturating_add(capped.saturating_mul(3).saturating_mul(views))
        .saturating_add(cfg.view_change_timeout.saturating_mul(fetches))
        .saturating_add(DELIVERY_SLACK)
}

impl Adversarial for Pbft {
    fn tamper(
        attack: Attack,
        msg: &PbftMessage,
        ctx: &TamperContext<'_>,
    ) -> Option<Vec<PbftMessage>> {
        match attack {
            Attack::Equivocate | Attack::Fork(_) => equivocate(attack, msg, ctx),
            Attack::DoubleVote => double_vote(msg, ctx),
            Attack::Forge(forgery) => forge(forgery, msg, ctx),
            Attack::InflateView(by) => inflate_view(by, msg, ctx),
            Attack::Mutate(mutation) => mutate(mutation, msg, ctx),
            Attack::BadSignature => bad_signature(msg),
        }
    }

    fn liveness_bound(cfg: &PbftConfig, n: usize) -> Duration {
        liveness_bound(cfg, n)
    }

    /// The request timer: a backup that holds a request the primary does
    /// not order within it starts a view change (new-view timers then double
    /// per failed view).
    fn crash_timeout(cfg: &PbftConfig) -> Option<(Duration, Duration)> {
        Some((cfg.view_change_timeout, capped_timeout(cfg)))
    }
}

// ----- signing with the Byzantine replica's own key ---------------------------

fn sign_pre_prepare(crypto: &dyn Crypto, view: u64, seq: u64, batch: Vec<Request>) -> PrePrepare {
    let digest = batch_digest(&batch);
    let sig = crypto.sign(
        domain::PRE_PREPARE,
        &pre_prepare_payload(view, seq, &digest),
    );
    PrePrepare {
        view,
        seq,
        digest,
        batch,
        sig,
    }
}

/// Re-signs a vote after its fields were changed (`dom`: PREPARE or COMMIT).
fn resign_vote(crypto: &dyn Crypto, dom: &'static str, mut v: Vote) -> Vote {
    v.sig = crypto.sign(dom, &vote_payload(v.view, v.seq, &v.digest, v.replica));
    v
}

fn resign_pre_prepare(crypto: &dyn Crypto, mut pp: PrePrepare) -> PrePrepare {
    pp.sig = crypto.sign(
        domain::PRE_PREPARE,
        &pre_prepare_payload(pp.view, pp.seq, &pp.digest),
    );
    pp
}

fn resign_checkpoint(crypto: &dyn Crypto, mut cp: Checkpoint) -> Checkpoint {
    cp.sig = crypto.sign(
        domain::CHECKPOINT,
        &checkpoint_payload(cp.seq, &cp.state, cp.replica),
    );
    cp
}

fn resign_view_change(crypto: &dyn Crypto, mut vc: ViewChange) -> ViewChange {
    vc.sig = crypto.sign(
        domain::VIEW_CHANGE,
        &view_change_payload(
            vc.new_view,
            vc.stable_seq,
            &vc.stable_state,
            &vc.prepared,
            vc.replica,
        ),
    );
    vc
}

/// Recomputes O from (a possibly forged) V, signs its pre-prepares and the
/// NEW-VIEW: what a Byzantine new primary can build around a forged V.
fn resign_new_view(crypto: &dyn Crypto, view: u64, view_changes: Vec<ViewChange>) -> NewView {
    let o: Vec<PrePrepare> = plan_new_view(&view_changes)
        .entries
        .into_iter()
        .map(|(seq, _, batch)| sign_pre_prepare(crypto, view, seq, batch))
        .collect();
    let sig = crypto.sign(domain::NEW_VIEW, &new_view_payload(view, &view_changes, &o));
    NewView {
        view,
        view_changes,
        pre_prepares: o,
        sig,
    }
}

/// Another batch for the same slot: without its last request (empty when it
/// had one). None for the null request (nothing to take away).
fn other_batch(batch: &[Request]) -> Option<Vec<Request>> {
    let (_, rest) = batch.split_last()?;
    Some(rest.to_vec())
}

/// A digest other than `d`: the null request's, or (if `d` is that) one
/// derived from the entropy.
fn other_digest(d: &Digest, entropy: u64) -> Digest {
    let null = batch_digest(&[]);
    if *d != null {
        null
    } else {
        Digest::of("bftbench/pbft/byzantine/other", &[&entropy.to_le_bytes()])
    }
}

// ----- Equivocate -------------------------------------------------------------

/// As primary: PRE-PREPARE(v, n) with another batch, signed, to the
/// recipients the attack picks ([`Attack::forks_to`]: odd ids for
/// `equivocate`, the plan's choice per (v, n) for `fork`); the others get
/// the honest one.
fn equivocate(
    attack: Attack,
    msg: &PbftMessage,
    ctx: &TamperContext<'_>,
) -> Option<Vec<PbftMessage>> {
    let PbftMessage::PrePrepare(pp) = msg else {
        return None;
    };
    if !attack.forks_to(ctx, pp.view, pp.seq) || ctx.committee.leader(pp.view) != ctx.me {
        return None;
    }
    let batch = other_batch(&pp.batch)?;
    let twin = sign_pre_prepare(ctx.crypto, pp.view, pp.seq, batch);
    Some(vec![PbftMessage::PrePrepare(twin)])
}

// ----- DoubleVote -------------------------------------------------------------

/// Each PREPARE/COMMIT, then one for another digest in the same (v, n).
fn double_vote(msg: &PbftMessage, ctx: &TamperContext<'_>) -> Option<Vec<PbftMessage>> {
    let (vote, dom, wrap): (&Vote, &'static str, fn(Vote) -> PbftMessage) = match msg {
        PbftMessage::Prepare(v) => (v, domain::PREPARE, PbftMessage::Prepare),
        PbftMessage::Commit(v) => (v, domain::COMMIT, PbftMessage::Commit),
        _ => return None,
    };
    let mut second = vote.clone();
    second.digest = other_digest(&vote.digest, ctx.entropy);
    Some(vec![
        msg.clone(),
        wrap(resign_vote(ctx.crypto, dom, second)),
    ])
}

// ----- Forge ------------------------------------------------------------------

/// Forges a prepared certificate in place; false if it could not.
fn forge_cert(forgery: Forgery, cert: &mut PreparedCert, entropy: u64) -> bool {
    match forgery {
        // 2f − 1 PREPAREs instead of 2f.
        Forgery::BelowQuorum => cert.prepares.pop().is_some(),
        // The last preparer replaced by a copy of the first.
        Forgery::DuplicateSigners => match cert.prepares.first().cloned() {
            Some(first) if cert.prepares.len() >= 2 => {
                let last = cert.prepares.len() - 1;
                cert.prepares[last] = first;
                true
            }
            _ => false,
        },
        // The certificate claims view v+1; the signatures are over v.
        Forgery::WrongRound => {
            let view = cert.pre_prepare.view.saturating_add(1);
            cert.pre_prepare.view = view;
            for p in &mut cert.prepares {
                p.view = view;
            }
            true
        }
        // The certificate claims another batch (digest bound to it); the
        // signatures are over the original digest.
        Forgery::WrongDigest => {
            let pp = &mut cert.pre_prepare;
            match other_batch(&pp.batch) {
                Some(batch) => {
                    pp.digest = batch_digest(&batch);
                    pp.batch = batch;
                }
                None => pp.digest = other_digest(&pp.digest, entropy),
            }
            let digest = pp.digest;
            for p in &mut cert.prepares {
                p.digest = digest;
            }
            true
        }
    }
}

/// Forges a checkpoint proof C for (seq, state) in place; false if there is
/// none (seq 0).
fn forge_checkpoint_proof(
    forgery: Forgery,
    seq: &mut u64,
    state: &mut Digest,
    proof: &mut Vec<Checkpoint>,
) -> bool {
    if *seq == 0 || proof.is_empty() {
        return false;
    }
    match forgery {
        Forgery::BelowQuorum => {
            proof.pop();
        }
        Forgery::DuplicateSigners => {
            let first = proof[0].clone();
            let last = proof.len() - 1;
            proof[last] = first;
        }
        // Claims checkpoint 2·seq (on the interval too) with signatures over seq.
        Forgery::WrongRound => {
            *seq = seq.saturating_mul(2);
            for c in proof.iter_mut() {
                c.seq = *seq;
            }
        }
        // Claims another state with signatures over the real one.
        Forgery::WrongDigest => {
            *state = Digest::of("bftbench/pbft/byzantine/state", &[state.as_bytes()]);
            for c in proof.iter_mut() {
                c.state = *state;
            }
        }
    }
    true
}

/// Forges C and every certificate of P inside a VIEW-CHANGE (not re-signed).
fn forge_view_change_certs(forgery: Forgery, vc: &mut ViewChange, entropy: u64) -> bool {
    let mut forged = forge_checkpoint_proof(
        forgery,
        &mut vc.stable_seq,
        &mut vc.stable_state,
        &mut vc.checkpoint_proof,
    );
    for cert in &mut vc.prepared {
        forged |= forge_cert(forgery, cert, entropy);
    }
    forged
}

fn forge(forgery: Forgery, msg: &PbftMessage, ctx: &TamperContext<'_>) -> Option<Vec<PbftMessage>> {
    match msg {
        PbftMessage::ViewChange(vc) => {
            let mut vc = vc.clone();
            if !forge_view_change_certs(forgery, &mut vc, ctx.entropy) {
                return None;
            }
            Some(vec![PbftMessage::ViewChange(resign_view_change(
                ctx.crypto, vc,
            ))])
        }
        PbftMessage::NewView(nv) => forge_new_view(forgery, nv, ctx),
        PbftMessage::State(st) => {
            let mut st: StateTransfer = st.clone();
            if !forge_checkpoint_proof(forgery, &mut st.seq, &mut st.state, &mut st.proof) {
                return None;
            }
            Some(vec![PbftMessage::State(st)])
        }
        _ => None,
    }
}

/// NEW-VIEW: V below a quorum (one VIEW-CHANGE dropped), or with one sender
/// twice, or with the other replicas' VIEW-CHANGE certificates relabelled;
/// O is recomputed from the forged V and everything the primary signs is
/// re-signed, so only V's own signatures can give the forgery away.
fn forge_new_view(
    forgery: Forgery,
    nv: &NewView,
    ctx: &TamperContext<'_>,
) -> Option<Vec<PbftMessage>> {
    let mut v = nv.view_changes.clone();
    let forged = match forgery {
        Forgery::BelowQuorum => v.pop().is_some(),
        Forgery::DuplicateSigners => match v.first().cloned() {
            Some(first) if v.len() >= 2 => {
                let last = v.len() - 1;
                v[last] = first;
                true
            }
            _ => false,
        },
        Forgery::WrongRound | Forgery::WrongDigest => {
            let mut any = false;
            for vc in v.iter_mut() {
                if vc.replica == ctx.me {
                    // Its own VIEW-CHANGE it could simply re-sign.
                    continue;
                }
                any |= forge_view_change_certs(forgery, vc, ctx.entropy);
            }
            any
        }
    };
    if !forged {
        return None;
    }
    Some(vec![PbftMessage::NewView(resign_new_view(
        ctx.crypto, nv.view, v,
    ))])
}

// ----- InflateView ------------------------------------------------------------

/// The view a message is about (None for CHECKPOINT, FETCH, STATE).
fn message_view(msg: &PbftMessage) -> Option<u64> {
    match msg {
        PbftMessage::ViewChange(vc) => Some(vc.new_view),
        PbftMessage::NewView(nv) => Some(nv.view),
        other => other.normal_case_view(),
    }
}

/// Besides the message, a valid VIEW-CHANGE for its view + `by`, carrying
/// the genesis checkpoint and no certificates.
fn inflate_view(by: u64, msg: &PbftMessage, ctx: &TamperContext<'_>) -> Option<Vec<PbftMessage>> {
    if by == 0 {
        return None;
    }
    let view = message_view(msg)?.saturating_add(by);
    let vc = resign_view_change(
        ctx.crypto,
        ViewChange {
            new_view: view,
            stable_seq: 0,
            stable_state: GENESIS,
            checkpoint_proof: Vec::new(),
            prepared: Vec::new(),
            replica: ctx.me,
            sig: Signature::default(),
        },
    );
    Some(vec![msg.clone(), PbftMessage::ViewChange(vc)])
}

// ----- Mutate -----------------------------------------------------------------

fn mutate(
    mutation: Mutation,
    msg: &PbftMessage,
    ctx: &TamperContext<'_>,
) -> Option<Vec<PbftMessage>> {
    let mutated = match mutation {
        Mutation::RoundPlusOne => shift_round(msg, true, ctx),
        Mutation::RoundMinusOne => shift_round(msg, false, ctx),
        Mutation::StaleDigest => stale_digest(msg, ctx),
        Mutation::SwapSender => swap_sender(msg, ctx),
    }?;
    Some(vec![mutated])
}

fn shift(x: u64, up: bool) -> Option<u64> {
    if up {
        x.checked_add(1)
    } else {
        x.checked_sub(1)
    }
}

/// View ± 1 (CHECKPOINT: seq ± 1; FETCH: from-seq ± 1), re-signed.
fn shift_round(msg: &PbftMessage, up: bool, ctx: &TamperContext<'_>) -> Option<PbftMessage> {
    let c = ctx.crypto;
    Some(match msg {
        PbftMessage::PrePrepare(pp) => {
            let mut pp = pp.clone();
            pp.view = shift(pp.view, up)?;
            PbftMessage::PrePrepare(resign_pre_prepare(c, pp))
        }
        PbftMessage::Prepare(v) => {
            let mut v = v.clone();
            v.view = shift(v.view, up)?;
            PbftMessage::Prepare(resign_vote(c, domain::PREPARE, v))
        }
        PbftMessage::Commit(v) => {
            let mut v = v.clone();
            v.view = shift(v.view, up)?;
            PbftMessage::Commit(resign_vote(c, domain::COMMIT, v))
        }
        PbftMessage::Checkpoint(cp) => {
            let mut cp = cp.clone();
            cp.seq = shift(cp.seq, up)?;
            PbftMessage::Checkpoint(resign_checkpoint(c, cp))
        }
        PbftMessage::ViewChange(vc) => {
            let mut vc = vc.clone();
            vc.new_view = shift(vc.new_view, up)?;
            PbftMessage::ViewChange(resign_view_change(c, vc))
        }
        PbftMessage::NewView(nv) => {
            let view = shift(nv.view, up)?;
            let v = nv.view_changes.clone();
            PbftMessage::NewView(resign_new_view(c, view, v))
        }
        PbftMessage::Fetch(f) => {
            let mut f = f.clone();
            f.from_seq = shift(f.from_seq, up)?;
            PbftMessage::Fetch(f)
        }
        PbftMessage::State(_) => return None,
    })
}

/// GENESIS in place of the digest it should carry, re-signed.
fn stale_digest(msg: &PbftMessage, ctx: &TamperContext<'_>) -> Option<PbftMessage> {
    let c = ctx.crypto;
    Some(match msg {
        PbftMessage::PrePrepare(pp) => {
            let mut pp = pp.clone();
            pp.digest = GENESIS;
            PbftMessage::PrePrepare(resign_pre_prepare(c, pp))
        }
        PbftMessage::Prepare(v) => {
            let mut v = v.clone();
            v.digest = GENESIS;
            PbftMessage::Prepare(resign_vote(c, domain::PREPARE, v))
        }
        PbftMessage::Commit(v) => {
            let mut v = v.clone();
            v.digest = GENESIS;
            PbftMessage::Commit(resign_vote(c, domain::COMMIT, v))
        }
        PbftMessage::Checkpoint(cp) => {
            let mut cp = cp.clone();
            cp.state = GENESIS;
            PbftMessage::Checkpoint(resign_checkpoint(c, cp))
        }
        PbftMessage::ViewChange(vc) if vc.stable_seq > 0 => {
            let mut vc = vc.clone();
            vc.stable_state = GENESIS;
            PbftMessage::ViewChange(resign_view_change(c, vc))
        }
        PbftMessage::NewView(nv) if !nv.pre_prepares.is_empty() => {
            let mut nv = nv.clone();
            nv.pre_prepares[0].digest = GENESIS;
            nv.pre_prepares[0] = resign_pre_prepare(c, nv.pre_prepares[0].clone());
            nv.sig = c.sign(
                domain::NEW_VIEW,
                &new_view_payload(nv.view, &nv.view_changes, &nv.pre_prepares),
            );
            PbftMessage::NewView(nv)
        }
        _ => return None,
    })
}

/// The replica after `me` (mod n) named as the author, signed with own key.
fn swap_sender(msg: &PbftMessage, ctx: &TamperContext<'_>) -> Option<PbftMessage> {
    let n = ctx.committee.n();
    let other = NodeId(u16::try_from((ctx.me.index() + 1) % n.max(1)).ok()?);
    if other == ctx.me {
        return None;
    }
    let c = ctx.crypto;
    Some(match msg {
        PbftMessage::Prepare(v) => {
            let mut v = v.clone();
            v.replica = other;
            PbftMessage::Prepare(resign_vote(c, domain::PREPARE, v))
        }
        PbftMessage::Commit(v) => {
            let mut v = v.clone();
            v.replica = other;
            PbftMessage::Commit(resign_vote(c, domain::COMMIT, v))
        }
        PbftMessage::Checkpoint(cp) => {
            let mut cp = cp.clone();
            cp.replica = other;
            PbftMessage::Checkpoint(resign_checkpoint(c, cp))
        }
        PbftMessage::ViewChange(vc) => {
            let mut vc = vc.clone();
            vc.replica = other;
            PbftMessage::ViewChange(resign_view_change(c, vc))
        }
        _ => return None,
    })
}

// ----- BadSignature -----------------------------------------------------------

fn flip(sig: &mut Signature) {
    sig.0[0] ^= 0x01;
}

/// One byte of every signature this replica made flipped (FETCH and STATE
/// carry none of its own).
fn bad_signature(msg: &PbftMessage) -> Option<Vec<PbftMessage>> {
    let mut m = msg.clone();
    match &mut m {
        PbftMessage::PrePrepare(pp) => flip(&mut pp.sig),
        PbftMessage::Prepare(v) | PbftMessage::Commit(v) => flip(&mut v.sig),
        PbftMessage::Checkpoint(cp) => flip(&mut cp.sig),
        PbftMessage::ViewChange(vc) => flip(&mut vc.sig),
        PbftMessage::NewView(nv) => {
            flip(&mut nv.sig);
            for pp in &mut nv.pre_prepares {
                flip(&mut pp.sig);
            }
        }
        PbftMessage::Fetch(_) | PbftMessage::State(_) => return None,
    }
    Some(vec![m])
}
