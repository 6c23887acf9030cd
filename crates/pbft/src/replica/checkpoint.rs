//! Checkpoints and garbage collection (§4.3): CHECKPOINT messages, stable
//! checkpoints and the low watermark, and noticing that this replica is
//! behind a stable checkpoint.

use super::state::CatchUp;
use super::{Out, Pbft};
use crate::error::PbftError;
use crate::messages::{Checkpoint, PbftMessage, checkpoint_payload, domain};
use crate::rules::{CheckpointPlace, check_checkpoint, stable_proof};
use bft_core::{Action, Digest, NodeId};
use std::collections::BTreeMap;

impl Pbft {
    pub(super) fn send_checkpoint(&mut self, seq: u64, out: &mut Out) {
        let state = self.head;
        let cp = Checkpoint {
            seq,
            state,
            replica: self.id,
            sig: bft_core::Signature::default(),
        }
        .signed_by(self.crypto.as_ref());
        out.push(Action::Broadcast(PbftMessage::Checkpoint(cp.clone())));
        self.own_states.insert(seq, state);
        self.checkpoints.entry(seq).or_default().insert(self.id, cp);
        self.check_stable(seq, out);
    }

    pub(super) fn on_checkpoint(
        &mut self,
        from: NodeId,
        cp: Checkpoint,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        let window = self.watermarks();
        let seen = || {
            self.checkpoints
                .get(&cp.seq)
                .is_some_and(|m| m.contains_key(&cp.replica))
        };
        let place = check_checkpoint(&self.rules(), from, &cp, window, seen)?;
        match place {
            CheckpointPlace::Stable => return Ok(()),
            CheckpointPlace::Ahead => return self.on_checkpoint_ahead(cp, out),
            CheckpointPlace::InWindow => {}
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
    pub(super) fn on_checkpoint_ahead(
        &mut self,
        cp: Checkpoint,
        out: &mut Out,
    ) -> Result<(), PbftError> {
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
    pub(super) fn check_stable(&mut self, seq: u64, out: &mut Out) {
        let rules = self.rules();
        let Some(votes) = self.checkpoints.get(&seq) else {
            return;
        };
        match self.own_states.get(&seq) {
            Some(own) => {
                if let Some(proof) = stable_proof(&rules, own, votes) {
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
    pub(super) fn advance_low(&mut self, seq: u64, state: Digest, proof: Vec<Checkpoint>) {
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
        self.snapshot_stable(seq);
    }

    // ----- state transfer ---------------------------------------------------

    /// f+1 replicas (one of them correct) signed checkpoint `seq` (`proof`),
    /// and this replica has not executed that far: fetch the batches up to it.
    pub(super) fn note_behind(&mut self, seq: u64, proof: Vec<Checkpoint>, out: &mut Out) {
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
}
