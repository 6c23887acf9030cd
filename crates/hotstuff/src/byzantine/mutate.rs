//! Small-scope mutations and noise: `inflate-view`, `mutate` and
//! `bad-signature`.

use super::*;

// ----------------------------------------------------------------------
// View inflation
// ----------------------------------------------------------------------

/// Besides each proposal, vote or NEW-VIEW: a NEW-VIEW for its view + `by`
/// carrying the best QC the message holds (the proposal's justify, the
/// NEW-VIEW's highQC; genesis for a vote). The QC is genuine, so the
/// NEW-VIEW is valid; it moves no one (one sender is not n−f, and views
/// beyond `future_views` are refused).
pub(super) fn inflate_view(by: u64, msg: &Message) -> Option<Vec<Message>> {
    let (view, high_qc) = match msg {
        Message::Proposal(block) => (block.view, block.justify.clone()),
        Message::Vote(vote) => (vote.view, QuorumCert::genesis()),
        Message::NewView(nv) => (nv.view, nv.high_qc.clone()),
        Message::BlockRequest { .. } | Message::BlockResponse(_) => return None,
    };
    let inflated = NewView {
        view: View(view.0.saturating_add(by)),
        high_qc,
        last_vote: None,
    };
    Some(vec![msg.clone(), Message::NewView(inflated)])
}

// ----------------------------------------------------------------------
// Small-scope mutations
// ----------------------------------------------------------------------

pub(super) fn mutate(
    mutation: Mutation,
    msg: &Message,
    ctx: &TamperContext<'_>,
) -> Option<Vec<Message>> {
    let mutated = match mutation {
        Mutation::RoundPlusOne => shift_view(msg, ctx, |v| v.next())?,
        Mutation::RoundMinusOne => shift_view(msg, ctx, View::prev)?,
        Mutation::StaleDigest => stale_digest(msg, ctx)?,
        Mutation::SwapSender => swap_sender(msg, ctx)?,
    };
    Some(vec![mutated])
}

/// The message's view moved by `shift`; a vote is re-signed over the new
/// view (so its signature is valid and only the view is wrong). A block's
/// view names another leader (`wrong-proposer`) or breaks the QC-view rule;
/// a vote or NEW-VIEW reaches a replica that does not lead the view after.
pub(super) fn shift_view(
    msg: &Message,
    ctx: &TamperContext<'_>,
    shift: impl Fn(View) -> View,
) -> Option<Message> {
    match msg {
        Message::Proposal(block) => Some(Message::Proposal(Block {
            view: shift(block.view),
            ..block.clone()
        })),
        Message::Vote(vote) => Some(Message::Vote(own_vote(ctx, shift(vote.view), vote.block))),
        Message::NewView(nv) => Some(Message::NewView(NewView {
            view: shift(nv.view),
            ..nv.clone()
        })),
        Message::BlockRequest { .. } | Message::BlockResponse(_) => None,
    }
}

/// An older digest in place of the current one, re-signed:
/// - a proposal: the block extends genesis with the genesis QC (the
///   stalest block everyone holds) at height 1: well-formed, so it is the
///   vote rule that must refuse it once a replica is locked above genesis;
/// - a NEW-VIEW: its last vote names the highQC's block (the previous
///   certified block) instead of the block voted for, re-signed;
/// - a vote: names genesis (a vote carries no older digest), re-signed: a
///   vote that can join no QC.
pub(super) fn stale_digest(msg: &Message, ctx: &TamperContext<'_>) -> Option<Message> {
    match msg {
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
        Message::BlockRequest { .. } | Message::BlockResponse(_) => None,
    }
}

/// HotStuff's only authorship claim is the proposer: the leader the
/// schedule names for the block's view (votes and NEW-VIEWs are attributed
/// to the authenticated sender, with no field to swap). The block claims
/// the next view that another replica leads: `wrong-proposer`.
pub(super) fn swap_sender(msg: &Message, ctx: &TamperContext<'_>) -> Option<Message> {
    let Message::Proposal(block) = msg else {
        return None;
    };
    let n = ctx.committee.n() as u64;
    let view = (1..=n.saturating_mul(2))
        .map(|k| View(block.view.0.saturating_add(k)))
        .find(|v| ctx.committee.leader(v.0) != ctx.me)?;
    Some(Message::Proposal(Block {
        view,
        ..block.clone()
    }))
}

// ----------------------------------------------------------------------
// Bad signatures
// ----------------------------------------------------------------------

/// One byte of every BLS signature flipped: votes, the QCs of proposals,
/// NEW-VIEWs (and their last vote) and fetched blocks.
pub(super) fn bad_signature(msg: &Message) -> Option<Vec<Message>> {
    let corrupted = match msg {
        Message::Proposal(block) => Message::Proposal(corrupt_block(block)),
        Message::Vote(vote) => Message::Vote(Vote {
            signature: flip(vote.signature),
            ..vote.clone()
        }),
        Message::NewView(nv) => Message::NewView(NewView {
            view: nv.view,
            high_qc: flip_qc(nv.high_qc.clone()),
            last_vote: nv.last_vote.clone().map(|v| Vote {
                signature: flip(v.signature),
                ..v
            }),
        }),
        Message::BlockResponse(chain) => {
            Message::BlockResponse(chain.iter().map(corrupt_block).collect())
        }
        Message::BlockRequest { .. } => return None,
    };
    Some(vec![corrupted])
}

/// The block's justify QC with a flipped signature byte (the parent link is
/// unchanged; the block hash binds the QC's view and block, not its bytes).
pub(super) fn corrupt_block(block: &Block) -> Block {
    Block {
        justify: flip_qc(block.justify.clone()),
        ..block.clone()
    }
}
