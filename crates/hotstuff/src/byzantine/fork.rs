//! Conflicting proposals and votes: `equivocate`, the seeded `fork` plans
//! and `double-vote`.

use super::*;

// ----------------------------------------------------------------------
// Equivocate
// ----------------------------------------------------------------------

/// As leader: odd-id recipients get a second block for the same view, same
/// parent, height and justify QC, other batch. The odd recipients are fewer
/// than n−f, so the second block can never be certified by honest votes.
pub(super) fn equivocate(msg: &Message, ctx: &TamperContext<'_>) -> Option<Vec<Message>> {
    let Message::Proposal(block) = msg else {
        return None;
    };
    if ctx.to.0.is_multiple_of(2) {
        return None;
    }
    Some(vec![Message::Proposal(Block {
        batch: other_batch(&block.batch)?,
        ..block.clone()
    })])
}

/// As leader, with its memory of what it sent: odd-id recipients get a
/// block for the same view built on an OLDER QC the replica held (the
/// justify of one of its earlier proposals), when there is one: a fork
/// below the lock of the replicas that voted since, the "indirect chain"
/// shape (the fork's QC leaves a view gap below the honest chain). Every
/// third view, or with no older QC in the history, the same-QC twin of
/// [`equivocate`]. The choice depends on the view only, so every odd
/// recipient gets the same fork and it can gather votes.
///
/// The fork is well-formed (parent = the QC's block, height = the earlier
/// proposal's, which extended that block too); only the vote rule keeps
/// honest replicas locked above it from voting for it.
pub(super) fn equivocate_with_history(
    msg: &Message,
    history: &[Message],
    ctx: &TamperContext<'_>,
) -> Option<Vec<Message>> {
    match msg {
        Message::Proposal(block) => {
            if ctx.to.0.is_multiple_of(2) {
                return None;
            }
            match fork_below(block, history) {
                Some(fork) => Some(vec![Message::Proposal(fork)]),
                None => equivocate(msg, ctx),
            }
        }
        // Its own vote for a block it proposed goes to the fork instead (the
        // same fork, rebuilt from the same history): with the odd
        // recipients' votes it can be certified, which is what a fork
        // below the lock needs to matter.
        Message::Vote(vote) => {
            let own = own_proposal(vote, history)?;
            let fork = fork_below(own, history)?;
            Some(vec![Message::Vote(own_vote(ctx, fork.view, fork.hash()))])
        }
        _ => None,
    }
}

/// The fork of `block` on an older QC from the history (see
/// [`equivocate_with_history`]); `None` every third view or when there is
/// no older QC.
pub(super) fn fork_below(block: &Block, history: &[Message]) -> Option<Block> {
    let older = older_justifications(block, history);
    if older.is_empty() || block.view.0.is_multiple_of(3) {
        return None;
    }
    let index = usize::try_from(block.view.0 / 3).unwrap_or(0) % older.len();
    let (justify, height) = older.get(index)?.clone();
    Some(rebased(block, justify, height))
}

/// The distinct non-genesis QCs (with the height of a block extending each)
/// that the replica's earlier proposals carried, older than `block`'s own
/// QC, newest first.
pub(super) fn older_justifications(
    block: &Block,
    history: &[Message],
) -> Vec<(QuorumCert, Height)> {
    let mut older: Vec<(QuorumCert, Height)> = Vec::new();
    for sent in history.iter().rev() {
        let Message::Proposal(earlier) = sent else {
            continue;
        };
        let qc = &earlier.justify;
        if qc.is_genesis()
            || qc.view >= block.justify.view
            || earlier.parent != qc.block
            || older
                .iter()
                .any(|(known, _)| known.view == qc.view && known.block == qc.block)
        {
            continue;
        }
        older.push((qc.clone(), earlier.height));
    }
    older
}

// ----------------------------------------------------------------------
// Fork (a seeded plan per view)
// ----------------------------------------------------------------------

/// `fork(plan)` as leader, knowing its own state: in each view it leads,
/// the plan ([`ForkChoice`]) picks which recipients get a conflicting
/// block — built on the certified block `depth` QCs below the honest
/// block's own QC among those the replica holds ([`fork_below_held`]: the
/// fork below the lock of whoever voted since, the indirect-chain shape),
/// or, holding none, the same-QC block with another batch. The others get
/// the honest block. Its own vote goes to the version more peers got (the
/// fork on a tie), so either version can gather a quorum.
///
/// This is one Byzantine identity choosing, view by view, who sees which
/// block — what a Twins pair does with two states, done with one.
pub(super) fn fork(
    core: &HotStuff,
    plan: u64,
    msg: &Message,
    sent: &[Message],
    ctx: &TamperContext<'_>,
) -> Option<Vec<Message>> {
    match msg {
        Message::Proposal(block) => {
            let choice = ForkChoice::of(plan, ctx.committee.n(), block.view.0, 0);
            if !choice.forks_to(ctx.to) {
                return None;
            }
            Some(vec![Message::Proposal(planned_fork(core, block, choice)?)])
        }
        Message::Vote(vote) => {
            let own = own_proposal(vote, sent)?;
            let choice = ForkChoice::of(plan, ctx.committee.n(), vote.view.0, 0);
            let peers: Vec<NodeId> = ctx.committee.ids().filter(|&id| id != ctx.me).collect();
            let forked = choice.forked_among(peers.iter().copied());
            if forked == 0 || 2 * forked < peers.len() {
                return None;
            }
            let fork = planned_fork(core, own, choice)?;
            Some(vec![Message::Vote(own_vote(ctx, fork.view, fork.hash()))])
        }
        _ => None,
    }
}

/// The conflicting block of a `fork` plan for `block`'s view: on an older
/// held QC, else with another batch (none for an empty batch: a request no
/// client sent could then be certified, which is not the attack).
pub(super) fn planned_fork(core: &HotStuff, block: &Block, choice: ForkChoice) -> Option<Block> {
    fork_below_held(core, block, choice.depth).or_else(|| other_batch_twin(block))
}

/// `block` with another batch, the same for every recipient of the view;
/// none for an empty batch.
pub(super) fn other_batch_twin(block: &Block) -> Option<Block> {
    Some(Block {
        batch: other_batch(&block.batch)?,
        ..block.clone()
    })
}

/// `block` rebuilt on `justify`, at the height of a child of its block.
pub(super) fn rebased(block: &Block, justify: QuorumCert, height: Height) -> Block {
    Block {
        parent: justify.block,
        height,
        justify,
        ..block.clone()
    }
}

/// `block` rebuilt on the `depth`-th newest non-genesis QC the replica
/// holds below `block.justify`'s view whose block it has (for the height),
/// `depth` taken modulo their number (at most [`FORK_DEPTHS`]).
pub(super) fn fork_below_held(core: &HotStuff, block: &Block, depth: usize) -> Option<Block> {
    let older: Vec<(&QuorumCert, Height)> = core
        .certificates()
        .rev()
        .filter(|qc| !qc.is_genesis() && qc.view < block.justify.view)
        .filter_map(|qc| Some((qc, core.block(&qc.block)?.height)))
        .take(usize::try_from(FORK_DEPTHS).unwrap_or(1))
        .collect();
    let (justify, parent_height) = older.get(depth % older.len().max(1))?;
    Some(rebased(block, (*justify).clone(), parent_height.next()))
}

/// The core's own earlier proposal that `vote` is for, if it is one.
pub(super) fn own_proposal<'a>(vote: &Vote, sent: &'a [Message]) -> Option<&'a Block> {
    sent.iter().rev().find_map(|m| match m {
        Message::Proposal(b) if b.view == vote.view && b.hash() == vote.block => Some(b),
        _ => None,
    })
}

/// `fork(plan)` without the replica's state ([`Adversarial::tamper`]): the
/// plan's recipients get the same-QC block with another batch.
pub(super) fn same_qc_fork(
    plan: u64,
    msg: &Message,
    ctx: &TamperContext<'_>,
) -> Option<Vec<Message>> {
    let Message::Proposal(block) = msg else {
        return None;
    };
    if !Attack::Fork(plan).forks_to(ctx, block.view.0, 0) {
        return None;
    }
    Some(vec![Message::Proposal(other_batch_twin(block)?)])
}

/// Another payload of requests clients really signed: the batch reversed,
/// or one request shorter; none for an empty batch (a made-up request
/// would carry no valid client signature, and honest replicas would drop
/// the proposal unseen).
pub(super) fn other_batch(batch: &[Request]) -> Option<Vec<Request>> {
    match batch.len() {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some(batch.iter().rev().cloned().collect()),
    }
}
