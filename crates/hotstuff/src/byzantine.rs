//! What a Byzantine HotStuff replica does to the messages its honest core
//! emits ([`bft_core::Adversarial`]), and how long after the network heals
//! every honest replica must commit again.
//!
//! HotStuff messages carry no author field and no signature of their own:
//! the sender is the authenticated transport sender, and the only
//! signatures are BLS votes (a partial signature over
//! [`vote_payload`]`(view, block)`) and QC aggregates. So "properly signed"
//! below means: every vote is the Byzantine replica's own BLS partial
//! signature over exactly what it claims ([`TamperContext::crypto`] holds
//! its own keys only), and every QC is either one its honest core holds or
//! a forgery that must fail the QC rule.
//!
//! | attack | applies to | what goes out |
//! |---|---|---|
//! | equivocate | proposal | odd-id recipients get another block for the view: on an older QC from the replica's earlier proposals (a fork below the lock), or the same parent/height/QC with another batch (every third view, or no older QC held) |
//! | double-vote | vote | the vote, plus an own-signed vote for another block in the same view |
//! | forge | proposal, new-view (non-genesis QC) | the QC forged: bits cleared, one signer repeated, view shifted, or block changed |
//! | inflate-view(k) | proposal, vote, new-view | the message, plus NEW-VIEW(view + k, its best QC) |
//! | mutate(round±1) | proposal, vote, new-view | the view ± 1 (a vote re-signed) |
//! | mutate(stale-digest) | proposal, vote, new-view | a block on genesis; a vote (re-signed) / the NEW-VIEW's last vote for an older block |
//! | mutate(swap-sender) | proposal | the block claims a view another replica leads |
//! | fork(plan) | proposal, own vote | per view, a seeded choice of recipients get another block: on an older QC the replica holds, or with another batch; its own vote goes to the version more peers got |
//! | bad-signature | proposal, vote, new-view, block-response | one byte of every BLS signature flipped |

use crate::config::HotStuffConfig;
use crate::replica::HotStuff;
use crate::types::{Block, Message, NewView, QuorumCert, VOTE_DOMAIN, Vote, vote_payload};
use bft_core::{
    Adversarial, Attack, BlsSignature, Digest, FORK_DEPTHS, Forgery, ForkChoice, GENESIS, Height,
    LeaderSchedule, Mutation, NodeId, Request, RequestId, SignerBitmap, TamperContext, View,
};
use std::time::Duration;

impl Adversarial for HotStuff {
    fn tamper(attack: Attack, msg: &Message, ctx: &TamperContext<'_>) -> Option<Vec<Message>> {
        match attack {
            Attack::Equivocate => equivocate(msg, ctx),
            Attack::Fork(plan) => same_qc_fork(plan, msg, ctx),
            Attack::DoubleVote => double_vote(msg, ctx),
            Attack::Forge(forgery) => forge_message(forgery, msg, ctx),
            Attack::InflateView(by) => inflate_view(by, msg),
            Attack::Mutate(mutation) => mutate(mutation, msg, ctx),
            Attack::BadSignature => bad_signature(msg),
        }
    }

    fn tamper_with_memory(
        &self,
        attack: Attack,
        msg: &Message,
        sent: &[Message],
        ctx: &TamperContext<'_>,
    ) -> Option<Vec<Message>> {
        match attack {
            Attack::Equivocate => equivocate_with_history(msg, sent, ctx),
            Attack::Fork(plan) => fork(self, plan, msg, sent, ctx),
            _ => Self::tamper(attack, msg, ctx),
        }
    }

    fn liveness_bound(cfg: &HotStuffConfig, n: usize) -> Duration {
        liveness_bound(cfg, n)
    }

    fn liveness_bound_for(cfg: &HotStuffConfig, n: usize, leaders: &LeaderSchedule) -> Duration {
        liveness_bound_for(cfg, n, leaders)
    }

    /// The view timer (the pacemaker doubles it per view that times out
    /// before progress, up to `max_view_timeout`).
    fn crash_timeout(cfg: &HotStuffConfig) -> Option<(Duration, Duration)> {
        Some((cfg.view_timeout, cfg.max_view_timeout))
    }

    /// Two passes through the rotation, each past every crashed leader: a
    /// commit needs three views in a row with honest leaders and a fourth
    /// to certify them (Algorithm 4's 3-chain), and the honest runs between
    /// crashed leaders may be shorter, so the pacemaker may time out on each
    /// crashed leader of a rotation, twice, before the run that commits.
    /// (The fuzzer found one pass past the longest run too few with two
    /// crashed replicas apart at n = 7.)
    fn crash_timeouts(_run: usize, per_rotation: usize) -> usize {
        2 * per_rotation
    }
}

// ----------------------------------------------------------------------
// Liveness bound
// ----------------------------------------------------------------------

/// Views after the heal within which the leader schedule is guaranteed to
/// contain a decisive run, for a committee of `n`.
///
/// A commit needs a direct 3-chain (Algorithm 4: b'' → b' → b with views
/// v, v+1, v+2) whose three blocks are proposed by honest leaders, plus one
/// more view whose leader forms QC(v+2) (from the votes, or from the last
/// votes carried by NEW-VIEWs when that leader is the faulty one) and
/// proposes it: 4 views. The rotation names all n members; with at most f
/// faulty, the 2f+1 honest ones of a cyclic rotation of length n fall into
/// at most f runs, so some run is ≥ ⌈(2f+1)/f⌉ ≥ 3 long. A window of 2n
/// consecutive views contains a whole cycle including any run that wraps
/// around, so 2n views then the 4 of the run itself bound the wait; two
/// more capped timeouts let replicas that were in different views at the
/// heal synchronise ([`crate::pacemaker`]: every stuck replica re-sends its
/// NEW-VIEW within one capped timeout, and the first re-send may reach a
/// replica that never got the original, which answers only the next).
///
/// (A rotation longer than n, e.g. [`bft_core::LeaderSchedule::favouring`]
/// with weight w, has length n − 1 + w: [`liveness_bound_for`] widens the
/// window to that cycle.)
pub fn decisive_views(n: usize) -> u64 {
    2 * n as u64 + 6
}

/// The liveness bound: [`decisive_views`]`(n)` views, each lasting at most
/// the capped view timer `max_view_timeout` (a view that succeeds ends
/// earlier, on its QC).
///
/// `bound = (2n + 6) · max_view_timeout`. Generous (it assumes every view
/// fails at the cap) but finite; with the defaults (30 s cap) at n = 4 it
/// is 420 s of simulated time.
pub fn liveness_bound(cfg: &HotStuffConfig, n: usize) -> Duration {
    let views = u32::try_from(decisive_views(n)).unwrap_or(u32::MAX);
    cfg.max_view_timeout.saturating_mul(views)
}

/// [`liveness_bound`] under `leaders`: the derivation's window must hold a
/// whole cycle of the rotation, which is longer than n when a favourite is
/// listed several times, so the window is twice the longer of the two
/// (plus the pinned prefix). The fuzzer found `2n + 5` views too short for
/// a faulty favourite of weight 4 at n = 4 (rotation of 7): the honest run
/// committed at view 32, 55 s after the heal, past the 52 s bound.
pub fn liveness_bound_for(cfg: &HotStuffConfig, n: usize, leaders: &LeaderSchedule) -> Duration {
    let cycle = n.max(leaders.rotation.len()) + leaders.prefix.len();
    let views = u32::try_from(decisive_views(cycle)).unwrap_or(u32::MAX);
    cfg.max_view_timeout.saturating_mul(views)
}

// ----------------------------------------------------------------------
// Helpers
// ----------------------------------------------------------------------

/// The Byzantine replica's own vote for (view, block).
fn own_vote(ctx: &TamperContext<'_>, view: View, block: Digest) -> Vote {
    Vote {
        view,
        block,
        signature: ctx
            .crypto
            .bls_sign(VOTE_DOMAIN, &vote_payload(view, &block)),
    }
}

/// A digest no honest block has: the tampering's "other block".
fn other_digest(tag: &[u8], of: &Digest) -> Digest {
    Digest::of("bftbench/hotstuff/byzantine/v1", &[tag, of.as_bytes()])
}

/// The signature with one byte flipped (the last: a compressed BLS point's
/// flag bits are in the first byte, so this stays a plausible encoding).
fn flip(sig: BlsSignature) -> BlsSignature {
    let mut bytes = sig.0;
    if let Some(last) = bytes.last_mut() {
        *last ^= 0x01;
    }
    BlsSignature(bytes)
}

fn flip_qc(mut qc: QuorumCert) -> QuorumCert {
    qc.signature.signature = flip(qc.signature.signature);
    qc
}

/// A block rebuilt with `justify` (and the parent it certifies): the hash
/// changes, everything else stays.
fn with_justify(block: &Block, justify: QuorumCert) -> Block {
    Block {
        parent: justify.block,
        justify,
        ..block.clone()
    }
}

// ----------------------------------------------------------------------
// Equivocate
// ----------------------------------------------------------------------

/// As leader: odd-id recipients get a second block for the same view, same
/// parent, height and justify QC, other batch. The odd recipients are fewer
/// than n−f, so the second block can never be certified by honest votes.
fn equivocate(msg: &Message, ctx: &TamperContext<'_>) -> Option<Vec<Message>> {
    let Message::Proposal(block) = msg else {
        return None;
    };
    if ctx.to.0 % 2 == 0 {
        return None;
    }
    Some(vec![Message::Proposal(Block {
        batch: other_batch(&block.batch, ctx.entropy),
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
fn equivocate_with_history(
    msg: &Message,
    history: &[Message],
    ctx: &TamperContext<'_>,
) -> Option<Vec<Message>> {
    match msg {
        Message::Proposal(block) => {
            if ctx.to.0 % 2 == 0 {
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
fn fork_below(block: &Block, history: &[Message]) -> Option<Block> {
    let older = older_justifications(block, history);
    if older.is_empty() || block.view.0 % 3 == 0 {
        return None;
    }
    let index = usize::try_from(block.view.0 / 3).unwrap_or(0) % older.len();
    let (justify, height) = older.get(index)?.clone();
    Some(rebased(block, justify, height))
}

/// The distinct non-genesis QCs (with the height of a block extending each)
/// that the replica's earlier proposals carried, older than `block`'s own
/// QC, newest first.
fn older_justifications(block: &Block, history: &[Message]) -> Vec<(QuorumCert, Height)> {
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
fn fork(
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
            Some(vec![Message::Proposal(planned_fork(
                core, plan, block, choice,
            )?)])
        }
        Message::Vote(vote) => {
            let own = own_proposal(vote, sent)?;
            let choice = ForkChoice::of(plan, ctx.committee.n(), vote.view.0, 0);
            let peers: Vec<NodeId> = ctx.committee.ids().filter(|&id| id != ctx.me).collect();
            let forked = choice.forked_among(peers.iter().copied());
            if forked == 0 || 2 * forked < peers.len() {
                return None;
            }
            let fork = planned_fork(core, plan, own, choice)?;
            Some(vec![Message::Vote(own_vote(ctx, fork.view, fork.hash()))])
        }
        _ => None,
    }
}

/// The conflicting block of a `fork` plan for `block`'s view: on an older
/// held QC, else with another batch (none for an empty batch: a request no
/// client sent could then be certified, which is not the attack).
fn planned_fork(core: &HotStuff, plan: u64, block: &Block, choice: ForkChoice) -> Option<Block> {
    fork_below_held(core, block, choice.depth).or_else(|| other_batch_twin(plan, block))
}

/// `block` with another batch, the same for every recipient of the view
/// (seeded by the plan and the view); none for an empty batch.
fn other_batch_twin(plan: u64, block: &Block) -> Option<Block> {
    (!block.batch.is_empty()).then(|| Block {
        batch: other_batch(&block.batch, plan ^ block.view.0),
        ..block.clone()
    })
}

/// `block` rebuilt on `justify`, at the height of a child of its block.
fn rebased(block: &Block, justify: QuorumCert, height: Height) -> Block {
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
fn fork_below_held(core: &HotStuff, block: &Block, depth: usize) -> Option<Block> {
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
fn own_proposal<'a>(vote: &Vote, sent: &'a [Message]) -> Option<&'a Block> {
    sent.iter().rev().find_map(|m| match m {
        Message::Proposal(b) if b.view == vote.view && b.hash() == vote.block => Some(b),
        _ => None,
    })
}

/// `fork(plan)` without the replica's state ([`Adversarial::tamper`]): the
/// plan's recipients get the same-QC block with another batch.
fn same_qc_fork(plan: u64, msg: &Message, ctx: &TamperContext<'_>) -> Option<Vec<Message>> {
    let Message::Proposal(block) = msg else {
        return None;
    };
    if !Attack::Fork(plan).forks_to(ctx, block.view.0, 0) {
        return None;
    }
    Some(vec![Message::Proposal(other_batch_twin(plan, block)?)])
}

/// Another payload: the batch reversed, or one request shorter; an empty
/// batch gets one request of a client id no load generator uses. (It never
/// reaches a QC, see [`equivocate`], so it is never committed.)
fn other_batch(batch: &[Request], entropy: u64) -> Vec<Request> {
    match batch.len() {
        0 => vec![Request {
            id: RequestId {
                client: u32::MAX,
                number: entropy,
            },
            payload: Default::default(),
        }],
        1 => Vec::new(),
        _ => batch.iter().rev().cloned().collect(),
    }
}

// ----------------------------------------------------------------------
// Double vote
// ----------------------------------------------------------------------

/// As voter: the honest vote, plus the replica's own vote for another
/// block in the same view. The next leader rejects the second
/// (`equivocating-vote`); it never counts towards any QC.
fn double_vote(msg: &Message, ctx: &TamperContext<'_>) -> Option<Vec<Message>> {
    let Message::Vote(vote) = msg else {
        return None;
    };
    let other = own_vote(ctx, vote.view, other_digest(b"double-vote", &vote.block));
    Some(vec![msg.clone(), Message::Vote(other)])
}

// ----------------------------------------------------------------------
// Forged certificates
// ----------------------------------------------------------------------

/// The QC of a proposal (the block then names the forged QC's block as its
/// parent, so the block stays well-formed and the QC rule is what rejects
/// it) or of a NEW-VIEW, forged. The genesis QC carries no signature and is
/// left alone.
fn forge_message(forgery: Forgery, msg: &Message, ctx: &TamperContext<'_>) -> Option<Vec<Message>> {
    match msg {
        Message::Proposal(block) if !block.justify.is_genesis() => {
            let qc = forge(forgery, &block.justify, ctx)?;
            Some(vec![Message::Proposal(with_justify(block, qc))])
        }
        Message::NewView(nv) if !nv.high_qc.is_genesis() => {
            let qc = forge(forgery, &nv.high_qc, ctx)?;
            Some(vec![Message::NewView(NewView {
                high_qc: qc,
                ..nv.clone()
            })])
        }
        _ => None,
    }
}

/// One forged certificate; each must fail the QC rule (`rules::verify_qc`).
fn forge(forgery: Forgery, qc: &QuorumCert, ctx: &TamperContext<'_>) -> Option<QuorumCert> {
    match forgery {
        Forgery::BelowQuorum => Some(below_quorum(qc, ctx)),
        Forgery::DuplicateSigners => duplicate_signers(qc, ctx),
        Forgery::WrongRound => Some(wrong_round(qc)),
        Forgery::WrongDigest => Some(QuorumCert {
            block: other_digest(b"wrong-digest", &qc.block),
            ..qc.clone()
        }),
    }
}

/// Bits cleared from the signer bitmap (highest ids first) until one fewer
/// than n−f remain; the aggregate is untouched. Rejected by the signer
/// count (`qc-too-few-signers`) before any pairing.
fn below_quorum(qc: &QuorumCert, ctx: &TamperContext<'_>) -> QuorumCert {
    let quorum = ctx.committee.quorum_n_minus_f();
    let keep: Vec<NodeId> = qc
        .signature
        .signers
        .iter()
        .take(quorum.saturating_sub(1))
        .collect();
    let mut signers = SignerBitmap::new(ctx.committee.n());
    for id in keep {
        signers.insert(id);
    }
    let mut forged = qc.clone();
    forged.signature.signers = signers;
    forged
}

/// A quorum counted by repeating one signer: the replica's own vote for the
/// QC's (view, block), aggregated once under each id of the original
/// bitmap. The bitmap claims n−f signers whose signatures are not in the
/// aggregate; the aggregate check fails (`qc-bad-signature`).
fn duplicate_signers(qc: &QuorumCert, ctx: &TamperContext<'_>) -> Option<QuorumCert> {
    let own = own_vote(ctx, qc.view, qc.block).signature;
    let parts: Vec<(NodeId, BlsSignature)> =
        qc.signature.signers.iter().map(|id| (id, own)).collect();
    let signature = ctx.crypto.bls_aggregate(&parts).ok()?;
    Some(QuorumCert {
        signature,
        ..qc.clone()
    })
}

/// The QC claims the view before the one its signatures are over (the view
/// after, for a view-1 QC): `qc-bad-signature`.
fn wrong_round(qc: &QuorumCert) -> QuorumCert {
    let view = if qc.view.0 > 1 {
        qc.view.prev()
    } else {
        qc.view.next()
    };
    QuorumCert { view, ..qc.clone() }
}

// ----------------------------------------------------------------------
// View inflation
// ----------------------------------------------------------------------

/// Besides each proposal, vote or NEW-VIEW: a NEW-VIEW for its view + `by`
/// carrying the best QC the message holds (the proposal's justify, the
/// NEW-VIEW's highQC; genesis for a vote). The QC is genuine, so the
/// NEW-VIEW is valid; it moves no one (one sender is not n−f, and views
/// beyond `future_views` are refused).
fn inflate_view(by: u64, msg: &Message) -> Option<Vec<Message>> {
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

fn mutate(mutation: Mutation, msg: &Message, ctx: &TamperContext<'_>) -> Option<Vec<Message>> {
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
fn shift_view(
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
fn stale_digest(msg: &Message, ctx: &TamperContext<'_>) -> Option<Message> {
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
fn swap_sender(msg: &Message, ctx: &TamperContext<'_>) -> Option<Message> {
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
fn bad_signature(msg: &Message) -> Option<Vec<Message>> {
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
fn corrupt_block(block: &Block) -> Block {
    Block {
        justify: flip_qc(block.justify.clone()),
        ..block.clone()
    }
}
