//! The attacks that mean the same in every protocol, written once over
//! [`MessageEdit`]: the small vocabulary of edits a protocol's message type
//! offers. A protocol implements the edits (which field is its round, how a
//! vote for another block is signed, what its view change looks like); the
//! attacks below decide when to apply them and what goes out.
//!
//! | attack | what goes out |
//! |---|---|
//! | `double-vote` | each own vote and a vote for another digest in the same round; odd-id recipients get the other one first |
//! | `inflate-view(k)` | each message and a valid view change for its round + k |
//! | `mutate(round±1)` | each own message with its round one up or down, re-signed |
//! | `mutate(stale-digest)` | each own message with an older digest where its current one belongs, re-signed |
//! | `mutate(swap-sender)` | each own message claiming another member (chosen by the run's entropy) as its author |
//! | `bad-signature` | each message with the signatures it carries corrupted |
//! | `swap-payload` | as leader, each proposal with its first request's payload replaced (id and client signature kept), re-signed |
//!
//! `equivocate`, `fork` and `forge` build proposals and certificates, whose
//! shapes differ per protocol: they stay in the protocol crates
//! ([`protocol_specific`] says which).

use super::{Attack, Mutation, TamperContext};
use crate::ids::NodeId;
use crate::protocol::Request;
use bytes::Bytes;

/// The edits the generic attacks are written in. Every edit returns `None`
/// where the message has no such field or the edit makes no sense for it
/// (it then goes out unchanged); an edited message that a protocol would
/// sign is re-signed with the Byzantine replica's own key
/// ([`TamperContext::crypto`]), so only the edited field is wrong.
pub trait MessageEdit: Clone {
    /// The view or round the message is about, where it has one (a
    /// state-transfer message has none).
    fn round(&self) -> Option<u64>;

    /// Whether the Byzantine replica (`ctx.me`) authored the message.
    /// Messages it only forwards (signed by others) pass the attacks that
    /// re-sign unchanged. Default: every message a replica sends is its own.
    fn is_own(&self, ctx: &TamperContext<'_>) -> bool {
        let _ = ctx;
        true
    }

    /// `mutate(round±1)`: the message with its round (or the counter a
    /// message without one carries in its place, such as a checkpoint's
    /// sequence number) replaced by `shift` of it, re-signed.
    fn with_round_shifted(
        &self,
        shift: fn(u64) -> Option<u64>,
        ctx: &TamperContext<'_>,
    ) -> Option<Self>;

    /// `mutate(stale-digest)`: an older digest (the parent's, genesis)
    /// where the current block's belongs, re-signed.
    fn with_stale_digest(&self, ctx: &TamperContext<'_>) -> Option<Self>;

    /// `mutate(swap-sender)`: the message claims `author` wrote it (signed
    /// with the sender's own key, so the claim cannot verify).
    fn with_author(&self, author: NodeId, ctx: &TamperContext<'_>) -> Option<Self>;

    /// `double-vote`: for a vote, an own-signed vote for another digest in
    /// the same round. `None` for anything that is not a vote.
    fn conflicting_vote(&self, ctx: &TamperContext<'_>) -> Option<Self>;

    /// `inflate-view`: a valid view change (VIEW-CHANGE, ROUND-CHANGE,
    /// NEW-VIEW) for `round`, signed with own key, carrying what this
    /// message lets it carry (a certificate it holds).
    fn round_change(&self, round: u64, ctx: &TamperContext<'_>) -> Option<Self>;

    /// `bad-signature`: the signatures the message carries corrupted (each
    /// protocol's `byzantine/edit.rs` says which: its own only, or also
    /// the certificates it forwards). `None` if it carries none.
    fn with_bad_signatures(&self) -> Option<Self>;

    /// `swap-payload`: for a proposal with requests, the same proposal with
    /// its first request replaced by [`swapped_payload`] of it, every
    /// digest that binds the batch recomputed and re-signed, so that only
    /// the client's signature is wrong. `None` for anything else.
    fn with_payload_swapped(&self, ctx: &TamperContext<'_>) -> Option<Self>;
}

/// `req` with a payload its client never signed (the first byte flipped,
/// or one byte if it had none), its id and signature kept: what a leader
/// that commits its own payload under a real request id sends.
pub fn swapped_payload(req: &Request) -> Request {
    let mut payload = req.payload().to_vec();
    match payload.first_mut() {
        Some(b) => *b ^= 0xff,
        None => payload.push(0xff),
    }
    req.with_payload(Bytes::from(payload))
}

/// The attacks no generic edit can express: they build proposals or
/// certificates, so each protocol writes them.
pub fn protocol_specific(attack: Attack) -> bool {
    matches!(
        attack,
        Attack::Equivocate | Attack::Fork(_) | Attack::Forge(_)
    )
}

/// What a Byzantine replica doing `attack` sends to `ctx.to` in place of
/// `msg`, for the attacks written here (`None` for the
/// [`protocol_specific`] ones, and where the attack does not apply).
pub fn tamper_generic<M: MessageEdit>(
    attack: Attack,
    msg: &M,
    ctx: &TamperContext<'_>,
) -> Option<Vec<M>> {
    match attack {
        Attack::DoubleVote => double_vote(msg, ctx),
        Attack::InflateView(by) => inflate_view(by, msg, ctx),
        Attack::Mutate(mutation) => mutate(mutation, msg, ctx),
        Attack::BadSignature => msg.with_bad_signatures().map(|m| vec![m]),
        Attack::SwapPayload => msg
            .is_own(ctx)
            .then(|| msg.with_payload_swapped(ctx))
            .flatten()
            .map(|m| vec![m]),
        Attack::Equivocate | Attack::Fork(_) | Attack::Forge(_) => None,
    }
}

/// `double-vote`: the own vote and one for another digest in the same
/// round. Odd-id recipients get the conflicting one first, so both orders
/// reach honest replicas (a replica keeps the first vote of a sender and
/// must refuse the second either way).
pub fn double_vote<M: MessageEdit>(msg: &M, ctx: &TamperContext<'_>) -> Option<Vec<M>> {
    if !msg.is_own(ctx) {
        return None;
    }
    let other = msg.conflicting_vote(ctx)?;
    Some(if ctx.to.0 % 2 == 1 {
        vec![other, msg.clone()]
    } else {
        vec![msg.clone(), other]
    })
}

/// `inflate-view(k)`: besides each message that has a round, a valid view
/// change for that round + k (k = 0 does not apply). One replica alone
/// moves nobody: every protocol needs f + 1 or more view changes to join a
/// higher round, and keeps a bounded number per sender.
pub fn inflate_view<M: MessageEdit>(by: u64, msg: &M, ctx: &TamperContext<'_>) -> Option<Vec<M>> {
    if by == 0 {
        return None;
    }
    let round = msg.round()?.saturating_add(by);
    let change = msg.round_change(round, ctx)?;
    Some(vec![msg.clone(), change])
}

/// `mutate`: one field of an own message off by a small amount, re-signed
/// (the Twins paper's small-scope hypothesis).
pub fn mutate<M: MessageEdit>(
    mutation: Mutation,
    msg: &M,
    ctx: &TamperContext<'_>,
) -> Option<Vec<M>> {
    if !msg.is_own(ctx) {
        return None;
    }
    let mutated = match mutation {
        Mutation::RoundPlusOne => msg.with_round_shifted(|r| r.checked_add(1), ctx),
        Mutation::RoundMinusOne => msg.with_round_shifted(|r| r.checked_sub(1), ctx),
        Mutation::StaleDigest => msg.with_stale_digest(ctx),
        Mutation::SwapSender => msg.with_author(other_member(ctx)?, ctx),
    }?;
    Some(vec![mutated])
}

/// Another member than the Byzantine replica, chosen by the run's entropy
/// (deterministic per seed). `None` in a committee of one.
pub fn other_member(ctx: &TamperContext<'_>) -> Option<NodeId> {
    let n = u64::try_from(ctx.committee.n()).ok()?;
    if n < 2 {
        return None;
    }
    let step = 1 + ctx.entropy % (n - 1);
    let id = (u64::from(ctx.me.0) + step) % n;
    u16::try_from(id).ok().map(NodeId)
}
