//! State sync from any distance: snapshots of the committed state.
//!
//! Each protocol keeps a bounded archive of decided history for peers that
//! fell a little behind (PBFT 256 batches below its stable checkpoint, QBFT
//! 64 heights, HotStuff 256 blocks). A replica further behind than that
//! installs a [`Snapshot`] instead: the committed state at a slot (the
//! ledger's tip there, what the protocol needs to continue from it, and the
//! request ids executed up to it), and then catches up from the snapshot
//! through the archive, like any replica a little behind. The slots between
//! its old tip and the snapshot are not in its ledger; the runtime is told
//! so ([`crate::Action::InstallSnapshot`]) and records where its ledger
//! resumes.
//!
//! The rules, the same in all three protocols:
//!
//! 1. **Snapshot points.** A replica takes a snapshot when its committed
//!    slot reaches a multiple of its protocol's interval, and keeps the
//!    latest [`SNAPSHOTS_KEPT`] ([`Snapshots`]). Every honest replica's
//!    committed state at a slot is the same (agreement and deterministic
//!    execution), so honest replicas less than an interval apart hold one
//!    snapshot in common. The interval is at most a quarter of the
//!    protocol's archive, so the history after a kept snapshot is still
//!    archived by a peer that has it.
//! 2. **Certification.** A replica installs a snapshot only once f+1
//!    distinct members offered one with the same digest ([`SnapshotVotes`]):
//!    at most f are faulty, so one of them is honest and the snapshot is
//!    the committed state at its slot. A Byzantine peer can withhold a
//!    snapshot or offer a false one, never make one be installed. Only a
//!    snapshot above the replica's own committed slot is considered.
//! 3. **Bounded memory.** A replica holds at most [`SNAPSHOTS_KEPT`] offers
//!    per member (the latest from each replaces the one before), and asks
//!    for snapshots at most once per retry period; serving them draws on
//!    the protocol's per-peer serve budget ([`crate::ServeBudget`]).

use crate::bytes_array::Digest;
use crate::ids::{NodeId, Time};
use crate::pool::Executed;
use crate::serve::ServeBudget;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// How many snapshots a replica keeps, and offers at once.
pub const SNAPSHOTS_KEPT: usize = 2;

/// A replica's committed state at `slot`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot<T> {
    /// The last committed slot the snapshot covers.
    pub slot: u64,
    /// The ledger's block at `slot`: the parent of slot `slot + 1`.
    pub block: Digest,
    /// What the protocol needs besides to continue from `slot` (QBFT the
    /// next height's round-0 slot, HotStuff the committed block).
    pub tip: T,
    /// The requests executed up to `slot`, so none is executed twice.
    pub executed: Executed,
}

/// The protocol's part of a snapshot, named by what identifies it: two
/// honest replicas' tips at one slot have the same identity even where
/// their bytes may differ (HotStuff's committed block carries whichever
/// aggregate of its parent's QC the replica verified; its hash leaves the
/// signature out).
pub trait SnapshotTip: Clone + Serialize {
    fn identity(&self) -> Digest;
}

/// QBFT's tip: the next height's round-0 slot.
impl SnapshotTip for u64 {
    fn identity(&self) -> Digest {
        Digest::of("bftbench/snapshot-tip/u64", &[&self.to_le_bytes()])
    }
}

/// No protocol part (PBFT: slot and block say everything).
impl SnapshotTip for () {
    fn identity(&self) -> Digest {
        Digest::ZERO
    }
}

impl<T: SnapshotTip> Snapshot<T> {
    /// What identifies the snapshot: two snapshots with the same digest
    /// are the same committed state.
    pub fn digest(&self) -> Digest {
        // Encoding a value of plain fields into a vector cannot fail; an
        // empty encoding would only make every snapshot's digest differ
        // from its peers', never make two different ones agree.
        let executed = postcard::to_allocvec(&self.executed).unwrap_or_default();
        Digest::of(
            "bftbench/snapshot/v1",
            &[
                &self.slot.to_le_bytes(),
                self.block.as_bytes(),
                self.tip.identity().as_bytes(),
                &executed,
            ],
        )
    }
}

/// A replica's own snapshot points (rule 1).
#[derive(Clone, Debug)]
pub struct Snapshots<T> {
    interval: u64,
    kept: VecDeque<Snapshot<T>>,
}

impl<T: Clone> Snapshots<T> {
    /// Snapshots every `interval` slots (at least 1).
    pub fn new(interval: u64) -> Snapshots<T> {
        Snapshots {
            interval: interval.max(1),
            kept: VecDeque::new(),
        }
    }

    pub fn interval(&self) -> u64 {
        self.interval
    }

    /// Whether a snapshot is due at committed slot `slot`.
    pub fn due(&self, slot: u64) -> bool {
        slot > 0 && slot.is_multiple_of(self.interval)
    }

    /// Keeps `snapshot` (taken at a snapshot point, or installed), dropping
    /// the oldest beyond [`SNAPSHOTS_KEPT`].
    pub fn keep(&mut self, snapshot: Snapshot<T>) {
        if self.kept.back().is_some_and(|s| s.slot >= snapshot.slot) {
            return;
        }
        self.kept.push_back(snapshot);
        while self.kept.len() > SNAPSHOTS_KEPT {
            self.kept.pop_front();
        }
    }

    /// The kept snapshots above `slot`, oldest first (empty: none to offer).
    pub fn above(&self, slot: u64) -> Vec<Snapshot<T>> {
        self.kept
            .iter()
            .filter(|s| s.slot > slot)
            .cloned()
            .collect()
    }

    /// The newest snapshot's slot (0: none yet).
    pub fn newest(&self) -> u64 {
        self.kept.back().map_or(0, |s| s.slot)
    }

    /// Serving (rule 3): the kept snapshots above `slot` for `peer`, one
    /// answer drawn from its serve budget before anything is built; empty,
    /// and nothing drawn, when none is above `slot`.
    pub fn serve(
        &self,
        budget: &mut ServeBudget,
        peer: NodeId,
        slot: u64,
        now: Time,
    ) -> Result<Vec<Snapshot<T>>, OverBudget> {
        if self.newest() <= slot {
            return Ok(Vec::new());
        }
        if !budget.try_take(peer, now) {
            return Err(OverBudget);
        }
        Ok(self.above(slot))
    }
}

/// A peer asked for more snapshots than its serve budget allows; each
/// protocol counts it as `serve-limited`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverBudget;

/// Why an offer of snapshots is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotFault {
    /// More than [`SNAPSHOTS_KEPT`] snapshots in one offer.
    TooMany,
    /// A snapshot not at a snapshot point of the interval.
    OffInterval,
}

impl std::fmt::Display for SnapshotFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotFault::TooMany => {
                write!(f, "more than {SNAPSHOTS_KEPT} snapshots offered at once")
            }
            SnapshotFault::OffInterval => write!(f, "a snapshot off the snapshot interval"),
        }
    }
}

/// Offers collected from peers until f+1 agree (rule 2), and the pacing of
/// this replica's requests for them.
#[derive(Clone, Debug)]
pub struct SnapshotVotes<T> {
    /// f+1.
    needed: usize,
    interval: u64,
    offers: BTreeMap<NodeId, Vec<(Digest, Snapshot<T>)>>,
    asked_at: Option<Time>,
}

impl<T: SnapshotTip> SnapshotVotes<T> {
    /// Installs once `needed` (f+1) members agree; snapshots are expected
    /// every `interval` slots.
    pub fn new(needed: usize, interval: u64) -> SnapshotVotes<T> {
        SnapshotVotes {
            needed: needed.max(1),
            interval: interval.max(1),
            offers: BTreeMap::new(),
            asked_at: None,
        }
    }

    /// Records `from`'s offer (replacing its previous one) and returns the
    /// highest snapshot above `committed` that f+1 members now offer, if
    /// any — every member's copy of it (empty: none yet), since copies with
    /// one digest may still differ where the digest does not look (a
    /// HotStuff block's QC signature, PBFT's checkpoint proof): the
    /// protocol installs the first copy that passes its own checks. The
    /// collected offers are then cleared.
    pub fn offered(
        &mut self,
        from: NodeId,
        snapshots: Vec<Snapshot<T>>,
        committed: u64,
    ) -> Result<Vec<Snapshot<T>>, SnapshotFault> {
        if snapshots.len() > SNAPSHOTS_KEPT {
            return Err(SnapshotFault::TooMany);
        }
        if snapshots
            .iter()
            .any(|s| !s.slot.is_multiple_of(self.interval))
        {
            return Err(SnapshotFault::OffInterval);
        }
        let fresh: Vec<(Digest, Snapshot<T>)> = snapshots
            .into_iter()
            .filter(|s| s.slot > committed)
            .map(|s| (s.digest(), s))
            .collect();
        self.offers.insert(from, fresh);
        self.offers
            .values_mut()
            .for_each(|o| o.retain(|(_, s)| s.slot > committed));
        let mut support: BTreeMap<(u64, Digest), usize> = BTreeMap::new();
        for offer in self.offers.values() {
            for (d, s) in offer {
                *support.entry((s.slot, *d)).or_default() += 1;
            }
        }
        let Some(&(slot, digest)) = support
            .iter()
            .rev()
            .find(|&(_, &count)| count >= self.needed)
            .map(|(key, _)| key)
        else {
            return Ok(Vec::new());
        };
        let copies = std::mem::take(&mut self.offers)
            .into_values()
            .flatten()
            .filter(|(d, s)| *d == digest && s.slot == slot)
            .map(|(_, s)| s)
            .collect();
        Ok(copies)
    }

    /// Whether this replica should ask its peers for snapshots now: at most
    /// once per `every` (rule 3). Marks the request as sent when true.
    pub fn ask(&mut self, now: Time, every: Duration) -> bool {
        if self
            .asked_at
            .is_some_and(|at| now < at.saturating_add(every))
        {
            return false;
        }
        self.asked_at = Some(now);
        true
    }

    /// Offers held (for memory bounds).
    pub fn retained(&self) -> usize {
        self.offers.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::RequestId;

    fn snap(slot: u64, tag: u8) -> Snapshot<u64> {
        let mut executed = Executed::new();
        executed.insert(RequestId {
            client: 0,
            number: 0,
        });
        Snapshot {
            slot,
            block: Digest([tag; 32]),
            tip: u64::from(tag),
            executed,
        }
    }

    #[test]
    fn f_plus_one_matching_offers_install_the_highest_snapshot() {
        let mut votes = SnapshotVotes::new(2, 8);
        let p = |i| NodeId(i);
        assert_eq!(
            votes.offered(p(1), vec![snap(8, 1), snap(16, 1)], 0),
            Ok(vec![])
        );
        // A false snapshot at 16 agrees with nobody; the honest one at 8 does.
        assert_eq!(
            votes.offered(p(2), vec![snap(8, 1), snap(16, 9)], 0),
            Ok(vec![snap(8, 1), snap(8, 1)])
        );
        assert_eq!(votes.retained(), 0);
        // A second honest replica with 16 makes 16 installable.
        votes.offered(p(1), vec![snap(16, 1)], 8).ok();
        assert_eq!(
            votes.offered(p(3), vec![snap(16, 1)], 8),
            Ok(vec![snap(16, 1), snap(16, 1)])
        );
    }

    #[test]
    fn one_member_offering_twice_is_one_vote() {
        let mut votes = SnapshotVotes::new(2, 8);
        votes.offered(NodeId(1), vec![snap(8, 1)], 0).ok();
        assert_eq!(votes.offered(NodeId(1), vec![snap(8, 1)], 0), Ok(vec![]));
        assert_eq!(votes.retained(), 1);
    }

    #[test]
    fn offers_off_the_interval_or_too_many_are_refused() {
        let mut votes = SnapshotVotes::new(2, 8);
        assert_eq!(
            votes.offered(NodeId(1), vec![snap(9, 1)], 0),
            Err(SnapshotFault::OffInterval)
        );
        assert_eq!(
            votes.offered(NodeId(1), vec![snap(8, 1), snap(16, 1), snap(24, 1)], 0),
            Err(SnapshotFault::TooMany)
        );
        assert_eq!(votes.retained(), 0);
    }

    #[test]
    fn snapshots_below_the_own_tip_are_ignored() {
        let mut votes = SnapshotVotes::new(2, 8);
        votes.offered(NodeId(1), vec![snap(8, 1)], 8).ok();
        assert_eq!(votes.offered(NodeId(2), vec![snap(8, 1)], 8), Ok(vec![]));
    }

    #[test]
    fn a_replica_keeps_its_latest_snapshot_points() {
        let mut own = Snapshots::new(8);
        assert!(own.due(8) && !own.due(9) && !own.due(0));
        for slot in [8, 16, 24] {
            own.keep(snap(slot, 1));
        }
        own.keep(snap(16, 1)); // older than the newest: ignored
        assert_eq!(own.newest(), 24);
        assert_eq!(own.above(0).len(), SNAPSHOTS_KEPT);
        assert_eq!(own.above(16).len(), 1);
        assert!(own.above(24).is_empty());
    }

    #[test]
    fn asking_is_paced() {
        let mut votes: SnapshotVotes<u64> = SnapshotVotes::new(2, 8);
        let every = Duration::from_millis(100);
        assert!(votes.ask(Time::ZERO, every));
        assert!(!votes.ask(Time::ZERO.saturating_add(Duration::from_millis(99)), every));
        assert!(votes.ask(Time::ZERO.saturating_add(every), every));
    }
}
