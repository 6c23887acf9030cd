//! Block synchronisation: fetching a missing parent or certified block
//! from a replica that has it, serving such fetches, the bounded store
//! of orphans waiting for their parent, and snapshots for a replica
//! further behind than the archive (`bft_core::snapshot`).

use super::{CommittedTip, HotStuff, MAX_FETCHES, MAX_ORPHANS, Orphan, Out, SNAPSHOT_DISTANCE};
use crate::error::HotStuffError;
use crate::types::{Block, MAX_FETCH_CHAIN, Message, QuorumCert};
use bft_core::{Action, Digest, GENESIS, Height, NodeId, Snapshot, Time, View};
use std::collections::BTreeMap;

impl HotStuff {
    /// Asks `from` for `block` and its ancestors above height `above`
    /// (see [`Self::held_below`]).
    ///
    /// Rule: a fetch still unanswered in a later view is re-sent, to `from`
    /// if it is another peer than the one asked (callers rotate the peer
    /// with the view, [`Self::pick_voter`]). Otherwise a peer that never
    /// answers us (omission to us, crashed) holds the fetch for as long as
    /// views keep succeeding: only a view timeout cleared `fetching`, and a
    /// replica that follows the others' QCs never times out (regression
    /// test `fetch_from_a_peer_that_omits_to_us_is_retried_elsewhere`). At
    /// most one request per missing block per view.
    pub(super) fn fetch(&mut self, from: NodeId, block: Digest, above: Height, out: &mut Out) {
        if from == self.id || self.orphans.iter().any(|o| o.hash == block) {
            return;
        }
        match self.fetching.get(&block) {
            Some(&(asked, in_view)) if asked == from || in_view >= self.view => return,
            Some(_) => {}
            None if self.fetching.len() >= MAX_FETCHES => return,
            None => {}
        }
        self.fetching.insert(block, (from, self.view));
        out.push(Action::Resend {
            to: from,
            msg: Message::BlockRequest { block, above },
        });
    }

    /// Asks for a block's missing parent: from one of the parent's voters
    /// (they hold it), rotating with the backoff so a silent one is skipped
    /// after a timeout; the sender if it is the only choice.
    ///
    /// Rule: if the parent is itself an orphan, the block actually missing
    /// is further down: follow the orphans' parent links to the first
    /// ancestor held neither in the tree nor as an orphan, and fetch that
    /// (from a voter of the QC certifying it). Otherwise a fetch that was
    /// lost, cleared on a view timeout or dropped with a stale orphan is
    /// never retried: every new block's parent is an orphan already.
    ///
    /// Rule: a proposal whose parent is missing but not an orphan was most
    /// likely overtaken by it on the way (another leader, another
    /// connection), and the replica holds the grandparent: the fetch asks
    /// only above the highest block held below the parent
    /// ([`Self::held_below`]), so one block comes back (regression test
    /// `a_parent_fetch_asks_only_above_the_blocks_held`). A fetched block
    /// that did not link, or a chain of orphans, means the replica is
    /// behind or on another fork: the fetch asks above the committed tip,
    /// so the answer links whenever the gap fits in one response.
    pub(super) fn fetch_parent(
        &mut self,
        from: NodeId,
        block: &Block,
        proposal: bool,
        out: &mut Out,
    ) {
        let mut missing = block.parent;
        let mut certified_by = &block.justify;
        for _ in 0..self.orphans.len() {
            let Some(orphan) = self.orphans.iter().find(|o| o.hash == missing) else {
                break;
            };
            missing = orphan.block.parent;
            certified_by = &orphan.block.justify;
        }
        let peer = self.pick_voter(certified_by).unwrap_or(from);
        let overtaken = proposal && missing == block.parent;
        let above = if overtaken {
            self.held_below(Height(block.height.0.saturating_sub(1)))
        } else {
            self.committed.height
        };
        self.fetch(peer, missing, above, out);
    }

    /// The highest height held in the tree below `height`, the committed
    /// tip's at least.
    pub(super) fn held_below(&self, height: Height) -> Height {
        self.blocks
            .values()
            .map(|b| b.height)
            .filter(|&h| h < height)
            .fold(self.committed.height, std::cmp::max)
    }

    /// Rule: a replica far behind (a proposal came more than a fetch's
    /// chain above its committed tip) holding a QC for a block it has not
    /// got, with no fetch outstanding, asks a voter of that QC for the blocks after the
    /// newest block it holds on the way (BLOCKS-AFTER), and again once half
    /// a base view timeout has passed without an answer. Fetching the
    /// parent of each orphan, from the top down, could not bring a replica
    /// far behind back under load: each answer holds 16 blocks, a new
    /// highQC comes with every proposal, and orphans beyond a sender's
    /// share evicted the very blocks the fetch was bringing down to the
    /// tree; once the cluster went idle nothing made it ask again
    /// (regression test: `conformance::state_sync`). [`HotStuff::has_work`]
    /// keeps its view timer running meanwhile. A replica a few blocks
    /// behind fetches parents as before: nothing changes in a run where
    /// nobody falls far behind.
    pub(super) fn fetch_high_qc_block(&mut self, now: Time, out: &mut Out) {
        // Runs after every input: the flag first, so a replica near the tip
        // pays nothing.
        self.far_behind = self.far_behind && self.lacks_high_qc_block();
        if !self.far_behind || !self.fetching.is_empty() {
            return;
        }
        let again_after = self.cfg.view_timeout / 2;
        if self
            .fetching_after
            .is_some_and(|(_, _, at)| now < at.saturating_add(again_after))
        {
            return;
        }
        let qc = self.high_qc.clone();
        let Some(peer) = self.pick_voter(&qc) else {
            return;
        };
        let after = match self.blocks.get(&self.forward_tip) {
            Some(b) if b.height > self.committed.height => self.forward_tip,
            _ => self.committed.hash,
        };
        self.fetching_after = Some((after, peer, now));
        out.push(Action::Resend {
            to: peer,
            msg: Message::BlocksAfter { block: after },
        });
    }

    /// Serves BLOCKS-AFTER: the blocks after `after` on this replica's
    /// chain, within the peer's serve budget (the same as block fetches).
    pub(super) fn on_blocks_after(
        &mut self,
        now: Time,
        from: NodeId,
        after: Digest,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        if !self.serve.try_take(from, now) {
            return Err(HotStuffError::ServeLimited(from));
        }
        let chain = self.chain_after(after);
        if chain.is_empty() {
            return Err(HotStuffError::UnknownBlock);
        }
        out.push(Action::Resend {
            to: from,
            msg: Message::BlockResponse(chain),
        });
        Ok(())
    }

    /// Up to [`MAX_FETCH_CHAIN`] blocks after `after` on this replica's
    /// chain — the archive and the committed tip in height order, then the
    /// tree from the tip up to highQC's block — newest first.
    fn chain_after(&self, after: Digest) -> Vec<Block> {
        let mut archived: Vec<(bft_core::Height, Digest)> =
            self.archive.iter().map(|(h, b)| (b.height, *h)).collect();
        archived.sort();
        let mut above = Vec::new();
        let mut cursor = self.high_qc.block;
        while cursor != self.committed.hash {
            let Some(b) = self.blocks.get(&cursor) else {
                above.clear();
                break;
            };
            if b.height <= self.committed.height {
                above.clear();
                break;
            }
            above.push(cursor);
            cursor = b.parent;
        }
        above.reverse();
        let chain: Vec<Digest> = archived
            .into_iter()
            .map(|(_, h)| h)
            .chain([self.committed.hash])
            .chain(above)
            .collect();
        let Some(position) = chain.iter().position(|h| *h == after) else {
            return Vec::new();
        };
        let mut blocks: Vec<Block> = chain
            .iter()
            .skip(position + 1)
            .take(MAX_FETCH_CHAIN)
            .filter_map(|h| self.blocks.get(h).or_else(|| self.archive.get(h)).cloned())
            .collect();
        blocks.reverse();
        blocks
    }

    /// A BLOCK-RESPONSE to our BLOCKS-AFTER, from the peer we asked:
    /// hash-linked from its oldest, a child of the block we asked after, up
    /// to its newest; each block is checked like any (`accept_block`),
    /// oldest first.
    fn on_blocks_after_response(
        &mut self,
        now: Time,
        from: NodeId,
        chain: Vec<Block>,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        let linked = chain
            .windows(2)
            .all(|pair| pair[0].parent == pair[1].hash());
        if !linked || chain.len() > MAX_FETCH_CHAIN {
            return Err(HotStuffError::UnsolicitedBlock);
        }
        self.fetching_after = None;
        let oldest_first = chain.into_iter().rev().map(|b| (b.hash(), b));
        let (result, last) = self.accept_fetched(now, from, oldest_first, out);
        if let Some(hash) = last {
            self.forward_tip = hash;
        }
        result
    }

    /// Checks and stores fetched blocks like any (`accept_block`), oldest
    /// first, skipping those already held or at or below the committed
    /// height; returns the first rejection and the last block accepted.
    fn accept_fetched(
        &mut self,
        now: Time,
        from: NodeId,
        oldest_first: impl Iterator<Item = (Digest, Block)>,
        out: &mut Out,
    ) -> (Result<(), HotStuffError>, Option<Digest>) {
        let mut result = Ok(());
        let mut last = None;
        for (hash, block) in oldest_first {
            if self.blocks.contains_key(&hash) || block.height <= self.committed.height {
                continue;
            }
            match self.accept_block(now, from, block, hash, false, out) {
                Ok(()) => last = Some(hash),
                Err(e) if result.is_ok() => result = Err(e),
                Err(_) => {}
            }
        }
        (result, last)
    }

    /// Whether highQC certifies a block above the committed tip that the
    /// tree does not hold.
    pub(super) fn lacks_high_qc_block(&self) -> bool {
        self.high_qc.view > self.committed.view && !self.blocks.contains_key(&self.high_qc.block)
    }

    pub(super) fn fetch_certified(&mut self, qc: &QuorumCert, out: &mut Out) {
        if let Some(peer) = self.pick_voter(qc) {
            self.fetch(peer, qc.block, self.committed.height, out);
        }
    }

    pub(super) fn pick_voter(&self, qc: &QuorumCert) -> Option<NodeId> {
        let voters: Vec<NodeId> = qc
            .signature
            .signers
            .iter()
            .filter(|&v| v != self.id)
            .collect();
        let len = voters.len();
        if len == 0 {
            return None;
        }
        // Rotates with the view as well as the backoff, so a fetch retried
        // in a later view (see `fetch`) goes to another voter.
        let turn = (self.failed_views as u64).wrapping_add(self.view.0);
        voters
            .get(usize::try_from(turn % len as u64).unwrap_or(0))
            .copied()
    }

    /// Serves a fetch: the block and up to `MAX_FETCH_CHAIN − 1` of its
    /// ancestors above height `above`, from the tree or the archive of
    /// committed blocks, if the peer's serve budget allows (`SERVE_BURST`
    /// at once, as many more per base view timeout; else `serve-limited`).
    pub(super) fn on_block_request(
        &mut self,
        now: Time,
        from: NodeId,
        block: Digest,
        above: Height,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        let mut chain = Vec::new();
        let mut cursor = block;
        while chain.len() < MAX_FETCH_CHAIN && cursor != GENESIS {
            let Some(b) = self
                .blocks
                .get(&cursor)
                .or_else(|| self.archive.get(&cursor))
            else {
                break;
            };
            if !chain.is_empty() && b.height <= above {
                break;
            }
            cursor = b.parent;
            chain.push(b.clone());
        }
        if chain.is_empty() {
            return Err(HotStuffError::UnknownBlock);
        }
        if !self.serve.try_take(from, now) {
            return Err(HotStuffError::ServeLimited(from));
        }
        out.push(Action::Resend {
            to: from,
            msg: Message::BlockResponse(chain),
        });
        Ok(())
    }

    /// A fetched chain: the block we asked for, then its ancestors. Each must
    /// be the parent of the one before (hash-linked to what we asked for);
    /// they are checked like any block and stored oldest first.
    pub(super) fn on_block_response(
        &mut self,
        now: Time,
        from: NodeId,
        chain: Vec<Block>,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        let Some(first) = chain.first() else {
            return Err(HotStuffError::UnsolicitedBlock);
        };
        if let (Some((after, asked, _)), Some(oldest)) = (self.fetching_after, chain.last())
            && oldest.parent == after
            && asked == from
        {
            return self.on_blocks_after_response(now, from, chain, out);
        }
        let requested = first.hash();
        if self.blocks.contains_key(&requested) {
            // It reached us another way meanwhile (a late proposal).
            return Ok(());
        }
        if self.fetching.remove(&requested).is_none() || chain.len() > MAX_FETCH_CHAIN {
            return Err(HotStuffError::UnsolicitedBlock);
        }
        let mut linked = Vec::with_capacity(chain.len());
        let mut expected = requested;
        for block in chain {
            let hash = block.hash();
            if hash != expected {
                return Err(HotStuffError::UnsolicitedBlock);
            }
            expected = block.parent;
            let done = self.blocks.contains_key(&block.parent)
                || block.height <= self.committed.height.next();
            linked.push((hash, block));
            if done {
                break;
            }
        }
        self.accept_fetched(now, from, linked.into_iter().rev(), out)
            .0
    }

    /// Holds a block until its parent arrives. The pool is bounded so that
    /// no sender can keep it full: each sender holds at most its share
    /// (`MAX_ORPHANS / n`, at least one) and at its cap its own oldest orphan
    /// makes room; when the pool is full anyway (n > `MAX_ORPHANS`), the
    /// oldest orphan of the sender holding most makes room. So while
    /// n ≤ `MAX_ORPHANS` a flooding Byzantine leader only evicts its own.
    pub(super) fn stash_orphan(&mut self, orphan: Orphan) {
        if self.orphans.iter().any(|o| o.hash == orphan.hash) {
            return;
        }
        let from = orphan.from;
        self.orphans.push(orphan);
        let cap = (MAX_ORPHANS / self.committee.n().max(1)).max(1);
        let own = self.orphans.iter().filter(|o| o.from == from).count();
        if own > cap
            && let Some(oldest) = self.orphans.iter().position(|o| o.from == from)
        {
            self.drop_orphan(oldest);
        }
        if self.orphans.len() > MAX_ORPHANS
            && let Some(victim) = self.oldest_of_heaviest_sender()
        {
            self.drop_orphan(victim);
        }
    }

    /// Index of the oldest orphan among those of the sender(s) holding most.
    pub(super) fn oldest_of_heaviest_sender(&self) -> Option<usize> {
        let mut held: BTreeMap<NodeId, usize> = BTreeMap::new();
        for o in &self.orphans {
            *held.entry(o.from).or_default() += 1;
        }
        let most = held.values().copied().max()?;
        self.orphans
            .iter()
            .position(|o| held.get(&o.from) == Some(&most))
    }

    /// Removes the orphan at `index`, and the fetch of its parent unless
    /// another orphan still waits for it, so an evicted orphan frees its
    /// fetch slot too.
    pub(super) fn drop_orphan(&mut self, index: usize) {
        if index >= self.orphans.len() {
            return;
        }
        let gone = self.orphans.remove(index);
        if !self
            .orphans
            .iter()
            .any(|o| o.block.parent == gone.block.parent)
        {
            self.fetching.remove(&gone.block.parent);
        }
    }

    /// Keeps the orphans satisfying `keep`; the others go with their fetches.
    pub(super) fn retain_orphans(&mut self, keep: impl Fn(&Orphan) -> bool) {
        while let Some(index) = self.orphans.iter().position(|o| !keep(o)) {
            self.drop_orphan(index);
        }
    }

    /// Rule: an orphan more than `future_views` views behind ours is dropped
    /// (its parent's fetch with it); its view is long over, and a replica
    /// that still needs its parent gets it through a later block's fetch.
    pub(super) fn prune_stale_orphans(&mut self) {
        let oldest = View(self.view.0.saturating_sub(self.cfg.future_views));
        self.retain_orphans(|o| o.block.view >= oldest);
    }

    /// Re-runs blocks that were waiting for `parent`.
    pub(super) fn adopt_orphans(&mut self, now: Time, parent: Digest, out: &mut Out) {
        let (ready, waiting): (Vec<Orphan>, Vec<Orphan>) = std::mem::take(&mut self.orphans)
            .into_iter()
            .partition(|o| o.block.parent == parent);
        self.orphans = waiting;
        for orphan in ready {
            // Errors here concern an input already counted once (as
            // unknown-parent); they are not counted again.
            let _ = if orphan.proposal {
                self.on_proposal(now, orphan.from, orphan.block, out)
            } else {
                self.accept_block(now, orphan.from, orphan.block, orphan.hash, false, out)
            };
        }
    }
}

impl HotStuff {
    /// Snapshot point (`bft_core::snapshot` rule 1), after committing
    /// `block` (`hash`) and executing its requests.
    pub(super) fn take_snapshot(&mut self, hash: Digest, block: &Block) {
        if self.snapshots.due(block.height.0) {
            self.snapshots.keep(Snapshot {
                slot: block.height.0,
                block: hash,
                tip: block.clone(),
                executed: self.pool.executed().clone(),
            });
        }
    }

    /// A block `height` high arrived whose parent we lack: if it is more
    /// than [`SNAPSHOT_DISTANCE`] above our committed height, the blocks
    /// between may be gone from every archive, so ask every peer for
    /// snapshots (at most once per base view timeout); fetching goes on
    /// meanwhile.
    pub(super) fn maybe_ask_for_snapshots(&mut self, now: Time, height: u64, out: &mut Out) {
        let far = height > self.committed.height.0.saturating_add(SNAPSHOT_DISTANCE);
        if far && self.snapshot_votes.ask(now, self.cfg.view_timeout) {
            out.push(Action::Rebroadcast(Message::SnapshotRequest {
                slot: self.committed.height.0,
            }));
        }
    }

    /// Serves a peer's request for snapshots above its committed height
    /// `slot`: our kept ones above it, within the peer's serve budget.
    pub(super) fn on_snapshot_request(
        &mut self,
        now: Time,
        from: NodeId,
        slot: u64,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        if from == self.id {
            return Ok(());
        }
        let offer = (self.snapshots)
            .serve(&mut self.serve, from, slot, now)
            .map_err(|_| HotStuffError::ServeLimited(from))?;
        if !offer.is_empty() {
            out.push(Action::Resend {
                to: from,
                msg: Message::Snapshot(offer),
            });
        }
        Ok(())
    }

    /// A peer's snapshots: installed once f+1 members offer the same one
    /// above our committed height (`bft_core::snapshot` rule 2).
    pub(super) fn on_snapshot(
        &mut self,
        now: Time,
        from: NodeId,
        offer: Vec<Snapshot<Block>>,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        if from == self.id {
            return Ok(());
        }
        let agreed = self
            .snapshot_votes
            .offered(from, offer, self.committed.height.0)
            .map_err(HotStuffError::BadSnapshot)?;
        // Copies agree on the block's hash, which leaves out the signature
        // of the QC it carries: install one whose QC verifies, with the
        // copy of the QC we verified (a Byzantine member's copy with a
        // corrupted aggregate would otherwise be stored and served on).
        for mut snapshot in agreed {
            if let Ok(qc) = self.verified_qc(&snapshot.tip.justify) {
                snapshot.tip.justify = qc;
                self.install(now, snapshot, out);
                break;
            }
        }
        Ok(())
    }

    /// Makes the snapshot's block the committed tip, as if this replica
    /// had committed it: the tree keeps only the blocks above it (as
    /// `prune` does), the archive below it is forgotten, and the orphans
    /// waiting for it are adopted. The lock and the last voted view stay
    /// (the vote rule still holds with them); highQC is raised by the next
    /// QC seen. The blocks after it come by fetching, from the archives.
    fn install(&mut self, now: Time, snapshot: Snapshot<Block>, out: &mut Out) {
        let hash = snapshot.block;
        let tip = snapshot.tip.clone();
        if tip.hash() != hash || tip.height.0 != snapshot.slot {
            return; // f+1 agreed on it, so one honest: never happens
        }
        self.committed = CommittedTip {
            hash,
            view: tip.view,
            height: tip.height,
        };
        self.blocks.retain(|_, b| b.height > tip.height);
        self.blocks.insert(hash, tip.clone());
        self.archive.clear();
        self.archive_order.clear();
        self.verified_qcs.retain(|(view, _), _| *view >= tip.view);
        self.retain_orphans(|o| o.block.height > tip.height && o.block.justify.view >= tip.view);
        self.pool.install_executed(snapshot.executed.clone());
        out.push(Action::InstallSnapshot {
            slot: snapshot.slot,
            block: hash,
        });
        self.snapshots.keep(snapshot);
        self.adopt_orphans(now, hash, out);
    }
}
