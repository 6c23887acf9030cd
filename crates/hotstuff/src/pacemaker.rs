//! The pacemaker's view-synchronisation rules, as pure functions over the
//! NEW-VIEWs a replica has received ([`Timeouts`]).
//!
//! Chained HotStuff (Algorithm 4) leaves view synchronisation to a
//! pacemaker. The paper's sketch (a replica whose timer expires enters the
//! next view and sends NEW-VIEW to its leader) relies on timers that double
//! without bound until all honest replicas overlap in one view. With a
//! capped timer it does not: after a partition, two groups of honest
//! replicas a few views apart time out in step forever, and a Byzantine
//! replica that withholds or mislabels its NEW-VIEWs denies either group the
//! n−f it needs (regression test
//! `healed_partition_with_a_mislabelling_leader_resynchronises_views`). The
//! rules below follow the timeout-certificate
//! pacemaker of LibraBFT/DiemBFT (Baudet et al., "State Machine Replication
//! in the Libra Blockchain", §4.2 and §5, "Pacemaker") and Jolteon (Gelashvili
//! et al., FC 2022, §3 "view synchronization"):
//!
//! 1. **Local timeout** ([`crate::HotStuff`]'s view timer): a replica whose
//!    timer for view v expires broadcasts NEW-VIEW(v, highQC, last vote) to
//!    every replica and *stays in v*; each further expiry in v (backed off)
//!    sends it again, so NEW-VIEWs lost to a partition are replaced after the
//!    heal. A replica never leaves a view on its own timer.
//! 2. **Timeout certificate** ([`timeout_certified`]): n−f NEW-VIEW(v) from
//!    distinct senders (its own included) move a replica to v+1; at least
//!    f+1 of them are honest replicas that gave up on v.
//! 3. **Joining** ([`join_view`], Bracha-style amplification as in
//!    LibraBFT's "f+1 timeouts for a higher round"): if f+1 distinct senders
//!    have each sent a NEW-VIEW for a view ≥ w (w the (f+1)-th highest of
//!    their highest NEW-VIEW views), at least one honest replica gave up on
//!    a view ≥ w, so the replica times out of w at once (entering w first if
//!    it is behind). f Byzantine senders alone move no one, and no one is
//!    moved beyond a view some honest replica reached.
//! 4. **QC-driven**: a verified QC(v) from anywhere (a proposal, a NEW-VIEW)
//!    moves a replica to v+1, as before.
//! 5. **Answering a stuck replica** ([`Timeouts::answer`]): a replica that
//!    receives a NEW-VIEW(u) its sender had already sent (a re-send, so the
//!    sender is still stuck in u) while itself past u answers it once per
//!    view it is in with its own NEW-VIEW(view − 1, highQC). This stands in
//!    for the transferable timeout certificate of LibraBFT/DiemBFT, which
//!    needs signed timeouts: a replica that left u on n−f NEW-VIEWs of which
//!    the stuck one missed some (sent before a heal) would otherwise wait
//!    alone in u+1 while the others wait in u (regression test
//!    `replicas_stuck_a_view_behind_are_answered`). A first
//!    NEW-VIEW is never answered, so an ordinary view change costs nothing
//!    more; a Byzantine sender gets at most one answer per view we enter.
//!
//! 6. **Waiting for a lost QC** ([`rebuild_pending`]): a NEW-VIEW carries
//!    its sender's last vote (see [`crate::NewView`]) so that the leader of
//!    v+1 can rebuild a QC whose own next leader was faulty. It forms only
//!    from n−f such votes, so when the n−f NEW-VIEWs that complete the
//!    timeout certificate include a faulty replica's (without its vote, or
//!    with a bad one), the leader waits up to `rebuild_wait` for the
//!    NEW-VIEWs still missing before it proposes on an older QC. Without
//!    this, a favoured faulty leader after the only run of three honest
//!    views in the rotation won the race every rotation (regression test
//!    `leader_waits_for_new_views_that_rebuild_a_lost_qc`).
//!
//! Why this is live after the heal: an honest replica is in view v only if
//! it saw QC(v−1), or n−f NEW-VIEW(v−1) (rule 2, so f+1 honest replicas gave
//! up on v−1 and keep re-sending that until they move), or f+1 NEW-VIEWs for
//! ≥ v (rule 3). So the honest replicas furthest ahead either carry a QC
//! that pulls the others up (rule 4) or are f+1 replicas whose re-sent
//! NEW-VIEWs do (rule 3); within one capped timeout after the heal every
//! honest replica is in the same view, and from then on all of them leave a
//! failed view together (rule 2 with rule 3).
//!
//! Cost: a failed view costs each live replica one broadcast, (n−1)
//! NEW-VIEWs, so O(n²) messages per view change where the paper's sketch
//! sends O(n); the fault-free case sends no NEW-VIEW and is unchanged. (A
//! linear view synchroniser, e.g. Naor and Keidar's or Cogsworth, would keep
//! O(n) in the common case at the cost of a relay protocol of its own.)

use bft_core::{NodeId, View};
use std::collections::{BTreeMap, BTreeSet};

/// The NEW-VIEWs a replica holds: who sent one for each recent view, and
/// the highest view each sender has sent one for.
///
/// Memory is bounded whatever peers send: the per-view sets only for views
/// in the window the caller gives to [`Timeouts::record`], and one view per
/// committee member for the highest.
#[derive(Clone, Debug)]
pub struct Timeouts {
    by_view: BTreeMap<View, BTreeSet<NodeId>>,
    /// Indexed by sender id; `View::ZERO` for a sender we never heard from.
    highest: Vec<View>,
    /// Indexed by sender id: the view we were in when we last answered it
    /// (rule 5).
    answered: Vec<View>,
}

/// What [`Timeouts::record`] did with a NEW-VIEW.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The first NEW-VIEW from this sender for this view.
    New,
    /// The sender's NEW-VIEW for this view was already counted: a re-send
    /// (rule 1) or a replay; it counts once.
    Repeat,
    /// Outside the window of views whose senders are kept; only the
    /// sender's highest view was updated.
    OutsideWindow,
}

impl Timeouts {
    pub fn new(n: usize) -> Timeouts {
        Timeouts {
            by_view: BTreeMap::new(),
            highest: vec![View::ZERO; n],
            answered: vec![View::ZERO; n],
        }
    }

    /// The highest view `from` has sent a NEW-VIEW for (`View::ZERO` if
    /// none, or `from` is not a member).
    pub fn highest_of(&self, from: NodeId) -> View {
        self.highest
            .get(usize::from(from.0))
            .copied()
            .unwrap_or(View::ZERO)
    }

    /// Rule 5: whether to answer `from`'s NEW-VIEW for `sent` with our own
    /// NEW-VIEW(view − 1). Conditions, all required:
    /// - `repeat`: `from` had already sent us a NEW-VIEW for `sent` (the
    ///   caller checks before recording), so its timer fired again in
    ///   `sent`: it is stuck there;
    /// - `sent` < `view`: we are past it, so our NEW-VIEW(view − 1) is
    ///   true and can complete its timeout certificate or pull it up;
    /// - we have not answered `from` while in `view` (at most one answer per
    ///   sender and view: bounded, whatever a Byzantine sender repeats).
    ///
    /// Records the answer when it returns true.
    pub fn answer(&mut self, from: NodeId, sent: View, repeat: bool, view: View) -> bool {
        let Some(last) = self.answered.get_mut(usize::from(from.0)) else {
            return false;
        };
        if !repeat || sent >= view || *last >= view {
            return false;
        }
        *last = view;
        true
    }

    /// Counts `from`'s NEW-VIEW for `view`: the sender's highest view always
    /// (one entry per member, any view), the per-view set only for a view in
    /// `window` (inclusive). A sender outside the committee is ignored.
    pub fn record(&mut self, from: NodeId, view: View, window: (View, View)) -> Recorded {
        let Some(highest) = self.highest.get_mut(usize::from(from.0)) else {
            return Recorded::OutsideWindow;
        };
        *highest = (*highest).max(view);
        if view < window.0 || view > window.1 {
            return Recorded::OutsideWindow;
        }
        if self.by_view.entry(view).or_default().insert(from) {
            Recorded::New
        } else {
            Recorded::Repeat
        }
    }

    /// Whether `from`'s NEW-VIEW for `view` is counted (in the window).
    pub fn has(&self, from: NodeId, view: View) -> bool {
        self.by_view
            .get(&view)
            .is_some_and(|senders| senders.contains(&from))
    }

    /// Distinct senders of a NEW-VIEW for `view`.
    pub fn count(&self, view: View) -> usize {
        self.by_view.get(&view).map_or(0, BTreeSet::len)
    }

    /// Forgets the senders of views below `view` (their highest stay).
    pub fn prune_below(&mut self, view: View) {
        self.by_view = self.by_view.split_off(&view);
    }

    /// Entries held, for the memory bound in `Status::retained`.
    pub fn len(&self) -> usize {
        self.by_view.values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_view.is_empty()
    }

    /// The `k`-th highest of the senders' highest NEW-VIEW views (k ≥ 1),
    /// `View::ZERO` if fewer than k senders were heard from.
    pub fn kth_highest(&self, k: usize) -> View {
        let mut views: Vec<View> = self.highest.clone();
        views.sort_unstable_by(|a, b| b.cmp(a));
        k.checked_sub(1)
            .and_then(|i| views.get(i).copied())
            .unwrap_or(View::ZERO)
    }
}

/// Rule 2, timeout certificate: `senders` distinct NEW-VIEW(v) with n−f =
/// `quorum` of them end view v for this replica; it enters v+1.
pub fn timeout_certified(senders: usize, quorum: usize) -> bool {
    senders >= quorum
}

/// Rule 3, joining: the view this replica should time out of now, if any.
///
/// Conditions, all required:
/// - w = the (f+1)-th highest of the senders' highest NEW-VIEW views, so
///   f+1 distinct senders, at least one honest, gave up on a view ≥ w;
/// - w ≥ `view`, the replica's current view (it never goes back);
/// - w > `timed_out`, the highest view it has already timed out of (it
///   broadcasts at most once per view on this rule; re-sends are rule 1's).
pub fn join_view(timeouts: &Timeouts, f: usize, view: View, timed_out: View) -> Option<View> {
    let w = timeouts.kth_highest(f + 1);
    (w >= view && w > timed_out && w > View::ZERO).then_some(w)
}

/// Rule 6, waiting for a lost QC: whether the leader of `view`, entered on
/// a timeout certificate, holds off its proposal. Conditions, all required:
/// - `votes_pending`: it holds votes for a view between its highQC and
///   `view` that have not formed a QC (carried in NEW-VIEWs);
/// - `new_views` < `n`: some replica's NEW-VIEW for `view − 1`, which may
///   carry the missing vote, has not arrived;
/// - `!waited`: its `rebuild_wait` for this view has not run out.
pub fn rebuild_pending(votes_pending: bool, new_views: usize, n: usize, waited: bool) -> bool {
    votes_pending && new_views < n && !waited
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const WINDOW: (View, View) = (View(0), View(20));

    #[test]
    fn a_sender_counts_once_per_view_and_its_highest_view_is_kept() {
        let mut t = Timeouts::new(4);
        assert_eq!(t.record(NodeId(1), View(3), WINDOW), Recorded::New);
        assert_eq!(t.record(NodeId(1), View(3), WINDOW), Recorded::Repeat);
        assert_eq!(t.record(NodeId(2), View(3), WINDOW), Recorded::New);
        assert_eq!(t.count(View(3)), 2);
        assert!(t.has(NodeId(1), View(3)) && !t.has(NodeId(3), View(3)));
        assert_eq!(t.record(NodeId(1), View(2), WINDOW), Recorded::New);
        assert_eq!(t.kth_highest(1), View(3), "highest of node 1 stays 3");
        assert_eq!(t.kth_highest(2), View(3));
        assert_eq!(t.kth_highest(3), View::ZERO);
    }

    #[test]
    fn views_outside_the_window_keep_only_the_senders_highest() {
        let mut t = Timeouts::new(4);
        assert_eq!(
            t.record(NodeId(3), View(1 << 40), WINDOW),
            Recorded::OutsideWindow
        );
        assert_eq!(t.len(), 0);
        assert_eq!(t.kth_highest(1), View(1 << 40));
        assert_eq!(
            t.record(NodeId(9), View(5), WINDOW),
            Recorded::OutsideWindow
        );
        assert_eq!(t.len(), 0, "a sender outside the committee is ignored");
    }

    #[test]
    fn f_senders_move_no_one_and_f_plus_one_pull_up_to_the_lower_of_them() {
        let f = 1;
        let mut t = Timeouts::new(4);
        // One (possibly Byzantine) sender far ahead moves no one.
        t.record(NodeId(3), View(1 << 40), WINDOW);
        assert_eq!(join_view(&t, f, View(2), View(1)), None);
        // A second sender at view 9: f+1 senders gave up on a view ≥ 9.
        t.record(NodeId(0), View(9), WINDOW);
        assert_eq!(join_view(&t, f, View(2), View(1)), Some(View(9)));
        // Already timed out of 9, or already past it: nothing to do.
        assert_eq!(join_view(&t, f, View(9), View(9)), None);
        assert_eq!(join_view(&t, f, View(10), View(9)), None);
    }

    #[test]
    fn only_a_re_sent_new_view_from_behind_is_answered_once_per_view() {
        let mut t = Timeouts::new(4);
        let from = NodeId(1);
        assert!(
            !t.answer(from, View(18), false, View(19)),
            "a first NEW-VIEW"
        );
        assert!(!t.answer(from, View(19), true, View(19)), "not behind us");
        assert!(t.answer(from, View(18), true, View(19)));
        assert!(!t.answer(from, View(18), true, View(19)), "once per view");
        assert!(
            t.answer(from, View(18), true, View(20)),
            "again in the next"
        );
        assert!(
            !t.answer(NodeId(7), View(1), true, View(20)),
            "not a member"
        );
    }

    #[test]
    fn a_leader_waits_for_a_lost_qc_only_while_it_can_still_form() {
        assert!(rebuild_pending(true, 5, 7, false));
        assert!(!rebuild_pending(false, 5, 7, false), "no votes to complete");
        assert!(!rebuild_pending(true, 7, 7, false), "every NEW-VIEW is in");
        assert!(!rebuild_pending(true, 5, 7, true), "the wait ran out");
    }

    #[test]
    fn a_timeout_certificate_needs_n_minus_f_senders() {
        assert!(!timeout_certified(2, 3));
        assert!(timeout_certified(3, 3));
    }

    #[test]
    fn pruning_forgets_the_sets_of_old_views_only() {
        let mut t = Timeouts::new(4);
        t.record(NodeId(0), View(2), WINDOW);
        t.record(NodeId(1), View(5), WINDOW);
        t.prune_below(View(4));
        assert_eq!(t.count(View(2)), 0);
        assert_eq!(t.count(View(5)), 1);
        assert_eq!(t.kth_highest(2), View(2), "highest views survive pruning");
    }
}
