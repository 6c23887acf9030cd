//! `equivocate` and `fork`: the proposer's PROPOSAL for (h, r) goes to the
//! recipients the attack picks with another block, validly signed, with the
//! honest proposal's justification. An honest replica accepts one proposal
//! per round; a re-proposal's other block is `not-highest-prepared`.

use super::{alternative_block, own};
use crate::messages::{Proposal, ProposalPayload, QbftMessage, Signed};
use bft_core::{Attack, TamperContext};

/// `equivocate` and `fork`: the recipients the attack picks
/// ([`Attack::forks_to`]: odd ids, or the plan's choice per (h, r)) get a
/// PROPOSAL for the same (h, r) and another block, validly signed, with
/// the honest proposal's justification.
pub(super) fn equivocate(
    attack: Attack,
    msg: &QbftMessage,
    ctx: &TamperContext<'_>,
) -> Option<Vec<QbftMessage>> {
    let QbftMessage::Proposal(p) = msg else {
        return None;
    };
    let (height, round) = (p.signed.payload.height, p.signed.payload.round);
    if !own(msg, ctx) || !attack.forks_to(ctx, round, height) {
        return None;
    }
    let block = alternative_block(&p.block)?;
    let signed = Signed::sign(
        ctx.crypto,
        ProposalPayload {
            digest: block.hash(),
            ..p.signed.payload.clone()
        },
    );
    Some(vec![QbftMessage::Proposal(Box::new(Proposal {
        signed,
        block,
        round_changes: p.round_changes.clone(),
        prepares: p.prepares.clone(),
    }))])
}
