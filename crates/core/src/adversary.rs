//! What a Byzantine replica can do to the messages its honest core emits, and
//! what the fault-injection layer needs from each protocol to do it.
//!
//! The simulator runs a Byzantine replica's *honest* core and passes every
//! message it sends, once per recipient, through [`Adversarial::tamper`]. The
//! protocol crate knows its own message shapes, so it builds the attack: a
//! second proposal for the same slot, a vote for a block the replica never
//! saw, a certificate with too few signers, a view number pushed far ahead.
//! A Byzantine replica signs with its own keys only ([`TamperContext::crypto`]
//! is its own `Crypto`); it cannot forge an honest replica's signature.
//!
//! Attacks that need nothing protocol-specific (crash, silence, omission,
//! delay, stale replay, censorship) live in the simulator.

use crate::committee::Committee;
use crate::crypto::Crypto;
use crate::ids::{NodeId, Time};
use crate::leaders::LeaderSchedule;
use crate::protocol::Protocol;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A protocol-aware attack. In a scenario file it is the `behaviour` of a
/// `[[faults]]` table, with its parameter beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// As leader: a second, different proposal for the same slot/view, sent
    /// to the odd-numbered peers (the even ones get the honest one).
    Equivocate,
    /// As voter: besides each honest vote, a vote for a different block in
    /// the same view/round.
    DoubleVote,
    /// Certificates and justifications it sends are forged.
    Forge(Forgery),
    /// Besides each message, a view-change / round-change / new-view for a
    /// view this far ahead of the message's (the inflation flood).
    InflateView(u64),
    /// A small-scope mutation of every message it sends.
    Mutate(Mutation),
    /// Every signature it sends is corrupted.
    BadSignature,
}

/// How a forged certificate is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Forgery {
    /// Fewer signatures than a quorum.
    BelowQuorum,
    /// A quorum counted by repeating one signer.
    DuplicateSigners,
    /// Signatures over another view/round than the certificate claims.
    WrongRound,
    /// Signatures over another block than the certificate claims.
    WrongDigest,
}

/// A small-scope mutation (the Twins paper's "small-scope hypothesis"):
/// honest-looking messages that are off by one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mutation {
    /// View/round + 1, re-signed.
    RoundPlusOne,
    /// View/round − 1, re-signed.
    RoundMinusOne,
    /// The digest of the previous block/request instead of the current one,
    /// re-signed.
    StaleDigest,
    /// Claims another replica as its author (signed with the sender's key).
    SwapSender,
}

/// Everything a tampering replica knows besides the message.
pub struct TamperContext<'a> {
    /// The Byzantine replica.
    pub me: NodeId,
    /// The recipient of this copy.
    pub to: NodeId,
    pub now: Time,
    pub committee: &'a Committee,
    /// The Byzantine replica's own keys.
    pub crypto: &'a dyn Crypto,
    /// Fresh randomness from the run's seeded RNG (deterministic).
    pub entropy: u64,
}

/// How many of its own earlier messages a tampering replica remembers.
pub const TAMPER_HISTORY: usize = 64;

/// What the fault-injection layer needs from a protocol.
pub trait Adversarial: Protocol {
    /// What the Byzantine replica sends to `ctx.to` in place of `msg`.
    /// `None`: the attack does not apply to this message, which goes out
    /// unchanged. `Some(vec![])` drops it.
    fn tamper(
        attack: Attack,
        msg: &Self::Message,
        ctx: &TamperContext<'_>,
    ) -> Option<Vec<Self::Message>> {
        let _ = (attack, msg, ctx);
        None
    }

    /// [`Adversarial::tamper`] with the Byzantine replica's memory: the
    /// messages its honest core sent before this one (oldest first, the
    /// last [`TAMPER_HISTORY`] of them). Attacks that need an older
    /// certificate — a fork built on a QC the replica held earlier — look
    /// there. The default ignores the history.
    fn tamper_with_history(
        attack: Attack,
        msg: &Self::Message,
        history: &[Self::Message],
        ctx: &TamperContext<'_>,
    ) -> Option<Vec<Self::Message>> {
        let _ = history;
        Self::tamper(attack, msg, ctx)
    }

    /// How long after the network heals (at most f faulty replicas, all
    /// messages delivered within the model's delay) every honest replica is
    /// guaranteed to commit something new, when requests keep arriving.
    /// Stated per protocol from its timeouts; the fuzzer checks it.
    fn liveness_bound(cfg: &Self::Config, n: usize) -> Duration;

    /// The liveness bound under a given leader schedule. A schedule that
    /// lets f faulty replicas lead more views in a row than round-robin
    /// (a favoured leader) can need longer; protocols whose bound depends
    /// on it override this. The default is [`Adversarial::liveness_bound`].
    fn liveness_bound_for(cfg: &Self::Config, n: usize, leaders: &LeaderSchedule) -> Duration {
        let _ = leaders;
        Self::liveness_bound(cfg, n)
    }
}
