//! HotStuff's view change, the pacemaker: entering views, the view timer,
//! NEW-VIEW messages and the votes they carry. The pacemaker's rules are
//! pure functions in `crate::pacemaker`.

use super::{HotStuff, Out, ViewEntry};
use crate::error::HotStuffError;
use crate::pacemaker::{join_view, timeout_certified};
use crate::rules::verify_qc;
use crate::types::{Message, NewView, Timer};
use bft_core::{Action, NodeId, View};

impl HotStuff {
    /// Moves to `view` (never back). A QC entry resets the backoff; a timeout
    /// entry counts a view change. Old votes/new-views/proposals are dropped
    /// and the view timer restarts.
    pub(super) fn enter_view(&mut self, view: View, entry: ViewEntry, out: &mut Out) {
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
        // Vote rule (Algorithm 4 `onReceiveProposal`; `rules::safe_to_vote`:
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

    pub(super) fn restart_view_timer(&mut self, out: &mut Out) {
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

    pub(super) fn ensure_view_timer(&mut self, out: &mut Out) {
        if !self.view_timer_armed && self.has_work() {
            self.restart_view_timer(out);
        }
    }

    /// The view timer expired with work pending: the view failed for us.
    /// Pacemaker rule 1 ([`crate::pacemaker`]): broadcast NEW-VIEW for it
    /// (again, if we already had) and stay in it with a backed-off timer.
    pub(super) fn on_view_timeout(&mut self, out: &mut Out) {
        self.view_timer_armed = false;
        if !self.has_work() {
            return;
        }
        // Fetches that went unanswered may be retried from now on.
        self.fetching.clear();
        self.fetching_after = None;
        self.time_out_of(self.view, out);
    }

    /// We give up on `view` (≥ ours; above it only on rule 3, joining):
    /// enter it if we are behind, broadcast NEW-VIEW(view, highQC, last
    /// vote) to every replica, count our own, and re-arm the view timer one
    /// backoff step longer so that, still stuck, we send it again (rule 1).
    pub(super) fn time_out_of(&mut self, view: View, out: &mut Out) {
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
    pub(super) fn on_new_view(
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
                self.fetch(from, qc.block, self.committed.height, out);
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
    pub(super) fn new_view_for(&self, view: View) -> NewView {
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
    pub(super) fn collect_carried_vote(
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
}
