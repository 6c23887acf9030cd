//! The replica's bounded bookkeeping: a log slot per sequence number, the
//! VIEW-CHANGEs kept per replica, a catch-up target, and the back-off of
//! answers to lagging replicas.

use crate::messages::{Checkpoint, PrePrepare, PreparedCert, ViewChange, Vote};
use bft_core::{NodeId, Time};
use std::collections::BTreeMap;
use std::time::Duration;

/// A stable checkpoint this replica has proof of but has not reached.
#[derive(Debug)]
pub(super) struct CatchUp {
    pub(super) seq: u64,
    pub(super) proof: Vec<Checkpoint>,
    /// Fetches sent so far (picks the next signer of the proof to ask,
    /// cycling).
    pub(super) asked: usize,
}

/// One sequence number's entry in the message log.
#[derive(Debug, Default)]
pub(super) struct Slot {
    /// The pre-prepare accepted in the current view.
    pub(super) pre_prepare: Option<PrePrepare>,
    /// PREPAREs of the current view, one per replica (any digest).
    pub(super) prepares: BTreeMap<NodeId, Vote>,
    /// COMMITs of the current view, one per replica (any digest).
    pub(super) commits: BTreeMap<NodeId, Vote>,
    /// Prepared in the current view (and COMMIT sent).
    pub(super) prepared: bool,
    /// Committed-local in the current view.
    pub(super) committed: bool,
    /// The prepared certificate from the highest view this replica prepared
    /// in; survives view changes and goes into VIEW-CHANGE's P.
    pub(super) cert: Option<PreparedCert>,
    /// Pre-prepares (with their batches) this replica held for the slot in
    /// views it left, or in certificates a newer one replaced, the newest
    /// last, at most [`Slot::EARLIER_KEPT`] with distinct digests: NEW-VIEW
    /// names batches by digest, and one this replica does not hold in its
    /// certificate may be here.
    pub(super) earlier: Vec<PrePrepare>,
}

impl Slot {
    pub(super) fn entries(&self) -> usize {
        1 + self.prepares.len()
            + self.commits.len()
            + self.cert.as_ref().map_or(0, |c| 1 + c.prepares.len())
            + self.earlier.len()
    }
    pub(super) const EARLIER_KEPT: usize = 3;

    /// Keeps `pp`'s batch among the earlier ones (if it has one), the
    /// oldest forgotten beyond [`Slot::EARLIER_KEPT`].
    pub(super) fn keep_earlier(&mut self, pp: PrePrepare) {
        if !pp.has_batch() {
            return;
        }
        self.earlier.retain(|e| e.digest != pp.digest);
        self.earlier.push(pp);
        if self.earlier.len() > Self::EARLIER_KEPT {
            self.earlier.remove(0);
        }
    }
    /// Forgets the current view's votes and keeps its pre-prepare as the
    /// earlier one if it holds its batch; the certificate stays (the
    /// replica's P entry).
    pub(super) fn leave_view(&mut self) {
        if let Some(pp) = self.pre_prepare.take() {
            self.keep_earlier(pp);
        }
        self.prepares.clear();
        self.commits.clear();
        self.prepared = false;
        self.committed = false;
    }
}

/// The valid VIEW-CHANGEs this replica holds, per sender and target view.
///
/// Castro–Liskov (TOCS 2002 §4.4) keep every valid VIEW-CHANGE in the log: a
/// replica that later sends VIEW-CHANGE(v+2) has not withdrawn its
/// VIEW-CHANGE(v+1), which still counts towards primary(v+1)'s quorum and a
/// backup's new-view timer for v+1. Keeping only each sender's newest one
/// (as this replica once did) loses such quorums: with n = 4, replicas 1 and
/// 2 changing to view 1 and replica 3 already on to view 2 (its new-view
/// timer saw the omitting primary 0's VIEW-CHANGE, which 1 and 2 never get),
/// 3's VIEW-CHANGE(2) overwrote its VIEW-CHANGE(1) at 1 and 2, so neither
/// view 1 (two VIEW-CHANGEs left) nor view 2 (one, short of f+1) could ever
/// complete.
///
/// Bounded against Byzantine senders: at most [`VcLog::PER_REPLICA`] (two)
/// per sender. For another replica it keeps the newest (for the f+1 rule)
/// and the lowest not below this replica's view (the one it needs a quorum
/// of next), and drops views this replica has passed. Of its own it keeps
/// the two most recent, to answer replicas still changing to the previous
/// view ([`Pbft::answer_lagging`]).
#[derive(Debug, Default)]
pub(super) struct VcLog(BTreeMap<NodeId, BTreeMap<u64, ViewChange>>);

impl VcLog {
    const PER_REPLICA: usize = 2;

    pub(super) fn get(&self, replica: NodeId, view: u64) -> Option<&ViewChange> {
        self.0.get(&replica).and_then(|m| m.get(&view))
    }
    /// The sender's VIEW-CHANGE for the highest view.
    pub(super) fn newest(&self, replica: NodeId) -> Option<&ViewChange> {
        self.0
            .get(&replica)
            .and_then(|m| m.last_key_value())
            .map(|(_, vc)| vc)
    }
    /// Every sender's newest VIEW-CHANGE, by sender id.
    pub(super) fn newest_each(&self) -> impl Iterator<Item = &ViewChange> {
        self.0
            .values()
            .filter_map(|m| m.last_key_value().map(|(_, vc)| vc))
    }
    /// The VIEW-CHANGEs for exactly `view`, by sender id.
    pub(super) fn for_view(&self, view: u64) -> impl Iterator<Item = &ViewChange> {
        self.0.values().filter_map(move |m| m.get(&view))
    }
    pub(super) fn insert(&mut self, me: NodeId, vc: ViewChange) {
        let own = vc.replica == me;
        let m = self.0.entry(vc.replica).or_default();
        m.insert(vc.new_view, vc);
        while m.len() > Self::PER_REPLICA {
            let victim = if own {
                m.first_key_value().map(|(&v, _)| v)
            } else {
                m.range(..).rev().nth(1).map(|(&v, _)| v)
            };
            match victim {
                Some(v) => m.remove(&v),
                None => break,
            };
        }
    }
    /// Forgets other replicas' VIEW-CHANGEs for views below `view`.
    pub(super) fn drop_below(&mut self, me: NodeId, view: u64) {
        for (&id, m) in self.0.iter_mut() {
            if id != me {
                m.retain(|&v, _| v >= view);
            }
        }
        self.0.retain(|_, m| !m.is_empty());
    }
    pub(super) fn len(&self) -> usize {
        self.0.values().map(BTreeMap::len).sum()
    }
}

/// When a replica was last answered with a retransmission in this view, and
/// how many times so far.
#[derive(Clone, Copy, Debug)]
pub(super) struct Answered {
    pub(super) last: Time,
    pub(super) count: u32,
}

/// Retransmission rate limit, with exponential back-off per requester: true
/// (and records `now`) if `to` was never answered in this view, or its k-th
/// answer (k = 1, 2, …) was at least `interval` · 2^k ago. The maps are
/// cleared when a view is entered, so within one view of length D a replica
/// sends one requester at most 1 + log2(1 + D / interval) answers of each
/// kind, however often it asks: a Byzantine replica asking every 10 ms draws
/// 7 in a 25 s view of 200 ms timeouts, an honest one cut off by a partition
/// still gets an answer within twice the time it was cut off after the heal.
pub(super) fn backed_off(
    last: &mut BTreeMap<NodeId, Answered>,
    to: NodeId,
    now: Time,
    interval: Duration,
) -> bool {
    let due = match last.get(&to) {
        None => true,
        Some(a) => {
            now >= a
                .last
                .saturating_add(interval.saturating_mul(1 << a.count.min(16)))
        }
    };
    if due {
        let count = last.get(&to).map_or(0, |a| a.count.saturating_add(1));
        last.insert(to, Answered { last: now, count });
    }
    due
}

/// Introspection (tests, metrics).
impl super::Pbft {
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// h, the last stable checkpoint.
    pub fn low_watermark(&self) -> u64 {
        self.low
    }
    pub fn last_executed(&self) -> u64 {
        self.last_executed
    }
    /// True between sending VIEW-CHANGE and accepting the NEW-VIEW.
    pub fn is_changing_view(&self) -> bool {
        !self.active
    }
    /// A stable checkpoint this replica has proof of but has not reached yet
    /// (it is fetching the batches up to it).
    pub fn behind_to(&self) -> Option<u64> {
        self.catch_up.as_ref().map(|c| c.seq)
    }
    /// Sequence numbers currently in the log.
    pub fn log_len(&self) -> usize {
        self.log.len()
    }
}
