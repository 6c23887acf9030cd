//! The edits the generic attacks (`bft_core::adversary::edit`) make to
//! HotStuff's messages. A vote is re-signed with the Byzantine replica's own
//! BLS key over exactly what it claims, so only the edited field is wrong;
//! proposals and NEW-VIEWs carry no signature of their own (the block's QC
//! is someone else's and is kept).
//!
//! - round: the view of a proposal, vote or NEW-VIEW. A block's view then
//!   names another leader (`wrong-proposer`) or breaks the QC-view rule; a
//!   vote or NEW-VIEW reaches a replica that does not lead the view after.
//! - stale digest: a proposal extends genesis with the genesis QC at height
//!   1 (well-formed, so it is the vote rule that must refuse it once a
//!   replica is locked above genesis); a vote names genesis (a vote carries
//!   no older digest: it can join no QC); a NEW-VIEW's last vote names the
//!   highQC's block (the previous certified block) instead of the block
//!   voted for.
//! - author: HotStuff's only authorship claim is the proposer, the leader
//!   the schedule names for the block's view (votes and NEW-VIEWs are
//!   attributed to the authenticated sender, with no field to swap): the
//!   block claims the first later view `author` leads.
//! - conflicting vote: the replica's own vote for another block in the same
//!   view; the next leader refuses the second (`equivocating-vote`).
//! - round change: NEW-VIEW(view, the best QC the message holds: the
//!   proposal's justify, the NEW-VIEW's highQC, genesis for a vote). The QC
//!   is genuine, so the NEW-VIEW is valid; one sender is not n − f, and
//!   views beyond `future_views` are refused.
//! - bad signatures: one byte of every BLS signature: votes, the QCs of
//!   proposals, NEW-VIEWs (and their last vote), fetched blocks.
//! - swapped payload: a proposal's first request with another payload (the
//!   block hash follows; a proposal carries no signature of its own).

use super::{other_digest, own_vote};
use crate::types::{Block, Message, NewView, QuorumCert, Vote};
use bft_core::swapped_payload;
use bft_core::{GENESIS, Height, MessageEdit, NodeId, TamperContext, View};

impl MessageEdit for Message {
    fn round(&self) -> Option<u64> {
        match self {
            Message::Proposal(block) => Some(block.view.0),
            Message::Vote(vote) => Some(vote.view.0),
            Message::NewView(nv) => Some(nv.view.0),
            Message::BlockRequest { .. }
            | Message::BlockResponse(_)
            | Message::BlocksAfter { .. }
            | Message::SnapshotRequest { .. }
            | Message::Snapshot(_) => None,
        }
    }

    fn with_round_shifted(
        &self,
        shift: fn(u64) -> Option<u64>,
        ctx: &TamperContext<'_>,
    ) -> Option<Self> {
        let view = View(shift(self.round()?)?);
        match self {
            Message::Proposal(block) => Some(Message::Proposal(Block {
                view,
                ..block.clone()
            })),
            Message::Vote(vote) => Some(Message::Vote(own_vote(ctx, view, vote.block))),
            Message::NewView(nv) => Some(Message::NewView(NewView { view, ..nv.clone() })),
            Message::BlockRequest { .. }
            | Message::BlockResponse(_)
            | Message::BlocksAfter { .. }
            | Message::SnapshotRequest { .. }
            | Message::Snapshot(_) => None,
        }
    }

    fn with_stale_digest(&self, ctx: &TamperContext<'_>) -> Option<Self> {
        match self {
            Message::Proposal(block) => Some(Message::Proposal(Block {
                parent: GENESIS,
                height: Height(1),
                justify: QuorumCert::genesis(),
                ..block.clone()
            })),
            Message::Vote(vote) => Some(Message::Vote(own_vote(ctx, vote.view, GENESIS))),
            Message::NewView(nv) => {
                let vote = nv.last_vote.as_ref()?;
                Some(Message::NewView(NewView {
                    last_vote: Some(own_vote(ctx, vote.view, nv.high_qc.block)),
                    ..nv.clone()
                }))
            }
            Message::BlockRequest { .. }
            | Message::BlockResponse(_)
            | Message::BlocksAfter { .. }
            | Message::SnapshotRequest { .. }
            | Message::Snapshot(_) => None,
        }
    }

    fn with_author(&self, author: NodeId, ctx: &TamperContext<'_>) -> Option<Self> {
        let Message::Proposal(block) = self else {
            return None;
        };
        let n = ctx.committee.n() as u64;
        let view = (1..=n.saturating_mul(2))
            .map(|k| View(block.view.0.saturating_add(k)))
            .find(|v| ctx.committee.leader(v.0) == author)?;
        Some(Message::Proposal(Block {
            view,
            ..block.clone()
        }))
    }

    fn conflicting_vote(&self, ctx: &TamperContext<'_>) -> Option<Self> {
        let Message::Vote(vote) = self else {
            return None;
        };
        let other = other_digest(b"double-vote", &vote.block);
        Some(Message::Vote(own_vote(ctx, vote.view, other)))
    }

    fn round_change(&self, round: u64, _ctx: &TamperContext<'_>) -> Option<Self> {
        let high_qc = match self {
            Message::Proposal(block) => block.justify.clone(),
            Message::Vote(_) => QuorumCert::genesis(),
            Message::NewView(nv) => nv.high_qc.clone(),
            Message::BlockRequest { .. }
            | Message::BlockResponse(_)
            | Message::BlocksAfter { .. }
            | Message::SnapshotRequest { .. }
            | Message::Snapshot(_) => return None,
        };
        Some(Message::NewView(NewView {
            view: View(round),
            high_qc,
            last_vote: None,
        }))
    }

    fn with_payload_swapped(&self, _ctx: &TamperContext<'_>) -> Option<Self> {
        let Message::Proposal(block) = self else {
            return None;
        };
        let mut block = block.clone();
        let first = block.batch.first_mut()?;
        *first = swapped_payload(first);
        Some(Message::Proposal(block))
    }

    fn with_bad_signatures(&self) -> Option<Self> {
        Some(match self {
            Message::Proposal(block) => Message::Proposal(corrupt_block(block)),
            Message::Vote(vote) => Message::Vote(corrupt_vote(vote)),
            Message::NewView(nv) => Message::NewView(NewView {
                view: nv.view,
                high_qc: corrupt_qc(nv.high_qc.clone()),
                last_vote: nv.last_vote.as_ref().map(corrupt_vote),
            }),
            Message::BlockResponse(chain) => {
                Message::BlockResponse(chain.iter().map(corrupt_block).collect())
            }
            Message::BlockRequest { .. }
            | Message::BlocksAfter { .. }
            | Message::SnapshotRequest { .. }
            | Message::Snapshot(_) => {
                return None;
            }
        })
    }
}

fn corrupt_vote(vote: &Vote) -> Vote {
    Vote {
        signature: vote.signature.corrupted(),
        ..vote.clone()
    }
}

fn corrupt_qc(mut qc: QuorumCert) -> QuorumCert {
    qc.signature.signature = qc.signature.signature.corrupted();
    qc
}

/// The block's justify QC with a corrupted signature (the parent link is
/// unchanged; the block hash binds the QC's view and block, not its bytes).
fn corrupt_block(block: &Block) -> Block {
    Block {
        justify: corrupt_qc(block.justify.clone()),
        ..block.clone()
    }
}
