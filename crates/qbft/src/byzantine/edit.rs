//! The edits the generic attacks (`bft_core::adversary::edit`) make to
//! QBFT's messages. The attacks that re-sign apply only to messages the
//! Byzantine replica authored (not to the DECIDED blocks it relays to a
//! lagging peer, which pass unchanged):
//!
//! - round: the outer payload's round, re-signed (a COMMIT's seal is over
//!   the digest alone and stays valid);
//! - stale digest: the parent's hash where the current block's belongs (a
//!   PROPOSAL's digest, a prepared ROUND-CHANGE's prepared value),
//!   re-signed; PREPARE and COMMIT carry no parent hash, so none;
//! - author: the outer author field (the signature stays the sender's own);
//! - conflicting vote: a PREPARE or COMMIT (seal included) for a digest no
//!   honest replica voted for, at the same (h, r);
//! - round change: a ROUND-CHANGE for (the message's height, the round),
//!   carrying the message's prepared certificate if it is a prepared
//!   ROUND-CHANGE (still valid: the prepared round stays below);
//! - bad signatures: byte 0 of every signature (the outer one, a COMMIT's
//!   seal, every justification entry, a DECIDED message's seals).
//!
//! - swapped payload: a PROPOSAL's block with its first request's payload
//!   replaced, the proposal payload's digest (the block hash) re-signed.
//!   A round > 0 proposal's justification then no longer matches a
//!   prepared block; honest replicas refuse on the client signature first.
//!
//! A DECIDED message (a relayed block with its seals) has no round-change
//! edits: it is never the replica's own.

use super::conflicting_digest;
use crate::messages::{
    CommitPayload, PreparePayload, ProposalPayload, QbftMessage, RoundChange, RoundChangePayload,
    Signed, signed_commit,
};
use bft_core::{MessageEdit, NodeId, TamperContext, swapped_payload};

impl MessageEdit for QbftMessage {
    fn round(&self) -> Option<u64> {
        Some(QbftMessage::round(self))
    }

    /// A DECIDED message is relayed data (its seals are others'): never own.
    fn is_own(&self, ctx: &TamperContext<'_>) -> bool {
        !matches!(self, QbftMessage::Decided(_)) && self.author() == Some(ctx.me)
    }

    fn with_round_shifted(
        &self,
        shift: fn(u64) -> Option<u64>,
        ctx: &TamperContext<'_>,
    ) -> Option<Self> {
        let round = shift(QbftMessage::round(self))?;
        let crypto = ctx.crypto;
        Some(match self {
            QbftMessage::Proposal(p) => {
                let mut p = p.clone();
                p.signed = Signed::sign(
                    crypto,
                    ProposalPayload {
                        round,
                        ..p.signed.payload.clone()
                    },
                );
                QbftMessage::Proposal(p)
            }
            QbftMessage::Prepare(v) => QbftMessage::Prepare(Signed::sign(
                crypto,
                PreparePayload {
                    round,
                    ..v.payload.clone()
                },
            )),
            QbftMessage::Commit(c) => QbftMessage::Commit(Signed::sign(
                crypto,
                CommitPayload {
                    round,
                    ..c.payload.clone()
                },
            )),
            QbftMessage::RoundChange(rc) => {
                let mut rc = rc.clone();
                rc.signed = Signed::sign(
                    crypto,
                    RoundChangePayload {
                        round,
                        ..rc.signed.payload.clone()
                    },
                );
                QbftMessage::RoundChange(rc)
            }
            QbftMessage::Decided(_)
            | QbftMessage::SnapshotRequest { .. }
            | QbftMessage::Snapshot(_) => return None,
        })
    }

    fn with_stale_digest(&self, ctx: &TamperContext<'_>) -> Option<Self> {
        match self {
            QbftMessage::Proposal(p) => {
                let mut p = p.clone();
                p.signed = Signed::sign(
                    ctx.crypto,
                    ProposalPayload {
                        digest: p.block.parent,
                        ..p.signed.payload.clone()
                    },
                );
                Some(QbftMessage::Proposal(p))
            }
            QbftMessage::RoundChange(rc) => {
                let parent = rc.prepared_block.as_ref()?.parent;
                let mut rc = rc.clone();
                rc.signed = Signed::sign(
                    ctx.crypto,
                    RoundChangePayload {
                        prepared_value: Some(parent),
                        ..rc.signed.payload.clone()
                    },
                );
                Some(QbftMessage::RoundChange(rc))
            }
            QbftMessage::Prepare(_)
            | QbftMessage::Commit(_)
            | QbftMessage::Decided(_)
            | QbftMessage::SnapshotRequest { .. }
            | QbftMessage::Snapshot(_) => None,
        }
    }

    fn with_author(&self, author: NodeId, _ctx: &TamperContext<'_>) -> Option<Self> {
        let mut msg = self.clone();
        match &mut msg {
            QbftMessage::Proposal(p) => p.signed.author = author,
            QbftMessage::Prepare(v) => v.author = author,
            QbftMessage::Commit(c) => c.author = author,
            QbftMessage::RoundChange(rc) => rc.signed.author = author,
            QbftMessage::Decided(_)
            | QbftMessage::SnapshotRequest { .. }
            | QbftMessage::Snapshot(_) => return None,
        }
        Some(msg)
    }

    fn conflicting_vote(&self, ctx: &TamperContext<'_>) -> Option<Self> {
        match self {
            QbftMessage::Prepare(p) => Some(QbftMessage::Prepare(Signed::sign(
                ctx.crypto,
                PreparePayload {
                    digest: conflicting_digest(&p.payload.digest),
                    ..p.payload.clone()
                },
            ))),
            QbftMessage::Commit(c) => Some(QbftMessage::Commit(signed_commit(
                ctx.crypto,
                c.payload.height,
                c.payload.round,
                conflicting_digest(&c.payload.digest),
            ))),
            QbftMessage::Proposal(_)
            | QbftMessage::RoundChange(_)
            | QbftMessage::Decided(_)
            | QbftMessage::SnapshotRequest { .. }
            | QbftMessage::Snapshot(_) => None,
        }
    }

    /// None for catch-up (DECIDED, snapshots): a DECIDED's round is not
    /// signed, and a helper's catch-up says nothing about the round it is in.
    fn round_change(&self, round: u64, ctx: &TamperContext<'_>) -> Option<Self> {
        if matches!(
            self,
            QbftMessage::Decided(_)
                | QbftMessage::SnapshotRequest { .. }
                | QbftMessage::Snapshot(_)
        ) {
            return None;
        }
        let (prepared, prepared_block, prepares) = match self {
            QbftMessage::RoundChange(rc) => (
                rc.signed.payload.prepared(),
                rc.prepared_block.clone(),
                rc.prepares.clone(),
            ),
            _ => (None, None, Vec::new()),
        };
        let change = RoundChange {
            signed: Signed::sign(
                ctx.crypto,
                RoundChangePayload {
                    height: self.height(),
                    round,
                    prepared_round: prepared.map(|(r, _)| r),
                    prepared_value: prepared.map(|(_, v)| v),
                },
            ),
            prepared_block,
            prepares,
        };
        Some(QbftMessage::RoundChange(Box::new(change)))
    }

    fn with_payload_swapped(&self, ctx: &TamperContext<'_>) -> Option<Self> {
        let QbftMessage::Proposal(p) = self else {
            return None;
        };
        let mut p = p.clone();
        let first = p.block.requests.first_mut()?;
        *first = swapped_payload(first);
        p.signed = Signed::sign(
            ctx.crypto,
            ProposalPayload {
                digest: p.block.hash(),
                ..p.signed.payload.clone()
            },
        );
        Some(QbftMessage::Proposal(p))
    }

    fn with_bad_signatures(&self) -> Option<Self> {
        let mut msg = self.clone();
        match &mut msg {
            QbftMessage::Proposal(p) => {
                p.signed.signature = p.signed.signature.corrupted();
                for rc in &mut p.round_changes {
                    rc.signature = rc.signature.corrupted();
                }
                for v in &mut p.prepares {
                    v.signature = v.signature.corrupted();
                }
            }
            QbftMessage::Prepare(v) => v.signature = v.signature.corrupted(),
            QbftMessage::Commit(c) => {
                c.signature = c.signature.corrupted();
                c.payload.seal = c.payload.seal.corrupted();
            }
            QbftMessage::RoundChange(rc) => {
                rc.signed.signature = rc.signed.signature.corrupted();
                for v in &mut rc.prepares {
                    v.signature = v.signature.corrupted();
                }
            }
            QbftMessage::Decided(certs) => {
                for (_, seal) in certs.iter_mut().flat_map(|c| &mut c.seals) {
                    *seal = seal.corrupted();
                }
            }
            QbftMessage::SnapshotRequest { .. } | QbftMessage::Snapshot(_) => return None,
        }
        Some(msg)
    }
}
