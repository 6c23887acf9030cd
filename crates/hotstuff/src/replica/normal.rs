//! The normal case (Algorithm 4): checking a proposal and its block,
//! `update` (highQC, lock, commit through the three-chain), pruning the
//! block tree, and the leader proposing.

use super::{ARCHIVE, CommittedTip, HotStuff, Orphan, Out, link};
use crate::certificate::LedgerCertificate;
use crate::error::HotStuffError;
use crate::pacemaker::{rebuild_pending, timeout_certified};
use crate::rules::{
    BlockRef, check_batch_size, check_first_proposal, check_horizon, check_justify, check_orphan,
    check_parent_link, check_proposer, lock_after,
};
use crate::types::{Block, MAX_FETCH_CHAIN, Message, QuorumCert, Timer};
use bft_core::{Action, Decision, Digest, Height, NodeId, Request, RequestId, Time, View};
use std::collections::{BTreeMap, BTreeSet};

impl HotStuff {
    /// A proposal from `from`. Checks the proposer and the view window, then
    /// the block itself ([`Self::accept_block`]); the vote happens in
    /// [`Self::maybe_vote`] once the replica is in the block's view.
    pub(super) fn on_proposal(
        &mut self,
        now: Time,
        from: NodeId,
        block: Block,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        check_proposer(block.view, from, self.leader(block.view))?;
        if block.view < self.view {
            return self.on_late_proposal(now, from, block, out);
        }
        // A replica left far behind (cut off while the others went on
        // without it) catches up on the QC a far proposal carries: a valid
        // QC proves its view ended (QC-driven view synchronisation), so it
        // is as safe to follow here as inside any block. Only a QC above
        // our highQC is checked, so replays cost nothing.
        if block.view > self.horizon() && block.justify.view > self.high_qc.view {
            let qc = self.verified_qc(&block.justify)?;
            self.observe_qc(qc, out);
        }
        check_horizon(block.view, self.horizon(), self.view)?;
        let hash = block.hash();
        check_first_proposal(block.view, self.proposals.get(&block.view), &hash)?;
        let view = block.view;
        if self.blocks.contains_key(&hash) {
            // Already fetched as some other block's parent.
            self.proposals.insert(view, hash);
            return Ok(());
        }
        self.accept_block(now, from, block, hash, true, out)?;
        if view >= self.view {
            self.proposals.insert(view, hash);
        }
        Ok(())
    }

    /// A proposal for a view we already left (its successor's QC, or our own
    /// QC as next-but-one leader, overtook it). It gets no vote. It is stored
    /// only if we are waiting for it (a fetch, or a block whose parent it
    /// is), so a Byzantine leader replaying or re-forging its past views
    /// cannot grow the tree.
    pub(super) fn on_late_proposal(
        &mut self,
        now: Time,
        from: NodeId,
        block: Block,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        let hash = block.hash();
        if self.blocks.contains_key(&hash) {
            return Ok(());
        }
        let wanted = self.fetching.contains_key(&hash)
            || self.orphans.iter().any(|o| o.block.parent == hash);
        // Vote rule (Algorithm 4 `onReceiveProposal`; `rules::safe_to_vote`:
        // vote iff block.view > last voted view and safeNode holds): the
        // rule does not ask for the replica's current view, so a proposal for a view we left
        // before it arrived but never voted in may still get our vote; its
        // next leader may still be collecting (regression test:
        // `replica_one_view_ahead_votes_for_late_proposals`). Each past view
        // is considered once (`late_considered`), so a Byzantine leader
        // replaying its past views cannot grow the tree.
        let votable = block.view > self.safety.last_voted_view
            && block.view > self.late_considered
            && block.height > self.committed.height;
        if !(wanted || votable) || block.height <= self.committed.height {
            return Err(HotStuffError::StaleProposal {
                view: block.view,
                current: self.view,
            });
        }
        if votable {
            self.late_considered = block.view;
        }
        let view = block.view;
        self.accept_block(now, from, block, hash, votable, out)?;
        if votable && view < self.view && self.blocks.contains_key(&hash) {
            return self.vote_on(hash, out);
        }
        Ok(())
    }

    /// Validates a block, stores it and runs Algorithm 4 `update` on it.
    ///
    /// Block validity (rule 5 of `crate::rules`): the batch fits `max_size`,
    /// the parent is the block its QC certifies from an earlier view, the QC
    /// passes the QC rule, the parent is known (otherwise the block waits,
    /// if the orphan rule allows, and the parent is fetched), and the block
    /// is one height above it in the QC's view.
    pub(super) fn accept_block(
        &mut self,
        now: Time,
        from: NodeId,
        block: Block,
        hash: Digest,
        proposal: bool,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        check_batch_size(&block, self.batch.max_size)?;
        check_justify(&block)?;
        if self.blocks.contains_key(&hash) {
            return Err(HotStuffError::DuplicateBlock);
        }
        if !self.blocks.contains_key(&block.parent) {
            check_orphan(&block, self.committed.view, self.committed.height)?;
        }
        let qc = self.verified_qc(&block.justify)?;
        // Rule: the block keeps the QC copy we verified, not the sender's
        // bytes. A cache hit checks only (view, block), and the block's
        // hash does not cover the signature, so a corrupted signature would
        // otherwise be stored and served to every replica that fetches the
        // block and cannot verify it (regression test:
        // `a_block_is_stored_with_the_qc_copy_we_verified`).
        let block = Block {
            justify: qc.clone(),
            ..block
        };
        let Some(parent) = self.blocks.get(&block.parent) else {
            // The QC is verified, so it still moves highQC and our view on
            // (a replica catching up stays in step with the others).
            self.observe_qc(qc, out);
            if block.height > self.committed.height {
                self.maybe_ask_for_snapshots(now, block.height.0, out);
                // Rule: a proposal more than a fetch's chain above the
                // committed tip is not kept; its QC is (highQC), and the
                // chain is fetched down from there. Kept, such proposals
                // filled their leader's share of the orphans and evicted
                // the oldest, the very ones the fetch was bringing down to
                // the tree, so a replica far behind under load never linked
                // (regression test: `conformance::state_sync`).
                let far = block.height.0
                    > self
                        .committed
                        .height
                        .0
                        .saturating_add(MAX_FETCH_CHAIN as u64);
                if proposal && far {
                    self.far_behind = true;
                    self.fetch_high_qc_block(now, out);
                    return Err(HotStuffError::UnknownParent);
                }
                self.fetch_parent(from, &block, proposal, out);
                self.stash_orphan(Orphan {
                    hash,
                    from,
                    block,
                    proposal,
                });
            }
            return Err(HotStuffError::UnknownParent);
        };
        check_parent_link(&block, qc.view, parent.height, parent.view)?;
        self.blocks.insert(hash, block);
        self.fetching.remove(&hash);
        let update = self.update(hash, out);
        // QC-driven view synchronisation: QC(w) proves view w ended.
        self.observe_qc(qc, out);
        self.adopt_orphans(now, hash, out);
        update
    }

    /// Algorithm 4 `update(b*)`: b'' = b*.justify.node, b' = b''.justify.node,
    /// b = b'.justify.node. Lock b' if higher (lock rule); commit b when
    /// b'' → b' → b is a direct three-chain (commit rule).
    pub(super) fn update(&mut self, b_star: Digest, out: &mut Out) -> Result<(), HotStuffError> {
        let Some(b2_hash) = self.blocks.get(&b_star).map(|b| b.justify.block) else {
            return Ok(());
        };
        let Some(b2) = self.blocks.get(&b2_hash) else {
            return Ok(());
        };
        let b1_hash = b2.justify.block;
        let Some(b1) = self.blocks.get(&b1_hash) else {
            return Ok(());
        };
        // Lock rule: the two-chain head b' becomes the lock if higher.
        self.safety.locked = lock_after(
            self.safety.locked,
            BlockRef {
                hash: b1_hash,
                view: b1.view,
            },
        );
        let b0_hash = b1.justify.block;
        let Some(b0) = self.blocks.get(&b0_hash) else {
            return Ok(());
        };
        // Commit rule: only a direct three-chain commits.
        if self.commit_rule(&link(b2_hash, b2), &link(b1_hash, b1), &link(b0_hash, b0)) {
            let b0_qc = b1.justify.clone();
            self.commit_through(b0_hash, b0_qc, out)?;
        }
        Ok(())
    }

    /// Commits `hash` and its uncommitted ancestors, oldest first: one
    /// Decision per block, slot = height, each with the QC over its block
    /// as its ledger certificate (`crate::certificate`): `qc` for `hash`,
    /// and for each ancestor the QC its child carries (a block's parent is
    /// the block its justify QC names, `check_parent_link`). Each request
    /// is executed at most once (`RequestPool::execute` returns only the
    /// fresh ones). Then prunes the tree below the new committed block.
    pub(super) fn commit_through(
        &mut self,
        hash: Digest,
        qc: QuorumCert,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        let mut chain = Vec::new();
        let mut cursor = (hash, qc);
        loop {
            let Some(block) = self.blocks.get(&cursor.0) else {
                return Err(HotStuffError::ConflictingCommit);
            };
            if block.height <= self.committed.height {
                break;
            }
            let next = (block.parent, block.justify.clone());
            chain.push(std::mem::replace(&mut cursor, next));
        }
        let cursor = cursor.0;
        if chain.is_empty() {
            return Ok(());
        }
        // Safety net: the new blocks must extend the committed tip. With at
        // most f faults this always holds (that is the theorem).
        if cursor != self.committed.hash {
            return Err(HotStuffError::ConflictingCommit);
        }
        for (block_hash, qc) in chain.into_iter().rev() {
            let Some(block) = self.blocks.get(&block_hash) else {
                return Err(HotStuffError::ConflictingCommit);
            };
            let fresh = self.pool.execute(&block.batch);
            out.push(Action::Commit(Decision::executing(
                block.height.0,
                block.view.0,
                block_hash,
                block.parent,
                &fresh,
                LedgerCertificate(qc).encode(),
            )));
            self.committed = CommittedTip {
                hash: block_hash,
                view: block.view,
                height: block.height,
            };
            let block = block.clone();
            self.take_snapshot(block_hash, &block);
        }
        self.prune();
        if self.view_timer_armed && !self.has_work() {
            self.view_timer_armed = false;
            out.push(Action::CancelTimer(Timer::View));
        }
        Ok(())
    }

    /// Memory stays flat: drop every block at or below the committed height
    /// except the committed tip (forks there can never commit), QCs below the
    /// committed view, and orphans that can no longer matter.
    pub(super) fn prune(&mut self) {
        let tip = self.committed;
        let (keep, dropped): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.blocks)
            .into_iter()
            .partition(|(hash, b)| b.height > tip.height || *hash == tip.hash);
        self.blocks = keep;
        // Committed ancestors go to the fetch archive; forks are dropped.
        // Highest first: `is_committed_ancestor` walks down from the
        // committed tip through the tree and the archive, so a block's
        // committed child must be archived before it (in hash order, a
        // commit of several blocks at once archived only some of them, and
        // a replica catching up could never fetch the rest).
        let mut dropped: Vec<(Digest, Block)> = dropped.into_iter().collect();
        dropped.sort_by_key(|(_, b)| std::cmp::Reverse(b.height));
        for (hash, block) in dropped {
            if block.height > Height::ZERO && self.is_committed_ancestor(&hash, &block) {
                self.archive.insert(hash, block);
                self.archive_order.push_back(hash);
            }
        }
        while self.archive_order.len() > ARCHIVE {
            if let Some(old) = self.archive_order.pop_front() {
                self.archive.remove(&old);
            }
        }
        self.verified_qcs.retain(|(view, _), _| *view >= tip.view);
        // Orphans at or below the committed height, or certified before the
        // committed block, can never join the committed chain.
        self.retain_orphans(|o| o.block.height > tip.height && o.block.justify.view >= tip.view);
    }

    /// Whether a block just pruned was committed: its child on the committed
    /// chain is in the tree or the archive. Committed blocks are pruned in
    /// height order, so checking the committed chain from the tip down to
    /// the pruned height suffices.
    pub(super) fn is_committed_ancestor(&self, hash: &Digest, block: &Block) -> bool {
        let mut cursor = self.committed.hash;
        loop {
            if cursor == *hash {
                return true;
            }
            let Some(b) = self
                .blocks
                .get(&cursor)
                .or_else(|| self.archive.get(&cursor))
            else {
                return false;
            };
            if b.height <= block.height {
                return false;
            }
            cursor = b.parent;
        }
    }

    /// Whether `ancestor` is a strict ancestor of `block` (on its parent
    /// chain; a block does not extend itself).
    pub(super) fn extends(&self, block: &Block, ancestor: BlockRef) -> bool {
        let mut cursor = block.parent;
        loop {
            if cursor == ancestor.hash {
                return true;
            }
            match self.blocks.get(&cursor) {
                Some(b) if b.view > ancestor.view => cursor = b.parent,
                _ => return false,
            }
        }
    }

    /// Requests in uncommitted blocks from `tip` down to the committed block,
    /// and whether any of those blocks is non-empty.
    pub(super) fn uncommitted_chain(&self, tip: Digest) -> (BTreeSet<RequestId>, bool) {
        let mut ids = BTreeSet::new();
        let mut pending = false;
        let mut cursor = tip;
        while let Some(b) = self.blocks.get(&cursor) {
            if b.height <= self.committed.height {
                break;
            }
            pending |= !b.batch.is_empty();
            ids.extend(b.batch.iter().map(|r| r.id()));
            cursor = b.parent;
        }
        (ids, pending)
    }

    /// Requests wait, an uncommitted block holds some, or, far behind, a
    /// certified block is still to be fetched.
    pub(super) fn has_work(&self) -> bool {
        !self.pool.is_empty()
            || self.uncommitted_chain(self.high_qc.block).1
            || (self.far_behind && self.lacks_high_qc_block())
    }

    /// Proposes in the current view if we lead it, have not proposed yet, and
    /// are ready: we hold QC(v−1), or n−f NEW-VIEWs for v−1 (then we extend
    /// the highest QC they carried). What goes in the block: see the module
    /// doc on empty blocks.
    pub(super) fn try_propose(&mut self, now: Time, out: &mut Out) {
        let view = self.view;
        if self.leader(view) != self.id || self.proposed_in >= view {
            return;
        }
        let after_timeout = timeout_certified(self.timeouts.count(view.prev()), self.quorum());
        if self.high_qc.view.next() != view && !after_timeout {
            return;
        }
        if self.high_qc.view.next() != view && self.awaits_rebuild(view, out) {
            return;
        }
        let parent_hash = self.high_qc.block;
        let Some(parent_height) = self.blocks.get(&parent_hash).map(|b| b.height) else {
            // We hold a QC for a block we never received: fetch it from one
            // of its voters; try again when it arrives.
            let qc = self.high_qc.clone();
            self.fetch_certified(&qc, out);
            return;
        };
        let (in_flight, pending) = self.uncommitted_chain(parent_hash);
        let max_size = self.batch.max_size.max(1);
        let fresh: Vec<Request> = self
            .pool
            .peek(in_flight.len().saturating_add(max_size))
            .filter(|r| !in_flight.contains(&r.id()))
            .take(max_size)
            .cloned()
            .collect();
        if !(fresh.len() >= max_size || pending || (!fresh.is_empty() && self.batch_due(now, out)))
        {
            return;
        }
        let block = Block {
            parent: parent_hash,
            view,
            height: parent_height.next(),
            batch: fresh,
            justify: self.high_qc.clone(),
        };
        self.proposed_in = view;
        out.push(Action::Broadcast(Message::Proposal(block.clone())));
        // Our own proposal goes through the same checks as anyone's.
        let _ = self.on_proposal(now, self.id, block, out);
    }

    /// Pacemaker rule 6 ([`rebuild_pending`]): after a timeout certificate,
    /// wait (once per view, at most `rebuild_wait`) for NEW-VIEWs that may
    /// complete a QC above highQC from the votes they carry.
    pub(super) fn awaits_rebuild(&mut self, view: View, out: &mut Out) -> bool {
        let pending = rebuild_pending(
            self.votes.pending_between(self.high_qc.view, view),
            self.timeouts.count(view.prev()),
            self.committee.n(),
            self.rebuild_waited >= view,
        );
        if pending && self.rebuild_armed < view {
            self.rebuild_armed = view;
            out.push(Action::SetTimer {
                timer: Timer::Rebuild,
                after: self.cfg.rebuild_wait_used(),
            });
        }
        pending
    }

    /// Whether the oldest waiting request has waited `max_delay`; if not,
    /// arms the batch timer for the rest. The pool's oldest request may be
    /// one already in an uncommitted block (requests leave the pool when
    /// executed); it is older than any fresh one, so a leader never holds a
    /// fresh request longer than `max_delay`, but may cut earlier.
    pub(super) fn batch_due(&mut self, now: Time, out: &mut Out) -> bool {
        let Some(oldest) = self.pool.oldest_arrival() else {
            return false;
        };
        let waited = now.since(oldest);
        if waited >= self.batch.max_delay {
            return true;
        }
        out.push(Action::SetTimer {
            timer: Timer::Batch,
            after: self.batch.max_delay - waited,
        });
        false
    }
}
