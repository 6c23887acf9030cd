//! The PBFT replica state machine (Castro & Liskov, OSDI'99 / TOCS 2002,
//! signature variant). Sans-IO: inputs in, actions out.
//!
//! # Safety rules, in one screen
//!
//! q is the quorum ⌈(n+f+1)/2⌉ (`rules::quorum`): 2f+1 when n = 3f+1, and
//! large enough that any two quorums share an honest replica for other n.
//!
//! 1. **Pre-prepare acceptance** (§4.2): a backup accepts PRE-PREPARE(v, n, d)
//!    only if it is in view v and not changing view (`rules::view_gate`:
//!    older views rejected, newer ones kept until entered), the sender is
//!    primary(v) and signed it, d = digest(batch), h < n <= H, and it has
//!    accepted no other pre-prepare for (v, n). → `rules::check_pre_prepare`
//! 2. **Prepares come from backups**: the primary sends no PREPARE; one from
//!    it is rejected, and a second PREPARE from one replica for (v, n) too.
//!    → `rules::check_prepare` (COMMITs: `rules::check_commit`)
//! 3. **Prepared** = the pre-prepare + q−1 (2f) matching PREPAREs from
//!    distinct backups; only then is COMMIT sent. → `rules::prepared_certificate`
//! 4. **Committed-local** = prepared + q (2f+1) matching COMMITs of the same view;
//!    execution is in seq order, each request at most once (RequestPool).
//!    → `rules::committed_local`, [`Pbft::execute_ready`]
//! 5. **Watermarks**: every seq is in (h, h+L]; q matching CHECKPOINTs make
//!    a checkpoint stable, move h, and discard the log below.
//!    → `rules::check_watermarks`, `rules::check_checkpoint`,
//!    `rules::stable_proof`
//! 6. **View change**: VIEW-CHANGE carries the stable-checkpoint proof and the
//!    highest-view prepared certificate for every seq above it; NEW-VIEW's O
//!    re-proposes the highest-view certificate per seq and nulls in the gaps;
//!    backups recompute O from V and reject a mismatch. Both name batches by
//!    digest (`rules::check_by_digest`); a replica lacking a re-proposed
//!    batch votes for it and fetches it with a committed tail before
//!    executing it. → `rules::view_change_place`, `rules::check_view_change`,
//!    `rules::plan_new_view`, [`Pbft::on_new_view`]
//! 7. **Catch-up**: transferred batches are executed only if they continue
//!    the replica's own ledger and re-hash to a state certified by q
//!    CHECKPOINTs. → `rules::check_state_transfer`, [`Pbft::on_state`]
//! 8. **Liveness** (§4.5.2): request timer at backups; f+1 VIEW-CHANGEs for higher views make a
//!    replica join the smallest; the new-view timer only starts once q VIEW-CHANGEs for its target
//!    arrived; timeouts double per failed view (capped at 2^max_backoff_exponent × the base, 64× by
//!    default); a replica changing view re-multicasts its VIEW-CHANGE every timeout until the
//!    NEW-VIEW comes, and answers a replica still changing to its previous view with its
//!    VIEW-CHANGE for that view, and one still sending normal-case messages of an older view with
//!    its NEW-VIEW (as primary) or VIEW-CHANGE for the current view. NEW-VIEW is self-certifying:
//!    any replica that accepted one relays it to a replica that asks for it (its VIEW-CHANGE shows
//!    it missed it), and it is accepted from any sender. Every such answer is a retransmission
//!    (`Action::Resend`, counted apart from the view change), rate limited per requester with
//!    exponential back-off within a view ([`backed_off`]).
//!
//! Memory is bounded against Byzantine input: the log only holds seqs in
//! (h, H] with one vote per replica per seq; two VIEW-CHANGEs are kept per
//! replica (its newest and the lowest still useful: a newer one does not
//! withdraw an older one, §4.4), one above-window CHECKPOINT per replica, and
//! early normal-case messages within a per-sender quota.
//!
//! The replica, file by file (the same names in all three protocol crates):
//! this file holds the state, the dispatch of inputs (`on_message`,
//! `on_timeout`) and the `Protocol` impl; `normal.rs` the normal case;
//! `checkpoint.rs` checkpoints and the watermarks; `view_change.rs` the view
//! change; `sync.rs` state transfer; `state.rs` the bounded bookkeeping.

use crate::config::PbftConfig;
use crate::error::PbftError;
use crate::messages::{
    Checkpoint, ExecutedBatch, NewView, PbftMessage, PrePrepare, StableProof, Vote,
};
use crate::rules::{Rules, ViewGate, Watermarks, check_watermarks, view_gate};
use crate::verified::Verified;
use bft_core::protocol::ConfigIssue;
use bft_core::{
    Action, BatchConfig, Certified, Committee, Crypto, Decision, Digest, GENESIS, Input,
    NodeContext, NodeId, Protocol, Request, RequestId, RequestPool, ServeBudget, SnapshotVotes,
    Snapshots, Status, Time,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

mod checkpoint;
mod durable;
mod normal;
mod state;
mod sync;
mod view_change;

use state::{Answered, CatchUp, Slot, VcLog};

pub use durable::PbftDurable;

type Out = Vec<Action<PbftMessage, PbftTimer>>;

/// State transfers one peer may get at once (then one per fetch timeout):
/// an honest replica catching up asks once per fetch timeout, and once more
/// at once when its transfer reveals a newer stable checkpoint.
pub const SERVE_BURST: u32 = 2;

/// PBFT's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PbftTimer {
    /// Backup, in a view: a request has waited too long (dead or censoring
    /// primary). Expiry starts a view change.
    Request,
    /// Changing view, with q VIEW-CHANGEs for the target: NEW-VIEW is late.
    /// Expiry moves on to the next view.
    NewView,
    /// Primary: the oldest pending request has waited `batch.max_delay`.
    Batch,
    /// Changing view: re-multicast this replica's VIEW-CHANGE (a partition
    /// or loss may have dropped it, and nobody else re-sends it). Without it
    /// replicas that lost each other's VIEW-CHANGEs wait forever: the
    /// new-view timer only starts once q of them arrived.
    Resend,
    /// State transfer: the asked replica did not answer; ask the next one
    /// (after the last signer of the proof, the first again).
    Fetch,
}

/// A PBFT replica.
pub struct Pbft {
    id: NodeId,
    committee: Arc<Committee>,
    crypto: Arc<dyn Crypto>,
    batch: BatchConfig,
    cfg: PbftConfig,

    /// Current view; while changing view, the view being changed to.
    view: u64,
    /// False between sending VIEW-CHANGE for `view` and accepting its NEW-VIEW.
    active: bool,
    view_changes_done: u64,
    /// View changes started since a request last executed: timeouts are
    /// `view_change_timeout * 2^failed_views`.
    failed_views: u32,

    log: BTreeMap<u64, Slot>,
    /// Bumped by every change to a slot's durable part (see
    /// [`PbftDurable`]).
    log_epoch: u64,
    /// h: the last stable checkpoint, with its proof and state digest.
    low: u64,
    stable_state: Digest,
    stable_proof: Vec<Checkpoint>,
    /// CHECKPOINTs received for seq in (h, H], by seq then replica.
    checkpoints: BTreeMap<u64, BTreeMap<NodeId, Checkpoint>>,
    /// This replica's own state digest at checkpoint seqs above h.
    own_states: BTreeMap<u64, Digest>,
    last_executed: u64,
    /// Head of the ledger hash chain (the last executed block).
    head: Digest,
    /// Set when q replicas proved a checkpoint this replica has not
    /// reached: it is fetching the batches up to it.
    catch_up: Option<CatchUp>,
    /// Batches executed in (h − depth, last executed], served to lagging
    /// replicas (depth = `state_transfer_depth`).
    history: BTreeMap<u64, ExecutedBatch>,
    /// How many state transfers each peer may still get ([`SERVE_BURST`]
    /// at once, one more per `view_change_timeout`, the fetch retry timer).
    serve: ServeBudget,
    /// The newest CHECKPOINT above H from each replica: q matching ones
    /// tell a replica it fell more than a window behind.
    ahead: BTreeMap<NodeId, Checkpoint>,
    /// This replica's snapshot points (one per checkpoint), offered to
    /// replicas further behind than the history.
    snapshots: Snapshots<StableProof>,
    /// At each checkpoint executed above h: the head and the requests
    /// executed there, kept until the checkpoint is stable (then a
    /// snapshot) or discarded below h.
    pending_snapshots: BTreeMap<u64, (Digest, bft_core::Executed)>,
    /// Snapshots offered to this replica, until f+1 agree.
    snapshot_votes: SnapshotVotes<StableProof>,

    /// Primary: the next seq to assign.
    next_seq: u64,
    pool: RequestPool,
    /// Primary after a view change: requests already re-proposed by O, which
    /// must not be batched again.
    reproposed: BTreeSet<RequestId>,

    /// Valid VIEW-CHANGEs, a few per replica (bounded whatever views a
    /// Byzantine replica claims): see [`VcLog`].
    vc_log: VcLog,
    /// Signatures verified before: a certificate met again in VIEW-CHANGEs
    /// and NEW-VIEW is not verified again. Room for a window's PREPAREs and
    /// COMMITs from every replica (2 · L · n), the oldest forgotten first.
    verified: Verified,
    /// When this replica last answered each replica's stale VIEW-CHANGE
    /// with its own for that view (rate limit: [`backed_off`]).
    vc_answered: BTreeMap<NodeId, Answered>,
    /// When this replica last answered each replica's normal-case message of
    /// an older view (rate limit: [`backed_off`]): see
    /// [`Pbft::answer_stale`].
    stale_answered: BTreeMap<NodeId, Answered>,
    /// Normal-case messages for a view this replica has not entered yet, per
    /// sender, each sender within a quota (bounded against flooding).
    future: BTreeMap<NodeId, VecDeque<PbftMessage>>,
    /// The highest view among each sender's buffered messages.
    future_top: BTreeMap<NodeId, u64>,
    /// The view for which this replica re-sent its VIEW-CHANGE to the new
    /// primary (once per view) after missing the NEW-VIEW.
    vc_resent: Option<u64>,
    /// New primary: the NEW-VIEW it sent, and when it last re-sent it to
    /// each replica whose VIEW-CHANGE came late (rate limit: [`backed_off`]).
    last_new_view: Option<NewView>,
    /// When `last_new_view` was sent or accepted here.
    new_view_at: Time,
    nv_resent: BTreeMap<NodeId, Answered>,
    /// Replicas whose VIEW-CHANGE for the current view has been seen; a
    /// second one means its sender missed the NEW-VIEW.
    vc_seen_in_view: BTreeSet<NodeId>,

    /// The request the request timer is running for (the oldest waiting one
    /// when it was armed), if armed.
    request_timer: Option<RequestId>,
    fetch_timer: bool,
    /// The slot found missing below committed ones when the fetch timer
    /// was armed for it (see [`Pbft::watch_gap`]), and how many committed
    /// tails were asked for so far (to rotate the peer asked).
    tail_gap: Option<u64>,
    tails_asked: usize,
    /// Restarted from its durable state and nothing executed since: its
    /// first gap is asked for at once (rejoin rule, [`Pbft::watch_gap`]).
    rejoining: bool,
    new_view_timer: bool,
    batch_timer: bool,
    resend_timer: bool,
}

impl Pbft {
    fn rules(&self) -> Rules<'_> {
        Rules {
            committee: &self.committee,
            checkpoint_interval: self.cfg.checkpoint_interval,
            window: self.cfg.window,
            max_batch: self.max_batch(),
            #[cfg(feature = "mutants")]
            mutant: self.cfg.mutant,
        }
    }
    fn max_batch(&self) -> usize {
        self.batch.max_size.max(1)
    }
    fn f(&self) -> usize {
        self.committee.f()
    }
    fn primary(&self, view: u64) -> NodeId {
        self.committee.leader(view)
    }
    fn is_primary(&self) -> bool {
        self.primary(self.view) == self.id
    }
    /// H = h + L.
    fn high(&self) -> u64 {
        self.low.saturating_add(self.cfg.window)
    }
    /// The window of sequence numbers accepted now: (h, h + L].
    fn watermarks(&self) -> Watermarks {
        Watermarks {
            low: self.low,
            high: self.high(),
        }
    }
    /// Watermark rule ([`check_watermarks`]): h < n <= H.
    fn in_window(&self, seq: u64) -> Result<(), PbftError> {
        check_watermarks(seq, self.watermarks())
    }
    fn timeout(&self) -> Duration {
        self.cfg
            .view_change_timeout
            .saturating_mul(1 << self.failed_views.min(self.cfg.max_backoff_exponent.min(16)))
    }
    /// Matching CHECKPOINTs that tell a replica it is behind and whom to
    /// fetch from: f+1, a weak certificate (Castro–Liskov, TOCS 2002 §4.3 and
    /// the state transfer of §5/§6) — at least one signer is correct, so the
    /// state they name is the one every correct replica reaches. Only
    /// learning and fetching use it: what is executed is still checked
    /// against a q-proof ([`Pbft::on_state`]). Requiring q here left a
    /// replica that went ahead into a view change alone (a partition) and
    /// hears only 2f of the others (a faulty one omits to it) unable ever to
    /// learn that it is behind: it cannot add its own CHECKPOINT, having not
    /// executed, and no view change brings it back while the others progress.
    fn weak_quorum(&self) -> usize {
        self.f().saturating_add(1)
    }
    fn future_quota(&self) -> usize {
        usize::try_from(self.cfg.window)
            .unwrap_or(usize::MAX)
            .saturating_mul(3)
            .saturating_add(16)
    }

    /// Verifies one signature unless this exact one was verified before
    /// ([`Verified`]), and remembers it.
    fn verify(
        &mut self,
        signer: NodeId,
        domain: &'static str,
        msg: &[u8],
        sig: &bft_core::Signature,
        what: &'static str,
    ) -> Result<(), PbftError> {
        let key = Verified::key(signer, domain, msg, sig);
        if self.verified.contains(&key) {
            return Ok(());
        }
        self.crypto
            .verify(signer, domain, msg, sig)
            .map_err(|_| PbftError::BadSignature { what })?;
        self.verified.insert(key);
        Ok(())
    }

    fn sign_pre_prepare(&self, view: u64, seq: u64, batch: Vec<Request>) -> PrePrepare {
        PrePrepare::signed(self.crypto.as_ref(), view, seq, batch)
    }

    fn sign_vote(&self, domain: &'static str, view: u64, seq: u64, digest: Digest) -> Vote {
        let vote = Vote {
            view,
            seq,
            digest,
            replica: self.id,
            sig: bft_core::Signature::default(),
        };
        vote.signed_by(self.crypto.as_ref(), domain)
    }
    fn on_message(
        &mut self,
        now: Time,
        from: NodeId,
        msg: PbftMessage,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        if let Some(view) = msg.normal_case_view() {
            match view_gate(view, self.view, self.active) {
                ViewGate::Stale => {
                    self.answer_stale(now, from, out);
                    return Err(PbftError::StaleView {
                        view,
                        current: self.view,
                    });
                }
                ViewGate::Early => return self.buffer_future(now, from, view, msg, out),
                ViewGate::Current => {}
            }
        }
        match msg {
            PbftMessage::PrePrepare(pp) => self.on_pre_prepare(from, pp, out),
            PbftMessage::Prepare(p) => self.on_prepare(from, p, out),
            PbftMessage::Commit(c) => self.on_commit(from, c, out),
            PbftMessage::Checkpoint(cp) => self.on_checkpoint(from, cp, out),
            PbftMessage::ViewChange(vc) => self.on_view_change(now, from, vc, out),
            PbftMessage::NewView(nv) => self.on_new_view(now, from, nv, out),
            PbftMessage::Fetch(f) => self.on_fetch(now, from, f, out),
            PbftMessage::State(st) => self.on_state(st, out),
            PbftMessage::SnapshotRequest { slot } => self.on_snapshot_request(now, from, slot, out),
            PbftMessage::Snapshot(offer) => self.on_snapshot(now, from, offer, out),
        }
    }

    fn on_timeout(&mut self, now: Time, timer: PbftTimer, out: &mut Out) {
        match timer {
            PbftTimer::Request => {
                self.request_timer = None;
                // §4.5.2: the primary is dead or censoring — suspect it.
                if self.active && !self.is_primary() {
                    self.start_view_change(now, self.view.saturating_add(1), out);
                }
            }
            PbftTimer::NewView => {
                self.new_view_timer = false;
                // §4.5.2: NEW-VIEW for v+1 did not come in time: try v+2.
                if !self.active {
                    self.start_view_change(now, self.view.saturating_add(1), out);
                }
            }
            PbftTimer::Batch => self.batch_timer = false,
            PbftTimer::Resend => {
                self.resend_timer = false;
                // Retransmission (§4.5 assumes messages are re-sent until
                // received): still changing view, multicast the same
                // VIEW-CHANGE again.
                let mine = self
                    .vc_log
                    .newest(self.id)
                    .filter(|vc| !self.active && vc.new_view == self.view)
                    .cloned();
                if let Some(vc) = mine {
                    out.push(Action::Rebroadcast(PbftMessage::ViewChange(vc)));
                    self.arm_resend(out);
                    self.follow_committed(out);
                }
            }
            PbftTimer::Fetch => {
                self.fetch_timer = false;
                if self
                    .catch_up
                    .as_ref()
                    .is_some_and(|c| c.seq <= self.last_executed)
                {
                    self.catch_up = None; // caught up by normal execution
                }
                self.send_fetch(out);
                self.fetch_tail(out);
            }
        }
    }

    /// After every input: the primary batches; a backup keeps its request
    /// timer running exactly while it waits for a request to execute.
    fn housekeeping(&mut self, now: Time, out: &mut Out) {
        self.propose_ready(now, out);
        self.request_timer_rule(out);
        self.watch_gap(out);
    }
}

impl Protocol for Pbft {
    const NAME: &'static str = "pbft";
    const CATCH_UP_KINDS: &'static [&'static str] =
        &["fetch", "state", "snapshot-request", "snapshot"];
    type Message = PbftMessage;
    type Timer = PbftTimer;
    type Config = PbftConfig;
    type Error = PbftError;
    type Durable = PbftDurable;

    fn durable(&self) -> PbftDurable {
        Pbft::durable(self)
    }

    /// A PRE-PREPARE's batch. A NEW-VIEW's O names batches by digest that
    /// its V certifies (2f+1 PREPAREs each), and STATE carries batches
    /// under a stable checkpoint proof or q COMMITs: certified, so not
    /// listed.
    fn client_requests(msg: &PbftMessage) -> &[Request] {
        match msg {
            PbftMessage::PrePrepare(pp) => &pp.batch,
            _ => &[],
        }
    }

    fn durable_batches(durable: &PbftDurable) -> Vec<Digest> {
        durable.batches()
    }

    fn durable_batch(&self, digest: &Digest) -> Option<&[Request]> {
        Pbft::durable_batch(self, digest)
    }

    fn recover(
        ctx: NodeContext,
        cfg: &PbftConfig,
        durable: PbftDurable,
        batches: &bft_core::DurableBatches,
    ) -> Pbft {
        Pbft::recover(ctx, cfg, durable, batches)
    }

    fn check_certificate(
        d: &Decision,
        committee: &Committee,
        crypto: &dyn Crypto,
    ) -> Result<Certified, PbftError> {
        crate::certificate::check_certificate(d, committee, crypto)
    }

    fn new(ctx: NodeContext, cfg: &PbftConfig) -> Pbft {
        let n = ctx.committee.n();
        let weak_quorum = ctx.committee.weak_quorum();
        Pbft {
            id: ctx.id,
            committee: ctx.committee,
            crypto: ctx.crypto,
            batch: ctx.batch,
            cfg: cfg.clone(),
            view: 0,
            active: true,
            view_changes_done: 0,
            failed_views: 0,
            log: BTreeMap::new(),
            log_epoch: 0,
            low: 0,
            stable_state: GENESIS,
            stable_proof: Vec::new(),
            checkpoints: BTreeMap::new(),
            own_states: BTreeMap::new(),
            last_executed: 0,
            head: GENESIS,
            catch_up: None,
            history: BTreeMap::new(),
            serve: ServeBudget::new(n, SERVE_BURST, 1, cfg.view_change_timeout),
            ahead: BTreeMap::new(),
            snapshots: Snapshots::new(cfg.checkpoint_interval),
            pending_snapshots: BTreeMap::new(),
            snapshot_votes: SnapshotVotes::new(weak_quorum, cfg.checkpoint_interval),
            next_seq: 1,
            pool: RequestPool::new(cfg.pool_capacity.max(1)),
            reproposed: BTreeSet::new(),
            vc_log: VcLog::default(),
            verified: Verified::new(
                usize::try_from(cfg.window)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(2)
                    .saturating_mul(n)
                    .saturating_add(n.saturating_mul(4)),
            ),
            vc_answered: BTreeMap::new(),
            stale_answered: BTreeMap::new(),
            future: BTreeMap::new(),
            future_top: BTreeMap::new(),
            vc_resent: None,
            last_new_view: None,
            new_view_at: Time::ZERO,
            nv_resent: BTreeMap::new(),
            vc_seen_in_view: BTreeSet::new(),
            request_timer: None,
            fetch_timer: false,
            tail_gap: None,
            tails_asked: 0,
            rejoining: false,
            new_view_timer: false,
            resend_timer: false,
            batch_timer: false,
        }
    }

    fn check_config(cfg: &PbftConfig) -> Result<(), ConfigIssue> {
        cfg.check()
    }

    fn handle(
        &mut self,
        now: Time,
        input: Input<PbftMessage, PbftTimer>,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        let before = self.durable_key();
        let result = match input {
            Input::Start => Ok(()),
            Input::Request(req) => {
                self.on_request(now, req);
                Ok(())
            }
            Input::Timeout(timer) => {
                self.on_timeout(now, timer, out);
                Ok(())
            }
            Input::Message { from, msg } => self.on_message(now, from, msg, out),
        };
        self.housekeeping(now, out);
        if self.durable_key() != before {
            out.push(Action::Persist);
        }
        result
    }

    fn status(&self) -> Status {
        let log: usize = self.log.values().map(Slot::entries).sum();
        let checkpoints: usize = self.checkpoints.values().map(BTreeMap::len).sum();
        let future: usize = self.future.values().map(VecDeque::len).sum();
        Status {
            view: self.view,
            committed: self.last_executed,
            view_changes: self.view_changes_done,
            retained: log
                + checkpoints
                + self.own_states.len()
                + self.history.len()
                + self.ahead.len()
                + self.vc_log.len()
                + self.vc_answered.len()
                + self.stale_answered.len()
                + self.future_top.len()
                + self.nv_resent.len()
                + self.vc_seen_in_view.len()
                + future
                + self.reproposed.len()
                + self.pool.retained(),
        }
    }

    /// The request timer: a backup suspects the primary.
    fn is_view_timeout(timer: &PbftTimer) -> bool {
        matches!(timer, PbftTimer::Request)
    }
}
