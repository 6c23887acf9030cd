//! Catch-up: relaying decided heights to a replica that announces a round
//! change for a height we have already decided, and snapshots for one
//! further behind than the archive (`bft_core::snapshot`).

use super::{ChainTip, Out, Qbft, state::Instance};
use crate::error::QbftError;
use crate::messages::{
    CommitCertificate, QbftMessage, RELAY_BYTES, RELAY_HEIGHTS, RoundChange, SignatureBatch,
};
use bft_core::{Action, NodeId, Snapshot, Time};

impl Qbft {
    /// Catch-up, outside the Dafny spec (which leaves block sync to the
    /// environment): a peer announcing a round change for a height we have
    /// decided is behind. f+1 designated helpers (the peer's f+1 successors
    /// in id order, so at least one honest) send it the archived heights
    /// from its own on in one DECIDED message (each block with its q commit
    /// seals; counted as its own kind): all of the archive above it, up to
    /// [`RELAY_BYTES`] of requests, which the peer applies in order as the
    /// seals verify (`Qbft::on_decided`); its next round change at its new
    /// height asks for the next ones.
    ///
    /// Relay rule: once per (height, round) the peer announces, and again
    /// for the same (height, round) once half that round's timeout has
    /// passed — a replica waiting for its round's quorum re-sends the same
    /// ROUND-CHANGE every timeout (`on_round_timeout`) and, behind f+1
    /// peers, once per relay (`note_ahead`), and a relay lost to
    /// a partition must be answered again. So a peer, honest or not, draws
    /// at most one relay per new round it announces and one per half
    /// timeout, and, whatever rounds it announces, at most [`SERVE_BURST`](super::SERVE_BURST)
    /// at once and one per half base round timeout (`serve-limited`).
    /// Never triggered when nobody falls behind, so it adds nothing to
    /// fault-free counts.
    ///
    /// Beyond-archive rule: a peer whose announced height is below our
    /// archive gets our snapshots in place of DECIDEDs (the heights it
    /// needs are gone here), within the same once-per-round and budget
    /// limits; it then asks every peer and installs one f+1 offer alike
    /// (`Qbft::on_snapshot`).
    pub(super) fn help_lagging_peer(
        &mut self,
        now: Time,
        from: NodeId,
        rc: &RoundChange,
        out: &mut Out,
    ) -> Result<(), QbftError> {
        let n = self.committee.n();
        let distance = (self.id.index() + n - from.index()) % n;
        if distance == 0 || distance > self.weak_quorum {
            return Ok(());
        }
        let announced = (rc.signed.payload.height, rc.signed.payload.round);
        let again_after = self.cfg.timeout_for_round(announced.1) / 2;
        let answered = self.relayed.get(&from).is_some_and(|&(seen, at)| {
            seen > announced || (seen == announced && now < at.saturating_add(again_after))
        });
        if answered {
            return Ok(());
        }
        let beyond_archive = self
            .archive
            .first_key_value()
            .is_some_and(|(&first, _)| first > announced.0);
        if !beyond_archive && self.archive.range(announced.0..).next().is_none() {
            return Ok(()); // nothing archived to give
        }
        if !self.serve.try_take(from, now) {
            return Err(QbftError::ServeLimited(from));
        }
        let mut sigs = SignatureBatch::default();
        sigs.push(&rc.signed);
        if !sigs.verify(self.crypto.as_ref()) {
            return Ok(());
        }
        self.relayed.insert(from, (announced, now));
        if beyond_archive {
            // The heights it needs next are gone from the archive: offer
            // our snapshots instead (it asks the others for theirs).
            let offer = self.snapshots.above(announced.0.saturating_sub(1));
            if !offer.is_empty() {
                out.push(Action::Resend {
                    to: from,
                    msg: QbftMessage::Snapshot(offer),
                });
            }
            return Ok(());
        }
        out.push(Action::Resend {
            to: from,
            msg: QbftMessage::Decided(self.relay_from(announced.0)),
        });
        Ok(())
    }

    /// The archived heights from `height` on, lowest first: at most
    /// [`RELAY_HEIGHTS`], and none after the one that brings the requests'
    /// bytes to [`RELAY_BYTES`].
    fn relay_from(&self, height: u64) -> Vec<CommitCertificate> {
        let mut bytes = 0usize;
        let mut relay = Vec::new();
        for cert in self.archive.range(height..).map(|(_, c)| c) {
            if relay.len() == RELAY_HEIGHTS || bytes >= RELAY_BYTES {
                break;
            }
            bytes = (cert.block.requests.iter())
                .map(bft_core::Request::approx_wire_bytes)
                .fold(bytes, usize::saturating_add);
            relay.push(cert.clone());
        }
        relay
    }
}

impl Qbft {
    /// Behind rule (liveness, outside the Dafny spec like the relay it
    /// asks for): messages from f+1 distinct peers for heights at least two
    /// above ours mean at least one honest replica decided our height and
    /// the next without us. Waiting out our round timer (up to base ·
    /// 2^cap, and a restarted replica may be in a late round) before the
    /// ROUND-CHANGE that earns us a DECIDED relay (`help_lagging_peer`)
    /// only delays the catch-up, so the round times out at once. One height
    /// ahead does not count: that is the ordinary race at a height's end
    /// (the COMMITs deciding ours are in flight while the fastest peers
    /// start the next). Senders are counted as the transport authenticated
    /// them, signatures unchecked: f peers cannot fire it, and an early
    /// round timeout bears on liveness only.
    ///
    /// Once per relay: it fires again only once we are two heights past
    /// the one we asked at (a relay, applied in one piece, moves us that
    /// far; one ordinary decision does not), or when a helper would answer
    /// the same announcement again (half the round's timeout,
    /// `help_lagging_peer`). Asking again while a relay is on its way would
    /// spend the helpers' serve budget on heights it brings.
    pub(super) fn note_ahead(&mut self, now: Time, from: NodeId, height: u64, out: &mut Out) {
        if height < self.inst.height.saturating_add(2) || from == self.id {
            return;
        }
        if self.ahead.height != self.inst.height {
            self.ahead.height = self.inst.height;
            self.ahead.peers.clear();
        }
        self.ahead.peers.insert(from);
        if self.ahead.peers.len() < self.weak_quorum {
            return;
        }
        let again_after = self.cfg.timeout_for_round(self.inst.round) / 2;
        let due = self.ahead.asked.is_none_or(|(asked, at)| {
            self.inst.height >= asked.saturating_add(2) || now >= at.saturating_add(again_after)
        });
        if !due {
            return;
        }
        self.ahead.asked = Some((self.inst.height, now));
        self.round_timer = None; // `settle` arms it afresh
        self.time_out_round(now, out);
    }

    /// Snapshot point (`bft_core::snapshot` rule 1), after each decision.
    pub(super) fn take_snapshot(&mut self) {
        if self.snapshots.due(self.tip.height) {
            self.snapshots.keep(Snapshot {
                slot: self.tip.height,
                block: self.tip.hash,
                tip: self.tip.next_round0_slot,
                executed: self.pool.executed().clone(),
            });
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
    ) -> Result<(), QbftError> {
        if from == self.id {
            return Ok(());
        }
        let offer = (self.snapshots)
            .serve(&mut self.serve, from, slot, now)
            .map_err(|_| QbftError::ServeLimited(from))?;
        if !offer.is_empty() {
            out.push(Action::Resend {
                to: from,
                msg: QbftMessage::Snapshot(offer),
            });
        }
        Ok(())
    }

    /// A peer's snapshots: installed once f+1 members offer the same one
    /// above our tip (`bft_core::snapshot` rule 2); until then, ask every
    /// peer for theirs, at most once per base round timeout.
    pub(super) fn on_snapshot(
        &mut self,
        now: Time,
        from: NodeId,
        offer: Vec<Snapshot<u64>>,
        out: &mut Out,
    ) -> Result<(), QbftError> {
        if from == self.id {
            return Ok(());
        }
        let agreed = self
            .snapshot_votes
            .offered(from, offer, self.tip.height)
            .map_err(QbftError::BadSnapshot)?;
        match agreed.into_iter().next() {
            Some(snapshot) => self.install(now, snapshot, out),
            None => {
                if self.snapshot_votes.ask(now, self.cfg.round_timeout) {
                    out.push(Action::Rebroadcast(QbftMessage::SnapshotRequest {
                        slot: self.tip.height,
                    }));
                }
            }
        }
        Ok(())
    }

    /// Moves to the snapshot's height as if it had decided it (as
    /// [`Self::finalize`] does: the old height's round state is left
    /// behind with it), forgets the archive below it, and tells the
    /// runtime where the ledger resumes. The heights after it come from
    /// the helpers' archive, DECIDED by DECIDED.
    fn install(&mut self, now: Time, snapshot: Snapshot<u64>, out: &mut Out) {
        self.tip = ChainTip {
            height: snapshot.slot,
            hash: snapshot.block,
            next_round0_slot: snapshot.tip,
            committed_at: Some(now),
        };
        self.pool.install_executed(snapshot.executed.clone());
        self.archive.clear();
        self.last_certificate = None;
        self.inst = Instance::new(self.tip.height + 1);
        out.push(Action::InstallSnapshot {
            slot: snapshot.slot,
            block: snapshot.block,
        });
        self.snapshots.keep(snapshot);
    }
}
