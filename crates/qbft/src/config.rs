//! `[qbft]` table of a scenario file.

use bft_core::protocol::ConfigIssue;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// QBFT knobs. Defaults suit a 1 ms-latency LAN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QbftConfig {
    /// Round-0 timeout; round r expires after `round_timeout · 2^min(r, max_timeout_exponent)`.
    #[serde(with = "humantime_serde")]
    pub round_timeout: Duration,
    /// Minimum time between a block's commit and the next round-0 proposal
    /// (Besu's `blockperiodseconds`). Zero: propose as soon as a batch is cut.
    #[serde(with = "humantime_serde")]
    pub block_period: Duration,
    /// Cap on the exponent of the round-timeout back-off.
    pub max_timeout_exponent: u32,
    /// Messages buffered per peer for future heights (bounded memory against
    /// a flooding peer; a peer that overflows only loses its own messages).
    pub future_buffer_per_peer: usize,
    /// How many heights ahead of ours a message may be and still be buffered.
    pub future_height_window: u64,
    /// Pending client requests held at most.
    pub pool_capacity: usize,
    /// One deliberately broken rule, for the fuzzer's controls (feature
    /// `mutants`; `mutant = "quorum-2f1"` in the `[qbft]` table). `None`:
    /// the real rules.
    #[cfg(feature = "mutants")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutant: Option<QbftMutant>,
}

/// A planted bug: one QBFT rule broken at the one place it lives (each site
/// is marked `// MUTANT(<name>):`). A control for the oracle and the fuzzer:
/// a scenario that finds it shows the checker can see that bug.
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QbftMutant {
    /// A proposer after a round change proposes its own fresh block instead
    /// of the highest prepared value the round changes justify (and the
    /// justification check no longer asks for it), the "leader proposes its
    /// own value when a prepared one exists" bug.
    IgnoreHighestPrepared,
    /// Quorum 2f+1 instead of ⌈2n/3⌉: equal at n = 3f+1, smaller at n = 6
    /// (3 instead of 4), where two quorums need not share an honest replica
    /// (the IBFT 1.0 bug).
    #[serde(rename = "quorum-2f1")]
    Quorum2f1,
}

impl Default for QbftConfig {
    fn default() -> Self {
        QbftConfig {
            round_timeout: Duration::from_millis(200),
            block_period: Duration::ZERO,
            max_timeout_exponent: 8,
            future_buffer_per_peer: 64,
            future_height_window: 8,
            pool_capacity: 100_000,
            #[cfg(feature = "mutants")]
            mutant: None,
        }
    }
}

/// Largest back-off exponent accepted: 2^20 × base is already absurd.
pub const MAX_TIMEOUT_EXPONENT: u32 = 20;

impl QbftConfig {
    /// Whether mutant `m` is planted (always false without the feature).
    #[cfg(feature = "mutants")]
    pub fn planted(&self, m: QbftMutant) -> bool {
        self.mutant == Some(m)
    }
    /// Timeout of round `round`: base · 2^min(round, cap).
    pub fn timeout_for_round(&self, round: u64) -> Duration {
        let exp = u32::try_from(round)
            .unwrap_or(u32::MAX)
            .min(self.max_timeout_exponent)
            .min(MAX_TIMEOUT_EXPONENT);
        self.round_timeout.saturating_mul(1u32 << exp)
    }

    /// Rejects impossible values, naming the key.
    pub fn check(&self) -> Result<(), ConfigIssue> {
        let issue = |key: &'static str, value: String, reason: &str| ConfigIssue {
            key,
            value,
            reason: reason.to_string(),
        };
        if self.round_timeout.is_zero() {
            return Err(issue(
                "round_timeout",
                "0s".into(),
                "must be positive, or every round times out at once",
            ));
        }
        if self.block_period >= self.round_timeout {
            return Err(issue(
                "block_period",
                format!("{:?}", self.block_period),
                "must be below round_timeout, or every round 0 times out before its proposal",
            ));
        }
        if self.max_timeout_exponent > MAX_TIMEOUT_EXPONENT {
            return Err(issue(
                "max_timeout_exponent",
                self.max_timeout_exponent.to_string(),
                "must be at most 20",
            ));
        }
        if self.future_buffer_per_peer < 4 {
            return Err(issue(
                "future_buffer_per_peer",
                self.future_buffer_per_peer.to_string(),
                "must be at least 4 (one height's proposal, prepare, commit, round change)",
            ));
        }
        if self.future_height_window == 0 {
            return Err(issue(
                "future_height_window",
                "0".into(),
                "must be at least 1, or a replica one message behind can never catch up",
            ));
        }
        if self.pool_capacity == 0 {
            return Err(issue("pool_capacity", "0".into(), "must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_doubles_per_round_and_caps() {
        let cfg = QbftConfig {
            round_timeout: Duration::from_millis(100),
            max_timeout_exponent: 3,
            ..QbftConfig::default()
        };
        assert_eq!(cfg.timeout_for_round(0), Duration::from_millis(100));
        assert_eq!(cfg.timeout_for_round(2), Duration::from_millis(400));
        assert_eq!(cfg.timeout_for_round(3), Duration::from_millis(800));
        assert_eq!(cfg.timeout_for_round(u64::MAX), Duration::from_millis(800));
    }

    #[test]
    fn parses_the_scenario_table_with_humantime_and_rejects_unknown_keys() {
        let cfg: QbftConfig =
            toml::from_str("round_timeout = \"1s\"\nblock_period = \"250ms\"").unwrap();
        assert_eq!(cfg.round_timeout, Duration::from_secs(1));
        assert_eq!(cfg.block_period, Duration::from_millis(250));
        assert_eq!(
            cfg.max_timeout_exponent,
            QbftConfig::default().max_timeout_exponent
        );
        let unknown = toml::from_str::<QbftConfig>("round_timout = \"1s\"");
        assert!(unknown.unwrap_err().to_string().contains("round_timout"));
        let empty: QbftConfig = toml::from_str("").unwrap();
        assert_eq!(empty, QbftConfig::default());
    }

    #[cfg(feature = "mutants")]
    #[test]
    fn mutant_is_selected_by_its_kebab_case_name_and_absent_by_default() {
        let cfg: QbftConfig = toml::from_str("mutant = \"quorum-2f1\"").unwrap();
        assert_eq!(cfg.mutant, Some(QbftMutant::Quorum2f1));
        assert!(cfg.planted(QbftMutant::Quorum2f1));
        let cfg: QbftConfig = toml::from_str("mutant = \"ignore-highest-prepared\"").unwrap();
        assert_eq!(cfg.mutant, Some(QbftMutant::IgnoreHighestPrepared));
        assert_eq!(QbftConfig::default().mutant, None);
        let unknown = toml::from_str::<QbftConfig>("mutant = \"lowest-view\"");
        assert!(unknown.is_err());
        let round_trip = toml::to_string(&QbftConfig::default()).unwrap();
        assert!(!round_trip.contains("mutant"), "{round_trip}");
    }

    #[test]
    fn check_names_the_bad_key() {
        assert_eq!(QbftConfig::default().check(), Ok(()));
        let bad = QbftConfig {
            round_timeout: Duration::ZERO,
            ..QbftConfig::default()
        };
        assert_eq!(bad.check().map_err(|i| i.key), Err("round_timeout"));
        let bad = QbftConfig {
            block_period: Duration::from_secs(1),
            ..QbftConfig::default()
        };
        assert_eq!(bad.check().map_err(|i| i.key), Err("block_period"));
        let bad = QbftConfig {
            max_timeout_exponent: 40,
            ..QbftConfig::default()
        };
        assert_eq!(bad.check().map_err(|i| i.key), Err("max_timeout_exponent"));
        let bad = QbftConfig {
            future_buffer_per_peer: 0,
            ..QbftConfig::default()
        };
        assert_eq!(
            bad.check().map_err(|i| i.key),
            Err("future_buffer_per_peer")
        );
        let bad = QbftConfig {
            pool_capacity: 0,
            ..QbftConfig::default()
        };
        assert_eq!(bad.check().map_err(|i| i.key), Err("pool_capacity"));
    }
}
