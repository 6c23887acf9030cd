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
//! delay, stale replay, censorship) live in the simulator. Attacks that mean
//! the same in every protocol but edit its messages (double votes, view
//! inflation, small-scope mutations, bad signatures) are written once in
//! [`edit`], over the [`MessageEdit`] trait each protocol implements; only
//! equivocation, forks and forged certificates are written per protocol.

pub mod edit;

pub use edit::{MessageEdit, protocol_specific, swapped_payload, tamper_generic};

use crate::committee::Committee;
use crate::crypto::Crypto;
use crate::ids::{NodeId, Time};
use crate::leaders::LeaderSchedule;
use crate::mix::splitmix64;
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
    /// As leader: each proposal carries its first request with a payload
    /// the client never signed, under the client's request id and
    /// signature (everything else valid and re-signed). Honest replicas
    /// must refuse it on the client signature
    /// (`bad-client-signature`); one that does not commits a payload no
    /// client sent, which the oracle's validity check catches.
    SwapPayload,
    /// As leader, a seeded plan per view or slot it leads ([`ForkChoice`]):
    /// every peer gets the honest proposal, or a chosen subset gets a
    /// conflicting one — where the protocol has certificates, built on an
    /// older one the replica holds — and the rest the honest one. The
    /// parameter seeds the plan, so a fuzzer searches over plans by seed.
    /// [`Attack::Equivocate`] is the fixed plan "odd ids get the other one".
    Fork(u64),
}

impl Attack {
    /// One of every attack, each parameterised attack with each of its
    /// parameters (every forgery, every mutation; view inflation by one
    /// view and by a million): what a test or campaign that wants "every
    /// attack" runs. [`Attack::Fork`] is left out: its parameter seeds a
    /// plan, which a fuzzer searches over.
    pub fn every() -> Vec<Attack> {
        let mut all = vec![
            Attack::Equivocate,
            Attack::DoubleVote,
            Attack::InflateView(1),
            Attack::InflateView(1_000_000),
            Attack::BadSignature,
            Attack::SwapPayload,
        ];
        all.extend(
            [
                Forgery::BelowQuorum,
                Forgery::DuplicateSigners,
                Forgery::WrongRound,
                Forgery::WrongDigest,
            ]
            .map(Attack::Forge),
        );
        all.extend(
            [
                Mutation::RoundPlusOne,
                Mutation::RoundMinusOne,
                Mutation::StaleDigest,
                Mutation::SwapSender,
            ]
            .map(Attack::Mutate),
        );
        all
    }

    /// As leader of (`round`, `slot`): does `ctx.to` get the conflicting
    /// proposal? Odd ids for [`Attack::Equivocate`], the plan's
    /// [`ForkChoice`] for [`Attack::Fork`], nobody for the other attacks.
    pub fn forks_to(self, ctx: &TamperContext<'_>, round: u64, slot: u64) -> bool {
        match self {
            Attack::Equivocate => ctx.to.0 % 2 == 1,
            Attack::Fork(plan) => {
                ForkChoice::of(plan, ctx.committee.n(), round, slot).forks_to(ctx.to)
            }
            _ => false,
        }
    }
}

/// One view's (or slot's) choice of a [`Attack::Fork`] plan: a pure
/// function of the plan seed, the committee size and the (round, slot) it
/// leads, so every copy of one broadcast agrees and a run replays exactly.
///
/// Four shapes, one time in four each: honest (nobody gets the fork);
/// everybody; everybody but one node; a random subset (each node with
/// probability ½). The fork is built `depth` certificates below the newest
/// one it could use, `depth` uniform in 0..[`FORK_DEPTHS`]. The shapes are
/// the splits that matter to a quorum: all, a quorum without one honest
/// node, and anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForkChoice {
    /// Bit `i % 64` set: node `i` gets the conflicting version.
    pub mask: u64,
    /// How many certificates below the newest usable one the fork is built
    /// on (the protocol takes it modulo the number it holds).
    pub depth: usize,
}

/// How far back a [`ForkChoice`] reaches: the newest usable certificate or
/// the one below it (the known forks need one of those two).
pub const FORK_DEPTHS: u64 = 2;

impl ForkChoice {
    pub fn of(plan: u64, n: usize, round: u64, slot: u64) -> ForkChoice {
        let h = splitmix64(plan ^ splitmix64(round ^ splitmix64(slot)));
        let k = splitmix64(h);
        let mask = match h & 3 {
            0 => 0,
            1 => u64::MAX,
            2 => !(1u64 << (k % (n.clamp(1, 64) as u64))),
            _ => k,
        };
        ForkChoice {
            mask,
            depth: usize::try_from((h >> 8) % FORK_DEPTHS).unwrap_or(0),
        }
    }

    /// Does `to` get the conflicting version?
    pub fn forks_to(&self, to: NodeId) -> bool {
        self.mask >> (to.0 % 64) & 1 == 1
    }

    /// How many of `peers` get the conflicting version.
    pub fn forked_among(&self, peers: impl IntoIterator<Item = NodeId>) -> usize {
        peers.into_iter().filter(|&p| self.forks_to(p)).count()
    }
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

    /// [`Adversarial::tamper`] with the Byzantine replica's memory: its
    /// honest core's state (`self`, read only: everything the replica
    /// knows, such as the certificates it holds) and the messages the core
    /// sent before this one (`sent`, oldest first, the last
    /// [`TAMPER_HISTORY`] of them). Attacks that need an older certificate
    /// — a fork built on a QC the replica held earlier — look there. The
    /// default ignores both.
    fn tamper_with_memory(
        &self,
        attack: Attack,
        msg: &Self::Message,
        sent: &[Self::Message],
        ctx: &TamperContext<'_>,
    ) -> Option<Vec<Self::Message>> {
        let _ = sent;
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

    /// The timeout after which honest replicas give up on a silent leader
    /// in the first view or round after a crash (PBFT's request timer, QBFT's
    /// round-0 timer, HotStuff's view timer), which each of them doubles for
    /// every further view that fails before progress, and the cap of that
    /// back-off. `None`: no crash bound (the general
    /// [`Adversarial::liveness_bound`] applies).
    fn crash_timeout(cfg: &Self::Config) -> Option<(Duration, Duration)> {
        let _ = cfg;
        None
    }

    /// How many silent leaders a commit after a crash may have to wait out,
    /// given the longest run of crashed leaders in the schedule (`run`) and
    /// how many views of one rotation they lead (`per_rotation`). Default
    /// `run`: one honest leader decides (PBFT's next primary, QBFT's next
    /// round's proposer). Chained HotStuff overrides it.
    fn crash_timeouts(run: usize, per_rotation: usize) -> usize {
        let _ = per_rotation;
        run
    }
}

/// The slack a crash bound allows beyond its timeouts: the message delays
/// and the processing of the deciding view (the simulator's models charge
/// milliseconds; a second is generous yet far below ten expected
/// recoveries).
pub const CRASH_SLACK: Duration = Duration::from_secs(1);

/// The liveness bound of a run whose only faults are crashes (benign, for
/// good, no partitions): how long after the crash every honest replica
/// commits something new, and the rule that computed it, for the record.
///
/// `bound = Σ_{i=0..=T} min(t₀ · 2^i, cap) + 1 s`, where (t₀, cap) is
/// [`Adversarial::crash_timeout`] and T = [`Adversarial::crash_timeouts`]
/// of the longest run of crashed replicas in the leader schedule
/// ([`LeaderSchedule::longest_run_of`]) and of the views they lead per
/// rotation. Waiting out T silent leaders with timers doubling per failed
/// view costs the first T terms; the bound allows one back-off level more
/// (a timer already doubled when the crash struck) and [`CRASH_SLACK`]. A
/// recovery ten times slower than expected (one timeout and a few message
/// delays) fails it.
pub fn crash_recovery_bound<P: Adversarial>(
    cfg: &P::Config,
    leaders: &LeaderSchedule,
    crashed: &[NodeId],
) -> Option<(Duration, String)> {
    let (t0, cap) = P::crash_timeout(cfg)?;
    let run = leaders.longest_run_of(crashed);
    let per_rotation = leaders
        .rotation
        .iter()
        .filter(|l| crashed.contains(l))
        .count();
    let t = P::crash_timeouts(run, per_rotation);
    let timeouts = (0..=t)
        .map(|i| {
            let doubled = u32::try_from(i).ok().and_then(|i| 1u32.checked_shl(i));
            doubled.map_or(cap, |d| t0.saturating_mul(d).min(cap))
        })
        .fold(Duration::ZERO, Duration::saturating_add);
    let bound = timeouts.saturating_add(CRASH_SLACK);
    let rule = format!(
        "crash only: Σ_(i=0..={t}) min(t0 · 2^i, cap) with t0 {t0:?}, cap {cap:?}, T = {t} silent leaders \
         ({run} crashed in a row, {per_rotation} per rotation), + {CRASH_SLACK:?}"
    );
    Some((bound, rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Over many views, a plan is honest about one time in four, and every
    /// subset of three peers — none, some, all — gets the fork; the same
    /// (plan, round, slot) always chooses the same.
    #[test]
    fn fork_choices_cover_every_subset_and_repeat() {
        let peers = [NodeId(1), NodeId(2), NodeId(3)];
        let (mut honest, mut subsets, mut depths) = (0, [0u32; 8], [0u32; 2]);
        for view in 0..4000 {
            let c = ForkChoice::of(7, 4, view, 0);
            assert_eq!(c, ForkChoice::of(7, 4, view, 0));
            honest += u32::from(c.mask == 0);
            let subset = peers
                .iter()
                .enumerate()
                .filter(|(_, p)| c.forks_to(**p))
                .fold(0, |acc, (i, _)| acc | 1 << i);
            subsets[subset] += 1;
            depths[c.depth] += 1;
        }
        // Honest: the shape, one view in four.
        assert!((900..1100).contains(&honest), "honest {honest}/4000");
        // Everybody: 1/4 + 1/32, everybody but one peer: 1/16 + 1/32 each
        // (one time in four the one left out is the leader itself), a
        // single peer: 1/32 each.
        assert!(subsets[7] > 1000, "{subsets:?}");
        assert!(subsets.iter().all(|&k| k > 60), "{subsets:?}");
        assert!(depths.iter().all(|&k| k > 1800), "{depths:?}");
        // Another plan, or the same plan at other slots, chooses otherwise.
        assert!((0..16).any(|v| ForkChoice::of(7, 4, v, 0) != ForkChoice::of(8, 4, v, 0)));
        assert!((0..16).any(|v| ForkChoice::of(7, 4, v, 0) != ForkChoice::of(7, 4, v, 1)));
    }

    #[test]
    fn forked_among_counts_the_chosen_peers() {
        let c = ForkChoice {
            mask: 0b1010,
            depth: 0,
        };
        assert!(c.forks_to(NodeId(1)) && c.forks_to(NodeId(3)));
        assert!(!c.forks_to(NodeId(0)) && !c.forks_to(NodeId(2)));
        assert_eq!(c.forked_among([NodeId(1), NodeId(2), NodeId(3)]), 2);
    }
}
