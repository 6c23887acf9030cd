//! `forge(forgery)`: the certificates a PBFT replica carries (VIEW-CHANGE's
//! checkpoint proof C and prepared certificates P, NEW-VIEW's V and the O
//! recomputed from it, STATE's checkpoint proof) lose a signature, repeat a
//! signer, or are relabelled to another view or digest, keeping the
//! signatures, which then cover something else. What the Byzantine replica
//! signs itself (the envelope, O) is re-signed, so only the forged
//! certificate can give it away.

use super::{other_batch, other_digest, resign_new_view};
use crate::messages::{Checkpoint, NewView, PbftMessage, PreparedCert, StateTransfer, ViewChange};
use bft_core::{Digest, Forgery, TamperContext, batch_digest};

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

pub(super) fn forge(
    forgery: Forgery,
    msg: &PbftMessage,
    ctx: &TamperContext<'_>,
) -> Option<Vec<PbftMessage>> {
    match msg {
        PbftMessage::ViewChange(vc) => {
            let mut vc = vc.clone();
            if !forge_view_change_certs(forgery, &mut vc, ctx.entropy) {
                return None;
            }
            Some(vec![PbftMessage::ViewChange(vc.signed_by(ctx.crypto))])
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
