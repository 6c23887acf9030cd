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
//! | double-vote | vote | the vote, plus an own-signed vote for another block in the same view (odd-id recipients get it first) |
//! | forge | proposal, new-view (non-genesis QC) | the QC forged: bits cleared, one signer repeated, view shifted, or block changed |
//! | inflate-view(k) | proposal, vote, new-view | the message, plus NEW-VIEW(view + k, its best QC) |
//! | mutate(round±1) | proposal, vote, new-view | the view ± 1 (a vote re-signed) |
//! | mutate(stale-digest) | proposal, vote, new-view | a block on genesis; a vote (re-signed) / the NEW-VIEW's last vote for an older block |
//! | mutate(swap-sender) | proposal | the block claims the next view another replica (chosen by the run's entropy) leads |
//! | fork(plan) | proposal, own vote | per view, a seeded choice of recipients get another block: on an older QC the replica holds, or with another batch; its own vote goes to the version more peers got |
//! | bad-signature | proposal, vote, new-view, block-response | one byte of every BLS signature flipped |
//!
//! `double-vote`, `inflate-view`, `mutate` and `bad-signature` mean the same
//! in every protocol and are written once (`bft_core::adversary::edit`) over
//! the edits `edit.rs` defines for HotStuff's messages; equivocation and
//! forks (`fork.rs`) and forged QCs (`forge.rs`) are HotStuff's own.

use crate::config::HotStuffConfig;
use crate::replica::HotStuff;
use crate::types::{Block, Message, NewView, QuorumCert, VOTE_DOMAIN, Vote, vote_payload};
use bft_core::{
    Adversarial, Attack, BlsSignature, Digest, FORK_DEPTHS, Forgery, ForkChoice, Height,
    LeaderSchedule, NodeId, Request, SignerBitmap, TamperContext, View, tamper_generic,
};
use std::time::Duration;

mod edit;
mod forge;
mod fork;

use forge::forge_message;
use fork::{equivocate, equivocate_with_history, fork, same_qc_fork};

impl Adversarial for HotStuff {
    fn tamper(attack: Attack, msg: &Message, ctx: &TamperContext<'_>) -> Option<Vec<Message>> {
        match attack {
            Attack::Equivocate => equivocate(msg, ctx),
            Attack::Fork(plan) => same_qc_fork(plan, msg, ctx),
            Attack::Forge(forgery) => forge_message(forgery, msg, ctx),
            generic => tamper_generic(generic, msg, ctx),
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

/// A block rebuilt with `justify` (and the parent it certifies): the hash
/// changes, everything else stays.
fn with_justify(block: &Block, justify: QuorumCert) -> Block {
    Block {
        parent: justify.block,
        justify,
        ..block.clone()
    }
}
