//! The view change (§4.4, liveness §4.5.2): leaving a view, VIEW-CHANGE,
//! NEW-VIEW, entering the new view, answering replicas still changing to
//! an older view, and the messages of future views buffered meanwhile.

use super::state::backed_off;
use super::{Out, Pbft, PbftTimer};
use crate::error::PbftError;
use crate::messages::{
    NewView, PbftMessage, PrePrepare, PreparedCert, ViewChange, domain, new_view_payload,
};
use crate::rules::{
    NewViewPlan, ViewChangePlace, check_by_digest, check_sender, check_view_change,
    push_pre_prepare, view_change_place,
};
use crate::verified::SigBatch;
use bft_core::{Action, NodeId, Time, batch_digest};
use std::collections::{BTreeSet, VecDeque};

impl Pbft {
    /// Leaves the current view: stops accepting its normal-case messages,
    /// forgets their votes (certificates stay), and — if this replica was its
    /// primary — puts its unexecuted proposals back in its pool (they came
    /// from there; a backup never restores requests a primary made up).
    pub(super) fn leave_view(&mut self, now: Time, out: &mut Out) {
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
    /// the prepared certificate from the highest view, by digest.
    pub(super) fn start_view_change(&mut self, now: Time, target: u64, out: &mut Out) {
        self.leave_view(now, out);
        self.view = target;
        self.active = false;
        self.failed_views = self.failed_views.saturating_add(1);
        let prepared: Vec<PreparedCert> = self
            .log
            .range(self.low + 1..=self.high())
            .filter_map(|(_, s)| s.cert.as_ref().map(PreparedCert::by_digest))
            .collect();
        let vc = ViewChange {
            new_view: target,
            stable_seq: self.low,
            stable_state: self.stable_state,
            checkpoint_proof: self.stable_proof.clone(),
            prepared,
            replica: self.id,
            sig: bft_core::Signature::default(),
        }
        .signed_by(self.crypto.as_ref());
        out.push(Action::Broadcast(PbftMessage::ViewChange(vc.clone())));
        self.vc_log.insert(self.id, vc);
        self.vc_log.drop_below(self.id, target);
        self.arm_resend(out);
        // Messages buffered for views this replica has now skipped are dead.
        self.drop_future_below(target);
        self.view_change_progress(now, out);
    }

    pub(super) fn on_view_change(
        &mut self,
        now: Time,
        from: NodeId,
        vc: ViewChange,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        check_sender(from, vc.replica)?;
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
        let held = self.vc_log.get(from, vc.new_view).is_some();
        match view_change_place(vc.new_view, self.view, self.active, held)? {
            ViewChangePlace::Late | ViewChangePlace::Duplicate => return Ok(()),
            ViewChangePlace::New => {}
        }
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
    pub(super) fn answer_lagging(&mut self, now: Time, to: NodeId, view: u64, out: &mut Out) {
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
    pub(super) fn answer_stale(&mut self, now: Time, to: NodeId, out: &mut Out) {
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
    pub(super) fn view_change_progress(&mut self, now: Time, out: &mut Out) {
        // Liveness rule (§4.5.2): f+1 VIEW-CHANGEs for views above ours mean
        // at least one honest replica wants to move: join the smallest.
        let higher: Vec<u64> = self
            .vc_log
            .newest_each()
            .filter(|vc| vc.new_view > self.view)
            .map(|vc| vc.new_view)
            .collect();
        if higher.len() > self.f()
            && let Some(&target) = higher.iter().min()
        {
            self.start_view_change(now, target, out);
            return;
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
    /// replica id, O = `plan_new_view(V)` signed as pre-prepares of the
    /// view, by digest.
    pub(super) fn send_new_view(&mut self, now: Time, out: &mut Out) {
        let view = self.view;
        let quorum = self.rules().quorum();
        let v: Vec<ViewChange> = self.vc_log.for_view(view).take(quorum).cloned().collect();
        let plan = self.rules().plan_new_view(&v);
        let o: Vec<PrePrepare> = plan
            .entries
            .iter()
            .map(|&(seq, digest)| {
                PrePrepare::signed_by_digest(self.crypto.as_ref(), view, seq, digest)
            })
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
    /// pre-prepare of v+1 signed by its primary, by digest).
    pub(super) fn on_new_view(
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
        for (pp, (seq, digest)) in nv.pre_prepares.iter().zip(&plan.entries) {
            if pp.view != nv.view || pp.seq != *seq || pp.digest != *digest {
                return Err(PbftError::NewViewMismatch);
            }
            check_by_digest(pp)?;
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
    /// reached it, accepts every pre-prepare of O with the batch it holds
    /// for it ([`Pbft::with_batch`]; multicasting PREPARE at a backup, also
    /// for seqs it already executed, so others can complete), and replays
    /// messages that arrived early for this view.
    pub(super) fn enter_view(
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
            let pp = self.with_batch(pp);
            if primary && pp.seq > self.last_executed {
                self.reproposed.extend(pp.batch.iter().map(|r| r.id()));
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

    /// A pre-prepare of O, named by digest, with its batch if this replica
    /// holds one with that digest for its slot: in its prepared
    /// certificate, the pre-prepares it kept from earlier views and
    /// certificates, or the slot's executed batch. Without, it goes into the log by digest:
    /// the replica votes for it, and executes it once a committed tail
    /// brings the batch ([`Pbft::watch_gap`]).
    fn with_batch(&self, mut pp: PrePrepare) -> PrePrepare {
        if pp.has_batch() {
            return pp;
        }
        let slot = self.log.get(&pp.seq);
        let held = slot
            .and_then(|s| s.cert.as_ref().map(|c| &c.pre_prepare))
            .into_iter()
            .chain(slot.into_iter().flat_map(|s| s.earlier.iter().rev()))
            .find(|h| h.digest == pp.digest && h.has_batch())
            .map(|h| h.batch.clone())
            .or_else(|| {
                self.history
                    .get(&pp.seq)
                    .filter(|b| batch_digest(&b.batch) == pp.digest)
                    .map(|b| b.batch.clone())
            });
        if let Some(batch) = held {
            pp.batch = batch;
        }
        pp
    }

    // ----- messages for views not yet entered -------------------------------

    pub(super) fn buffer_future(
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
    pub(super) fn rejoin_rule(&mut self, now: Time, out: &mut Out) {
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
    pub(super) fn resend_new_view(&mut self, now: Time, to: NodeId, out: &mut Out) {
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

    pub(super) fn drop_future_below(&mut self, view: u64) {
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
    pub(super) fn replay_future(&mut self, now: Time, out: &mut Out) {
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
}

/// The timers of liveness (§4.5.2): the request timer that starts a view
/// change, and the VIEW-CHANGE retransmission.
impl Pbft {
    /// Arms the VIEW-CHANGE retransmission timer (at the current timeout).
    pub(super) fn arm_resend(&mut self, out: &mut Out) {
        if !self.resend_timer {
            self.resend_timer = true;
            out.push(Action::SetTimer {
                timer: PbftTimer::Resend,
                after: self.timeout(),
            });
        }
    }

    /// §4.5.2: a backup starts the timer when it waits for a request and the
    /// timer is not running; it stops it when it no longer waits for *that*
    /// request, restarting it for the next waiting one. Timing one request at
    /// a time (not "any progress") is what catches a primary that censors one
    /// client while ordering everybody else's requests.
    pub(super) fn request_timer_rule(&mut self, out: &mut Out) {
        let waiting = self.active && !self.is_primary() && !self.pool.is_empty();
        let timed_done = self.request_timer.is_some_and(|id| !self.pool.contains(id));
        if waiting && (self.request_timer.is_none() || timed_done) {
            self.request_timer = self.pool.peek(1).next().map(|r| r.id());
            out.push(Action::SetTimer {
                timer: PbftTimer::Request,
                after: self.timeout(),
            });
        } else if !waiting && self.request_timer.take().is_some() {
            out.push(Action::CancelTimer(PbftTimer::Request));
        }
    }
}
