//! State transfer (§5.3.2, simplified): fetching the batches between our
//! last executed sequence number and a stable checkpoint we have proof of,
//! serving such fetches, and applying what arrives.

use super::{Out, Pbft, PbftTimer};
use crate::error::PbftError;
use crate::messages::{Fetch, PbftMessage, StateTransfer};
use crate::rules::check_state_transfer;
use crate::verified::SigBatch;
use bft_core::{Action, NodeId, Time};

impl Pbft {
    /// Asks the next signer of the proof (at least f+1 of them are honest)
    /// and arms the retry timer.
    pub(super) fn send_fetch(&mut self, out: &mut Out) {
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
    /// replica's stable checkpoint, with its proof — if it still has them,
    /// and if the peer's serve budget allows ([`SERVE_BURST`](super::SERVE_BURST)
    /// at once, then one per fetch timeout; else `serve-limited`).
    pub(super) fn on_fetch(
        &mut self,
        now: Time,
        from: NodeId,
        fetch: Fetch,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        let covered = self
            .history
            .first_key_value()
            .is_some_and(|(&first, _)| first <= fetch.from_seq);
        if self.low == 0 || fetch.from_seq > self.low || !covered {
            return Ok(()); // nothing stable to give, or already discarded
        }
        if !self.serve.try_take(from, now) {
            return Err(PbftError::ServeLimited(from));
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
        Ok(())
    }

    /// Catch-up rule: accept transferred batches only if they continue this
    /// replica's ledger contiguously and re-hash, from its own head, to the
    /// state that q CHECKPOINTs certify — so a Byzantine responder can
    /// delay a replica but never change what it executes.
    pub(super) fn on_state(&mut self, st: StateTransfer, out: &mut Out) -> Result<(), PbftError> {
        if st.seq <= self.last_executed {
            return Ok(()); // stale or unsolicited: nothing to learn
        }
        let mut sigs = SigBatch::default();
        let digests =
            check_state_transfer(&self.rules(), self.last_executed, self.head, &st, &mut sigs)?;
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
}
