//! What a Byzantine QBFT replica does to the messages its honest core emits
//! ([`bft_core::Adversarial`]), and how long after the network heals QBFT is
//! guaranteed to make progress again.

use crate::config::QbftConfig;
use crate::messages::QbftMessage;
use crate::replica::Qbft;
use bft_core::{Adversarial, Attack, TamperContext};
use std::time::Duration;

/// Rounds, besides the ones led by faulty proposers, that the liveness bound
/// allows for the honest replicas to reach a common round after the heal.
const SYNC_ROUNDS: u64 = 3;

/// The liveness bound: after the network heals (at most f faulty replicas,
/// requests keep arriving), every honest replica commits a new block within
///
/// ```text
/// bound = (f + 1 + SYNC_ROUNDS) · T_max + block_period + round_timeout
///       = (f + 4) · base · 2^cap + block_period + base
/// ```
///
/// where `T_max = timeout_for_round(cap)` is the longest a round can last
/// (the back-off is capped at `max_timeout_exponent`, so however high the
/// rounds climbed during the partition, no honest round lasts longer).
/// Derivation (Dafny `UponRoundTimeout` / `UponRoundChange`):
///
/// 1. Within one `T_max` of the heal every honest replica's round timer has
///    fired (or it has committed), so every honest replica has multicast a
///    ROUND-CHANGE for its current round; a replica behind in height is
///    relayed the decided blocks by f+1 peers on that ROUND-CHANGE.
/// 2. The honest replicas then converge on one round within two more
///    rounds: f+1 ROUND-CHANGEs above a replica's round pull it up
///    (`maybe_join_higher_round`), and a replica ahead alone waits at most
///    one `T_max` while the others time out into its round.
/// 3. The proposers of consecutive rounds rotate through the committee (the
///    leader schedule names every member; under round-robin at most f
///    consecutive rounds have a faulty proposer), so within f + 1 common
///    rounds an honest proposer with q ROUND-CHANGEs proposes, and with all
///    messages delivered within the model's delay (well under a round
///    timeout) every honest replica commits in that round.
/// 4. `block_period` delays a round-0 proposal, and one `round_timeout`
///    covers the message delays of the deciding round.
///
/// It is generous (each round is charged at the capped timeout) but finite.
/// With the defaults (200 ms, cap 8) and n = 4 it is 5 · 51.2 s + 0.2 s.
pub fn liveness_bound(cfg: &QbftConfig, n: usize) -> Duration {
    let f = n.saturating_sub(1) / 3;
    let rounds = (f as u64).saturating_add(1).saturating_add(SYNC_ROUNDS);
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
        let _ = (attack, msg, ctx);
        None
    }

    fn liveness_bound(cfg: &QbftConfig, n: usize) -> Duration {
        liveness_bound(cfg, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_bound_charges_f_plus_four_capped_rounds() {
        let cfg = QbftConfig {
            round_timeout: Duration::from_millis(100),
            max_timeout_exponent: 3,
            ..QbftConfig::default()
        };
        // n = 4: f = 1, 5 rounds of 800 ms + one base timeout.
        assert_eq!(liveness_bound(&cfg, 4), Duration::from_millis(4_100));
        // n = 7: f = 2, 6 rounds.
        assert_eq!(liveness_bound(&cfg, 7), Duration::from_millis(4_900));
    }
}
