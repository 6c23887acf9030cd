//! The load generator's clients, identical for every protocol.
//!
//! Each request goes to every replica; a client learns its request committed
//! when f+1 *distinct* replicas have reported it (at least one of them
//! honest). A replica's second report of the same request counts nothing: one
//! faulty replica replying f+1 times must not complete a request. Latency
//! runs from the request's *intended* send time, so an open-loop client whose
//! system stalls still charges the stall to every request scheduled during it.

use crate::config::{LoadConfig, LoadMode};
use bft_core::{NodeId, RequestId, Time};
use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug)]
struct Pending {
    intended: Time,
    /// The distinct replicas that reported it so far (at most f+1 entries:
    /// the request completes, and is forgotten, at the (f+1)-th).
    repliers: Vec<NodeId>,
    /// Submitted by hand (`Simulation::submit`), not by the generator.
    manual: bool,
}

#[derive(Debug)]
pub struct Clients {
    load: LoadConfig,
    reply_quorum: usize,
    next_number: Vec<u64>,
    issued: u64,
    /// Lookup-only (Fx hash: ids are the generator's own, order never read).
    pending: FxHashMap<RequestId, Pending>,
    latency: Histogram<u64>,
    committed: u64,
    committed_measured: u64,
    /// Reports of a pending request by a replica that had already reported
    /// it (ignored).
    repeated_replies: u64,
    /// Generated requests pending per client (for `max_pending`).
    pending_per_client: Vec<u32>,
    /// Requests refused at the client edge ([`LoadConfig::max_pending`]).
    rejected: u64,
    /// Completions per second, warm-up included ([`crate::series`]).
    series: crate::SeriesRecorder,
}

/// What [`Clients::issue`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Issue {
    /// Send this request.
    Send(RequestId),
    /// Refused at the client edge: the client has `max_pending` requests
    /// pending. Counted; an open-loop schedule goes on.
    Refused,
    /// Nothing more to issue (the total is reached, or no such client).
    Done,
}

/// Latency percentiles over the measured requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl LatencySummary {
    pub fn from_histogram(h: &Histogram<u64>) -> LatencySummary {
        let q = |p: f64| Duration::from_nanos(h.value_at_quantile(p));
        LatencySummary {
            count: h.len(),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: Duration::from_nanos(h.max()),
            mean: Duration::from_nanos(h.mean() as u64),
        }
    }
}

/// A new histogram in nanoseconds, 1 µs to 1 hour, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 3_600_000_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable_histogram()))
}

#[allow(clippy::panic)]
fn unreachable_histogram() -> Histogram<u64> {
    // Histogram::new(3) only fails for more than 5 significant digits.
    panic!("hdrhistogram rejected 3 significant digits")
}

impl Clients {
    pub fn new(load: LoadConfig, reply_quorum: usize) -> Clients {
        let n = load.clients as usize;
        Clients {
            next_number: vec![0; n],
            load,
            reply_quorum,
            issued: 0,
            pending: FxHashMap::default(),
            latency: latency_histogram(),
            committed: 0,
            committed_measured: 0,
            repeated_replies: 0,
            pending_per_client: vec![0; n],
            rejected: 0,
            series: crate::SeriesRecorder::new(),
        }
    }

    pub fn load(&self) -> &LoadConfig {
        &self.load
    }

    /// May the generator issue another request?
    pub fn may_issue(&self) -> bool {
        self.load.total.is_none_or(|t| self.issued < t)
    }

    /// A new request id for `client`, recorded as pending; or refused, if
    /// the client already has `max_pending` pending (the admission policy,
    /// [`LoadConfig::max_pending`]).
    pub fn issue(&mut self, client: u32, intended: Time) -> Issue {
        if !self.may_issue() {
            return Issue::Done;
        }
        let Some(pending) = self.pending_per_client.get_mut(client as usize) else {
            return Issue::Done;
        };
        if self.load.max_pending.is_some_and(|max| *pending >= max) {
            self.rejected += 1;
            return Issue::Refused;
        }
        *pending += 1;
        let Some(counter) = self.next_number.get_mut(client as usize) else {
            return Issue::Done;
        };
        let id = RequestId {
            client,
            number: *counter,
        };
        *counter += 1;
        self.issued += 1;
        self.pending.insert(
            id,
            Pending {
                intended,
                repliers: Vec::new(),
                manual: false,
            },
        );
        Issue::Send(id)
    }

    /// Records a request submitted by hand.
    pub fn track_manual(&mut self, id: RequestId, intended: Time) {
        self.pending.insert(
            id,
            Pending {
                intended,
                repliers: Vec::new(),
                manual: true,
            },
        );
    }

    /// Replica `from` reported `id` committed at `now`. Returns the client
    /// to issue a follow-up for (closed loop), if this reply completed it:
    /// the (f+1)-th distinct replica to report it. A repeated report from the
    /// same replica is ignored and counted in `repeated_replies`.
    pub fn reply(&mut self, id: RequestId, from: NodeId, now: Time) -> Option<u32> {
        let p = self.pending.get_mut(&id)?;
        if p.repliers.contains(&from) {
            self.repeated_replies += 1;
            return None;
        }
        p.repliers.push(from);
        if p.repliers.len() < self.reply_quorum {
            return None;
        }
        let (intended, manual) = (p.intended, p.manual);
        self.pending.remove(&id);
        if !manual && let Some(n) = self.pending_per_client.get_mut(id.client as usize) {
            *n = n.saturating_sub(1);
        }
        self.committed += 1;
        if !manual {
            self.series
                .completed(now.since(Time::ZERO), now.since(intended));
        }
        if intended >= Time::from_duration(self.load.warmup) {
            self.committed_measured += 1;
            let nanos = now.since(intended).as_nanos();
            let _ = self
                .latency
                .record(u64::try_from(nanos).unwrap_or(u64::MAX).max(1_000));
        }
        let closed = matches!(self.load.mode, LoadMode::Closed { .. });
        (closed && !manual).then_some(id.client)
    }

    pub fn issued(&self) -> u64 {
        self.issued
    }
    pub fn committed(&self) -> u64 {
        self.committed
    }
    pub fn committed_measured(&self) -> u64 {
        self.committed_measured
    }
    pub fn repeated_replies(&self) -> u64 {
        self.repeated_replies
    }
    /// Requests refused at the client edge (never sent).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }
    pub fn latency(&self) -> LatencySummary {
        LatencySummary::from_histogram(&self.latency)
    }
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.latency
    }
    /// Completions and latency per second so far.
    pub fn series(&self) -> Vec<crate::SeriesPoint> {
        self.series.points()
    }
}

#[cfg(test)]
mod tests {
    use super::{Clients, Issue};
    use crate::LoadConfig;
    use bft_core::{NodeId, Time};

    /// A client at its window refuses (counted) until a pending request
    /// completes; another client has its own window.
    #[test]
    fn a_client_at_max_pending_refuses_until_one_completes() {
        let mut c = Clients::new(LoadConfig::open(100.0, 2, 8).with_max_pending(2), 2);
        let t = Time::ZERO;
        let Issue::Send(first) = c.issue(0, t) else {
            panic!("first is sent")
        };
        assert!(matches!(c.issue(0, t), Issue::Send(_)));
        assert_eq!(c.issue(0, t), Issue::Refused);
        assert!(
            matches!(c.issue(1, t), Issue::Send(_)),
            "client 1's own window"
        );
        assert_eq!((c.issued(), c.rejected()), (3, 1));
        c.reply(first, NodeId(0), t);
        assert_eq!(
            c.issue(0, t),
            Issue::Refused,
            "one report does not complete it"
        );
        c.reply(first, NodeId(1), t);
        assert!(
            matches!(c.issue(0, t), Issue::Send(_)),
            "completed: room again"
        );
        assert_eq!(c.rejected(), 2);
    }
}
