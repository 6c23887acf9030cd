//! What a run reports: per-replica and cluster figures, message totals,
//! and the liveness check after the last fault heals.

use super::Simulation;
use crate::clients::LatencySummary;
use bft_core::{Adversarial, Digest, KindCount, MsgStats, NodeId, Status, Time};
use serde::Serialize;
use std::time::Duration;

/// Per-replica figures in a report.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    pub id: NodeId,
    pub status: Status,
    pub sent: KindCount,
    /// Decisions it committed that ordered no request.
    pub empty_decisions: u64,
    pub rejected: u64,
    /// Virtual CPU the replica spent (crypto model + handling).
    pub cpu: Duration,
    pub faulty: bool,
    pub byzantine: bool,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct SimReport {
    pub seed: u64,
    /// Oracle findings; empty means the run was safe.
    pub violations: Vec<String>,
    /// Committed slots, minimum over honest replicas without faults.
    pub decisions: u64,
    /// Committed slots, maximum over honest replicas.
    pub max_decisions: u64,
    pub requests_issued: u64,
    /// Requests the load generator's clients refused themselves
    /// (`[load] max_pending`), never sent.
    pub requests_rejected: u64,
    /// Requests clients learned committed (f+1 replicas reported them).
    pub requests_committed: u64,
    /// Of those, the ones intended after the warm-up.
    pub requests_measured: u64,
    /// Protocol traffic summed over all replicas (core counting convention).
    pub stats: MsgStats,
    /// Client traffic, apart: requests (to every replica) and replies.
    pub client_messages: u64,
    pub client_bytes: u64,
    /// The protocol's own view-change counter (`Status::view_changes`), the
    /// most any honest replica reached: its meaning differs per protocol.
    pub view_changes: u64,
    /// Completed leader replacements and their cost, one definition for
    /// every protocol ([`crate::replacements`]).
    pub replacements: crate::Replacements,
    pub latency: LatencySummary,
    pub trace_hash: Digest,
    pub end_time: Time,
    pub events: u64,
    pub nodes: Vec<NodeReport>,
}

impl SimReport {
    /// Requests per second over the measured window.
    pub fn throughput(&self, warmup: Duration) -> f64 {
        let window = self
            .end_time
            .as_duration()
            .saturating_sub(warmup)
            .as_secs_f64();
        if window > 0.0 {
            self.requests_measured as f64 / window
        } else {
            0.0
        }
    }
}

impl<P: Adversarial> Simulation<P> {
    /// Everything every replica (every incarnation) sent so far, and the
    /// retransmitted part.
    pub(super) fn totals(&self) -> crate::replacements::Totals {
        let mut t = crate::replacements::Totals::default();
        for r in &self.replicas {
            for stats in [r.node.stats(), &r.retired] {
                let (sent, resent) = (stats.total_sent(), stats.total_resent());
                t.sent.count += sent.count;
                t.sent.bytes += sent.bytes;
                t.resent.count += resent.count;
                t.resent.bytes += resent.bytes;
            }
        }
        t
    }

    /// When the network is stable again: the end of the last partition, Twins
    /// round and bounded fault, or the start of the last fault that never
    /// ends (from then on the faulty set is fixed, at most f, and the honest
    /// replicas must make progress without the faulty ones).
    pub fn heal_time(&self) -> Time {
        Time::from_duration(self.cfg.heal_time())
    }

    /// Liveness after the network heals: runs to `heal`, then until every
    /// replica that must be live — honest, not a twin, no fault active at or
    /// after `heal` — has committed something new, or `bound` has passed.
    /// Returns one line per replica that committed nothing in time (empty:
    /// live). It stops early (in steps of virtual time) once all have, so the
    /// simulation's clock is then somewhere in `[heal, heal + bound]`.
    /// Requests must keep arriving (open-loop load) for this to be fair.
    pub fn check_liveness(&mut self, heal: Time, bound: Duration) -> Vec<String> {
        self.run_until(heal);
        let must_be_live = self.must_be_live(heal);
        let before: Vec<u64> = must_be_live
            .iter()
            .map(|&i| self.replicas[i].node.status().committed)
            .collect();
        let progressed = |sim: &Self| {
            must_be_live
                .iter()
                .zip(&before)
                .all(|(&i, &b)| sim.replicas[i].node.status().committed > b)
        };
        let end = heal.saturating_add(bound);
        // Fine steps, so the stop (and `now()` after it) measures recovery
        // to within 5 ms of virtual time.
        let step = Duration::from_millis(5)
            .min(bound)
            .max(Duration::from_millis(1));
        let mut t = heal;
        while t < end && !progressed(self) {
            t = t.saturating_add(step).min(end);
            self.run_until(t);
        }
        let mut stuck = Vec::new();
        for (&i, &b) in must_be_live.iter().zip(&before) {
            let after = self.replicas[i].node.status().committed;
            if after <= b {
                stuck.push(format!(
                    "liveness: node {i} committed nothing between the heal at {:?} and {:?} (bound {bound:?}; stuck at {after} decisions)",
                    heal.as_duration(),
                    end.as_duration()
                ));
            }
        }
        stuck
    }

    /// Replicas that must make progress after `heal`: honest, not twins, not
    /// under a test filter, and with no fault still active at `heal`.
    pub(super) fn must_be_live(&self, heal: Time) -> Vec<usize> {
        let heal = heal.as_duration();
        (0..self.committee.n())
            .filter(|&i| {
                let r = &self.replicas[i];
                let still_faulty = r
                    .faults
                    .iter()
                    .filter_map(|&k| self.cfg.faults.get(k))
                    .any(|f| f.end.is_none_or(|e| e > heal) || f.kind.is_byzantine());
                !r.byzantine && !still_faulty && r.filter.is_none()
            })
            .collect()
    }

    /// The completed leader replacements so far
    /// ([`crate::replacements`]).
    pub fn replacements(&self) -> crate::Replacements {
        self.replacements.completed()
    }

    pub fn report(&self) -> SimReport {
        let mut stats = MsgStats::default();
        let mut nodes = Vec::with_capacity(self.replicas.len());
        for r in &self.replicas {
            stats.merge(r.node.stats());
            stats.merge(&r.retired);
            nodes.push(NodeReport {
                id: r.node.id(),
                status: r.node.status(),
                sent: r.node.stats().total_sent(),
                empty_decisions: r.node.stats().empty_decisions,
                rejected: r.node.stats().total_rejected(),
                cpu: r.cpu,
                faulty: r.faulty,
                byzantine: r.byzantine,
            });
        }
        let heads: Vec<u64> = self.oracle.heads().collect();
        let honest = |i: &usize| self.replicas.get(*i).is_some_and(|r| !r.byzantine);
        let live = |i: &usize| {
            self.replicas
                .get(*i)
                .is_some_and(|r| !r.byzantine && !r.faulty)
        };
        let decisions = (0..heads.len())
            .filter(live)
            .map(|i| heads[i])
            .min()
            .unwrap_or(0);
        let max_decisions = (0..heads.len())
            .filter(honest)
            .map(|i| heads[i])
            .max()
            .unwrap_or(0);
        let view_changes = nodes
            .iter()
            .filter(|n| !n.byzantine)
            .map(|n| n.status.view_changes)
            .max();
        SimReport {
            seed: self.cfg.seed,
            violations: self.oracle.violations().to_vec(),
            decisions,
            max_decisions,
            requests_issued: self.clients.issued(),
            requests_rejected: self.clients.rejected(),
            requests_committed: self.clients.committed(),
            requests_measured: self.clients.committed_measured(),
            stats,
            client_messages: self.client_messages,
            client_bytes: self.client_bytes,
            view_changes: view_changes.unwrap_or(0),
            replacements: self.replacements.completed(),
            latency: self.clients.latency(),
            trace_hash: self.trace.digest(),
            end_time: self.now,
            events: self.events,
            nodes,
        }
    }

    /// The latency histogram of measured requests (for CDF plots).
    pub fn latency_histogram(&self) -> &hdrhistogram::Histogram<u64> {
        self.clients.histogram()
    }

    /// Completions and latency per second of virtual time
    /// ([`bft_load::series`]).
    pub fn series(&self) -> Vec<bft_load::SeriesPoint> {
        self.clients.series()
    }
}
