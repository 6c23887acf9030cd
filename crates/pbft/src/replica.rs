//! The PBFT replica state machine (Castro & Liskov, OSDI'99 / TOCS 2002,
//! signature variant). Sans-IO: inputs in, actions out.
//!
//! # Safety rules, in one screen
//!
//! q is the quorum ⌈(n+f+1)/2⌉ (`certs::quorum`): 2f+1 when n = 3f+1, and
//! large enough that any two quorums share an honest replica for other n.
//!
//! 1. **Pre-prepare acceptance** (§4.2): a backup accepts PRE-PREPARE(v, n, d)
//!    only if it is in view v and not changing view, the sender is
//!    primary(v) and signed it, d = digest(batch), h < n <= H, and it has
//!    accepted no other pre-prepare for (v, n). → [`Pbft::on_pre_prepare`]
//! 2. **Prepares come from backups**: the primary sends no PREPARE; one from
//!    it is rejected, and a second PREPARE from one replica for (v, n) too.
//!    → [`Pbft::on_prepare`]
//! 3. **Prepared** = the pre-prepare + q−1 (2f) matching PREPAREs from
//!    distinct backups; only then is COMMIT sent. → [`Pbft::check_prepared`]
//! 4. **Committed-local** = prepared + q (2f+1) matching COMMITs of the same view;
//!    execution is in seq order, each request at most once (RequestPool).
//!    → [`Pbft::check_committed`], [`Pbft::execute_ready`]
//! 5. **Watermarks**: every seq is in (h, h+L]; q matching CHECKPOINTs make
//!    a checkpoint stable, move h, and discard the log below.
//!    → [`Pbft::in_window`], [`Pbft::check_stable`]
//! 6. **View change**: VIEW-CHANGE carries the stable-checkpoint proof and the
//!    highest-view prepared certificate for every seq above it; NEW-VIEW's O
//!    re-proposes the highest-view certificate per seq and nulls in the gaps;
//!    backups recompute O from V and reject a mismatch. → `certs.rs`,
//!    [`Pbft::on_new_view`]
//! 7. **Catch-up**: transferred batches are executed only if they continue
//!    the replica's own ledger and re-hash to a state certified by q
//!    CHECKPOINTs. → [`Pbft::on_state`]
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

use crate::certs::{
    NewViewPlan, Rules, SigBatch, block_hash, check_batch, check_checkpoint_proof,
    check_view_change, push_pre_prepare,
};
use crate::config::PbftConfig;
use crate::error::PbftError;
use crate::messages::{
    Checkpoint, ExecutedBatch, Fetch, NewView, PbftMessage, PrePrepare, PreparedCert,
    StateTransfer, ViewChange, Vote, checkpoint_payload, domain, new_view_payload,
    pre_prepare_payload, view_change_payload, vote_payload,
};
use crate::verified::Verified;
use bft_core::protocol::ConfigIssue;
use bft_core::{
    Action, BatchConfig, Committee, Crypto, Decision, Digest, GENESIS, Input, NodeContext, NodeId,
    Protocol, Request, RequestId, RequestPool, Status, Time, batch_digest,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

type Out = Vec<Action<PbftMessage, PbftTimer>>;

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

/// A stable checkpoint this replica has proof of but has not reached.
#[derive(Debug)]
struct CatchUp {
    seq: u64,
    proof: Vec<Checkpoint>,
    /// Fetches sent so far (picks the next signer of the proof to ask,
    /// cycling).
    asked: usize,
}

/// One sequence number's entry in the message log.
#[derive(Debug, Default)]
struct Slot {
    /// The pre-prepare accepted in the current view.
    pre_prepare: Option<PrePrepare>,
    /// PREPAREs of the current view, one per replica (any digest).
    prepares: BTreeMap<NodeId, Vote>,
    /// COMMITs of the current view, one per replica (any digest).
    commits: BTreeMap<NodeId, Vote>,
    /// Prepared in the current view (and COMMIT sent).
    prepared: bool,
    /// Committed-local in the current view.
    committed: bool,
    /// The prepared certificate from the highest view this replica prepared
    /// in; survives view changes and goes into VIEW-CHANGE's P.
    cert: Option<PreparedCert>,
}

impl Slot {
    fn entries(&self) -> usize {
        1 + self.prepares.len()
            + self.commits.len()
            + self.cert.as_ref().map_or(0, |c| 1 + c.prepares.len())
    }
    /// Forgets the current view's pre-prepare and votes, keeping the
    /// certificate (the replica's P entry).
    fn leave_view(&mut self) {
        self.pre_prepare = None;
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
struct VcLog(BTreeMap<NodeId, BTreeMap<u64, ViewChange>>);

impl VcLog {
    const PER_REPLICA: usize = 2;

    fn get(&self, replica: NodeId, view: u64) -> Option<&ViewChange> {
        self.0.get(&replica).and_then(|m| m.get(&view))
    }
    /// The sender's VIEW-CHANGE for the highest view.
    fn newest(&self, replica: NodeId) -> Option<&ViewChange> {
        self.0
            .get(&replica)
            .and_then(|m| m.last_key_value())
            .map(|(_, vc)| vc)
    }
    /// Every sender's newest VIEW-CHANGE, by sender id.
    fn newest_each(&self) -> impl Iterator<Item = &ViewChange> {
        self.0
            .values()
            .filter_map(|m| m.last_key_value().map(|(_, vc)| vc))
    }
    /// The VIEW-CHANGEs for exactly `view`, by sender id.
    fn for_view(&self, view: u64) -> impl Iterator<Item = &ViewChange> {
        self.0.values().filter_map(move |m| m.get(&view))
    }
    fn insert(&mut self, me: NodeId, vc: ViewChange) {
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
    fn drop_below(&mut self, me: NodeId, view: u64) {
        for (&id, m) in self.0.iter_mut() {
            if id != me {
                m.retain(|&v, _| v >= view);
            }
        }
        self.0.retain(|_, m| !m.is_empty());
    }
    fn len(&self) -> usize {
        self.0.values().map(BTreeMap::len).sum()
    }
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
    /// The newest CHECKPOINT above H from each replica: q matching ones
    /// tell a replica it fell more than a window behind.
    ahead: BTreeMap<NodeId, Checkpoint>,

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
    /// Watermark rule: h < n <= H.
    fn in_window(&self, seq: u64) -> Result<(), PbftError> {
        if seq > self.low && seq <= self.high() {
            Ok(())
        } else {
            Err(PbftError::OutsideWatermarks {
                seq,
                low: self.low,
                high: self.high(),
            })
        }
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
        let digest = batch_digest(&batch);
        let sig = self.crypto.sign(
            domain::PRE_PREPARE,
            &pre_prepare_payload(view, seq, &digest),
        );
        PrePrepare {
            view,
            seq,
            digest,
            batch,
            sig,
        }
    }

    fn sign_vote(&self, domain: &'static str, view: u64, seq: u64, digest: Digest) -> Vote {
        let sig = self
            .crypto
            .sign(domain, &vote_payload(view, seq, &digest, self.id));
        Vote {
            view,
            seq,
            digest,
            replica: self.id,
            sig,
        }
    }

    // ----- requests and batching --------------------------------------------

    fn on_request(&mut self, now: Time, req: Request) {
        self.pool.add(now, req);
    }

    /// Primary, in a view: cut batches while the window has room — a batch at
    /// `max_size` requests, or when the oldest request has waited
    /// `max_delay`, whichever comes first (arming the batch timer otherwise).
    fn propose_ready(&mut self, now: Time, out: &mut Out) {
        if !self.active || !self.is_primary() {
            return;
        }
        loop {
            if self.next_seq > self.high() {
                return; // window full: wait for the next stable checkpoint
            }
            let Some(oldest) = self.pool.oldest_arrival() else {
                if self.batch_timer {
                    self.batch_timer = false;
                    out.push(Action::CancelTimer(PbftTimer::Batch));
                }
                return;
            };
            let due = oldest.saturating_add(self.batch.max_delay);
            if self.pool.len() < self.max_batch() && due > now {
                // Armed for the oldest request; it stays the oldest until cut.
                if !self.batch_timer {
                    self.batch_timer = true;
                    out.push(Action::SetTimer {
                        timer: PbftTimer::Batch,
                        after: due.since(now),
                    });
                }
                return;
            }
            let batch: Vec<Request> = self
                .pool
                .take_batch(self.max_batch())
                .into_iter()
                .filter(|r| !self.reproposed.contains(&r.id))
                .collect();
            if !batch.is_empty() {
                self.propose(batch, out);
            }
        }
    }

    /// Primary: PRE-PREPARE(v, n, d) with the batch, multicast to backups.
    fn propose(&mut self, batch: Vec<Request>, out: &mut Out) {
        let seq = self.next_seq;
        self.next_seq = seq.saturating_add(1);
        let pp = self.sign_pre_prepare(self.view, seq, batch);
        out.push(Action::Broadcast(PbftMessage::PrePrepare(pp.clone())));
        self.log.entry(seq).or_default().pre_prepare = Some(pp);
    }

    // ----- normal case ------------------------------------------------------

    /// Safety rule 1 (§4.2): accept PRE-PREPARE(v, n, d) only in view v, from
    /// and signed by primary(v), with d bound to the batch, h < n <= H, and no
    /// other pre-prepare accepted for (v, n). Then multicast PREPARE.
    fn on_pre_prepare(
        &mut self,
        from: NodeId,
        pp: PrePrepare,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        let primary = self.primary(pp.view);
        if from != primary {
            return Err(PbftError::NotPrimary {
                from,
                view: pp.view,
            });
        }
        self.in_window(pp.seq)?;
        check_batch(&pp, self.max_batch())?;
        if let Some(existing) = self.log.get(&pp.seq).and_then(|s| s.pre_prepare.as_ref()) {
            return Err(if existing.digest == pp.digest {
                PbftError::DuplicatePrePrepare { seq: pp.seq }
            } else {
                PbftError::ConflictingPrePrepare { seq: pp.seq }
            });
        }
        self.verify(
            primary,
            domain::PRE_PREPARE,
            &pre_prepare_payload(pp.view, pp.seq, &pp.digest),
            &pp.sig,
            "pre-prepare",
        )?;
        self.accept_pre_prepare(pp, out);
        Ok(())
    }

    /// Records an accepted pre-prepare and, at a backup, multicasts
    /// PREPARE(v, n, d, i) and counts it as its own.
    fn accept_pre_prepare(&mut self, pp: PrePrepare, out: &mut Out) {
        let (view, seq, digest) = (pp.view, pp.seq, pp.digest);
        self.log.entry(seq).or_default().pre_prepare = Some(pp);
        if self.primary(view) != self.id {
            let prepare = self.sign_vote(domain::PREPARE, view, seq, digest);
            out.push(Action::Broadcast(PbftMessage::Prepare(prepare.clone())));
            self.log
                .entry(seq)
                .or_default()
                .prepares
                .insert(self.id, prepare);
        }
        self.check_prepared(seq, out);
    }

    /// Safety rule 2: PREPAREs come from distinct backups — never the
    /// primary, never twice from one replica for (v, n).
    fn on_prepare(&mut self, from: NodeId, p: Vote, out: &mut Out) -> Result<(), PbftError> {
        if p.replica != from {
            return Err(PbftError::SenderMismatch {
                from,
                signer: p.replica,
            });
        }
        if p.replica == self.primary(p.view) {
            return Err(PbftError::PrepareFromPrimary(p.replica));
        }
        self.in_window(p.seq)?;
        if self
            .log
            .get(&p.seq)
            .is_some_and(|s| s.prepares.contains_key(&p.replica))
        {
            return Err(PbftError::DuplicatePrepare {
                replica: p.replica,
                seq: p.seq,
            });
        }
        if self.log.get(&p.seq).is_some_and(|s| s.prepared) {
            // Late vote: the certificate is complete and this vote can change
            // nothing, so it is neither verified nor stored (saves n−q
            // signature checks per slot).
            return Ok(());
        }
        self.verify(
            p.replica,
            domain::PREPARE,
            &vote_payload(p.view, p.seq, &p.digest, p.replica),
            &p.sig,
            "prepare",
        )?;
        let seq = p.seq;
        self.log
            .entry(seq)
            .or_default()
            .prepares
            .insert(p.replica, p);
        self.check_prepared(seq, out);
        Ok(())
    }

    /// COMMITs may come from any replica, the primary included; one per
    /// replica for (v, n).
    fn on_commit(&mut self, from: NodeId, c: Vote, out: &mut Out) -> Result<(), PbftError> {
        if c.replica != from {
            return Err(PbftError::SenderMismatch {
                from,
                signer: c.replica,
            });
        }
        self.in_window(c.seq)?;
        if self
            .log
            .get(&c.seq)
            .is_some_and(|s| s.commits.contains_key(&c.replica))
        {
            return Err(PbftError::DuplicateCommit {
                replica: c.replica,
                seq: c.seq,
            });
        }
        if self.log.get(&c.seq).is_some_and(|s| s.committed) {
            return Ok(()); // late vote: already committed-local, nothing to learn
        }
        self.verify(
            c.replica,
            domain::COMMIT,
            &vote_payload(c.view, c.seq, &c.digest, c.replica),
            &c.sig,
            "commit",
        )?;
        let seq = c.seq;
        self.log
            .entry(seq)
            .or_default()
            .commits
            .insert(c.replica, c);
        self.check_committed(seq, out);
        Ok(())
    }

    /// Safety rule 3: prepared(m, v, n, i) = the pre-prepare for (v, n, d) and
    /// q−1 (2f) PREPAREs matching it from distinct backups (the acceptance rules
    /// already excluded the primary and duplicates). On becoming prepared,
    /// keep the certificate and multicast COMMIT(v, n, d, i).
    fn check_prepared(&mut self, seq: u64, out: &mut Out) {
        let need = self.rules().prepare_quorum();
        let Some(slot) = self.log.get(&seq) else {
            return;
        };
        let Some(pp) = slot.pre_prepare.as_ref().filter(|_| !slot.prepared) else {
            return;
        };
        let matching: Vec<Vote> = slot
            .prepares
            .values()
            .filter(|p| p.view == pp.view && p.digest == pp.digest)
            .take(need)
            .cloned()
            .collect();
        if matching.len() < need {
            return;
        }
        let cert = PreparedCert {
            pre_prepare: pp.clone(),
            prepares: matching,
        };
        let commit = self.sign_vote(domain::COMMIT, pp.view, seq, pp.digest);
        out.push(Action::Broadcast(PbftMessage::Commit(commit.clone())));
        if let Some(slot) = self.log.get_mut(&seq) {
            slot.prepared = true;
            slot.cert = Some(cert);
            slot.commits.insert(self.id, commit);
        }
        self.check_committed(seq, out);
    }

    /// Safety rule 4: committed-local(m, v, n, i) = prepared + q (2f+1) COMMITs
    /// for the same (v, n, d) from distinct replicas (possibly its own).
    fn check_committed(&mut self, seq: u64, out: &mut Out) {
        let need = self.rules().quorum();
        let Some(slot) = self.log.get_mut(&seq) else {
            return;
        };
        if !slot.prepared || slot.committed {
            return;
        }
        let Some(pp) = slot.pre_prepare.as_ref() else {
            return;
        };
        let matching = slot
            .commits
            .values()
            .filter(|c| c.view == pp.view && c.digest == pp.digest)
            .count();
        if matching >= need {
            slot.committed = true;
            self.execute_ready(out);
        }
    }

    /// Executes committed slots in seq order: each extends the hash chain and
    /// executes only the requests not executed before (exactly-once). Every
    /// K-th seq multicasts a CHECKPOINT of the chain head.
    fn execute_ready(&mut self, out: &mut Out) {
        loop {
            let seq = self.last_executed + 1;
            let Some(pp) = self
                .log
                .get(&seq)
                .filter(|s| s.committed)
                .and_then(|s| s.pre_prepare.as_ref())
            else {
                return;
            };
            let executed = ExecutedBatch {
                seq,
                view: pp.view,
                batch: pp.batch.clone(),
            };
            let digest = pp.digest;
            self.execute(executed, digest, out);
            if seq % self.cfg.checkpoint_interval == 0 {
                self.send_checkpoint(seq, out);
            }
        }
    }

    /// Executes slot `last_executed + 1`: the requests not executed before,
    /// a Commit extending the hash chain, and the batch kept for lagging
    /// replicas.
    fn execute(&mut self, executed: ExecutedBatch, digest: Digest, out: &mut Out) {
        let ids: Vec<RequestId> = executed.batch.iter().map(|r| r.id).collect();
        let fresh = self.pool.execute(&ids);
        for id in &ids {
            self.reproposed.remove(id);
        }
        if !fresh.is_empty() {
            self.failed_views = 0;
        }
        let block = block_hash(&self.head, executed.seq, &digest);
        out.push(Action::Commit(Decision {
            slot: executed.seq,
            view: executed.view,
            block,
            parent: self.head,
            requests: fresh,
        }));
        self.head = block;
        self.last_executed = executed.seq;
        self.history.insert(executed.seq, executed);
    }

    // ----- checkpoints and garbage collection -------------------------------

    fn send_checkpoint(&mut self, seq: u64, out: &mut Out) {
        let state = self.head;
        let sig = self.crypto.sign(
            domain::CHECKPOINT,
            &checkpoint_payload(seq, &state, self.id),
        );
        let cp = Checkpoint {
            seq,
            state,
            replica: self.id,
            sig,
        };
        out.push(Action::Broadcast(PbftMessage::Checkpoint(cp.clone())));
        self.own_states.insert(seq, state);
        self.checkpoints.entry(seq).or_default().insert(self.id, cp);
        self.check_stable(seq, out);
    }

    fn on_checkpoint(
        &mut self,
        from: NodeId,
        cp: Checkpoint,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        if cp.replica != from {
            return Err(PbftError::SenderMismatch {
                from,
                signer: cp.replica,
            });
        }
        if cp.seq % self.cfg.checkpoint_interval != 0 {
            return Err(PbftError::CheckpointOffInterval { seq: cp.seq });
        }
        if cp.seq <= self.low {
            return Ok(()); // late vote for a checkpoint already stable here
        }
        if cp.seq > self.high() {
            return self.on_checkpoint_ahead(cp, out);
        }
        if self
            .checkpoints
            .get(&cp.seq)
            .is_some_and(|m| m.contains_key(&cp.replica))
        {
            return Err(PbftError::DuplicateCheckpoint {
                replica: cp.replica,
                seq: cp.seq,
            });
        }
        self.verify(
            cp.replica,
            domain::CHECKPOINT,
            &checkpoint_payload(cp.seq, &cp.state, cp.replica),
            &cp.sig,
            "checkpoint",
        )?;
        let seq = cp.seq;
        self.checkpoints
            .entry(seq)
            .or_default()
            .insert(cp.replica, cp);
        self.check_stable(seq, out);
        Ok(())
    }

    /// A CHECKPOINT above H: keep the newest per replica (bounded by n); f+1
    /// matching ones show this replica is more than a window behind.
    fn on_checkpoint_ahead(&mut self, cp: Checkpoint, out: &mut Out) -> Result<(), PbftError> {
        if self
            .ahead
            .get(&cp.replica)
            .is_some_and(|prev| prev.seq >= cp.seq)
        {
            return Ok(());
        }
        self.verify(
            cp.replica,
            domain::CHECKPOINT,
            &checkpoint_payload(cp.seq, &cp.state, cp.replica),
            &cp.sig,
            "checkpoint",
        )?;
        let (seq, state) = (cp.seq, cp.state);
        self.ahead.insert(cp.replica, cp);
        let proof: Vec<Checkpoint> = self
            .ahead
            .values()
            .filter(|c| c.seq == seq && c.state == state)
            .cloned()
            .collect();
        if proof.len() >= self.weak_quorum() {
            self.note_behind(seq, proof, out);
        }
        Ok(())
    }

    /// Safety rule 5 (§4.3): q (2f+1) CHECKPOINTs for (n, d) make checkpoint n
    /// stable. A replica moves h only to a checkpoint it has itself reached
    /// with the same state; otherwise it only learns that it is behind.
    fn check_stable(&mut self, seq: u64, out: &mut Out) {
        let quorum = self.rules().quorum();
        let Some(votes) = self.checkpoints.get(&seq) else {
            return;
        };
        match self.own_states.get(&seq) {
            Some(own) => {
                let proof: Vec<Checkpoint> = votes
                    .values()
                    .filter(|c| c.state == *own)
                    .take(quorum)
                    .cloned()
                    .collect();
                if proof.len() >= quorum {
                    let own = *own;
                    self.advance_low(seq, own, proof);
                }
            }
            None if seq > self.last_executed => {
                let mut by_state: BTreeMap<Digest, Vec<Checkpoint>> = BTreeMap::new();
                for c in votes.values() {
                    by_state.entry(c.state).or_default().push(c.clone());
                }
                let weak = self.weak_quorum();
                if let Some(proof) = by_state.into_values().find(|p| p.len() >= weak) {
                    self.note_behind(seq, proof, out);
                }
            }
            None => {}
        }
    }

    /// h := n; discard log entries, checkpoints and states at or below n.
    fn advance_low(&mut self, seq: u64, state: Digest, proof: Vec<Checkpoint>) {
        if seq <= self.low {
            return;
        }
        self.low = seq;
        self.stable_state = state;
        self.stable_proof = proof;
        self.log = self.log.split_off(&seq.saturating_add(1));
        self.checkpoints = self.checkpoints.split_off(&seq.saturating_add(1));
        self.own_states = self.own_states.split_off(&seq.saturating_add(1));
        self.history = self
            .history
            .split_off(&(seq.saturating_sub(self.cfg.state_transfer_depth) + 1));
        self.ahead.retain(|_, c| c.seq > seq);
        if self.catch_up.as_ref().is_some_and(|c| c.seq <= seq) {
            self.catch_up = None; // reached (by execution or by transfer)
        }
    }

    // ----- state transfer ---------------------------------------------------

    /// f+1 replicas (one of them correct) signed checkpoint `seq` (`proof`),
    /// and this replica has not executed that far: fetch the batches up to it.
    fn note_behind(&mut self, seq: u64, proof: Vec<Checkpoint>, out: &mut Out) {
        if seq <= self.last_executed || self.catch_up.as_ref().is_some_and(|c| c.seq >= seq) {
            return;
        }
        self.catch_up = Some(CatchUp {
            seq,
            proof,
            asked: 0,
        });
        self.send_fetch(out);
    }

    /// Asks the next signer of the proof (at least f+1 of them are honest)
    /// and arms the retry timer.
    fn send_fetch(&mut self, out: &mut Out) {
        let me = self.id;
        let from_seq = self.last_executed + 1;
        let Some(c) = self.catch_up.as_mut() else {
            return;
        };
        let peers: Vec<NodeId> = c
            .proof
            .iter()
            .map(|cp| cp.replica)
            .filter(|&r| r != me)
            .collect();
        // The signers in turn, round and round, one per timeout, for as long
        // as the checkpoint is ahead: a signer serves only from a checkpoint
        // it holds as stable, which it may reach long after the f+1
        // CHECKPOINTs that started the catch-up.
        let Some(&to) = peers.get(c.asked % peers.len().max(1)) else {
            return;
        };
        c.asked = c.asked.wrapping_add(1);
        out.push(Action::Resend {
            to,
            msg: PbftMessage::Fetch(Fetch { from_seq }),
        });
        self.fetch_timer = true;
        out.push(Action::SetTimer {
            timer: PbftTimer::Fetch,
            after: self.cfg.view_change_timeout,
        });
    }

    /// Serves a lagging replica: the batches from `from_seq` up to this
    /// replica's stable checkpoint, with its proof — if it still has them.
    fn on_fetch(&mut self, from: NodeId, fetch: Fetch, out: &mut Out) {
        let covered = self
            .history
            .first_key_value()
            .is_some_and(|(&first, _)| first <= fetch.from_seq);
        if self.low == 0 || fetch.from_seq > self.low || !covered {
            return; // nothing stable to give, or already discarded
        }
        let batches = self
            .history
            .range(fetch.from_seq..=self.low)
            .map(|(_, b)| b.clone())
            .collect();
        out.push(Action::Resend {
            to: from,
            msg: PbftMessage::State(StateTransfer {
                seq: self.low,
                state: self.stable_state,
                proof: self.stable_proof.clone(),
                batches,
            }),
        });
    }

    /// Catch-up rule: accept transferred batches only if they continue this
    /// replica's ledger contiguously and re-hash, from its own head, to the
    /// state that q CHECKPOINTs certify — so a Byzantine responder can
    /// delay a replica but never change what it executes.
    fn on_state(&mut self, st: StateTransfer, out: &mut Out) -> Result<(), PbftError> {
        if st.seq <= self.last_executed {
            return Ok(()); // stale or unsolicited: nothing to learn
        }
        let mut sigs = SigBatch::default();
        check_checkpoint_proof(&self.rules(), st.seq, &st.state, &st.proof, &mut sigs)?;
        let first = self.last_executed + 1;
        let contiguous = st.batches.len() as u64 == st.seq - self.last_executed
            && st.batches.iter().zip(first..).all(|(b, seq)| b.seq == seq);
        if !contiguous {
            return Err(PbftError::BadState("batches do not continue the ledger"));
        }
        let digests: Vec<Digest> = st.batches.iter().map(|b| batch_digest(&b.batch)).collect();
        let head = st
            .batches
            .iter()
            .zip(&digests)
            .fold(self.head, |head, (b, d)| block_hash(&head, b.seq, d));
        if head != st.state {
            return Err(PbftError::BadState("chain does not reach the proven state"));
        }
        sigs.verify(self.crypto.as_ref(), &mut self.verified, "state")?;
        for (b, d) in st.batches.into_iter().zip(digests) {
            self.execute(b, d, out);
        }
        self.own_states.insert(st.seq, st.state);
        self.advance_low(st.seq, st.state, st.proof);
        if self.catch_up.is_some() {
            self.send_fetch(out); // a newer checkpoint is still ahead
        } else if self.fetch_timer {
            self.fetch_timer = false;
            out.push(Action::CancelTimer(PbftTimer::Fetch));
        }
        self.execute_ready(out);
        Ok(())
    }

    // ----- view change ------------------------------------------------------

    /// Leaves the current view: stops accepting its normal-case messages,
    /// forgets their votes (certificates stay), and — if this replica was its
    /// primary — puts its unexecuted proposals back in its pool (they came
    /// from there; a backup never restores requests a primary made up).
    fn leave_view(&mut self, now: Time, out: &mut Out) {
        let was_primary = self.active && self.is_primary();
        for (&seq, slot) in self.log.iter_mut() {
            if was_primary && seq > self.last_executed {
                for r in slot.pre_prepare.iter().flat_map(|pp| &pp.batch) {
                    self.pool.add(now, r.clone());
                }
            }
            slot.leave_view();
        }
        self.reproposed.clear();
        if self.request_timer.take().is_some() {
            out.push(Action::CancelTimer(PbftTimer::Request));
        }
        for (timer, armed) in [
            (PbftTimer::Batch, &mut self.batch_timer),
            (PbftTimer::NewView, &mut self.new_view_timer),
            (PbftTimer::Resend, &mut self.resend_timer),
        ] {
            if *armed {
                *armed = false;
                out.push(Action::CancelTimer(timer));
            }
        }
    }

    /// §4.4: move to view `target` and multicast VIEW-CHANGE(v+1, n, C, P, i)
    /// with the last stable checkpoint's proof C and, for every seq above it,
    /// the prepared certificate from the highest view.
    fn start_view_change(&mut self, now: Time, target: u64, out: &mut Out) {
        self.leave_view(now, out);
        self.view = target;
        self.active = false;
        self.failed_views = self.failed_views.saturating_add(1);
        let prepared: Vec<PreparedCert> = self
            .log
            .range(self.low + 1..=self.high())
            .filter_map(|(_, s)| s.cert.clone())
            .collect();
        let sig = self.crypto.sign(
            domain::VIEW_CHANGE,
            &view_change_payload(target, self.low, &self.stable_state, &prepared, self.id),
        );
        let vc = ViewChange {
            new_view: target,
            stable_seq: self.low,
            stable_state: self.stable_state,
            checkpoint_proof: self.stable_proof.clone(),
            prepared,
            replica: self.id,
            sig,
        };
        out.push(Action::Broadcast(PbftMessage::ViewChange(vc.clone())));
        self.vc_log.insert(self.id, vc);
        self.vc_log.drop_below(self.id, target);
        self.arm_resend(out);
        // Messages buffered for views this replica has now skipped are dead.
        self.drop_future_below(target);
        self.view_change_progress(now, out);
    }

    fn on_view_change(
        &mut self,
        now: Time,
        from: NodeId,
        vc: ViewChange,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        if vc.replica != from {
            return Err(PbftError::SenderMismatch {
                from,
                signer: vc.replica,
            });
        }
        // A VIEW-CHANGE for an older view, or a second one for this view,
        // means its sender missed this view's NEW-VIEW. (The first one for
        // this view arriving after NEW-VIEW is just slow: NEW-VIEW is on its
        // way to it.)
        let missed = vc.new_view < self.view
            || (vc.new_view == self.view && !self.vc_seen_in_view.insert(from));
        if self.active && missed {
            self.resend_new_view(now, from, out);
        }
        if vc.new_view < self.view && !self.active {
            self.answer_lagging(now, from, vc.new_view, out);
        }
        if vc.new_view < self.view {
            return Err(PbftError::StaleView {
                view: vc.new_view,
                current: self.view,
            });
        }
        if vc.new_view == self.view && self.active {
            return Ok(()); // late VIEW-CHANGE for the view already entered
        }
        if self.vc_log.get(from, vc.new_view).is_some() {
            return Ok(()); // duplicate (a retransmission)
        }
        // An older VIEW-CHANGE than the sender's newest is still kept: it is
        // not withdrawn by the newer one (§4.4, see `VcLog`).
        let mut sigs = SigBatch::default();
        check_view_change(&self.rules(), &vc, &mut sigs)?;
        sigs.verify(self.crypto.as_ref(), &mut self.verified, "view-change")?;
        self.vc_log.insert(self.id, vc);
        self.view_change_progress(now, out);
        Ok(())
    }

    /// Retransmission (TOCS 2002 §4.5 assumes messages between correct
    /// replicas are re-sent until received): a replica still changing to an
    /// older view u (its VIEW-CHANGE(u) arrived here, where the view is
    /// already past u) may have missed this replica's VIEW-CHANGE(u), lost to
    /// a partition before this one moved on — and the periodic re-multicast
    /// only repeats the newest. Without it the replicas left at u may never
    /// collect q VIEW-CHANGE(u)s, so primary(u) never sends NEW-VIEW and their
    /// new-view timers never start. Rate limited per replica by
    /// [`backed_off`].
    ///
    /// A replica that entered u by accepting NEW-VIEW(u) without sending
    /// VIEW-CHANGE(u) relays that NEW-VIEW instead: with n = 4, 3 entered
    /// view 2 so, then left it; 0 and 1, still changing to 2 (the primary
    /// of 2 omits to them), held two VIEW-CHANGE(2)s, short of q, and one
    /// VIEW-CHANGE(3), short of f+1: none of their timers could run.
    fn answer_lagging(&mut self, now: Time, to: NodeId, view: u64, out: &mut Out) {
        let mine = match self.vc_log.get(self.id, view) {
            Some(vc) => PbftMessage::ViewChange(vc.clone()),
            None => match self.last_new_view.as_ref().filter(|nv| nv.view == view) {
                Some(nv) => PbftMessage::NewView(nv.clone()),
                None => return,
            },
        };
        let interval = self.timeout();
        if backed_off(&mut self.vc_answered, to, now, interval) {
            out.push(Action::Resend { to, msg: mine });
        }
    }

    /// Retransmission (TOCS 2002 §4.4–4.5: the view-change protocol assumes
    /// messages between correct replicas are re-sent until received): a
    /// replica still sending PRE-PREPAREs, PREPAREs or COMMITs of a view older
    /// than ours missed the view changes since, and nothing else would tell
    /// it. Answer it with this view's NEW-VIEW if we are its primary and sent
    /// one, else with our VIEW-CHANGE for this view (f+1 of them make it join,
    /// §4.5.2). Without it an isolated primary of view 0 (it runs no request
    /// timer) missed NEW-VIEW(1) and stayed active in view 0 after the heal,
    /// while the honest others were split between views 1 and 2 short of f+1
    /// for a higher view: no timer ran again. A stale message is not a
    /// request for NEW-VIEW, so only the primary answers with it (the others'
    /// VIEW-CHANGEs make the replica ask: [`Pbft::resend_new_view`]). Rate
    /// limited per replica by [`backed_off`], so a Byzantine one cannot make
    /// us flood.
    fn answer_stale(&mut self, now: Time, to: NodeId, out: &mut Out) {
        if to == self.id {
            return;
        }
        let nv = self
            .last_new_view
            .as_ref()
            .filter(|nv| nv.view == self.view && self.active && self.is_primary());
        let msg = match (nv, self.vc_log.get(self.id, self.view)) {
            (Some(nv), _) => PbftMessage::NewView(nv.clone()),
            (None, Some(vc)) => PbftMessage::ViewChange(vc.clone()),
            (None, None) => return,
        };
        let interval = self.timeout();
        if backed_off(&mut self.stale_answered, to, now, interval) {
            out.push(Action::Resend { to, msg });
        }
    }

    /// After any VIEW-CHANGE: the f+1 rule, NEW-VIEW at the new primary, and
    /// the new-view timer.
    fn view_change_progress(&mut self, now: Time, out: &mut Out) {
        // Liveness rule (§4.5.2): f+1 VIEW-CHANGEs for views above ours mean
        // at least one honest replica wants to move: join the smallest.
        let higher: Vec<u64> = self
            .vc_log
            .newest_each()
            .filter(|vc| vc.new_view > self.view)
            .map(|vc| vc.new_view)
            .collect();
        if higher.len() > self.f() {
            if let Some(&target) = higher.iter().min() {
                self.start_view_change(now, target, out);
                return;
            }
        }
        if self.active {
            return;
        }
        let quorum = self.rules().quorum();
        let for_target = self.vc_log.for_view(self.view).count();
        if for_target < quorum {
            return;
        }
        if self.is_primary() {
            self.send_new_view(now, out);
        } else if !self.new_view_timer {
            // §4.5.2: the timer starts once q VIEW-CHANGEs for v+1 arrived.
            self.new_view_timer = true;
            out.push(Action::SetTimer {
                timer: PbftTimer::NewView,
                after: self.timeout(),
            });
        }
    }

    /// New primary with q VIEW-CHANGEs for its view: V = the first q by
    /// replica id, O = `plan_new_view(V)` signed as pre-prepares of the view.
    fn send_new_view(&mut self, now: Time, out: &mut Out) {
        let view = self.view;
        let quorum = self.rules().quorum();
        let v: Vec<ViewChange> = self.vc_log.for_view(view).take(quorum).cloned().collect();
        let plan = self.rules().plan_new_view(&v);
        let o: Vec<PrePrepare> = plan
            .entries
            .iter()
            .map(|(seq, _, batch)| self.sign_pre_prepare(view, *seq, batch.clone()))
            .collect();
        let sig = self
            .crypto
            .sign(domain::NEW_VIEW, &new_view_payload(view, &v, &o));
        let nv = NewView {
            view,
            view_changes: v,
            pre_prepares: o.clone(),
            sig,
        };
        out.push(Action::Broadcast(PbftMessage::NewView(nv.clone())));
        self.last_new_view = Some(nv);
        self.new_view_at = now;
        self.nv_resent.clear();
        self.enter_view(now, view, plan, o, out);
    }

    /// Safety rule 6 at a backup: NEW-VIEW for v+1 from primary(v+1), signed,
    /// with q valid VIEW-CHANGEs for v+1 from distinct replicas, and an O
    /// equal to the one recomputed from V (same seqs, same digests, each a
    /// pre-prepare of v+1 signed by its primary and bound to its batch).
    fn on_new_view(
        &mut self,
        now: Time,
        from: NodeId,
        nv: NewView,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        if nv.view < self.view || (nv.view == self.view && self.active) {
            return Err(PbftError::StaleView {
                view: nv.view,
                current: self.view,
            });
        }
        // Any replica may relay a NEW-VIEW (retransmission, TOCS 2002 §4.5):
        // it is self-certifying — signed by primary(v), carrying V and O —
        // so it is checked against primary(v), whoever delivered it.
        let _ = from;
        let primary = self.primary(nv.view);
        let rules = self.rules();
        let mut senders = BTreeSet::new();
        let mut sigs = SigBatch::default();
        for vc in &nv.view_changes {
            if vc.new_view != nv.view {
                return Err(PbftError::BadNewView("VIEW-CHANGE for another view"));
            }
            if !senders.insert(vc.replica) {
                return Err(PbftError::BadNewView("two VIEW-CHANGEs from one replica"));
            }
            // A VIEW-CHANGE this replica already verified is not checked twice.
            if self.vc_log.get(vc.replica, vc.new_view) != Some(vc) {
                check_view_change(&rules, vc, &mut sigs)?;
            }
        }
        if senders.len() < rules.quorum() {
            return Err(PbftError::BadNewView("fewer than a quorum of VIEW-CHANGEs"));
        }
        let plan = rules.plan_new_view(&nv.view_changes);
        if nv.pre_prepares.len() != plan.entries.len() {
            return Err(PbftError::NewViewMismatch);
        }
        for (pp, (seq, digest, _)) in nv.pre_prepares.iter().zip(&plan.entries) {
            if pp.view != nv.view || pp.seq != *seq || pp.digest != *digest {
                return Err(PbftError::NewViewMismatch);
            }
            check_batch(pp, rules.max_batch)?;
            push_pre_prepare(&rules, pp, &mut sigs);
        }
        sigs.push(
            primary,
            domain::NEW_VIEW,
            new_view_payload(nv.view, &nv.view_changes, &nv.pre_prepares),
            nv.sig,
        );
        sigs.verify(self.crypto.as_ref(), &mut self.verified, "new-view")?;
        if self.view < nv.view || self.active {
            self.leave_view(now, out);
        }
        for vc in &nv.view_changes {
            self.vc_log.insert(self.id, vc.clone());
        }
        let pre_prepares = nv.pre_prepares.clone();
        let view = nv.view;
        self.last_new_view = Some(nv);
        self.new_view_at = now;
        self.nv_resent.clear();
        self.enter_view(now, view, plan, pre_prepares, out);
        Ok(())
    }

    /// Enters view `view` with O: adopts min-s as stable checkpoint if it has
    /// reached it, accepts every pre-prepare of O (multicasting PREPARE at a
    /// backup, also for seqs it already executed, so others can complete), and
    /// replays messages that arrived early for this view.
    fn enter_view(
        &mut self,
        now: Time,
        view: u64,
        plan: NewViewPlan,
        o: Vec<PrePrepare>,
        out: &mut Out,
    ) {
        self.view = view;
        self.active = true;
        self.view_changes_done += 1;
        for (timer, armed) in [
            (PbftTimer::NewView, &mut self.new_view_timer),
            (PbftTimer::Resend, &mut self.resend_timer),
        ] {
            if *armed {
                *armed = false;
                out.push(Action::CancelTimer(timer));
            }
        }
        if plan.min_s > self.low {
            if self.last_executed >= plan.min_s
                && self.own_states.get(&plan.min_s) == Some(&plan.stable_state)
            {
                self.advance_low(plan.min_s, plan.stable_state, plan.stable_proof);
            } else if self.last_executed < plan.min_s {
                self.note_behind(plan.min_s, plan.stable_proof, out);
            }
        }
        self.vc_seen_in_view = self.vc_log.for_view(view).map(|vc| vc.replica).collect();
        self.vc_log.drop_below(self.id, view.saturating_add(1));
        self.vc_answered.clear();
        self.stale_answered.clear();
        let primary = self.is_primary();
        for pp in o {
            if self.in_window(pp.seq).is_err() {
                continue;
            }
            if primary && pp.seq > self.last_executed {
                self.reproposed.extend(pp.batch.iter().map(|r| r.id));
            }
            self.accept_pre_prepare(pp, out);
        }
        self.next_seq = plan
            .max_s
            .max(self.low)
            .max(self.last_executed)
            .saturating_add(1);
        self.replay_future(now, out);
    }

    // ----- messages for views not yet entered -------------------------------

    fn buffer_future(
        &mut self,
        now: Time,
        from: NodeId,
        view: u64,
        msg: PbftMessage,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        let quota = self.future_quota();
        let queue = self.future.entry(from).or_default();
        if queue.len() >= quota {
            return Err(PbftError::FutureBufferFull(from));
        }
        queue.push_back(msg);
        let top = self.future_top.entry(from).or_default();
        *top = (*top).max(view);
        self.rejoin_rule(now, out);
        Ok(())
    }

    /// Liveness after a missed NEW-VIEW (crash, loss): f+1 replicas already
    /// sending messages of a later view w mean at least one honest replica
    /// entered w. Ask to join it: a VIEW-CHANGE for w — broadcast if not yet
    /// changing to w, otherwise re-sent once to primary(w) — which answers a
    /// late VIEW-CHANGE with its NEW-VIEW ([`Pbft::resend_new_view`]).
    /// Sending a VIEW-CHANGE is always safe; this only restores liveness.
    fn rejoin_rule(&mut self, now: Time, out: &mut Out) {
        let mut tops: Vec<u64> = self.future_top.values().copied().collect();
        tops.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&target) = tops.get(self.f()) else {
            return;
        };
        if target > self.view {
            self.start_view_change(now, target, out);
        } else if target == self.view && !self.active && self.vc_resent != Some(target) {
            let mine = self.vc_log.get(self.id, target);
            if let Some(vc) = mine.cloned() {
                self.vc_resent = Some(target);
                out.push(Action::Resend {
                    to: self.primary(target),
                    msg: PbftMessage::ViewChange(vc),
                });
            }
        }
    }

    /// In the current view: re-sends its NEW-VIEW (sent as primary, or
    /// accepted as backup, and relayed: it is self-certifying) to a replica
    /// whose VIEW-CHANGE shows it missed it (it asks), rate limited per
    /// replica by [`backed_off`]: the re-sent NEW-VIEW may itself be lost (to
    /// a partition that has not healed yet), and the replica's next
    /// VIEW-CHANGE re-send must get another (regression test:
    /// `lost_new_view_resend_is_resent_after_the_heal`), but no replica can
    /// draw more than logarithmically many per view.
    fn resend_new_view(&mut self, now: Time, to: NodeId, out: &mut Out) {
        let Some(nv) = self
            .last_new_view
            .as_ref()
            .filter(|nv| nv.view == self.view && self.active)
        else {
            return;
        };
        let interval = self.timeout();
        // Grace at a backup: an ask within one timeout of the NEW-VIEW
        // most likely crossed it in flight (a replica re-multicasts its
        // VIEW-CHANGE while the NEW-VIEW is on its way or being verified),
        // and the primary answers it anyway; one that really missed it asks
        // again a timeout later, and then every replica relays.
        if !self.is_primary() && now < self.new_view_at.saturating_add(interval) {
            return;
        }
        if backed_off(&mut self.nv_resent, to, now, interval) {
            out.push(Action::Resend {
                to,
                msg: PbftMessage::NewView(nv.clone()),
            });
        }
    }

    fn drop_future_below(&mut self, view: u64) {
        for queue in self.future.values_mut() {
            queue.retain(|m| m.normal_case_view().is_some_and(|v| v >= view));
        }
        self.future.retain(|_, q| !q.is_empty());
        self.future_top = self
            .future
            .iter()
            .filter_map(|(&id, q)| {
                q.iter()
                    .filter_map(PbftMessage::normal_case_view)
                    .max()
                    .map(|v| (id, v))
            })
            .collect();
    }

    /// Delivers buffered messages of the view just entered, in arrival order
    /// per sender (senders in id order). Their rejections are not counted:
    /// the node only counts the input being handled.
    fn replay_future(&mut self, now: Time, out: &mut Out) {
        self.drop_future_below(self.view);
        let view = self.view;
        let mut ready = Vec::new();
        for (&from, queue) in self.future.iter_mut() {
            let (now_due, later): (VecDeque<_>, VecDeque<_>) = queue
                .drain(..)
                .partition(|m| m.normal_case_view() == Some(view));
            *queue = later;
            ready.extend(now_due.into_iter().map(|m| (from, m)));
        }
        self.drop_future_below(view);
        for (from, msg) in ready {
            let _ = self.on_message(now, from, msg, out);
        }
    }

    // ----- dispatch ---------------------------------------------------------

    fn on_message(
        &mut self,
        now: Time,
        from: NodeId,
        msg: PbftMessage,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        if let Some(view) = msg.normal_case_view() {
            if view < self.view {
                self.answer_stale(now, from, out);
                return Err(PbftError::StaleView {
                    view,
                    current: self.view,
                });
            }
            if view > self.view || !self.active {
                // Early for a view not yet entered (its NEW-VIEW may still be
                // in flight): keep it, within the sender's quota.
                return self.buffer_future(now, from, view, msg, out);
            }
        }
        match msg {
            PbftMessage::PrePrepare(pp) => self.on_pre_prepare(from, pp, out),
            PbftMessage::Prepare(p) => self.on_prepare(from, p, out),
            PbftMessage::Commit(c) => self.on_commit(from, c, out),
            PbftMessage::Checkpoint(cp) => self.on_checkpoint(from, cp, out),
            PbftMessage::ViewChange(vc) => self.on_view_change(now, from, vc, out),
            PbftMessage::NewView(nv) => self.on_new_view(now, from, nv, out),
            PbftMessage::Fetch(f) => {
                self.on_fetch(from, f, out);
                Ok(())
            }
            PbftMessage::State(st) => self.on_state(st, out),
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
            }
        }
    }

    /// Arms the VIEW-CHANGE retransmission timer (at the current timeout).
    fn arm_resend(&mut self, out: &mut Out) {
        if !self.resend_timer {
            self.resend_timer = true;
            out.push(Action::SetTimer {
                timer: PbftTimer::Resend,
                after: self.timeout(),
            });
        }
    }

    /// After every input: the primary batches; a backup keeps its request
    /// timer running exactly while it waits for a request to execute.
    fn housekeeping(&mut self, now: Time, out: &mut Out) {
        self.propose_ready(now, out);
        self.request_timer_rule(out);
    }

    /// §4.5.2: a backup starts the timer when it waits for a request and the
    /// timer is not running; it stops it when it no longer waits for *that*
    /// request, restarting it for the next waiting one. Timing one request at
    /// a time (not "any progress") is what catches a primary that censors one
    /// client while ordering everybody else's requests.
    fn request_timer_rule(&mut self, out: &mut Out) {
        let waiting = self.active && !self.is_primary() && !self.pool.is_empty();
        let timed_done = self.request_timer.is_some_and(|id| !self.pool.contains(id));
        if waiting && (self.request_timer.is_none() || timed_done) {
            self.request_timer = self.pool.peek(1).next().map(|r| r.id);
            out.push(Action::SetTimer {
                timer: PbftTimer::Request,
                after: self.timeout(),
            });
        } else if !waiting && self.request_timer.take().is_some() {
            out.push(Action::CancelTimer(PbftTimer::Request));
        }
    }

    // ----- introspection (tests, metrics) -----------------------------------

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

/// When a replica was last answered with a retransmission in this view, and
/// how many times so far.
#[derive(Clone, Copy, Debug)]
struct Answered {
    last: Time,
    count: u32,
}

/// Retransmission rate limit, with exponential back-off per requester: true
/// (and records `now`) if `to` was never answered in this view, or its k-th
/// answer (k = 1, 2, …) was at least `interval` · 2^k ago. The maps are
/// cleared when a view is entered, so within one view of length D a replica
/// sends one requester at most 1 + log2(1 + D / interval) answers of each
/// kind, however often it asks: a Byzantine replica asking every 10 ms draws
/// 7 in a 25 s view of 200 ms timeouts, an honest one cut off by a partition
/// still gets an answer within twice the time it was cut off after the heal.
fn backed_off(
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

impl Protocol for Pbft {
    const NAME: &'static str = "pbft";
    type Message = PbftMessage;
    type Timer = PbftTimer;
    type Config = PbftConfig;
    type Error = PbftError;

    fn new(ctx: NodeContext, cfg: &PbftConfig) -> Pbft {
        let n = ctx.committee.n();
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
            low: 0,
            stable_state: GENESIS,
            stable_proof: Vec::new(),
            checkpoints: BTreeMap::new(),
            own_states: BTreeMap::new(),
            last_executed: 0,
            head: GENESIS,
            catch_up: None,
            history: BTreeMap::new(),
            ahead: BTreeMap::new(),
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
