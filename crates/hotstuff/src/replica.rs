//! The replica: chained HotStuff (Algorithm 4) with a pacemaker, as a sans-IO
//! state machine.
//!
//! Flow of one view v in the steady state:
//! 1. leader(v) holds QC(v−1) and proposes a block extending it (broadcast);
//! 2. every replica checks the block and its QC, updates highQC / lock /
//!    commits (Algorithm 4 `update`), and votes to leader(v+1) if the vote
//!    rule allows;
//! 3. leader(v+1) aggregates n−f votes into QC(v), enters v+1 and proposes.
//!
//! Replicas other than the next leader enter v+1 when they see QC(v) inside
//! the proposal of v+1 (QC-driven view synchronisation), or when n−f
//! replicas have broadcast NEW-VIEW(v) (a failed view; the pacemaker's rules
//! are in [`crate::pacemaker`]).
//!
//! **Empty blocks.** A leader proposes only when it has work: a full batch
//! (or the oldest request has waited `max_delay`), or an uncommitted
//! non-empty block on the chain it extends. In the second case it proposes
//! at once, empty if no fresh request waits, because a block is committed
//! only when three more blocks follow it. So after the last request of a run
//! exactly three more blocks are proposed and voted on and never committed
//! (they would be, by later blocks), and an idle cluster sends nothing: no
//! proposals, no votes and no view timers. With one request per block and
//! one request outstanding, every request costs four blocks (its own and
//! three empty ones); every committed block, empty or not, is a decision.
//!
//! **View timer.** Armed only while the replica has work (a request waiting
//! in its pool, or an uncommitted non-empty block on its highest QC's
//! chain); clients send requests to every replica, so a dead or censoring
//! leader is noticed by everyone.

use crate::config::HotStuffConfig;
use crate::error::HotStuffError;
use crate::pacemaker::{Timeouts, join_view, rebuild_pending, timeout_certified};
use crate::qc::{VoteCollector, VoteOutcome, verify_qc};
use crate::safety::{BlockRef, Candidate, ChainLink, SafetyState, lock_after};
use crate::types::{
    Block, MAX_FETCH_CHAIN, Message, NewView, QuorumCert, Timer, VOTE_DOMAIN, Vote, vote_payload,
};
use bft_core::protocol::ConfigIssue;
use bft_core::{
    Action, BatchConfig, Committee, Crypto, Decision, Digest, GENESIS, Height, Input, NodeContext,
    NodeId, Protocol, Request, RequestId, RequestPool, Status, Time, View,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

type Out = Vec<Action<Message, Timer>>;

/// Blocks whose parent is missing, waiting for a fetch; bounded. Each
/// sender holds at most `MAX_ORPHANS / n` of them (at least one).
const MAX_ORPHANS: usize = 64;
/// Outstanding block fetches; bounded.
const MAX_FETCHES: usize = 64;
/// Committed blocks kept to serve fetches; bounded.
const ARCHIVE: usize = 256;
/// Verified QCs cached; bounded (the lowest views are evicted first).
const MAX_VERIFIED_QCS: usize = 256;

/// The committed tip: the last block executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedTip {
    pub hash: Digest,
    pub view: View,
    pub height: Height,
}

/// A block waiting for its parent.
#[derive(Clone, Debug)]
struct Orphan {
    hash: Digest,
    from: NodeId,
    block: Block,
    /// Arrived as a proposal (may be voted on) rather than a fetch response.
    proposal: bool,
}

/// Why the replica enters a new view (the pacemaker's rules:
/// [`crate::pacemaker`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ViewEntry {
    /// Saw a QC for the previous view: the view succeeded (rule 4).
    Qc,
    /// Saw a QC for the previous view inside a NEW-VIEW: its sender timed
    /// out after it, so the backoff is kept (see `on_new_view`).
    QcTimedOut,
    /// n−f NEW-VIEWs for the previous view: it failed (rule 2, a timeout
    /// certificate). Counted as a view change.
    TimeoutCertificate,
    /// f+1 NEW-VIEWs for this view or later: the replica was behind and
    /// times out of this view at once (rule 3).
    Join,
}

/// A chained HotStuff replica.
#[derive(Debug)]
pub struct HotStuff {
    id: NodeId,
    committee: Arc<Committee>,
    crypto: Arc<dyn Crypto>,
    batch: BatchConfig,
    cfg: HotStuffConfig,

    // --- safety state: must survive a restart ---
    safety: SafetyState,

    // --- chain ---
    /// The block tree above (and including) the committed tip.
    blocks: BTreeMap<Digest, Block>,
    /// Highest verified QC (Algorithm 4 `qc_high`).
    high_qc: QuorumCert,
    committed: CommittedTip,
    /// QCs already verified, by (view, block), so none is checked twice.
    verified_qcs: BTreeMap<(View, Digest), QuorumCert>,
    /// First valid proposal per view (current and future views).
    proposals: BTreeMap<View, Digest>,
    /// Highest view whose proposal the vote rule has been asked about.
    considered_view: View,
    /// Highest past view whose late proposal was considered for a vote.
    late_considered: View,
    pool: RequestPool,

    // --- pacemaker ---
    view: View,
    /// Consecutive failed views, the backoff exponent.
    failed_views: u32,
    view_changes: u64,
    view_timer_armed: bool,
    proposed_in: View,
    votes: VoteCollector,
    /// NEW-VIEWs received (and our own), per view and per sender.
    timeouts: Timeouts,
    /// The highest view we have timed out of (sent NEW-VIEW for).
    timed_out: View,
    /// The view whose rebuild wait is armed, and the one whose wait ran
    /// out (pacemaker rule 6).
    rebuild_armed: View,
    rebuild_waited: View,

    // --- block synchronisation ---
    /// Outstanding fetches: the peer asked and the view we asked in.
    fetching: BTreeMap<Digest, (NodeId, View)>,
    orphans: Vec<Orphan>,
    /// The last [`ARCHIVE`] committed blocks (pruned from the tree), kept
    /// only to serve fetches of replicas that fell behind.
    archive: BTreeMap<Digest, Block>,
    archive_order: VecDeque<Digest>,

    bad_votes_dropped: u64,
    votes_refused: u64,
    /// Our last vote, re-sent in NEW-VIEW (see [`NewView`]).
    last_vote: Option<Vote>,
}

impl Protocol for HotStuff {
    const NAME: &'static str = "hotstuff";
    type Message = Message;
    type Timer = Timer;
    type Config = HotStuffConfig;
    type Error = HotStuffError;

    fn new(ctx: NodeContext, cfg: &HotStuffConfig) -> Self {
        let ctx_n = ctx.committee.n();
        let mut blocks = BTreeMap::new();
        blocks.insert(GENESIS, genesis_block());
        HotStuff {
            id: ctx.id,
            committee: ctx.committee,
            crypto: ctx.crypto,
            batch: ctx.batch,
            cfg: cfg.clone(),
            safety: SafetyState::default(),
            blocks,
            high_qc: QuorumCert::genesis(),
            committed: CommittedTip {
                hash: GENESIS,
                view: View::ZERO,
                height: Height::ZERO,
            },
            verified_qcs: BTreeMap::new(),
            proposals: BTreeMap::new(),
            considered_view: View::ZERO,
            late_considered: View::ZERO,
            pool: RequestPool::new(cfg.pool_capacity),
            view: View(1),
            failed_views: 0,
            view_changes: 0,
            view_timer_armed: false,
            proposed_in: View::ZERO,
            votes: VoteCollector::default(),
            timeouts: Timeouts::new(ctx_n),
            timed_out: View::ZERO,
            rebuild_armed: View::ZERO,
            rebuild_waited: View::ZERO,
            fetching: BTreeMap::new(),
            orphans: Vec::new(),
            archive: BTreeMap::new(),
            archive_order: VecDeque::new(),
            bad_votes_dropped: 0,
            votes_refused: 0,
            last_vote: None,
        }
    }

    fn check_config(cfg: &HotStuffConfig) -> Result<(), ConfigIssue> {
        cfg.check()
    }

    fn handle(
        &mut self,
        now: Time,
        input: Input<Message, Timer>,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        let result = match input {
            Input::Start => Ok(()),
            Input::Request(request) => {
                self.on_request(now, request, out);
                Ok(())
            }
            Input::Timeout(Timer::View) => {
                self.on_view_timeout(out);
                Ok(())
            }
            Input::Timeout(Timer::Batch) => Ok(()),
            Input::Timeout(Timer::Rebuild) => {
                self.rebuild_waited = self.rebuild_armed;
                Ok(())
            }
            Input::Message { from, msg } => self.on_message(now, from, msg, out),
        };
        let reaction = self.react(now, out);
        result.and(reaction)
    }

    fn status(&self) -> Status {
        Status {
            view: self.view.0,
            committed: self.committed.height.0,
            view_changes: self.view_changes,
            retained: self.retained(),
        }
    }

    /// The pacemaker's view timer.
    fn is_view_timeout(timer: &Timer) -> bool {
        matches!(timer, Timer::View)
    }
}

/// The genesis block, stored under the hash [`GENESIS`] (not its own hash).
fn genesis_block() -> Block {
    Block {
        parent: GENESIS,
        view: View::ZERO,
        height: Height::ZERO,
        batch: Vec::new(),
        justify: QuorumCert::genesis(),
    }
}

fn link(hash: Digest, block: &Block) -> ChainLink {
    ChainLink {
        hash,
        view: block.view,
        parent: block.parent,
    }
}

impl HotStuff {
    // ------------------------------------------------------------------
    // Accessors (tests, metrics, the later restart issue)
    // ------------------------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.id
    }
    /// Last voted view and lock: what a restart must preserve.
    pub fn safety_state(&self) -> SafetyState {
        self.safety
    }
    pub fn high_qc(&self) -> &QuorumCert {
        &self.high_qc
    }
    pub fn committed_tip(&self) -> CommittedTip {
        self.committed
    }
    pub fn view(&self) -> View {
        self.view
    }
    /// Votes dropped because their signature failed individual verification.
    pub fn bad_votes_dropped(&self) -> u64 {
        self.bad_votes_dropped
    }
    /// Valid proposals the vote rule refused.
    pub fn votes_refused(&self) -> u64 {
        self.votes_refused
    }
    /// Blocks held in the tree (committed tip included).
    pub fn tree_len(&self) -> usize {
        self.blocks.len()
    }
    pub fn block(&self, hash: &Digest) -> Option<&Block> {
        self.blocks.get(hash)
    }
    /// Blocks held waiting for their parent.
    pub fn orphans_len(&self) -> usize {
        self.orphans.len()
    }
    /// Outstanding block fetches.
    pub fn fetching_len(&self) -> usize {
        self.fetching.len()
    }
    /// The QCs it verified or formed, oldest view first (bounded: at most
    /// `MAX_VERIFIED_QCS`, none below the committed tip).
    pub fn certificates(&self) -> impl DoubleEndedIterator<Item = &QuorumCert> {
        self.verified_qcs.values()
    }
    /// QCs held in the verification cache.
    pub fn verified_qcs_len(&self) -> usize {
        self.verified_qcs.len()
    }

    fn retained(&self) -> usize {
        self.blocks.len()
            + self.verified_qcs.len()
            + self.proposals.len()
            + self.votes.retained()
            + self.timeouts.len()
            + self.fetching.len()
            + self.orphans.len()
            + self.archive.len()
            + self.pool.retained()
    }

    fn leader(&self, view: View) -> NodeId {
        self.committee.leader(view.0)
    }

    /// The vote rule ([`crate::safety::safe_to_vote`]; a planted mutant under the
    /// `mutants` feature).
    fn vote_rule(&self, candidate: &Candidate) -> bool {
        #[cfg(feature = "mutants")]
        return crate::safety::safe_to_vote_as(self.cfg.mutant, &self.safety, candidate);
        #[cfg(not(feature = "mutants"))]
        return crate::safety::safe_to_vote(&self.safety, candidate);
    }

    /// The commit rule ([`crate::safety::commit_rule`]; a planted mutant under the
    /// `mutants` feature).
    fn commit_rule(&self, b2: &ChainLink, b1: &ChainLink, b0: &ChainLink) -> bool {
        #[cfg(feature = "mutants")]
        return crate::safety::commit_rule_as(self.cfg.mutant, b2, b1, b0);
        #[cfg(not(feature = "mutants"))]
        return crate::safety::commit_rule(b2, b1, b0);
    }

    fn quorum(&self) -> usize {
        self.committee.quorum_n_minus_f()
    }

    fn horizon(&self) -> View {
        View(self.view.0.saturating_add(self.cfg.future_views))
    }

    // ------------------------------------------------------------------
    // Inputs
    // ------------------------------------------------------------------

    fn on_message(
        &mut self,
        now: Time,
        from: NodeId,
        msg: Message,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        match msg {
            Message::Proposal(block) => self.on_proposal(now, from, block, out),
            Message::Vote(vote) => self.on_vote(from, &vote, out),
            Message::NewView(nv) => self.on_new_view(from, nv, out),
            Message::BlockRequest { block } => self.on_block_request(from, block, out),
            Message::BlockResponse(block) => self.on_block_response(now, from, block, out),
        }
    }

    /// A client request: pool it (the leader batches from the pool, everyone
    /// uses it to notice a leader that does not make progress).
    fn on_request(&mut self, now: Time, request: Request, out: &mut Out) {
        self.pool.add(now, request);
        self.ensure_view_timer(out);
    }

    /// Runs after every input: vote for the current view's proposal if the
    /// vote rule allows, and propose if this replica leads the current view
    /// and is ready. Repeats while either changes the state (a vote delivered
    /// to ourselves can form a QC, which moves us into a view we lead).
    ///
    /// The only error it reports is bad votes found when our own vote
    /// completed a quorum (they are counted like any other bad vote).
    fn react(&mut self, now: Time, out: &mut Out) -> Result<(), HotStuffError> {
        let mut result = Ok(());
        loop {
            let before = (self.view, self.proposed_in, self.safety.last_voted_view);
            let voted = self.maybe_vote(out);
            if result.is_ok() {
                result = voted;
            }
            self.try_propose(now, out);
            if before == (self.view, self.proposed_in, self.safety.last_voted_view) {
                return result;
            }
        }
    }

    // ------------------------------------------------------------------
    // Proposals and blocks
    // ------------------------------------------------------------------

    /// A proposal from `from`. Checks the proposer and the view window, then
    /// the block itself ([`Self::accept_block`]); the vote happens in
    /// [`Self::maybe_vote`] once the replica is in the block's view.
    fn on_proposal(
        &mut self,
        now: Time,
        from: NodeId,
        block: Block,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        let leader = self.leader(block.view);
        if from != leader {
            return Err(HotStuffError::WrongProposer {
                view: block.view,
                from,
                leader,
            });
        }
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
        // Bounded buffering: a Byzantine leader of a far view moves no one.
        if block.view > self.horizon() {
            return Err(HotStuffError::ViewTooFar {
                view: block.view,
                current: self.view,
            });
        }
        let hash = block.hash();
        if let Some(seen) = self.proposals.get(&block.view) {
            return Err(if *seen == hash {
                HotStuffError::DuplicateBlock
            } else {
                HotStuffError::EquivocatingProposal { view: block.view }
            });
        }
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
    fn on_late_proposal(
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
        // Vote rule (Algorithm 4 `onReceiveProposal`; `safety::safe_to_vote`:
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
    /// Block validity: the parent is the block its QC certifies and the QC
    /// is from an earlier view (`createLeaf(qc_high.node)`), the QC passes the
    /// QC rule, the parent is known (otherwise the block waits and the parent
    /// is fetched), and height = parent height + 1 and QC view = parent view.
    /// The batch fits `max_size` ([`Self::check_batch_size`]).
    fn accept_block(
        &mut self,
        now: Time,
        from: NodeId,
        block: Block,
        hash: Digest,
        proposal: bool,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        self.check_batch_size(&block)?;
        if block.parent != block.justify.block || block.justify.view >= block.view {
            return Err(HotStuffError::JustifyMismatch);
        }
        if self.blocks.contains_key(&hash) {
            return Err(HotStuffError::DuplicateBlock);
        }
        if !self.blocks.contains_key(&block.parent) {
            self.check_orphan(&block)?;
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
                self.fetch_parent(from, &block, out);
                self.stash_orphan(Orphan {
                    hash,
                    from,
                    block,
                    proposal,
                });
            }
            return Err(HotStuffError::UnknownParent);
        };
        if block.height != parent.height.next() || qc.view != parent.view {
            return Err(HotStuffError::BadHeight {
                height: block.height,
            });
        }
        self.blocks.insert(hash, block);
        self.fetching.remove(&hash);
        let update = self.update(hash, out);
        // QC-driven view synchronisation: QC(w) proves view w ended.
        self.observe_qc(qc, out);
        self.adopt_orphans(now, hash, out);
        update
    }

    /// Rules for a block whose parent we lack, checked before its QC costs a
    /// pairing and before it takes an orphan or fetch slot:
    /// - its QC is not older than our committed block. A QC that old
    ///   certifies a committed block already pruned or a fork below the
    ///   committed block: the parent can never be adopted.
    /// - its height is reachable from our committed block: heights grow by
    ///   one per block and views by at least one, so a descendant at view v
    ///   is at most `v − committed view` blocks above the committed height.
    fn check_orphan(&self, block: &Block) -> Result<(), HotStuffError> {
        let tip = self.committed;
        if block.justify.view < tip.view {
            return Err(HotStuffError::ParentBelowCommit {
                qc_view: block.justify.view,
                committed: tip.view,
            });
        }
        let reach = block.view.0.saturating_sub(tip.view.0);
        if block.height.0 > tip.height.0.saturating_add(reach) {
            return Err(HotStuffError::BadHeight {
                height: block.height,
            });
        }
        Ok(())
    }

    /// Rule: a block carries at most `max_size` requests (the most an honest
    /// leader cuts, see [`Self::try_propose`]), so a Byzantine leader cannot
    /// make everyone vote on, store and serve an arbitrarily large block.
    fn check_batch_size(&self, block: &Block) -> Result<(), HotStuffError> {
        let max = self.batch.max_size.max(1);
        if block.batch.len() > max {
            return Err(HotStuffError::OversizedBlock {
                len: block.batch.len(),
                max,
            });
        }
        Ok(())
    }

    /// Algorithm 4 `update(b*)`: b'' = b*.justify.node, b' = b''.justify.node,
    /// b = b'.justify.node. Lock b' if higher (lock rule); commit b when
    /// b'' → b' → b is a direct three-chain (commit rule).
    fn update(&mut self, b_star: Digest, out: &mut Out) -> Result<(), HotStuffError> {
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
            self.commit_through(b0_hash, out)?;
        }
        Ok(())
    }

    /// Commits `hash` and its uncommitted ancestors, oldest first: one
    /// Decision per block, slot = height. Each request is executed at most
    /// once (`RequestPool::execute` returns only the fresh ones). Then prunes
    /// the tree below the new committed block.
    fn commit_through(&mut self, hash: Digest, out: &mut Out) -> Result<(), HotStuffError> {
        let mut chain = Vec::new();
        let mut cursor = hash;
        loop {
            let Some(block) = self.blocks.get(&cursor) else {
                return Err(HotStuffError::ConflictingCommit);
            };
            if block.height <= self.committed.height {
                break;
            }
            chain.push(cursor);
            cursor = block.parent;
        }
        if chain.is_empty() {
            return Ok(());
        }
        // Safety net: the new blocks must extend the committed tip. With at
        // most f faults this always holds (that is the theorem).
        if cursor != self.committed.hash {
            return Err(HotStuffError::ConflictingCommit);
        }
        for block_hash in chain.into_iter().rev() {
            let Some(block) = self.blocks.get(&block_hash) else {
                return Err(HotStuffError::ConflictingCommit);
            };
            let requests = self.pool.execute(block.batch.iter().map(|r| &r.id));
            out.push(Action::Commit(Decision {
                slot: block.height.0,
                view: block.view.0,
                block: block_hash,
                parent: block.parent,
                requests,
            }));
            self.committed = CommittedTip {
                hash: block_hash,
                view: block.view,
                height: block.height,
            };
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
    fn prune(&mut self) {
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
    fn is_committed_ancestor(&self, hash: &Digest, block: &Block) -> bool {
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
    fn extends(&self, block: &Block, ancestor: BlockRef) -> bool {
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
    fn uncommitted_chain(&self, tip: Digest) -> (BTreeSet<RequestId>, bool) {
        let mut ids = BTreeSet::new();
        let mut pending = false;
        let mut cursor = tip;
        while let Some(b) = self.blocks.get(&cursor) {
            if b.height <= self.committed.height {
                break;
            }
            pending |= !b.batch.is_empty();
            ids.extend(b.batch.iter().map(|r| r.id));
            cursor = b.parent;
        }
        (ids, pending)
    }

    fn has_work(&self) -> bool {
        !self.pool.is_empty() || self.uncommitted_chain(self.high_qc.block).1
    }

    // ------------------------------------------------------------------
    // Voting
    // ------------------------------------------------------------------

    /// Algorithm 4 `onReceiveProposal`: vote for the current view's proposal
    /// iff the vote rule ([`crate::safety::safe_to_vote`]) holds; the vote goes to
    /// leader(v+1) (handled in place if that is us).
    fn maybe_vote(&mut self, out: &mut Out) -> Result<(), HotStuffError> {
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
    fn vote_on(&mut self, hash: Digest, out: &mut Out) -> Result<(), HotStuffError> {
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
    fn on_vote(&mut self, from: NodeId, vote: &Vote, out: &mut Out) -> Result<(), HotStuffError> {
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
    fn collect_vote(
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

    fn count_dropped(&mut self, dropped: usize) -> Result<(), HotStuffError> {
        if dropped == 0 {
            return Ok(());
        }
        self.bad_votes_dropped += dropped as u64;
        Err(HotStuffError::BadVoteSignatures { dropped })
    }

    // ------------------------------------------------------------------
    // Quorum certificates
    // ------------------------------------------------------------------

    /// The QC rule with a cache: a QC for (view, block) is verified once;
    /// afterwards the copy we verified is used, never the peer's bytes.
    fn verified_qc(&mut self, qc: &QuorumCert) -> Result<QuorumCert, HotStuffError> {
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
    fn cache_qc(&mut self, qc: &QuorumCert) {
        self.verified_qcs.insert((qc.view, qc.block), qc.clone());
        while self.verified_qcs.len() > MAX_VERIFIED_QCS {
            self.verified_qcs.pop_first();
        }
    }

    /// A verified QC: Algorithm 4 `updateQCHigh` (highQC only ever comes from
    /// verified QCs), then QC-driven view synchronisation.
    fn observe_qc(&mut self, qc: QuorumCert, out: &mut Out) {
        self.observe_qc_as(qc, ViewEntry::Qc, out);
    }

    fn observe_qc_as(&mut self, qc: QuorumCert, entry: ViewEntry, out: &mut Out) {
        let target = qc.view.next();
        if qc.view > self.high_qc.view {
            self.high_qc = qc;
        }
        self.enter_view(target, entry, out);
    }

    // ------------------------------------------------------------------
    // Leader
    // ------------------------------------------------------------------

    /// Proposes in the current view if we lead it, have not proposed yet, and
    /// are ready: we hold QC(v−1), or n−f NEW-VIEWs for v−1 (then we extend
    /// the highest QC they carried). What goes in the block: see the module
    /// doc on empty blocks.
    fn try_propose(&mut self, now: Time, out: &mut Out) {
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
            .filter(|r| !in_flight.contains(&r.id))
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
    fn awaits_rebuild(&mut self, view: View, out: &mut Out) -> bool {
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
    fn batch_due(&mut self, now: Time, out: &mut Out) -> bool {
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

    // ------------------------------------------------------------------
    // Pacemaker
    // ------------------------------------------------------------------

    /// Moves to `view` (never back). A QC entry resets the backoff; a timeout
    /// entry counts a view change. Old votes/new-views/proposals are dropped
    /// and the view timer restarts.
    fn enter_view(&mut self, view: View, entry: ViewEntry, out: &mut Out) {
        if view <= self.view {
            return;
        }
        self.view = view;
        match entry {
            ViewEntry::Qc => self.failed_views = 0,
            ViewEntry::QcTimedOut | ViewEntry::Join => {}
            ViewEntry::TimeoutCertificate => self.view_changes += 1,
        }
        // Votes of the previous view may still complete a QC; so may older
        // votes re-sent inside NEW-VIEWs (see `NewView` and the last-vote
        // rule in `on_new_view`), up to `future_views` back.
        self.votes
            .prune_below(View(view.0.saturating_sub(self.cfg.future_views.max(2))));
        self.timeouts.prune_below(view.prev());
        // Vote rule (Algorithm 4 `onReceiveProposal`; `safety::safe_to_vote`:
        // vote iff block.view > last voted view and safeNode holds): as for
        // a late proposal (`on_late_proposal`), the rule does not ask for the
        // current view, so the highest proposal we hold for a view we skip
        // (entered a later view before voting in it) still gets the vote the
        // rule allows; its next leader may still be collecting (regression
        // test: `stale_digest_favoured_leader_does_not_stall_commits`).
        let skipped = self
            .proposals
            .range(..view)
            .rev()
            .map(|(&v, &hash)| (v, hash))
            .find(|&(v, hash)| {
                v > self.considered_view
                    && v > self.safety.last_voted_view
                    && self.blocks.contains_key(&hash)
            });
        self.proposals = self.proposals.split_off(&view);
        self.prune_stale_orphans();
        self.restart_view_timer(out);
        if let Some((skipped_view, hash)) = skipped {
            self.considered_view = self.considered_view.max(skipped_view);
            self.late_considered = self.late_considered.max(skipped_view);
            // Errors are bad votes found if our vote completed a quorum;
            // they were counted there.
            let _ = self.vote_on(hash, out);
        }
    }

    fn restart_view_timer(&mut self, out: &mut Out) {
        if self.has_work() {
            self.view_timer_armed = true;
            out.push(Action::SetTimer {
                timer: Timer::View,
                after: self.cfg.timeout_after(self.failed_views),
            });
        } else if self.view_timer_armed {
            self.view_timer_armed = false;
            out.push(Action::CancelTimer(Timer::View));
        }
    }

    fn ensure_view_timer(&mut self, out: &mut Out) {
        if !self.view_timer_armed && self.has_work() {
            self.restart_view_timer(out);
        }
    }

    /// The view timer expired with work pending: the view failed for us.
    /// Pacemaker rule 1 ([`crate::pacemaker`]): broadcast NEW-VIEW for it
    /// (again, if we already had) and stay in it with a backed-off timer.
    fn on_view_timeout(&mut self, out: &mut Out) {
        self.view_timer_armed = false;
        if !self.has_work() {
            return;
        }
        // Fetches that went unanswered may be retried from now on.
        self.fetching.clear();
        self.time_out_of(self.view, out);
    }

    /// We give up on `view` (≥ ours; above it only on rule 3, joining):
    /// enter it if we are behind, broadcast NEW-VIEW(view, highQC, last
    /// vote) to every replica, count our own, and re-arm the view timer one
    /// backoff step longer so that, still stuck, we send it again (rule 1).
    fn time_out_of(&mut self, view: View, out: &mut Out) {
        if view > self.view {
            self.enter_view(view, ViewEntry::Join, out);
        }
        self.failed_views = self.failed_views.saturating_add(1);
        let again = view <= self.timed_out;
        self.timed_out = self.timed_out.max(view);
        let new_view = self.new_view_for(view);
        let msg = Message::NewView(new_view.clone());
        out.push(if again {
            Action::Rebroadcast(msg)
        } else {
            Action::Broadcast(msg)
        });
        self.restart_view_timer(out);
        // Our own NEW-VIEW counts like anyone's (it may complete the n−f).
        let _ = self.on_new_view(self.id, new_view, out);
    }

    /// NEW-VIEW(v, qc, last vote) from `from`, who gave up on view v.
    ///
    /// In order: the QC rule on its QC (a newer one raises highQC and our
    /// view, rule 4); the vote it carries, if we lead v+1 (the lost QC is
    /// rebuilt); then it counts once per sender and view towards a timeout
    /// certificate (rule 2) and towards joining a later view (rule 3).
    fn on_new_view(
        &mut self,
        from: NodeId,
        nv: NewView,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        if nv.high_qc.view > nv.view {
            return Err(HotStuffError::NewViewQcAhead {
                view: nv.view,
                qc_view: nv.high_qc.view,
            });
        }
        // QC rule (Algorithm 4 `updateQCHigh` takes only verified QCs): a QC
        // newer than our highQC is verified and may raise highQC and our
        // view (rule 4), whatever view the NEW-VIEW names.
        if nv.high_qc.view > self.high_qc.view {
            let qc = self.verified_qc(&nv.high_qc)?;
            if !self.blocks.contains_key(&qc.block) {
                self.fetch(from, qc.block, out);
            }
            // The QC moves our view on but keeps our backoff: a NEW-VIEW
            // says its sender timed out of every view up to `nv.view`, so
            // the views after the QC failed; resetting the backoff on it let
            // the sender set our timers (regression test:
            // `stale_digest_favoured_leader_does_not_stall_commits`).
            self.observe_qc_as(qc, ViewEntry::QcTimedOut, out);
        }
        let vote_result = self.collect_carried_vote(from, &nv, out);
        let window = (self.view.prev(), self.horizon());
        // Sent before: counted already (a re-send, rule 1, or a replay).
        // Outside the window only the sender's highest view is kept, so
        // there a view at or below it counts as seen.
        let outside = nv.view < window.0 || nv.view > window.1;
        let seen = self.timeouts.has(from, nv.view)
            || (outside && nv.view <= self.timeouts.highest_of(from));
        if !seen {
            // Rule (the paper's leader takes highQC from n−f *valid*
            // NEW-VIEWs): a NEW-VIEW counts only if its QC passes the QC
            // rule, even when that QC is no newer than ours, so a forged QC
            // under a genuine aggregate does not count (regression test:
            // `forged_new_view_qc_does_not_count_towards_n_minus_f`). The
            // check runs once per sender and view, is a cache hit for a QC
            // we verified and does not cache (an old QC must not take a slot
            // no commit would free).
            if nv.high_qc.view <= self.high_qc.view
                && !nv.high_qc.is_genesis()
                && !self
                    .verified_qcs
                    .contains_key(&(nv.high_qc.view, nv.high_qc.block))
            {
                verify_qc(&self.committee, &*self.crypto, &nv.high_qc)?;
            }
            self.timeouts.record(from, nv.view, window);
            if nv.view >= self.view
                && timeout_certified(self.timeouts.count(nv.view), self.quorum())
            {
                self.enter_view(nv.view.next(), ViewEntry::TimeoutCertificate, out);
            }
            if let Some(view) = join_view(
                &self.timeouts,
                self.committee.f(),
                self.view,
                self.timed_out,
            ) {
                self.time_out_of(view, out);
            }
        }
        if from != self.id && self.timeouts.answer(from, nv.view, seen, self.view) {
            out.push(Action::Resend {
                to: from,
                msg: Message::NewView(self.new_view_for(self.view.prev())),
            });
        }
        vote_result
    }

    /// Our NEW-VIEW for `view`: highQC, and our last vote if it is newer.
    fn new_view_for(&self, view: View) -> NewView {
        let high_qc_view = self.high_qc.view;
        NewView {
            view,
            high_qc: self.high_qc.clone(),
            last_vote: self.last_vote.clone().filter(|v| v.view > high_qc_view),
        }
    }

    /// The sender's last vote carried in its NEW-VIEW(v), whose next leader
    /// never proposed: if we lead v+1 we rebuild that QC from n−f of them,
    /// so a dead next leader costs one view, not the three-chain.
    ///
    /// Rule: any vote above our highQC and not above the failed view, within
    /// `future_views` of our view on either side (bounded memory: the vote
    /// collector keeps one entry per view it is given; regression tests
    /// `last_votes_survive_two_consecutive_faulty_leaders`,
    /// `far_new_views_carrying_votes_take_no_memory`).
    fn collect_carried_vote(
        &mut self,
        from: NodeId,
        nv: &NewView,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        let Some(vote) = &nv.last_vote else {
            return Ok(());
        };
        let recent = vote.view <= nv.view
            && vote.view <= self.horizon()
            && vote.view.0.saturating_add(self.cfg.future_views) >= self.view.0;
        if !recent || vote.view <= self.high_qc.view || self.leader(nv.view.next()) != self.id {
            return Ok(());
        }
        match self.collect_vote(from, vote, out) {
            // Already delivered directly, or re-sent: the same vote, not an
            // offence.
            Err(HotStuffError::DuplicateVote { .. }) => Ok(()),
            other => other,
        }
    }

    // ------------------------------------------------------------------
    // Block synchronisation
    // ------------------------------------------------------------------

    /// Asks `from` for `block`.
    ///
    /// Rule: a fetch still unanswered in a later view is re-sent, to `from`
    /// if it is another peer than the one asked (callers rotate the peer
    /// with the view, [`Self::pick_voter`]). Otherwise a peer that never
    /// answers us (omission to us, crashed) holds the fetch for as long as
    /// views keep succeeding: only a view timeout cleared `fetching`, and a
    /// replica that follows the others' QCs never times out (fuzz finding:
    /// node 0 omitting everything to node 3, which always asked node 0, the
    /// first voter, and never committed). At most one request per missing
    /// block per view.
    fn fetch(&mut self, from: NodeId, block: Digest, out: &mut Out) {
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
            msg: Message::BlockRequest { block },
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
    fn fetch_parent(&mut self, from: NodeId, block: &Block, out: &mut Out) {
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
        self.fetch(peer, missing, out);
    }

    fn fetch_certified(&mut self, qc: &QuorumCert, out: &mut Out) {
        if let Some(peer) = self.pick_voter(qc) {
            self.fetch(peer, qc.block, out);
        }
    }

    fn pick_voter(&self, qc: &QuorumCert) -> Option<NodeId> {
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
    /// ancestors, from the tree or the archive of committed blocks.
    fn on_block_request(
        &mut self,
        from: NodeId,
        block: Digest,
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
            cursor = b.parent;
            chain.push(b.clone());
        }
        if chain.is_empty() {
            return Err(HotStuffError::UnknownBlock);
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
    fn on_block_response(
        &mut self,
        now: Time,
        from: NodeId,
        chain: Vec<Block>,
        out: &mut Out,
    ) -> Result<(), HotStuffError> {
        let Some(first) = chain.first() else {
            return Err(HotStuffError::UnsolicitedBlock);
        };
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
        let mut result = Ok(());
        for (hash, block) in linked.into_iter().rev() {
            if self.blocks.contains_key(&hash) || block.height <= self.committed.height {
                continue;
            }
            let accepted = self.accept_block(now, from, block, hash, false, out);
            if result.is_ok() {
                result = accepted;
            }
        }
        result
    }

    /// Holds a block until its parent arrives. The pool is bounded so that
    /// no sender can keep it full: each sender holds at most its share
    /// (`MAX_ORPHANS / n`, at least one) and at its cap its own oldest orphan
    /// makes room; when the pool is full anyway (n > `MAX_ORPHANS`), the
    /// oldest orphan of the sender holding most makes room. So while
    /// n ≤ `MAX_ORPHANS` a flooding Byzantine leader only evicts its own.
    fn stash_orphan(&mut self, orphan: Orphan) {
        if self.orphans.iter().any(|o| o.hash == orphan.hash) {
            return;
        }
        let from = orphan.from;
        self.orphans.push(orphan);
        let cap = (MAX_ORPHANS / self.committee.n().max(1)).max(1);
        let own = self.orphans.iter().filter(|o| o.from == from).count();
        if own > cap {
            if let Some(oldest) = self.orphans.iter().position(|o| o.from == from) {
                self.drop_orphan(oldest);
            }
        }
        if self.orphans.len() > MAX_ORPHANS {
            if let Some(victim) = self.oldest_of_heaviest_sender() {
                self.drop_orphan(victim);
            }
        }
    }

    /// Index of the oldest orphan among those of the sender(s) holding most.
    fn oldest_of_heaviest_sender(&self) -> Option<usize> {
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
    fn drop_orphan(&mut self, index: usize) {
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
    fn retain_orphans(&mut self, keep: impl Fn(&Orphan) -> bool) {
        while let Some(index) = self.orphans.iter().position(|o| !keep(o)) {
            self.drop_orphan(index);
        }
    }

    /// Rule: an orphan more than `future_views` views behind ours is dropped
    /// (its parent's fetch with it); its view is long over, and a replica
    /// that still needs its parent gets it through a later block's fetch.
    fn prune_stale_orphans(&mut self) {
        let oldest = View(self.view.0.saturating_sub(self.cfg.future_views));
        self.retain_orphans(|o| o.block.view >= oldest);
    }

    /// Re-runs blocks that were waiting for `parent`.
    fn adopt_orphans(&mut self, now: Time, parent: Digest, out: &mut Out) {
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
