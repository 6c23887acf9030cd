//! What a Byzantine QBFT replica does to the messages its honest core emits
//! ([`bft_core::Adversarial`]), and how long after the network heals QBFT is
//! guaranteed to make progress again.
//!
//! Every attack signs with the Byzantine replica's own keys only
//! (`TamperContext::crypto`); entries of certificates signed by others are
//! copied, dropped, repeated or re-labelled, never re-signed. Attacks that
//! re-sign a payload apply only to messages the replica authored itself (not
//! to the DECIDED blocks it relays to a lagging peer, which pass unchanged). What each attack does, and what an honest replica makes
//! of it (`QbftError::reason`):
//!
//! | attack | applies to | sent instead | honest receiver |
//! |---|---|---|---|
//! | `equivocate` | own PROPOSAL, odd-id recipients | the same (h, r) for another block (the batch minus its last request), re-signed, same justification | accepts one proposal per round; a re-proposal's other block is `not-highest-prepared` |
//! | `fork(plan)` | own PROPOSAL, the recipients the seeded plan picks per (h, r) (`bft_core::ForkChoice`) | as `equivocate` | as `equivocate` |
//! | `double-vote` | own PREPARE, COMMIT | the vote and one for another digest at the same (h, r), seal included (odd recipients get the other first) | keeps the first, the second is `equivocation` |
//! | `forge(below-quorum)` | own ROUND-CHANGE with a prepared certificate, own PROPOSAL for r > 0 | q − 1 entries in every certificate | `insufficient-prepares` / `insufficient-round-changes` |
//! | `forge(duplicate-signers)` | same | the last entry replaced by the first | `duplicate-signer` |
//! | `forge(wrong-round)` | same | every entry re-labelled round + 1 (signatures still over the old round) | `prepare-mismatch` / `round-change-mismatch` |
//! | `forge(wrong-digest)` | prepare certificates (ROUND-CHANGE, re-proposing PROPOSAL) | every PREPARE re-labelled with another digest | `prepare-mismatch` |
//! | `inflate-view(k)` | every message | the message and a validly signed ROUND-CHANGE for (h, r + k) | f of them move nobody; one entry per sender (bounded) |
//! | `mutate(round-plus-one)` | own messages | round + 1, re-signed | PROPOSAL `not-proposer` (or unjustified); votes and round changes are valid and only useless |
//! | `mutate(round-minus-one)` | own messages of round ≥ 1 | round − 1, re-signed | PROPOSAL `not-proposer`; ROUND-CHANGE for round 0 `round-change-for-round-zero`, prepared round no longer below `prepared-round-not-below`; stale votes ignored |
//! | `mutate(stale-digest)` | own PROPOSAL, prepared ROUND-CHANGE | the parent's hash as digest / prepared value, re-signed | `digest-mismatch` / `prepared-block-mismatch` |
//! | `mutate(swap-sender)` | own messages | author set to another replica (signature still ours) | `author-not-sender` (only a DECIDED block may be relayed) |
//! | `bad-signature` | every message | byte 0 of every signature (seals and justification entries too) flipped | `bad-signature` |
//!
//! PREPARE and COMMIT carry no parent hash, so `stale-digest` does not apply
//! to them (a stateless tamper cannot know the previous block's hash).
//!
//! `double-vote`, `inflate-view`, `mutate` and `bad-signature` mean the same
//! in every protocol and are written once (`bft_core::adversary::edit`) over
//! the edits `edit.rs` defines for QBFT's messages; `equivocate.rs` (with
//! `fork`) and `forge.rs` are QBFT's own, one per file.

mod edit;
mod equivocate;
mod forge;

use crate::config::QbftConfig;
use crate::messages::{Block, QbftMessage};
use crate::replica::Qbft;
use bft_core::{
    Adversarial, Attack, Digest, LeaderSchedule, MessageEdit, TamperContext, tamper_generic,
};
use equivocate::equivocate;
use forge::forge;
use std::time::Duration;

/// Rounds, besides the ones led by faulty proposers, that the liveness bound
/// allows for the honest replicas to reach a common round after the heal
/// (steps 1 and 2 below), plus one for the round-timer restarts (step 3).
const SYNC_ROUNDS: u64 = 4;

/// The liveness bound: after the network heals (at most f faulty replicas,
/// requests keep arriving), every honest replica commits a new block within
///
/// ```text
/// bound = (f + 1 + SYNC_ROUNDS) · T_max + block_period + round_timeout
///       = (f + 5) · base · 2^cap + block_period + base
/// ```
///
/// where `T_max = timeout_for_round(cap)` is the longest a round's timer
/// runs (the back-off is capped at `max_timeout_exponent`, so however high
/// the rounds climbed during the partition, no honest timer runs longer),
/// and Δ, the largest message delay, is well under `T_max`. Derivation
/// (Dafny `UponRoundTimeout` / `UponRoundChange`, and the round-timer rule
/// of `Qbft::note_round_quorum`):
///
/// 1. Within one `T_max` of the heal every honest replica's round timer has
///    fired (or it has committed), so every honest replica has multicast a
///    ROUND-CHANGE for its current round (a replica waiting for a round's
///    quorum sends its own again); a replica behind in height is relayed
///    the decided blocks by f+1 peers on that ROUND-CHANGE.
/// 2. The honest replicas then converge on one round within two more
///    rounds. Let R be the highest honest round. Leaving a round by timeout
///    needs q ROUND-CHANGEs for it or above, so f+1 honest replicas are at
///    R - 1 or R, and f+1 ROUND-CHANGEs above a replica's round pull it up
///    (`maybe_join_higher_round`): every honest replica is at R - 1 or R
///    within Δ. Those at R - 1 then hold a quorum and time out into R within
///    one `T_max` + Δ, while those at R wait for them (no quorum, no leaving);
///    their arrival restarts the waiting replicas' timers, so the round gets
///    a full timeout with all of them, and they leave it within Δ of each
///    other.
/// 3. The proposers of consecutive rounds rotate through the committee (the
///    leader schedule names every member; under round-robin at most f
///    consecutive rounds have a faulty proposer), so within f + 1 common
///    rounds an honest proposer with q ROUND-CHANGEs proposes, and with all
///    messages delivered within Δ every honest replica commits in that
///    round. Each common round lasts at most `T_max` + Δ (its timer starts
///    when the quorum's last ROUND-CHANGE arrives); the rounds' Δs, fewer
///    than f + 5 of them, fit in the one extra `T_max` of `SYNC_ROUNDS`.
/// 4. `block_period` delays a round-0 proposal, and one `round_timeout`
///    covers the message delays of the deciding round.
///
/// A schedule that lets f faulty replicas propose more than f rounds in a
/// row (a faulty favourite listed w times, `LeaderSchedule::favouring`)
/// needs more rounds: [`liveness_bound_for`] charges the schedule's
/// `longest_faulty_run(f)` in place of f.
///
/// It is generous (each round is charged at the capped timeout) but finite.
/// With the defaults (200 ms, cap 8) and n = 4 it is 6 · 51.2 s + 0.2 s.
pub fn liveness_bound(cfg: &QbftConfig, n: usize) -> Duration {
    let f = n.saturating_sub(1) / 3;
    bound_with_faulty_run(cfg, f)
}

/// [`liveness_bound`] under `leaders`: step 3 needs
/// `leaders.longest_faulty_run(f)` + 1 common rounds.
pub fn liveness_bound_for(cfg: &QbftConfig, n: usize, leaders: &LeaderSchedule) -> Duration {
    let f = n.saturating_sub(1) / 3;
    bound_with_faulty_run(cfg, leaders.longest_faulty_run(f).max(f))
}

/// (faulty_run + 1 + SYNC_ROUNDS) capped rounds, plus the slack of step 4.
fn bound_with_faulty_run(cfg: &QbftConfig, faulty_run: usize) -> Duration {
    let rounds = (faulty_run as u64)
        .saturating_add(1)
        .saturating_add(SYNC_ROUNDS);
    let t_max = cfg.timeout_for_round(u64::from(cfg.max_timeout_exponent));
    t_max
        .saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX))
        .saturating_add(cfg.block_period)
        .saturating_add(cfg.round_timeout)
}

impl Adversarial for Qbft {
    fn tamper(
        attack: Attack,
        msg: &QbftMessage,
        ctx: &TamperContext<'_>,
    ) -> Option<Vec<QbftMessage>> {
        match attack {
            Attack::Equivocate | Attack::Fork(_) => equivocate(attack, msg, ctx),
            Attack::Forge(forgery) => forge(forgery, msg, ctx),
            generic => tamper_generic(generic, msg, ctx),
        }
    }

    fn liveness_bound(cfg: &QbftConfig, n: usize) -> Duration {
        liveness_bound(cfg, n)
    }

    fn liveness_bound_for(cfg: &QbftConfig, n: usize, leaders: &LeaderSchedule) -> Duration {
        liveness_bound_for(cfg, n, leaders)
    }

    /// The round-0 timer (`timeout_for_round` doubles it per round, up to
    /// `max_timeout_exponent`).
    fn crash_timeout(cfg: &QbftConfig) -> Option<(Duration, Duration)> {
        Some((
            cfg.timeout_for_round(0),
            cfg.timeout_for_round(u64::from(cfg.max_timeout_exponent)),
        ))
    }
}

/// Whether the Byzantine replica signed `msg` itself (a DECIDED block it
/// relays carries others' seals).
fn own(msg: &QbftMessage, ctx: &TamperContext<'_>) -> bool {
    msg.is_own(ctx)
}

/// A digest no honest replica voted for, derived from `digest`.
pub fn conflicting_digest(digest: &Digest) -> Digest {
    Digest::of(
        "bftbench/qbft/byzantine/conflicting/v1",
        &[digest.as_bytes()],
    )
}

/// Another block for the same slot: the same height, parent and proposer
/// (so it passes `check_extends` and the proposer check) with the batch's
/// last request left out. An empty block has no such variant.
pub fn alternative_block(block: &Block) -> Option<Block> {
    let mut other = block.clone();
    other.requests.pop()?;
    Some(other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bft_core::NodeId;

    #[test]
    fn liveness_bound_charges_f_plus_five_capped_rounds() {
        let cfg = QbftConfig {
            round_timeout: Duration::from_millis(100),
            max_timeout_exponent: 3,
            ..QbftConfig::default()
        };
        // n = 4: f = 1, 6 rounds of 800 ms + one base timeout.
        assert_eq!(liveness_bound(&cfg, 4), Duration::from_millis(4_900));
        // n = 7: f = 2, 7 rounds.
        assert_eq!(liveness_bound(&cfg, 7), Duration::from_millis(5_700));
    }

    /// A faulty favourite proposing 5 rounds in a row costs 4 more capped
    /// rounds than round-robin's f = 1 (the fuzzer found the plain bound too
    /// short for exactly this schedule).
    #[test]
    fn liveness_bound_for_a_favoured_leader_charges_its_run() {
        let cfg = QbftConfig {
            round_timeout: Duration::from_millis(100),
            max_timeout_exponent: 3,
            ..QbftConfig::default()
        };
        let rr = LeaderSchedule::round_robin(4);
        assert_eq!(liveness_bound_for(&cfg, 4, &rr), liveness_bound(&cfg, 4));
        let favour = LeaderSchedule::favouring(4, NodeId(1), 5);
        assert_eq!(
            liveness_bound_for(&cfg, 4, &favour),
            Duration::from_millis(4_900 + 4 * 800)
        );
    }
}
