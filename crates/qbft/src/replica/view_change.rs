//! QBFT's view change, the round change (Dafny `UponRoundChange`,
//! `UponRoundTimeout`): collecting ROUND-CHANGEs, the f+1 rule, the round
//! timer and its quorum rule, and the new round's proposer leading it with
//! a justification.

use super::{Out, Qbft, QbftTimer};
use crate::error::QbftError;
use crate::messages::{QbftMessage, RoundChange, RoundChangePayload, SignatureBatch, Signed};
use crate::rules::{check_round_change, latest_is_new};
use bft_core::{Action, Time};

impl Qbft {
    /// Dafny `UponRoundChange` (receipt side). Safety rule 5: a ROUND-CHANGE
    /// is kept only if it checks on its own (`check_round_change`), one per
    /// sender (its latest round); then the f+1 rule and the leader rule run.
    pub(super) fn on_round_change(
        &mut self,
        now: Time,
        rc: RoundChange,
        out: &mut Out,
    ) -> Result<(), QbftError> {
        let (author, round) = (rc.signed.author, rc.signed.payload.round);
        let held = self
            .inst
            .round_changes
            .get(&author)
            .map(|h| (h, h.signed.payload.round));
        if !latest_is_new(&rc, round, author, self.inst.round, held)? {
            return Ok(());
        }
        let prepared_len = rc.prepared_block.as_ref().map_or(0, |b| b.requests.len());
        if prepared_len > self.batch.max_size {
            return Err(QbftError::OversizedBlock {
                len: prepared_len,
                max: self.batch.max_size,
            });
        }
        let mut sigs = SignatureBatch::default();
        check_round_change(self.quorum, &self.tip.hash, &rc, &mut sigs)?;
        if !sigs.verify(self.crypto.as_ref()) {
            return Err(QbftError::BadSignature);
        }
        if let (Some((prepared_round, value)), Some(block)) =
            (rc.signed.payload.prepared(), &rc.prepared_block)
        {
            self.inst.remember_block(prepared_round, value, block);
        }
        self.inst.round_changes.insert(author, rc);
        self.maybe_join_higher_round(now, out);
        if self.round_reached_by_quorum() {
            self.note_round_quorum(out);
        }
        self.maybe_lead_round(now, round, out);
        self.check_decided(now, out);
        Ok(())
    }

    /// Dafny `UponRoundChange`, f+1 branch (Besu `RoundChangeManager`): f+1
    /// validators with round changes for rounds above ours include an honest
    /// one that has moved on, so jump to the smallest of those rounds and
    /// multicast our own ROUND-CHANGE for it. f validators claiming any
    /// round, however high, move nobody (round inflation is ignored).
    pub(super) fn maybe_join_higher_round(&mut self, now: Time, out: &mut Out) {
        let higher: Vec<u64> = self
            .inst
            .round_changes
            .values()
            .map(|rc| rc.signed.payload.round)
            .filter(|&r| r > self.inst.round)
            .collect();
        if higher.len() < self.weak_quorum {
            return;
        }
        if let Some(target) = higher.into_iter().min() {
            self.enter_round(now, target, true, out);
        }
    }

    /// Dafny `UponRoundTimeout`: the round expired without a decision; move
    /// to round + 1 and multicast ROUND-CHANGE with our prepared round/value
    /// — but only out of a round a quorum has reached (round-timer rule,
    /// [`Qbft::note_round_quorum`]). Before that, the replica stays, sends
    /// its ROUND-CHANGE for the round again (one sent during a partition was
    /// lost) and waits another timeout (`settle` re-arms it).
    pub(super) fn on_round_timeout(&mut self, now: Time, out: &mut Out) {
        let armed = self.round_timer.take();
        if armed != Some((self.inst.height, self.inst.round)) {
            return;
        }
        self.time_out_round(now, out);
    }

    /// What a round timeout does, armed or not (`on_round_timeout`, and
    /// the behind rule of `Qbft::note_ahead`).
    pub(super) fn time_out_round(&mut self, now: Time, out: &mut Out) {
        if self.inst.round > 0 && self.inst.round_quorum != Some(self.inst.round) {
            let rc = match self.inst.round_changes.get(&self.id) {
                Some(own) => own.clone(),
                None => self.own_round_change(self.inst.round),
            };
            out.push(Action::Rebroadcast(QbftMessage::RoundChange(Box::new(rc))));
            return;
        }
        let next = self.inst.round.saturating_add(1);
        self.enter_round(now, next, true, out);
    }

    /// Whether q replicas (our own ROUND-CHANGE included) have announced
    /// the current round or a higher one. Lower rounds were pruned on entry,
    /// so every kept ROUND-CHANGE counts.
    pub(super) fn round_reached_by_quorum(&self) -> bool {
        let round = self.inst.round;
        let reached = self
            .inst
            .round_changes
            .values()
            .filter(|rc| rc.signed.payload.round >= round)
            .count();
        reached >= self.quorum.q
    }

    /// Round-timer rule (liveness; outside the Dafny spec, which assumes
    /// timeouts that grow without bound). A round r > 0 lasts
    /// `timeout_for_round(r)` from the moment the replica learns that q
    /// replicas have reached it — q ROUND-CHANGEs for rounds ≥ r, or a
    /// justified PROPOSAL for r — not from the moment it entered; and it is
    /// never left by timeout before that (`on_round_timeout`). As in
    /// Tendermint (Buchman, Kwon, Milosevic 2018, Algorithm 1 lines 34-35
    /// and 47-48: a round's timeouts start on 2f+1 messages of the round), a
    /// replica thus leaves r only after f+1 honest ones reached it, and it
    /// gives them a full timeout together.
    ///
    /// Why: with capped timeouts every round lasts the same, so honest
    /// replicas a round apart keep their phase for ever. Those ahead left
    /// each round moments after the others entered it (or just before), and
    /// f faulty replicas sending their ROUND-CHANGEs only to those ahead
    /// denied the others the f+1 that pulls a replica up
    /// (`maybe_join_higher_round`). Uncapped, the doubling timeouts end such
    /// a phase lock; capped, only this does. A replica's first notice
    /// restarts the timer once per round; the rule adds at most one
    /// message delay to a round all honest replicas enter together, and
    /// nothing to the fault-free case (round 0 is exempt: nobody announces
    /// it).
    pub(super) fn note_round_quorum(&mut self, out: &mut Out) {
        let round = self.inst.round;
        if round == 0 || self.inst.round_quorum == Some(round) {
            return;
        }
        self.inst.round_quorum = Some(round);
        self.round_timer = Some((self.inst.height, round));
        out.push(Action::SetTimer {
            timer: QbftTimer::Round,
            after: self.cfg.timeout_for_round(round),
        });
    }

    /// Moves to `round` (always upward): the accepted proposal and our commit
    /// flag reset, the prepared round/value stays, messages for older rounds
    /// are pruned. With `announce`, multicasts our ROUND-CHANGE for it,
    /// carrying the prepared certificate if we have one.
    pub(super) fn enter_round(&mut self, now: Time, round: u64, announce: bool, out: &mut Out) {
        if round <= self.inst.round {
            return;
        }
        self.inst.round = round;
        self.inst.accepted = None;
        self.inst.sent_commit = false;
        self.view_changes += 1;
        self.inst
            .round_changes
            .retain(|_, rc| rc.signed.payload.round >= round);
        self.inst.prepares.retain(|_, p| p.payload.round >= round);
        if announce {
            let rc = self.own_round_change(round);
            out.push(Action::Broadcast(QbftMessage::RoundChange(Box::new(
                rc.clone(),
            ))));
            self.inst.round_changes.insert(self.id, rc);
        }
        if self.round_reached_by_quorum() {
            self.note_round_quorum(out);
        }
        self.maybe_lead_round(now, round, out);
    }

    pub(super) fn own_round_change(&self, round: u64) -> RoundChange {
        let prepared = self.inst.prepared.as_ref();
        let payload = RoundChangePayload {
            height: self.inst.height,
            round,
            prepared_round: prepared.map(|p| p.round),
            prepared_value: prepared.map(|p| p.digest),
        };
        RoundChange {
            signed: Signed::sign(self.crypto.as_ref(), payload),
            prepared_block: prepared.map(|p| p.block.clone()),
            prepares: prepared.map(|p| p.prepares.clone()).unwrap_or_default(),
        }
    }

    /// Dafny `UponRoundChange`, quorum branch: the proposer of round r ≥ ours
    /// holding q validated ROUND-CHANGEs for exactly (h, r) proposes, with
    /// those round changes as justification. If any is prepared, it
    /// re-proposes the block of the highest prepared round with that round's
    /// q PREPAREs — never its own block; otherwise it proposes a new block.
    pub(super) fn maybe_lead_round(&mut self, now: Time, round: u64, out: &mut Out) {
        if round == 0 || round < self.inst.round || self.proposer_of(round) != self.id {
            return;
        }
        if round == self.inst.round && self.inst.accepted.is_some() {
            return;
        }
        let for_round: Vec<&RoundChange> = self
            .inst
            .round_changes
            .values()
            .filter(|rc| rc.signed.payload.round == round)
            .collect();
        if for_round.len() < self.quorum.q {
            return;
        }
        if round > self.inst.round {
            // enter_round calls back here once `round` is current.
            self.enter_round(now, round, false, out);
            return;
        }
        let highest = for_round
            .iter()
            .filter_map(|rc| rc.signed.payload.prepared_round.map(|pr| (pr, *rc)))
            .max_by_key(|(pr, rc)| (*pr, std::cmp::Reverse(rc.signed.author)))
            .map(|(_, rc)| rc);
        // MUTANT(ignore-highest-prepared): the leader forgets the prepared
        // value and proposes its own new block.
        let highest = highest.filter(|_| !self.quorum.ignores_highest_prepared());
        // The justification: the highest prepared one first (if any), then
        // the others in id order, q in all.
        let mut justification: Vec<Signed<RoundChangePayload>> = Vec::with_capacity(self.quorum.q);
        if let Some(h) = highest {
            justification.push(h.signed.clone());
        }
        for rc in &for_round {
            if justification.len() >= self.quorum.q {
                break;
            }
            if highest.is_some_and(|h| h.signed.author == rc.signed.author) {
                continue;
            }
            justification.push(rc.signed.clone());
        }
        let (block, prepares) = match highest.and_then(|h| {
            h.prepared_block
                .as_ref()
                .map(|b| (b.clone(), h.prepares.clone()))
        }) {
            Some(reproposal) => reproposal,
            None => (self.new_block(), Vec::new()),
        };
        self.propose(now, block, justification, prepares, out);
    }

    /// The round timer runs while there is something to decide: requests
    /// pending, a proposal accepted, or a round change under way, and at
    /// the height a replica restarted at until it hears a peer there. An
    /// idle replica that has not restarted has no timer pending (so a
    /// finished simulation is quiescent).
    pub(super) fn refresh_round_timer(&mut self, out: &mut Out) {
        // Rejoin rule: a replica restarted from its store runs its round
        // timer at the height it restarted at even with nothing to propose,
        // until a peer's message for that height arrives, so that it
        // announces a ROUND-CHANGE, and is relayed what was decided while
        // it was down, even if no request and no message reaches it (its
        // clients may not have reconnected, the cluster may be waiting out
        // a round it should have led). Its cost in a cluster idle at that
        // same height: this replica alone in round 1, announcing it every
        // round-1 timeout until the load resumes.
        let rejoining = self.restarted_at == Some(self.inst.height);
        let active = rejoining
            || !self.pool.is_empty()
            || self.inst.round > 0
            || self.inst.accepted.is_some();
        let want = active.then_some((self.inst.height, self.inst.round));
        if want == self.round_timer {
            return;
        }
        match want {
            Some((_, round)) => out.push(Action::SetTimer {
                timer: QbftTimer::Round,
                after: self.cfg.timeout_for_round(round),
            }),
            None => out.push(Action::CancelTimer(QbftTimer::Round)),
        }
        self.round_timer = want;
    }
}
