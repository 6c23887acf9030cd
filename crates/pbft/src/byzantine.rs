//! What a Byzantine PBFT replica can do to the messages its honest core
//! emits ([`bft_core::Adversarial`]), and PBFT's liveness bound.

use crate::config::PbftConfig;
use crate::replica::{MAX_BACKOFF_EXPONENT, Pbft};
use bft_core::{Adversarial, Attack, TamperContext};
use std::time::Duration;

/// Slack for message delivery and batching after the last timer fires.
const DELIVERY_SLACK: Duration = Duration::from_secs(1);

/// The largest timeout a replica ever arms: `view_change_timeout · 2^16`
/// (timeouts double per failed view, the exponent capped, §4.5.2).
pub fn capped_timeout(cfg: &PbftConfig) -> Duration {
    cfg.view_change_timeout
        .saturating_mul(1u32 << MAX_BACKOFF_EXPONENT)
}

/// The liveness bound of PBFT, from the config's timeouts:
///
/// `bound = T + (n + 1) · 2T + (f + 1) · t₀ + 1 s`, with `t₀` =
/// `view_change_timeout`, `T = t₀ · 2^16` (the capped back-off), `f = ⌊(n−1)/3⌋`.
///
/// Derivation. When the network heals, every honest replica's armed timer
/// (request or new-view) has at most T left: that is the first T. From then
/// on each failed view costs at most one request timer plus one new-view
/// timer, each at most T (2T per view); the f+1 join rule keeps honest
/// replicas within one view of each other. The schedule reaches an honest
/// primary within n + 1 views (at most f faulty primaries in a row under
/// round-robin; a rotation of n members with one favourite repeated at most n
/// times still reaches an honest one within n + 1), whose NEW-VIEW every
/// honest replica accepts. A replica that fell behind a stable checkpoint
/// fetches it by state transfer, asking at most f + 1 signers of the proof one
/// after the other, each after the fetch timer t₀. Then requests commit within
/// one round of message delays, covered by the final second.
pub fn liveness_bound(cfg: &PbftConfig, n: usize) -> Duration {
    let capped = capped_timeout(cfg);
    let f = n.saturating_sub(1) / 3;
    let views = u32::try_from(n.saturating_add(1)).unwrap_or(u32::MAX);
    let fetches = u32::try_from(f.saturating_add(1)).unwrap_or(u32::MAX);
    capped
        .saturating_add(capped.saturating_mul(2).saturating_mul(views))
        .saturating_add(cfg.view_change_timeout.saturating_mul(fetches))
        .saturating_add(DELIVERY_SLACK)
}

impl Adversarial for Pbft {
    fn tamper(
        attack: Attack,
        msg: &Self::Message,
        ctx: &TamperContext<'_>,
    ) -> Option<Vec<Self::Message>> {
        let _ = (attack, msg, ctx);
        None
    }

    fn liveness_bound(cfg: &PbftConfig, n: usize) -> Duration {
        liveness_bound(cfg, n)
    }
}
