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
//!
//! The replica, file by file (the same names in all three protocol crates):
//! this file holds the state, the `Protocol` impl and the dispatch of inputs
//! (`on_message`, `react`); `normal.rs` the normal case (proposals, the block
//! tree, `update`, commit, the leader proposing); `votes.rs` voting and QC
//! formation; `view_change.rs` the pacemaker; `sync.rs` block
//! synchronisation and orphans. The rules are pure functions in
//! `crate::rules` and `crate::pacemaker`.

use crate::config::HotStuffConfig;
use crate::error::HotStuffError;
use crate::pacemaker::Timeouts;
use crate::qc::VoteCollector;
use crate::rules::{Candidate, ChainLink, SafetyState};
use crate::types::{Block, Message, QuorumCert, Timer, Vote};
use bft_core::protocol::ConfigIssue;
use bft_core::{
    Action, BatchConfig, Certified, Committee, Crypto, Decision, Digest, GENESIS, Height, Input,
    NodeContext, NodeId, Protocol, Request, RequestPool, ServeBudget, SnapshotVotes, Snapshots,
    Status, Time, View,
};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

mod durable;
mod normal;
mod sync;
mod view_change;
mod votes;

pub use durable::HotStuffDurable;

type Out = Vec<Action<Message, Timer>>;

/// Blocks whose parent is missing, waiting for a fetch; bounded. Each
/// sender holds at most `MAX_ORPHANS / n` of them (at least one).
const MAX_ORPHANS: usize = 64;
/// Outstanding block fetches; bounded.
const MAX_FETCHES: usize = 64;
/// Fetches one peer may have answered at once, and answered more per view
/// timeout: as many as an honest replica may have outstanding.
pub const SERVE_BURST: u32 = MAX_FETCHES as u32;
/// Committed blocks kept to serve fetches; bounded.
const ARCHIVE: usize = 256;
/// Committed heights between snapshot points (`bft_core::snapshot` rule
/// 1): a quarter of the archive.
const SNAPSHOT_INTERVAL: u64 = ARCHIVE as u64 / 4;
/// A replica that sees a block this far above its committed height asks
/// for snapshots: the blocks between may be past the peers' archives.
const SNAPSHOT_DISTANCE: u64 = ARCHIVE as u64 / 2;
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
    /// An outstanding BLOCKS-AFTER: the block asked after, the peer asked
    /// and when.
    fetching_after: Option<(Digest, NodeId, Time)>,
    /// The newest block a BLOCKS-AFTER brought: where the next one asks
    /// from while it is above the committed tip.
    forward_tip: Digest,
    /// A proposal came more than a fetch's chain above the committed tip,
    /// and highQC's block is not in the tree yet: fetching forward.
    far_behind: bool,
    /// How many fetches each peer may still have answered ([`SERVE_BURST`]
    /// at once, as many more per base view timeout).
    serve: ServeBudget,
    orphans: Vec<Orphan>,
    /// The last [`ARCHIVE`] committed blocks (pruned from the tree), kept
    /// only to serve fetches of replicas that fell behind.
    archive: BTreeMap<Digest, Block>,
    archive_order: VecDeque<Digest>,
    /// This replica's snapshot points, offered to replicas far behind.
    snapshots: Snapshots<Block>,
    /// Snapshots offered to this replica, until f+1 agree.
    snapshot_votes: SnapshotVotes<Block>,

    bad_votes_dropped: u64,
    votes_refused: u64,
    /// Our last vote, re-sent in NEW-VIEW (see [`NewView`]).
    last_vote: Option<Vote>,
}

impl Protocol for HotStuff {
    const NAME: &'static str = "hotstuff";
    const CATCH_UP_KINDS: &'static [&'static str] = &[
        "block-request",
        "block-response",
        "blocks-after",
        "snapshot-request",
        "snapshot",
    ];
    type Message = Message;
    type Timer = Timer;
    type Config = HotStuffConfig;
    type Error = HotStuffError;
    type Durable = HotStuffDurable;

    fn durable(&self) -> HotStuffDurable {
        HotStuff::durable(self)
    }

    /// A PROPOSAL's batch. A BLOCK-RESPONSE answers a request for a block a
    /// QC names, and its ancestors chain to that block by hash: certified,
    /// so not listed.
    fn client_requests(msg: &Message) -> &[Request] {
        match msg {
            Message::Proposal(block) => &block.batch,
            _ => &[],
        }
    }

    fn durable_batches(durable: &HotStuffDurable) -> Vec<bft_core::Digest> {
        durable.batches()
    }

    fn durable_batch(&self, digest: &bft_core::Digest) -> Option<&[bft_core::Request]> {
        HotStuff::durable_batch(self, digest)
    }

    fn recover(
        ctx: NodeContext,
        cfg: &HotStuffConfig,
        durable: HotStuffDurable,
        batches: &bft_core::DurableBatches,
    ) -> Self {
        HotStuff::recover(ctx, cfg, durable, batches)
    }

    fn check_certificate(
        d: &Decision,
        committee: &Committee,
        crypto: &dyn Crypto,
    ) -> Result<Certified, HotStuffError> {
        crate::certificate::check_certificate(d, committee, crypto)
    }

    fn new(ctx: NodeContext, cfg: &HotStuffConfig) -> Self {
        let ctx_n = ctx.committee.n();
        let weak_quorum = ctx.committee.weak_quorum();
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
            fetching_after: None,
            forward_tip: GENESIS,
            far_behind: false,
            serve: ServeBudget::new(ctx_n, SERVE_BURST, SERVE_BURST, cfg.view_timeout),
            orphans: Vec::new(),
            archive: BTreeMap::new(),
            archive_order: VecDeque::new(),
            snapshots: Snapshots::new(SNAPSHOT_INTERVAL),
            snapshot_votes: SnapshotVotes::new(weak_quorum, SNAPSHOT_INTERVAL),
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
        let before = self.durable_key();
        let result = match input {
            Input::Start => {
                // A replica restarted with uncommitted work watches its
                // leader at once; a new one has none.
                self.ensure_view_timer(out);
                Ok(())
            }
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
        if self.durable_key() != before {
            out.push(Action::Persist);
        }
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
            + self.snapshot_votes.retained()
            + self.pool.retained()
    }

    fn leader(&self, view: View) -> NodeId {
        self.committee.leader(view.0)
    }

    /// The vote rule ([`crate::rules::safe_to_vote`]; a planted mutant under the
    /// `mutants` feature).
    fn vote_rule(&self, candidate: &Candidate) -> bool {
        #[cfg(feature = "mutants")]
        return crate::rules::safe_to_vote_as(self.cfg.mutant, &self.safety, candidate);
        #[cfg(not(feature = "mutants"))]
        return crate::rules::safe_to_vote(&self.safety, candidate);
    }

    /// The commit rule ([`crate::rules::commit_rule`]; a planted mutant under the
    /// `mutants` feature).
    fn commit_rule(&self, b2: &ChainLink, b1: &ChainLink, b0: &ChainLink) -> bool {
        #[cfg(feature = "mutants")]
        return crate::rules::commit_rule_as(self.cfg.mutant, b2, b1, b0);
        #[cfg(not(feature = "mutants"))]
        return crate::rules::commit_rule(b2, b1, b0);
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
            Message::BlockRequest { block, above } => {
                self.on_block_request(now, from, block, above, out)
            }
            Message::BlockResponse(block) => self.on_block_response(now, from, block, out),
            Message::BlocksAfter { block } => self.on_blocks_after(now, from, block, out),
            Message::SnapshotRequest { slot } => self.on_snapshot_request(now, from, slot, out),
            Message::Snapshot(offer) => self.on_snapshot(now, from, offer, out),
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
        self.fetch_high_qc_block(now, out);
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
}
