//! Forming a quorum certificate from votes at the next leader
//! ([`VoteCollector`], optimistic aggregation). Checking one is
//! `crate::rules::verify_qc`.

use crate::error::HotStuffError;
use crate::types::{QuorumCert, VOTE_DOMAIN, Vote, vote_payload};
use bft_core::{BlsSignature, Committee, Crypto, Digest, NodeId, View};
use std::collections::BTreeMap;

/// Votes of one view, at the leader of the next view.
#[derive(Debug, Default)]
struct ViewVotes {
    /// Which block each voter voted for: one vote per voter per view.
    voted: BTreeMap<NodeId, Digest>,
    /// Subgroup-checked partial signatures per block, not yet verified.
    parts: BTreeMap<Digest, Vec<(NodeId, BlsSignature)>>,
    /// A QC was formed for this view; later votes are ignored.
    certified: bool,
}

/// What adding a vote produced.
#[derive(Debug, PartialEq, Eq)]
pub enum VoteOutcome {
    /// Stored; not yet n−f verified votes for its block.
    Pending,
    /// This view already has its QC; the vote was not needed.
    Late,
    /// n−f votes formed this QC. `dropped` bad votes were found on the way
    /// (only when the optimistic aggregate failed).
    Certified { qc: QuorumCert, dropped: usize },
    /// The aggregate failed; `dropped` bad votes were removed and fewer than
    /// n−f good ones remain.
    Dropped { dropped: usize },
}

/// The next leader's vote collector.
///
/// **Optimistic aggregation**: each vote is only subgroup-checked on arrival
/// (`bls_check`, cheap). When a block has n−f votes they are aggregated and
/// the aggregate is verified once. Only if that fails are the votes verified
/// one by one; bad ones are dropped (and counted by the caller) and their
/// voters stay marked as having voted, so a Byzantine voter cannot force the
/// slow path twice in a view.
#[derive(Debug, Default)]
pub struct VoteCollector {
    views: BTreeMap<View, ViewVotes>,
}

impl VoteCollector {
    /// Adds `vote` from `voter`. Rejects a malformed signature, a second vote
    /// for the same block (duplicate) or for another block (equivocation) in
    /// the same view.
    pub fn add(
        &mut self,
        committee: &Committee,
        crypto: &dyn Crypto,
        voter: NodeId,
        vote: &Vote,
    ) -> Result<VoteOutcome, HotStuffError> {
        let view_votes = self.views.entry(vote.view).or_default();
        if view_votes.certified {
            return Ok(VoteOutcome::Late);
        }
        match view_votes.voted.get(&voter) {
            Some(block) if *block == vote.block => {
                return Err(HotStuffError::DuplicateVote {
                    voter,
                    view: vote.view,
                });
            }
            Some(_) => {
                return Err(HotStuffError::EquivocatingVote {
                    voter,
                    view: vote.view,
                });
            }
            None => {}
        }
        crypto
            .bls_check(&vote.signature)
            .map_err(|_| HotStuffError::MalformedVote)?;
        view_votes.voted.insert(voter, vote.block);
        let parts = view_votes.parts.entry(vote.block).or_default();
        parts.push((voter, vote.signature));
        let quorum = committee.quorum_n_minus_f();
        if parts.len() < quorum {
            return Ok(VoteOutcome::Pending);
        }
        let (outcome, certified) = aggregate(crypto, quorum, vote.view, vote.block, parts);
        view_votes.certified = certified;
        if certified {
            view_votes.parts.clear();
        }
        Ok(outcome)
    }

    /// Whether votes are held for a view strictly between `low` and `high`
    /// that have not (yet) formed a QC.
    pub fn pending_between(&self, low: View, high: View) -> bool {
        if high <= low.next() {
            return false;
        }
        self.views
            .range(low.next()..high)
            .any(|(_, v)| !v.certified && !v.voted.is_empty())
    }

    /// Forgets views below `view` (they can no longer matter).
    pub fn prune_below(&mut self, view: View) {
        self.views = self.views.split_off(&view);
    }

    /// Votes held, for the memory bound.
    pub fn retained(&self) -> usize {
        self.views.values().map(|v| v.voted.len() + 1).sum()
    }
}

/// Aggregates `parts` (≥ quorum of them) and verifies the aggregate once; on
/// failure verifies each part, keeps the good ones in `parts` and retries if
/// a quorum remains. Returns the outcome and whether a QC was formed.
fn aggregate(
    crypto: &dyn Crypto,
    quorum: usize,
    view: View,
    block: Digest,
    parts: &mut Vec<(NodeId, BlsSignature)>,
) -> (VoteOutcome, bool) {
    let payload = vote_payload(view, &block);
    if let Some(qc) = try_aggregate(crypto, view, block, &payload, parts) {
        return (VoteOutcome::Certified { qc, dropped: 0 }, true);
    }
    // Slow path: find the culprits.
    let before = parts.len();
    parts.retain(|(voter, sig)| {
        crypto
            .bls_verify(*voter, VOTE_DOMAIN, &payload, sig)
            .is_ok()
    });
    let dropped = before - parts.len();
    if parts.len() >= quorum {
        // Every remaining part verified on its own, so the aggregate of them
        // is valid; it is still checked once, like any QC we form.
        if let Some(qc) = try_aggregate(crypto, view, block, &payload, parts) {
            return (VoteOutcome::Certified { qc, dropped }, true);
        }
    }
    (VoteOutcome::Dropped { dropped }, false)
}

fn try_aggregate(
    crypto: &dyn Crypto,
    view: View,
    block: Digest,
    payload: &[u8],
    parts: &[(NodeId, BlsSignature)],
) -> Option<QuorumCert> {
    let signature = crypto.bls_aggregate(parts).ok()?;
    crypto
        .bls_verify_aggregate(VOTE_DOMAIN, payload, &signature)
        .ok()?;
    Some(QuorumCert {
        view,
        block,
        signature,
    })
}
