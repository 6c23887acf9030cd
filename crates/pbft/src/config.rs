//! `PbftConfig`: the `[pbft]` table of a scenario file.

use bft_core::protocol::ConfigIssue;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// PBFT's knobs. Defaults suit a 1 ms-latency LAN: a checkpoint every 128
/// sequence numbers and a window of 256 (the values Castro–Liskov used), a
/// 200 ms view-change timeout (about fifty normal-case round trips).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PbftConfig {
    /// K: a CHECKPOINT is multicast after executing every K-th sequence number.
    pub checkpoint_interval: u64,
    /// L: the watermark window. A replica accepts sequence numbers n with
    /// h < n <= H = h + L, h being its last stable checkpoint. Must be >= K.
    pub window: u64,
    /// Base of the request / new-view timer; it doubles per failed view.
    #[serde(with = "humantime_serde")]
    pub view_change_timeout: Duration,
    /// The doubling stops at `view_change_timeout · 2^max_backoff_exponent`
    /// (at most 16).
    pub max_backoff_exponent: u32,
    /// Requests a replica keeps waiting for ordering; beyond it new requests
    /// are dropped (bounds memory against a flood).
    pub pool_capacity: usize,
    /// Executed batches kept below the stable checkpoint to serve lagging
    /// replicas by state transfer. A replica that falls further behind than
    /// this installs a snapshot (`bft_core::snapshot`) and goes on from it.
    pub state_transfer_depth: u64,
    /// One deliberately broken rule, for the fuzzer's controls (feature
    /// `mutants`; `mutant = "quorum-2f"` in the `[pbft]` table). `None`: the
    /// real rules.
    #[cfg(feature = "mutants")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutant: Option<PbftMutant>,
}

/// A planted bug: one PBFT rule broken at the one place it lives (each site
/// is marked `// MUTANT(<name>):`). A control for the oracle and the fuzzer:
/// a scenario that finds it shows the checker can see that bug.
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PbftMutant {
    /// NEW-VIEW's O re-proposes, per seq, the prepared certificate from the
    /// LOWEST view in V instead of the highest (TOCS 2002 §4.4 inverted).
    OSetLowestView,
    /// The quorum is 2f instead of ⌈(n+f+1)/2⌉ (2f+1 at n = 3f+1): two
    /// quorums need not share a replica at all.
    #[serde(rename = "quorum-2f")]
    Quorum2f,
}

impl Default for PbftConfig {
    fn default() -> Self {
        PbftConfig {
            checkpoint_interval: 128,
            window: 256,
            view_change_timeout: Duration::from_millis(200),
            max_backoff_exponent: 6,
            pool_capacity: 1 << 16,
            state_transfer_depth: 256,
            #[cfg(feature = "mutants")]
            mutant: None,
        }
    }
}

impl PbftConfig {
    /// Rejects values no run can work with, naming the key.
    pub fn check(&self) -> Result<(), ConfigIssue> {
        let issue = |key: &'static str, value: String, reason: &str| ConfigIssue {
            key,
            value,
            reason: reason.to_string(),
        };
        if self.max_backoff_exponent > 16 {
            return Err(issue(
                "max_backoff_exponent",
                self.max_backoff_exponent.to_string(),
                "at most 16 (a 2^16 back-off is already hours)",
            ));
        }
        if self.checkpoint_interval == 0 {
            return Err(issue(
                "checkpoint_interval",
                "0".into(),
                "must be at least 1",
            ));
        }
        if self.window < self.checkpoint_interval {
            return Err(issue(
                "window",
                self.window.to_string(),
                "must be >= checkpoint_interval, or the primary stalls before the next checkpoint",
            ));
        }
        if self.view_change_timeout.is_zero() {
            return Err(issue(
                "view_change_timeout",
                "0s".into(),
                "must be positive",
            ));
        }
        if self.pool_capacity == 0 {
            return Err(issue("pool_capacity", "0".into(), "must be at least 1"));
        }
        Ok(())
    }
}
