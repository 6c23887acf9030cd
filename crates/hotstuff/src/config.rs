//! `[hotstuff]` knobs of a scenario file.

use bft_core::protocol::ConfigIssue;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Pacemaker and memory knobs. Defaults suit a 1 ms-latency LAN: a view takes
/// two network delays plus crypto, so 500 ms only fires on a real failure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HotStuffConfig {
    /// View timer after a view that made progress.
    #[serde(with = "humantime_serde")]
    pub view_timeout: Duration,
    /// Each consecutive failed view multiplies the timer by this (≥ 1).
    pub backoff: f64,
    /// Upper bound of the backed-off view timer.
    #[serde(with = "humantime_serde")]
    pub max_view_timeout: Duration,
    /// How long the leader of a view entered on a timeout certificate waits
    /// for the NEW-VIEWs still missing when those it holds carry votes that
    /// could rebuild a QC above its highQC (pacemaker rule 6). It proposes
    /// as soon as that QC forms or every replica's NEW-VIEW is in. At most
    /// half of `view_timeout` is used ([`HotStuffConfig::rebuild_wait_used`]),
    /// so the view keeps time to succeed.
    #[serde(with = "humantime_serde")]
    pub rebuild_wait: Duration,
    /// How many views ahead of the current one a replica buffers proposals,
    /// votes and new-views (bounds memory against view inflation).
    pub future_views: u64,
    /// Requests a replica keeps waiting at most; more are dropped.
    pub pool_capacity: usize,
    /// One deliberately broken safety rule (`mutant = "..."`), for testing
    /// that the oracle and the fuzzer catch it. `None`: the real rules.
    #[cfg(feature = "mutants")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutant: Option<HotStuffMutant>,
}

/// A planted bug: one safety rule of [`crate::safety`] weakened. Each lives
/// where the real rule does, marked `// MUTANT(<name>):`.
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HotStuffMutant {
    /// Vote rule with the inner OR replaced by AND: `view > last voted AND
    /// (extends locked AND justify view > locked view)`. Only liveness can
    /// suffer: a replica locked on one branch never follows a newer QC on
    /// another.
    VoteRuleAnd,
    /// Vote rule with the outer AND replaced by OR: `view > last voted OR
    /// (extends locked OR justify view > locked view)`. Votes twice in a
    /// view and for blocks conflicting with the lock.
    VoteRuleOr,
    /// Commit rule by parent links only: b'' → b' → b commits b even with a
    /// view gap (the "indirect chain" bug).
    CommitIndirectChain,
}

impl Default for HotStuffConfig {
    fn default() -> Self {
        HotStuffConfig {
            view_timeout: Duration::from_millis(500),
            backoff: 2.0,
            max_view_timeout: Duration::from_secs(30),
            rebuild_wait: Duration::from_millis(100),
            future_views: 16,
            pool_capacity: 100_000,
            #[cfg(feature = "mutants")]
            mutant: None,
        }
    }
}

impl HotStuffConfig {
    /// The view timer after `failed` consecutive failed views:
    /// `min(view_timeout · backoff^failed, max_view_timeout)`.
    pub fn timeout_after(&self, failed: u32) -> Duration {
        let exponent = i32::try_from(failed.min(1024)).unwrap_or(1024);
        let secs = self.view_timeout.as_secs_f64() * self.backoff.powi(exponent);
        match Duration::try_from_secs_f64(secs) {
            Ok(d) if d < self.max_view_timeout => d,
            _ => self.max_view_timeout,
        }
    }

    /// The rebuild wait in force: `min(rebuild_wait, view_timeout / 2)`.
    pub fn rebuild_wait_used(&self) -> Duration {
        self.rebuild_wait.min(self.view_timeout / 2)
    }

    /// Impossible values, naming the key.
    pub fn check(&self) -> Result<(), ConfigIssue> {
        let issue = |key: &'static str, value: String, reason: &str| ConfigIssue {
            key,
            value,
            reason: reason.to_string(),
        };
        if self.view_timeout.is_zero() {
            return Err(issue(
                "view_timeout",
                format!("{:?}", self.view_timeout),
                "must be positive",
            ));
        }
        if !(self.backoff.is_finite() && self.backoff >= 1.0) {
            return Err(issue(
                "backoff",
                self.backoff.to_string(),
                "must be a finite number ≥ 1",
            ));
        }
        if self.max_view_timeout < self.view_timeout {
            return Err(issue(
                "max_view_timeout",
                format!("{:?}", self.max_view_timeout),
                "must be at least view_timeout",
            ));
        }
        if self.future_views == 0 {
            return Err(issue("future_views", "0".into(), "must be at least 1"));
        }
        if self.pool_capacity == 0 {
            return Err(issue("pool_capacity", "0".into(), "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let cfg = HotStuffConfig {
            view_timeout: Duration::from_millis(100),
            backoff: 2.0,
            max_view_timeout: Duration::from_millis(700),
            ..HotStuffConfig::default()
        };
        let got: Vec<u128> = (0..5).map(|k| cfg.timeout_after(k).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 700, 700]);
        assert_eq!(cfg.timeout_after(u32::MAX), Duration::from_millis(700));
    }

    #[test]
    fn parses_the_scenario_table_with_defaults_and_rejects_unknown_keys() {
        let cfg: HotStuffConfig =
            toml::from_str("view_timeout = \"200ms\"\nbackoff = 1.5\n").unwrap();
        assert_eq!(cfg.view_timeout, Duration::from_millis(200));
        assert_eq!(cfg.backoff, 1.5);
        assert_eq!(
            cfg.max_view_timeout,
            HotStuffConfig::default().max_view_timeout
        );
        let err = toml::from_str::<HotStuffConfig>("view_timeot = \"1s\"").unwrap_err();
        assert!(err.to_string().contains("view_timeot"), "{err}");
        assert!(toml::from_str::<HotStuffConfig>("view_timeout = 5").is_err());
    }

    #[test]
    fn check_names_the_bad_key() {
        let bad = |cfg: HotStuffConfig| cfg.check().err().map(|i| i.key);
        let d = HotStuffConfig::default;
        assert_eq!(d().check(), Ok(()));
        assert_eq!(
            bad(HotStuffConfig {
                view_timeout: Duration::ZERO,
                ..d()
            }),
            Some("view_timeout")
        );
        assert_eq!(
            bad(HotStuffConfig {
                backoff: 0.5,
                ..d()
            }),
            Some("backoff")
        );
        assert_eq!(
            bad(HotStuffConfig {
                backoff: f64::NAN,
                ..d()
            }),
            Some("backoff")
        );
        assert_eq!(
            bad(HotStuffConfig {
                max_view_timeout: Duration::from_millis(1),
                ..d()
            }),
            Some("max_view_timeout")
        );
        assert_eq!(
            bad(HotStuffConfig {
                future_views: 0,
                ..d()
            }),
            Some("future_views")
        );
    }
}
