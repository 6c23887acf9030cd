//! Voting and quorum certificates: the vote rule applied to the block a
//! replica is about to vote for, collecting votes into a QC at the next
//! leader, and the cache of QCs already verified.

use super::{HotStuff, MAX_VERIFIED_QCS, Out, ViewEntry};
use crate::error::HotStuffError;
use crate::qc::VoteOutcome;
use crate::rules::{Candidate, verify_qc};
use crate::types::{Message, QuorumCert, VOTE_DOMAIN, Vote, vote_payload};
use bft_core::{Action, Digest, NodeId};

impl HotStuff {
    /// Algorithm 4 `onReceiveProposal`: vote for the current view's proposal
    /// iff the vote rule ([`crate::rules::safe_to_vote`]) holds; the vote goes to
    /// leader(v+1) (handled in place if that is us).
    pub(super) fn maybe_vote(&mut self, out: &mut Out) -> Result<(), HotStuffError> {
        if self.considered_view >= self.view {
            return Ok(());
        }
        let Some(&hash) = self.proposals.get(&self.view) else {
            return Ok(());
        };
        if !self.blocks.contains_key(&hash) {
            return Ok(());
        }
        self.considered_view = self.view;
        self.vote_on(hash, out)
    }

    /// Runs the vote rule on the stored block `hash` and, if it holds,
    /// votes for it (to leader(view+1), handled in place if that is us).
    pub(super) fn vote_on(&mut self, hash: Digest, out: &mut Out) -> Result<(), HotStuffError> {
        let Some(block) = self.blocks.get(&hash) else {
            return Ok(());
        };
        let candidate = Candidate {
            view: block.view,
            justify_view: block.justify.view,
            extends_locked: self.extends(block, self.safety.locked),
        };
        if !self.vote_rule(&candidate) {
            self.votes_refused += 1;
            return Ok(());
        }
        self.safety.last_voted_view = block.view;
        let vote = Vote {
            view: block.view,
            block: hash,
            signature: self
                .crypto
                .bls_sign(VOTE_DOMAIN, &vote_payload(block.view, &hash)),
        };
        self.last_vote = Some(vote.clone());
        let next_leader = self.leader(block.view.next());
        if next_leader == self.id {
            // Our own vote: counted by nobody, delivered in place.
            self.on_vote(self.id, &vote, out)
        } else {
            out.push(Action::Send {
                to: next_leader,
                msg: Message::Vote(vote),
            });
            Ok(())
        }
    }

    /// A vote for view v at leader(v+1): collected with optimistic
    /// aggregation; n−f of them for one block form QC(v), which becomes
    /// highQC and moves us into v+1, where we lead.
    pub(super) fn on_vote(
        &mut self,
        from: NodeId,
        vote: &Vote,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        let target = vote.view.next();
        if self.leader(target) != self.id {
            return Err(HotStuffError::NotNextLeader { view: vote.view });
        }
        if target < self.view {
            // Late: we already moved past the view it would certify.
            return Ok(());
        }
        if vote.view > self.horizon() {
            return Err(HotStuffError::ViewTooFar {
                view: vote.view,
                current: self.view,
            });
        }
        self.collect_vote(from, vote, out)
    }

    /// Adds a vote to the collector; a formed QC becomes highQC and moves us
    /// into the next view.
    pub(super) fn collect_vote(
        &mut self,
        from: NodeId,
        vote: &Vote,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        let outcome = self.votes.add(&self.committee, &*self.crypto, from, vote)?;
        match outcome {
            VoteOutcome::Pending | VoteOutcome::Late => Ok(()),
            VoteOutcome::Certified { qc, dropped } => {
                self.cache_qc(&qc);
                self.observe_qc(qc, out);
                self.count_dropped(dropped)
            }
            VoteOutcome::Dropped { dropped } => self.count_dropped(dropped),
        }
    }

    pub(super) fn count_dropped(&mut self, dropped: usize) -> Result<(), HotStuffError> {
        if dropped == 0 {
            return Ok(());
        }
        self.bad_votes_dropped += dropped as u64;
        Err(HotStuffError::BadVoteSignatures { dropped })
    }

    /// The QC rule with a cache: a QC for (view, block) is verified once;
    /// afterwards the copy we verified is used, never the peer's bytes.
    pub(super) fn verified_qc(&mut self, qc: &QuorumCert) -> Result<QuorumCert, HotStuffError> {
        if qc.is_genesis() {
            return Ok(qc.clone());
        }
        if let Some(known) = self.verified_qcs.get(&(qc.view, qc.block)) {
            return Ok(known.clone());
        }
        verify_qc(&self.committee, &*self.crypto, qc)?;
        self.cache_qc(qc);
        Ok(qc.clone())
    }

    /// Rule: the cache is bounded; beyond [`MAX_VERIFIED_QCS`] the QC of the
    /// lowest view goes (it is the least likely to be seen again, and a
    /// miss only costs one more verification).
    pub(super) fn cache_qc(&mut self, qc: &QuorumCert) {
        self.verified_qcs.insert((qc.view, qc.block), qc.clone());
        while self.verified_qcs.len() > MAX_VERIFIED_QCS {
            self.verified_qcs.pop_first();
        }
    }

    /// A verified QC: Algorithm 4 `updateQCHigh` (highQC only ever comes from
    /// verified QCs), then QC-driven view synchronisation.
    pub(super) fn observe_qc(&mut self, qc: QuorumCert, out: &mut Out) {
        self.observe_qc_as(qc, ViewEntry::Qc, out);
    }

    pub(super) fn observe_qc_as(&mut self, qc: QuorumCert, entry: ViewEntry, out: &mut Out) {
        let target = qc.view.next();
        if qc.view > self.high_qc.view {
            self.high_qc = qc;
        }
        self.enter_view(target, entry, out);
    }
}
