//! What a Byzantine PBFT replica can do to the messages its honest core
//! emits ([`bft_core::Adversarial`]), and PBFT's liveness bound.
//!
//! A Byzantine replica signs with its own keys only (`ctx.crypto`). The
//! attacks that mean the same in every protocol (double votes, view
//! inflation, small-scope mutations, bad signatures) are
//! `bft_core::adversary::edit`'s, over the edits `edit.rs` defines for PBFT's
//! messages; PBFT writes the rest, one per file:
//!
//! - `equivocate.rs`: the primary's PRE-PREPARE(v, n) with another batch, to
//!   odd-numbered recipients (`equivocate`) or those a seeded plan picks
//!   (`fork`);
//! - `forge.rs`: the certificates it carries (C, P, V, a STATE's proof) lose
//!   a signature, repeat a signer, or are relabelled.
//!
//! What an honest replica makes of each: a second PRE-PREPARE for (v, n)
//! breaks rule 1; a second vote is a `duplicate-prepare`/`duplicate-commit`;
//! one replica's VIEW-CHANGEs for far views move nobody (the f+1 rule) and
//! at most two per sender are kept (the newest and the lowest still useful).

mod edit;
mod equivocate;
mod forge;

use crate::config::PbftConfig;
use crate::messages::{NewView, PbftMessage, PrePrepare, ViewChange, domain, new_view_payload};
use crate::replica::Pbft;
use crate::rules::plan_new_view;
use bft_core::{
    Adversarial, Attack, Crypto, Digest, Request, TamperContext, batch_digest, tamper_generic,
};
use equivocate::equivocate;
use forge::forge;
use std::time::Duration;

/// Slack for message delivery and batching after the last timer fires.
const DELIVERY_SLACK: Duration = Duration::from_secs(1);

/// The largest timeout a replica ever arms: `view_change_timeout ·
/// 2^max_backoff_exponent`
/// (timeouts double per failed view, the exponent capped, §4.5.2).
pub fn capped_timeout(cfg: &PbftConfig) -> Duration {
    cfg.view_change_timeout
        .saturating_mul(1u32 << cfg.max_backoff_exponent.min(16))
}

/// The liveness bound of PBFT, from the config's timeouts:
///
/// `bound = T + (n + 1) · 3T + (f + 1) · t₀ + 1 s`, with `t₀` =
/// `view_change_timeout`, `T = t₀ · 2^max_backoff_exponent` (the capped back-off), `f = ⌊(n−1)/3⌋`.
///
/// Derivation. When the network heals, every honest replica's armed timer
/// (request, VIEW-CHANGE retransmission or new-view) has at most T left:
/// that is the first T. From then on each failed view costs at most one
/// request timer (a backup suspects the primary), one retransmission of the
/// VIEW-CHANGEs a partition dropped (so q of them arrive) and one new-view
/// timer, each at most T: 3T per view. The f+1 join rule keeps honest
/// replicas within one view of each other, and the schedule reaches an
/// honest primary within n + 1 views (at most f faulty primaries in a row
/// under round-robin; a rotation naming every member, with a favourite
/// repeated at most n times, still reaches an honest one within n + 1),
/// whose NEW-VIEW every honest replica accepts. A replica that fell behind a
/// stable checkpoint fetches it by state transfer, asking at most f + 1
/// signers of the proof one after the other, each after the fetch timer t₀.
/// Then requests commit within a few message delays, covered by the final
/// second.
pub fn liveness_bound(cfg: &PbftConfig, n: usize) -> Duration {
    let capped = capped_timeout(cfg);
    let f = n.saturating_sub(1) / 3;
    let views = u32::try_from(n.saturating_add(1)).unwrap_or(u32::MAX);
    let fetches = u32::try_from(f.saturating_add(1)).unwrap_or(u32::MAX);
    capped
        .saturating_add(capped.saturating_mul(3).saturating_mul(views))
        .saturating_add(cfg.view_change_timeout.saturating_mul(fetches))
        .saturating_add(DELIVERY_SLACK)
}

impl Adversarial for Pbft {
    fn tamper(
        attack: Attack,
        msg: &PbftMessage,
        ctx: &TamperContext<'_>,
    ) -> Option<Vec<PbftMessage>> {
        match attack {
            Attack::Equivocate | Attack::Fork(_) => equivocate(attack, msg, ctx),
            Attack::Forge(forgery) => forge(forgery, msg, ctx),
            generic => tamper_generic(generic, msg, ctx),
        }
    }

    fn liveness_bound(cfg: &PbftConfig, n: usize) -> Duration {
        liveness_bound(cfg, n)
    }

    /// The request timer: a backup that holds a request the primary does
    /// not order within it starts a view change (new-view timers then double
    /// per failed view).
    fn crash_timeout(cfg: &PbftConfig) -> Option<(Duration, Duration)> {
        Some((cfg.view_change_timeout, capped_timeout(cfg)))
    }
}

/// Recomputes O from (a possibly forged) V, signs its pre-prepares and the
/// NEW-VIEW: what a Byzantine new primary can build around a forged V.
fn resign_new_view(crypto: &dyn Crypto, view: u64, view_changes: Vec<ViewChange>) -> NewView {
    let o: Vec<PrePrepare> = plan_new_view(&view_changes)
        .entries
        .into_iter()
        .map(|(seq, digest)| PrePrepare::signed_by_digest(crypto, view, seq, digest))
        .collect();
    let sig = crypto.sign(domain::NEW_VIEW, &new_view_payload(view, &view_changes, &o));
    NewView {
        view,
        view_changes,
        pre_prepares: o,
        sig,
    }
}

/// Another batch for the same slot: without its last request (empty when it
/// had one). None for the null request (nothing to take away).
fn other_batch(batch: &[Request]) -> Option<Vec<Request>> {
    let (_, rest) = batch.split_last()?;
    Some(rest.to_vec())
}

/// A digest other than `d`: the null request's, or (if `d` is that) one
/// derived from the entropy.
fn other_digest(d: &Digest, entropy: u64) -> Digest {
    let null = batch_digest(&[]);
    if *d != null {
        null
    } else {
        Digest::of("bftbench/pbft/byzantine/other", &[&entropy.to_le_bytes()])
    }
}
