//! Checks a scenario's values that the schema cannot: each error names
//! the file, the key and the value.

use super::{MAX_NODES, Placement, Runtime, Scenario};
use crate::BenchError;
use crate::protocols::BenchProtocol;
use bft_core::Protocol;
use bft_core::{LeaderSchedule, NodeId};
use bft_sim::{DelayModel, LoadMode};
use std::path::Path;

impl Scenario {
    /// Checks values the schema cannot: the error names file, key and value.
    pub fn validate(&self, file: &Path) -> Result<(), BenchError> {
        let bad = |key: &str, value: String, reason: &str| BenchError::Invalid {
            file: file.to_path_buf(),
            key: key.to_string(),
            value,
            reason: reason.to_string(),
        };
        if self.nodes < 4 {
            return Err(bad(
                "nodes",
                self.nodes.to_string(),
                "need at least 4 for f ≥ 1",
            ));
        }
        if self.nodes > MAX_NODES {
            return Err(bad(
                "nodes",
                self.nodes.to_string(),
                "at most 1024 replicas are supported",
            ));
        }
        if self.duration.is_zero() {
            return Err(bad(
                "duration",
                "0s".into(),
                "a run needs a positive duration",
            ));
        }
        if let Some(cores) = self.machine.cores {
            if self.runtime == Runtime::Quic {
                return Err(bad(
                    "machine.cores",
                    cores.to_string(),
                    "the simulator's machine model; a QUIC run uses the machine it runs on",
                ));
            }
            if cores == 0 {
                return Err(bad("machine.cores", "0".into(), "need at least one core"));
            }
        }
        if let Some(t) = &self.twins {
            if self.runtime == Runtime::Quic {
                return Err(bad(
                    "twins",
                    format!("{} nodes", t.nodes.len()),
                    "Twins run in the simulator only; use runtime = \"sim\"",
                ));
            }
            t.check(self.nodes)
                .map_err(|e| bad("twins", format!("{:?}", t.nodes), &e))?;
        }
        self.leader_schedule()
            .map_err(|(key, value, reason)| bad(&key, value, &reason))?;
        if self.runtime == Runtime::Quic && !self.faults.is_empty() {
            return Err(bad(
                "faults",
                format!("{} entries", self.faults.len()),
                "fault injection runs in the simulator only; use runtime = \"sim\"",
            ));
        }
        if self.batch.max_size == 0 {
            return Err(bad(
                "batch.max_size",
                "0".into(),
                "a batch holds at least one request",
            ));
        }
        // Per request: payload, id (at most 16 bytes), client signature
        // (with its tag).
        let per_request = self.load.tx_size + 16 + 1 + bft_core::Signature::LEN;
        let batch_bytes = self.batch.max_size.saturating_mul(per_request);
        if batch_bytes > bft_core::codec::DEFAULT_MAX_FRAME / 2 {
            return Err(bad(
                "batch.max_size",
                self.batch.max_size.to_string(),
                "batch.max_size × load.tx_size exceeds half the 64 MiB frame limit",
            ));
        }
        if let LoadMode::Open { rate } = self.load.mode
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(bad(
                "load.rate",
                rate.to_string(),
                "an open-loop rate must be a positive number of requests per second",
            ));
        }
        if let LoadMode::Closed { outstanding: 0 } = self.load.mode {
            return Err(bad(
                "load.outstanding",
                "0".into(),
                "a closed-loop client needs at least 1",
            ));
        }
        for (i, f) in self.faults.iter().enumerate() {
            if f.node.index() >= self.nodes {
                return Err(bad(
                    &format!("faults[{i}].node"),
                    f.node.to_string(),
                    &format!("no such node: nodes are 0..{}", self.nodes),
                ));
            }
            if f.end.is_some_and(|end| end < f.start) {
                return Err(bad(
                    &format!("faults[{i}].until"),
                    format!("{:?}", f.end),
                    "before `at`",
                ));
            }
            if let (bft_sim::FaultKind::Crash { amnesia: false }, Some(end)) = (&f.kind, f.end)
                && !self.storage.persist
            {
                return Err(bad(
                    &format!("faults[{i}].until"),
                    format!("{end:?}"),
                    "a crash with `until` restarts from the replica's store, and \
                     [storage] persist = false keeps none (use amnesia = true for a fresh restart)",
                ));
            }
        }
        self.check_protocol_config().map_err(|issue| {
            bad(
                &format!("{}.{}", self.protocol, issue.key),
                issue.value,
                &issue.reason,
            )
        })?;
        if let Some(sweep) = &self.sweep {
            if let Some(n) = sweep.nodes.iter().find(|n| **n < 4 || **n > MAX_NODES) {
                return Err(bad(
                    "sweep.nodes",
                    n.to_string(),
                    "each n must be in 4..=1024",
                ));
            }
            if let Some(r) = sweep.rate.iter().find(|r| !r.is_finite() || **r <= 0.0) {
                return Err(bad(
                    "sweep.rate",
                    r.to_string(),
                    "rates must be > 0 requests/s",
                ));
            }
            if sweep.batch_size.contains(&0) {
                return Err(bad(
                    "sweep.batch_size",
                    "0".into(),
                    "a batch holds at least one request",
                ));
            }
            if sweep.outstanding.contains(&0) {
                return Err(bad(
                    "sweep.outstanding",
                    "0".into(),
                    "at least one in flight",
                ));
            }
        }
        Ok(())
    }

    pub(super) fn check_protocol_config(&self) -> Result<(), bft_core::ConfigIssue> {
        crate::with_protocol!(self.protocol, P => P::check_config(&P::config(self)))
    }

    /// The leader schedule `[leaders]` asks for (`None`: round-robin).
    /// Errors are (key, value, reason).
    pub fn leader_schedule(&self) -> Result<Option<LeaderSchedule>, (String, String, String)> {
        let Some(t) = &self.leaders else {
            return Ok(None);
        };
        let n = self.nodes;
        let weight = t.weight.unwrap_or_else(
            || crate::with_protocol!(self.protocol, P => P::default_leader_weight(n)),
        );
        let favourite = match t.placement {
            Placement::RoundRobin => None,
            Placement::Fixed => match t.node {
                Some(id) if id.index() < n => Some(id),
                Some(id) => {
                    return Err((
                        "leaders.node".into(),
                        id.to_string(),
                        format!("no such node: nodes are 0..{n}"),
                    ));
                }
                None => {
                    return Err((
                        "leaders.node".into(),
                        "(missing)".into(),
                        "placement = \"fixed\" needs the node to favour".into(),
                    ));
                }
            },
            Placement::LatencyAware => match &self.network.delay {
                DelayModel::Regions(m) => {
                    let q = self.quorum();
                    Some(NodeId(u16::try_from(m.best_leader(n, q)).unwrap_or(0)))
                }
                _ => {
                    return Err((
                        "leaders.placement".into(),
                        "\"latency-aware\"".into(),
                        "needs network.model = \"regions\" to know the latencies".into(),
                    ));
                }
            },
        };
        let schedule = match favourite {
            None => LeaderSchedule::round_robin(n),
            Some(id) => LeaderSchedule::favouring(n, id, weight),
        }
        .with_prefix(t.prefix.clone());
        schedule.check(n).map_err(|e| {
            (
                "leaders.prefix".into(),
                format!("{:?}", t.prefix),
                e.to_string(),
            )
        })?;
        Ok(Some(schedule))
    }
}
