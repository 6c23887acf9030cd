//! The edits the generic attacks (`bft_core::adversary::edit`) make to
//! PBFT's messages. Every edited message is re-signed with the Byzantine
//! replica's own key, so only the edited field is wrong:
//!
//! - round: the view (a VIEW-CHANGE's new view, a NEW-VIEW's view, with O
//!   recomputed and re-signed); a CHECKPOINT's sequence number and a
//!   FETCH's from-sequence stand in for it under `mutate(round±1)`;
//! - stale digest: GENESIS as the digest of a pre-prepare, vote, checkpoint
//!   state, VIEW-CHANGE stable state or NEW-VIEW's first O entry;
//! - author: a vote's, CHECKPOINT's or VIEW-CHANGE's replica field;
//! - conflicting vote: a PREPARE/COMMIT for another digest in the same
//!   (v, n) (the null request's, or one derived from the run's entropy);
//! - round change: a VIEW-CHANGE for the view with the genesis checkpoint
//!   and no certificates;
//! - bad signatures: byte 0 of the signatures on the messages it sends: its
//!   own, and a forwarded NEW-VIEW's (the primary's, on the NEW-VIEW and
//!   its O); FETCH and STATE carry none of their own, and the certificates
//!   inside VIEW-CHANGEs, NEW-VIEW's V and STATE stay intact.
//!
//! - swapped payload: a PRE-PREPARE's first request, its digest recomputed.
//!
//! A NEW-VIEW a backup forwards is not its own: `mutate` leaves it alone.

use super::{other_digest, resign_new_view};
use crate::messages::{PbftMessage, ViewChange, domain, new_view_payload};
use bft_core::{
    GENESIS, MessageEdit, NodeId, Signature, TamperContext, batch_digest, swapped_payload,
};

impl MessageEdit for PbftMessage {
    /// A backup forwards the primary's NEW-VIEW (to a replica still changing
    /// to that view): it is the Byzantine replica's own only if it leads
    /// the view. Every other message it sends it signed itself.
    fn is_own(&self, ctx: &TamperContext<'_>) -> bool {
        match self {
            PbftMessage::NewView(nv) => ctx.committee.leader(nv.view) == ctx.me,
            _ => true,
        }
    }

    /// The view a message is about (None for CHECKPOINT, FETCH, STATE).
    fn round(&self) -> Option<u64> {
        match self {
            PbftMessage::ViewChange(vc) => Some(vc.new_view),
            PbftMessage::NewView(nv) => Some(nv.view),
            other => other.normal_case_view(),
        }
    }

    fn with_round_shifted(
        &self,
        shift: fn(u64) -> Option<u64>,
        ctx: &TamperContext<'_>,
    ) -> Option<Self> {
        let c = ctx.crypto;
        Some(match self {
            PbftMessage::PrePrepare(pp) => {
                let mut pp = pp.clone();
                pp.view = shift(pp.view)?;
                PbftMessage::PrePrepare(pp.signed_by(c))
            }
            PbftMessage::Prepare(v) => {
                let mut v = v.clone();
                v.view = shift(v.view)?;
                PbftMessage::Prepare(v.signed_by(c, domain::PREPARE))
            }
            PbftMessage::Commit(v) => {
                let mut v = v.clone();
                v.view = shift(v.view)?;
                PbftMessage::Commit(v.signed_by(c, domain::COMMIT))
            }
            PbftMessage::Checkpoint(cp) => {
                let mut cp = cp.clone();
                cp.seq = shift(cp.seq)?;
                PbftMessage::Checkpoint(cp.signed_by(c))
            }
            PbftMessage::ViewChange(vc) => {
                let mut vc = vc.clone();
                vc.new_view = shift(vc.new_view)?;
                PbftMessage::ViewChange(vc.signed_by(c))
            }
            PbftMessage::NewView(nv) => {
                let view = shift(nv.view)?;
                PbftMessage::NewView(resign_new_view(c, view, nv.view_changes.clone()))
            }
            PbftMessage::Fetch(f) => {
                let mut f = f.clone();
                f.from_seq = shift(f.from_seq)?;
                PbftMessage::Fetch(f)
            }
            PbftMessage::SnapshotRequest { slot } => PbftMessage::SnapshotRequest {
                slot: shift(*slot)?,
            },
            PbftMessage::State(_) | PbftMessage::Snapshot(_) => return None,
        })
    }

    fn with_stale_digest(&self, ctx: &TamperContext<'_>) -> Option<Self> {
        let c = ctx.crypto;
        Some(match self {
            PbftMessage::PrePrepare(pp) => {
                let mut pp = pp.clone();
                pp.digest = GENESIS;
                PbftMessage::PrePrepare(pp.signed_by(c))
            }
            PbftMessage::Prepare(v) => {
                let mut v = v.clone();
                v.digest = GENESIS;
                PbftMessage::Prepare(v.signed_by(c, domain::PREPARE))
            }
            PbftMessage::Commit(v) => {
                let mut v = v.clone();
                v.digest = GENESIS;
                PbftMessage::Commit(v.signed_by(c, domain::COMMIT))
            }
            PbftMessage::Checkpoint(cp) => {
                let mut cp = cp.clone();
                cp.state = GENESIS;
                PbftMessage::Checkpoint(cp.signed_by(c))
            }
            PbftMessage::ViewChange(vc) if vc.stable_seq > 0 => {
                let mut vc = vc.clone();
                vc.stable_state = GENESIS;
                PbftMessage::ViewChange(vc.signed_by(c))
            }
            PbftMessage::NewView(nv) if !nv.pre_prepares.is_empty() => {
                let mut nv = nv.clone();
                nv.pre_prepares[0].digest = GENESIS;
                nv.pre_prepares[0] = nv.pre_prepares[0].clone().signed_by(c);
                nv.sig = c.sign(
                    domain::NEW_VIEW,
                    &new_view_payload(nv.view, &nv.view_changes, &nv.pre_prepares),
                );
                PbftMessage::NewView(nv)
            }
            _ => return None,
        })
    }

    fn with_author(&self, author: NodeId, ctx: &TamperContext<'_>) -> Option<Self> {
        let c = ctx.crypto;
        Some(match self {
            PbftMessage::Prepare(v) => {
                let mut v = v.clone();
                v.replica = author;
                PbftMessage::Prepare(v.signed_by(c, domain::PREPARE))
            }
            PbftMessage::Commit(v) => {
                let mut v = v.clone();
                v.replica = author;
                PbftMessage::Commit(v.signed_by(c, domain::COMMIT))
            }
            PbftMessage::Checkpoint(cp) => {
                let mut cp = cp.clone();
                cp.replica = author;
                PbftMessage::Checkpoint(cp.signed_by(c))
            }
            PbftMessage::ViewChange(vc) => {
                let mut vc = vc.clone();
                vc.replica = author;
                PbftMessage::ViewChange(vc.signed_by(c))
            }
            _ => return None,
        })
    }

    fn conflicting_vote(&self, ctx: &TamperContext<'_>) -> Option<Self> {
        let c = ctx.crypto;
        Some(match self {
            PbftMessage::Prepare(v) => {
                let mut v = v.clone();
                v.digest = other_digest(&v.digest, ctx.entropy);
                PbftMessage::Prepare(v.signed_by(c, domain::PREPARE))
            }
            PbftMessage::Commit(v) => {
                let mut v = v.clone();
                v.digest = other_digest(&v.digest, ctx.entropy);
                PbftMessage::Commit(v.signed_by(c, domain::COMMIT))
            }
            _ => return None,
        })
    }

    fn round_change(&self, round: u64, ctx: &TamperContext<'_>) -> Option<Self> {
        let vc = ViewChange {
            new_view: round,
            stable_seq: 0,
            stable_state: GENESIS,
            checkpoint_proof: Vec::new(),
            prepared: Vec::new(),
            replica: ctx.me,
            sig: Signature::default(),
        };
        Some(PbftMessage::ViewChange(vc.signed_by(ctx.crypto)))
    }

    /// A PRE-PREPARE with another payload under its first request's id:
    /// the digest recomputed over the new batch and re-signed.
    fn with_payload_swapped(&self, ctx: &TamperContext<'_>) -> Option<Self> {
        let PbftMessage::PrePrepare(pp) = self else {
            return None;
        };
        let mut pp = pp.clone();
        let first = pp.batch.first_mut()?;
        *first = swapped_payload(first);
        pp.digest = batch_digest(&pp.batch);
        Some(PbftMessage::PrePrepare(pp.signed_by(ctx.crypto)))
    }

    fn with_bad_signatures(&self) -> Option<Self> {
        let mut m = self.clone();
        match &mut m {
            PbftMessage::PrePrepare(pp) => pp.sig = pp.sig.corrupted(),
            PbftMessage::Prepare(v) | PbftMessage::Commit(v) => v.sig = v.sig.corrupted(),
            PbftMessage::Checkpoint(cp) => cp.sig = cp.sig.corrupted(),
            PbftMessage::ViewChange(vc) => vc.sig = vc.sig.corrupted(),
            PbftMessage::NewView(nv) => {
                nv.sig = nv.sig.corrupted();
                for pp in &mut nv.pre_prepares {
                    pp.sig = pp.sig.corrupted();
                }
            }
            PbftMessage::Fetch(_)
            | PbftMessage::State(_)
            | PbftMessage::SnapshotRequest { .. }
            | PbftMessage::Snapshot(_) => return None,
        }
        Some(m)
    }
}
