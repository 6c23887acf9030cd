//! The view change's rules (TOCS 2002 §4.4): where a VIEW-CHANGE goes,
//! the prepared certificates and checkpoint proof it carries (batches by
//! digest), and the O a NEW-VIEW must re-propose, computed from V the same
//! way at the new primary and at every backup.

use super::{Rules, check_checkpoint_proof};
use crate::error::PbftError;
use crate::messages::{
    Checkpoint, PrePrepare, PreparedCert, ViewChange, domain, pre_prepare_payload,
    view_change_payload, vote_payload,
};
use crate::verified::SigBatch;
use bft_core::{Digest, GENESIS, batch_digest};
use std::collections::{BTreeMap, BTreeSet};

/// What a VIEW-CHANGE for `target` is to a replica in `view` (active in
/// it, or changing to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewChangePlace {
    /// For the view this replica has already entered: slow, its NEW-VIEW
    /// is on its way to the sender; ignored.
    Late,
    /// One this replica holds already (a retransmission); ignored.
    Duplicate,
    /// To be checked ([`check_view_change`]) and kept.
    New,
}

/// **View-change receipt** (§4.4), in this order: a VIEW-CHANGE for a view
/// below the current one is `stale-view`; one for the current view once it
/// is active is late; one the replica holds from this sender for this
/// target (`held`) is a duplicate; otherwise it is new. An older
/// VIEW-CHANGE than the sender's newest is still new: a newer one does not
/// withdraw it. The caller answers a sender that missed a NEW-VIEW before
/// acting on the result.
pub fn view_change_place(
    target: u64,
    view: u64,
    active: bool,
    held: bool,
) -> Result<ViewChangePlace, PbftError> {
    if target < view {
        return Err(PbftError::StaleView {
            view: target,
            current: view,
        });
    }
    if target == view && active {
        return Ok(ViewChangePlace::Late);
    }
    if held {
        return Ok(ViewChangePlace::Duplicate);
    }
    Ok(ViewChangePlace::New)
}

/// Queues the signature of a pre-prepare, signed by the primary of its view.
pub fn push_pre_prepare(rules: &Rules<'_>, pp: &PrePrepare, sigs: &mut SigBatch) {
    sigs.push(
        rules.primary(pp.view),
        domain::PRE_PREPARE,
        pre_prepare_payload(pp.view, pp.seq, &pp.digest),
        pp.sig,
    );
}

/// **By digest** (§4.4): a pre-prepare in VIEW-CHANGE's P or NEW-VIEW's O
/// names its batch by digest and carries no batch (`batch-not-by-digest`),
/// so a view change stays a few kilobytes per slot whatever the batch size.
pub fn check_by_digest(pp: &PrePrepare) -> Result<(), PbftError> {
    if pp.batch.is_empty() {
        Ok(())
    } else {
        Err(PbftError::BatchNotByDigest { seq: pp.seq })
    }
}

/// A prepared certificate is a pre-prepare for (v, n, d), named by digest
/// ([`check_by_digest`]), plus at least quorum − 1 (2f when n = 3f+1) PREPAREs for exactly (v, n, d) from distinct backups of
/// v — the primary's PREPARE does not count (wrong in the wild: counting the
/// primary as a preparer).
pub fn check_prepared_cert(
    rules: &Rules<'_>,
    cert: &PreparedCert,
    sigs: &mut SigBatch,
) -> Result<(), PbftError> {
    let pp = &cert.pre_prepare;
    check_by_digest(pp)?;
    push_pre_prepare(rules, pp, sigs);
    let primary = rules.primary(pp.view);
    let mut signers = BTreeSet::new();
    for p in &cert.prepares {
        if (p.view, p.seq, p.digest) != (pp.view, pp.seq, pp.digest) {
            return Err(PbftError::BadPreparedCert("prepare does not match"));
        }
        if p.replica == primary {
            return Err(PbftError::BadPreparedCert("prepare from the primary"));
        }
        if !rules.committee.contains(p.replica) || !signers.insert(p.replica) {
            return Err(PbftError::BadPreparedCert("unknown or duplicate preparer"));
        }
        sigs.push(
            p.replica,
            domain::PREPARE,
            vote_payload(p.view, p.seq, &p.digest, p.replica),
            p.sig,
        );
    }
    if signers.len() < rules.prepare_quorum() {
        return Err(PbftError::BadPreparedCert("fewer than quorum - 1 prepares"));
    }
    Ok(())
}

/// Structure of a VIEW-CHANGE for view v+1: a valid C; certificates with
/// strictly increasing seq, each in (n, n+L] above its stable checkpoint n
/// and from a view below v+1; and the sender's signature over all of it.
/// Signatures are queued, not yet verified.
pub fn check_view_change(
    rules: &Rules<'_>,
    vc: &ViewChange,
    sigs: &mut SigBatch,
) -> Result<(), PbftError> {
    if !rules.committee.contains(vc.replica) {
        return Err(PbftError::BadViewChange("unknown replica"));
    }
    check_checkpoint_proof(
        rules,
        vc.stable_seq,
        &vc.stable_state,
        &vc.checkpoint_proof,
        sigs,
    )?;
    let mut last_seq = vc.stable_seq;
    for cert in &vc.prepared {
        let pp = &cert.pre_prepare;
        if pp.seq <= last_seq || pp.seq > vc.stable_seq.saturating_add(rules.window) {
            return Err(PbftError::BadViewChange(
                "certificate seq out of order or outside the window",
            ));
        }
        if pp.view >= vc.new_view {
            return Err(PbftError::BadViewChange("certificate from a view >= v+1"));
        }
        last_seq = pp.seq;
        check_prepared_cert(rules, cert, sigs)?;
    }
    sigs.push(
        vc.replica,
        domain::VIEW_CHANGE,
        view_change_payload(
            vc.new_view,
            vc.stable_seq,
            &vc.stable_state,
            &vc.prepared,
            vc.replica,
        ),
        vc.sig,
    );
    Ok(())
}

/// What a NEW-VIEW must contain, computed from V.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewViewPlan {
    /// min-s: the latest stable checkpoint in V.
    pub min_s: u64,
    pub stable_state: Digest,
    pub stable_proof: Vec<Checkpoint>,
    /// max-s: the highest seq of a prepared certificate in V (min-s if none).
    pub max_s: u64,
    /// One entry per seq in (min-s, max-s], in order: the digest to
    /// re-propose.
    pub entries: Vec<(u64, Digest)>,
}

/// Computes O from V (TOCS 2002, §4.4, "new-view message"):
/// - min-s = the latest stable checkpoint in V, max-s = the highest seq in a
///   prepared certificate in V;
/// - **safety rule**: for every n in (min-s, max-s], re-propose the digest of
///   the certificate from the *highest* view among V's certificates for n
///   (wrong in the wild: the lowest view);
/// - **no gaps**: a seq with no certificate gets a null request (empty batch)
///   (wrong in the wild: leaving the gap).
///
/// Certificates from one view for one seq always agree (2f prepares each,
/// quorum intersection), so the tie-break on digest is only for determinism.
pub fn plan_new_view(view_changes: &[ViewChange]) -> NewViewPlan {
    plan_new_view_by(view_changes, Prefer::HighestView)
}

/// Which certificate O takes per seq: the real rule, or the planted bug.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Prefer {
    HighestView,
    #[cfg(feature = "mutants")]
    LowestView,
}

pub(super) fn plan_new_view_by(view_changes: &[ViewChange], prefer: Prefer) -> NewViewPlan {
    let mut min_s = 0;
    let mut stable_state = GENESIS;
    let mut stable_proof = Vec::new();
    for vc in view_changes {
        if vc.stable_seq > min_s {
            min_s = vc.stable_seq;
            stable_state = vc.stable_state;
            stable_proof = vc.checkpoint_proof.clone();
        }
    }
    let mut chosen: BTreeMap<u64, &PrePrepare> = BTreeMap::new();
    for cert in view_changes.iter().flat_map(|vc| &vc.prepared) {
        let pp = &cert.pre_prepare;
        if pp.seq <= min_s {
            continue;
        }
        let better = match chosen.get(&pp.seq) {
            None => true,
            Some(cur) => {
                let higher = (pp.view, std::cmp::Reverse(pp.digest))
                    > (cur.view, std::cmp::Reverse(cur.digest));
                match prefer {
                    Prefer::HighestView => higher,
                    // MUTANT(o-set-lowest-view): the certificate from the lowest view wins.
                    #[cfg(feature = "mutants")]
                    Prefer::LowestView => pp.view < cur.view,
                }
            }
        };
        if better {
            chosen.insert(pp.seq, pp);
        }
    }
    let max_s = chosen.keys().next_back().copied().unwrap_or(min_s);
    let entries = (min_s.saturating_add(1)..=max_s)
        .map(|seq| match chosen.get(&seq) {
            Some(pp) => (seq, pp.digest),
            None => (seq, batch_digest(&[])),
        })
        .collect();
    NewViewPlan {
        min_s,
        stable_state,
        stable_proof,
        max_s,
        entries,
    }
}
