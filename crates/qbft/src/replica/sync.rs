//! Catch-up: relaying decided heights to a replica that announces a round
//! change for a height we have already decided.

use super::{Out, Qbft};
use crate::error::QbftError;
use crate::messages::{QbftMessage, RoundChange, SignatureBatch};
use bft_core::{Action, NodeId, Time};

impl Qbft {
    /// Catch-up, outside the Dafny spec (which leaves block sync to the
    /// environment): a peer announcing a round change for a height we have
    /// decided is behind. f+1 designated helpers (the peer's f+1 successors
    /// in id order, so at least one honest) send it the archived heights
    /// from its own on (as many as it buffers), each as one DECIDED message
    /// (the block with its q commit seals, counted as its own kind), which
    /// the peer applies once the seals verify (`Qbft::on_decided`); its
    /// next round change at its new height asks for the next ones.
    ///
    /// Relay rule: once per (height, round) the peer announces, and again
    /// for the same (height, round) once half that round's timeout has
    /// passed — a replica waiting for its round's quorum re-sends the same
    /// ROUND-CHANGE every timeout (`on_round_timeout`), and a relay lost to
    /// a partition must be answered again. So a peer, honest or not, draws
    /// at most one relay per new round it announces and one per half
    /// timeout, and, whatever rounds it announces, at most [`SERVE_BURST`](super::SERVE_BURST)
    /// at once and one per half base round timeout (`serve-limited`).
    /// Never triggered when nobody falls behind, so it adds nothing to
    /// fault-free counts.
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
        let window = announced.0..announced.0.saturating_add(self.cfg.future_height_window);
        if self.archive.range(window.clone()).next().is_none() {
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
        for cert in self.archive.range(window).map(|(_, c)| c) {
            out.push(Action::Resend {
                to: from,
                msg: QbftMessage::Decided(Box::new(cert.clone())),
            });
        }
        Ok(())
    }
}
