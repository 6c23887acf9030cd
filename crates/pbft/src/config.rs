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
    /// Requests a replica keeps waiting for ordering; beyond it new requests
    /// are dropped (bounds memory against a flood).
    pub pool_capacity: usize,
    /// Executed batches kept below the stable checkpoint to serve lagging
    /// replicas by state transfer. A replica that falls further behind than
    /// this cannot catch up (it would need an application snapshot).
    pub state_transfer_depth: u64,
}

impl Default for PbftConfig {
    fn default() -> Self {
        PbftConfig {
            checkpoint_interval: 128,
            window: 256,
            view_change_timeout: Duration::from_millis(200),
            pool_capacity: 1 << 16,
            state_transfer_depth: 256,
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
