//! State transfer (§5.3.2, simplified): fetching the batches between our
//! last executed sequence number and a stable checkpoint we have proof of,
//! serving such fetches, and applying what arrives; snapshots for a replica
//! further behind than its peers' history (`bft_core::snapshot`).

use super::{Out, Pbft, PbftTimer};
use crate::certificate::LedgerCertificate;
use crate::error::PbftError;
use crate::messages::{
    CommittedBatch, ExecutedBatch, Fetch, PbftMessage, PrePrepare, StableProof, StateTransfer,
    domain, vote_payload,
};
use crate::rules::{check_checkpoint_proof, check_state_transfer};
use crate::verified::SigBatch;
use bft_core::{Action, Digest, NodeId, Snapshot, Time, batch_digest};
use bytes::Bytes;
use std::collections::BTreeSet;

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
    /// replica's stable checkpoint, with its proof — if it still has them
    /// and they are at most [`TRANSFER_BYTES`] (else its snapshots), and if the peer's serve budget allows ([`SERVE_BURST`](super::SERVE_BURST)
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
        if fetch.from_seq == 0 {
            return Ok(()); // slot 0 is genesis: nothing to give
        }
        if fetch.from_seq > self.low {
            // At or past our stable checkpoint: only the committed tail.
            if fetch.from_seq > self.last_executed {
                return Ok(());
            }
            if !self.serve.try_take(from, now) {
                return Err(PbftError::ServeLimited(from));
            }
            out.push(Action::Resend {
                to: from,
                msg: PbftMessage::State(StateTransfer {
                    seq: self.low,
                    state: self.stable_state,
                    proof: self.stable_proof.clone(),
                    batches: Vec::new(),
                    committed: self.committed_tail(fetch.from_seq),
                }),
            });
            return Ok(());
        }
        let too_large = || {
            self.history
                .range(fetch.from_seq..=self.low)
                .map(|(_, b)| {
                    b.batch
                        .iter()
                        .map(bft_core::Request::approx_wire_bytes)
                        .sum::<usize>()
                })
                .sum::<usize>()
                > TRANSFER_BYTES
        };
        if !covered || too_large() {
            // Already discarded, or more than one message carries: offer
            // our snapshots instead (the fetcher asks the others for
            // theirs).
            return self.on_snapshot_request(now, from, fetch.from_seq.saturating_sub(1), out);
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
                committed: self.committed_tail(self.low.saturating_add(1)),
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
            // Nothing to learn below; the committed tail may go further.
            return self.apply_committed_tail(st.committed, out);
        }
        let mut sigs = SigBatch::default();
        let digests =
            check_state_transfer(&self.rules(), self.last_executed, self.head, &st, &mut sigs)?;
        sigs.verify(self.crypto.as_ref(), &mut self.verified, "state")?;
        let proof =
            LedgerCertificate::Checkpoint(st.proof.iter().map(|c| (c.replica, c.sig)).collect())
                .encode();
        for (b, d) in st.batches.into_iter().zip(digests) {
            let certificate = if b.seq == st.seq {
                proof.clone()
            } else {
                Bytes::new()
            };
            self.execute(b, d, certificate, out);
        }
        self.own_states.insert(st.seq, st.state);
        self.advance_low(st.seq, st.state, st.proof);
        self.apply_committed_tail(st.committed, out)?;
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

impl Pbft {
    /// Snapshot point (`bft_core::snapshot` rule 1): at every checkpoint
    /// sequence number, once executed, the state is set aside; it becomes
    /// a snapshot when the checkpoint is stable ([`Self::snapshot_stable`]).
    pub(super) fn take_snapshot(&mut self) {
        if self.snapshots.due(self.last_executed) {
            self.pending_snapshots.insert(
                self.last_executed,
                (self.head, self.pool.executed().clone()),
            );
        }
    }

    /// Checkpoint `seq` is stable (`advance_low`): the state set aside at it
    /// becomes a snapshot with the stable proof; anything older goes.
    pub(super) fn snapshot_stable(&mut self, seq: u64) {
        if let Some((head, executed)) = self.pending_snapshots.remove(&seq)
            && head == self.stable_state
        {
            self.snapshots.keep(Snapshot {
                slot: seq,
                block: head,
                tip: StableProof(self.stable_proof.clone()),
                executed,
            });
        }
        self.pending_snapshots = self.pending_snapshots.split_off(&seq.saturating_add(1));
    }

    /// Serves a peer's request for snapshots above its last executed
    /// sequence number `slot`: our kept ones above it, within the peer's
    /// serve budget.
    pub(super) fn on_snapshot_request(
        &mut self,
        now: Time,
        from: NodeId,
        slot: u64,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        if from == self.id {
            return Ok(());
        }
        let offer = (self.snapshots)
            .serve(&mut self.serve, from, slot, now)
            .map_err(|_| PbftError::ServeLimited(from))?;
        if !offer.is_empty() {
            out.push(Action::Resend {
                to: from,
                msg: PbftMessage::Snapshot(offer),
            });
        }
        Ok(())
    }

    /// A peer's snapshots: installed once f+1 members offer the same one
    /// above our last executed sequence number (`bft_core::snapshot` rule
    /// 2); until then, ask every peer for theirs, at most once per view
    /// change timeout (the fetch retry period).
    pub(super) fn on_snapshot(
        &mut self,
        now: Time,
        from: NodeId,
        offer: Vec<Snapshot<StableProof>>,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        if from == self.id {
            return Ok(());
        }
        let agreed = self
            .snapshot_votes
            .offered(from, offer, self.last_executed)
            .map_err(PbftError::BadSnapshot)?;
        if agreed.is_empty() {
            if self.snapshot_votes.ask(now, self.cfg.view_change_timeout) {
                out.push(Action::Rebroadcast(PbftMessage::SnapshotRequest {
                    slot: self.last_executed,
                }));
            }
            return Ok(());
        }
        // Snapshot rule (PBFT): only at a stable checkpoint, so the first
        // copy whose q-proof checks.
        for snapshot in agreed {
            let mut sigs = SigBatch::default();
            let proven = check_checkpoint_proof(
                &self.rules(),
                snapshot.slot,
                &snapshot.block,
                &snapshot.tip.0,
                &mut sigs,
            )
            .and_then(|()| sigs.verify(self.crypto.as_ref(), &mut self.verified, "snapshot"));
            if proven.is_ok() {
                self.install(from, snapshot, out);
                break;
            }
        }
        Ok(())
    }

    /// Executes up to the snapshot's stable checkpoint at once: its head
    /// and executed requests become ours, and the checkpoint becomes our
    /// low watermark with its proof (`advance_low`: the log, history and
    /// checkpoint states at or below it go, as at any stable checkpoint).
    /// The batches after it come by state transfer from the peers'
    /// history, or, with no checkpoint ahead known, as the last offerer's
    /// committed tail.
    fn install(&mut self, from: NodeId, snapshot: Snapshot<StableProof>, out: &mut Out) {
        let seq = snapshot.slot;
        self.last_executed = seq;
        self.head = snapshot.block;
        self.pool.install_executed(snapshot.executed.clone());
        self.history.clear();
        self.next_seq = self.next_seq.max(seq.saturating_add(1));
        self.advance_low(seq, snapshot.block, snapshot.tip.0.clone());
        self.log_epoch = self.log_epoch.wrapping_add(1);
        out.push(Action::InstallSnapshot {
            slot: seq,
            block: snapshot.block,
        });
        self.snapshots.keep(snapshot);
        if self.catch_up.is_some() {
            self.send_fetch(out);
        } else {
            // The slots its peers executed after the snapshot: the last
            // offerer's committed tail.
            out.push(Action::Resend {
                to: from,
                msg: PbftMessage::Fetch(Fetch {
                    from_seq: seq.saturating_add(1),
                }),
            });
        }
        self.execute_ready(out);
    }
}

impl Pbft {
    /// `pp` with its batch: its own, or the one this replica executed at
    /// its slot if that hashes to its digest (a slot committed by digest
    /// and executed from a peer's tail holds its batch only there).
    fn batch_of(&self, pp: &PrePrepare) -> Option<PrePrepare> {
        if pp.has_batch() {
            return Some(pp.clone());
        }
        let executed = self
            .history
            .get(&pp.seq)
            .filter(|b| batch_digest(&b.batch) == pp.digest)?;
        let mut filled = pp.clone();
        filled.batch = executed.batch.clone();
        Some(filled)
    }
}

/// What a committed tail carries at most, in request bytes (payload and
/// a fixed allowance per request for its id and signature): an eighth of
/// the 64 MiB frame ([`bft_core::codec::DEFAULT_MAX_FRAME`]), so that one
/// tail always fits with its COMMITs.
pub const TAIL_BYTES: usize = bft_core::codec::DEFAULT_MAX_FRAME / 8;

/// What the batches of a state transfer carry at most, in request bytes:
/// a quarter of the 64 MiB frame. Beyond it (large batches far behind) the
/// lagging replica is offered snapshots instead: a STATE must reach the
/// proven checkpoint whole, and one that outgrew the frame was never sent
/// (`outbound-too-large`), so the replica never caught up.
pub const TRANSFER_BYTES: usize = bft_core::codec::DEFAULT_MAX_FRAME / 4;

impl Pbft {
    /// This replica's executed slots from `from` (at least its stable
    /// checkpoint + 1) with their commit certificates, in order, up to the
    /// first it no longer holds q matching COMMITs for (a view change
    /// forgets them) or the batch for (in the slot or, executed from a
    /// tail, in its history), and at most [`TAIL_BYTES`] of requests (at
    /// least one slot): the receiver asks again from where it got to.
    fn committed_tail(&self, from: u64) -> Vec<CommittedBatch> {
        let quorum = self.rules().quorum();
        let mut tail = Vec::new();
        let mut bytes = 0usize;
        for seq in from.max(self.low.saturating_add(1))..=self.last_executed {
            if bytes >= TAIL_BYTES {
                break;
            }
            let Some(slot) = self.log.get(&seq) else {
                break;
            };
            let Some(pp) = slot
                .pre_prepare
                .as_ref()
                .filter(|_| slot.committed)
                .and_then(|pp| self.batch_of(pp))
            else {
                break;
            };
            bytes = bytes.saturating_add(
                pp.batch
                    .iter()
                    .map(bft_core::Request::approx_wire_bytes)
                    .sum(),
            );
            let commits: Vec<_> = slot
                .commits
                .values()
                .filter(|c| c.view == pp.view && c.digest == pp.digest)
                .take(quorum)
                .cloned()
                .collect();
            if commits.len() < quorum {
                break;
            }
            tail.push(CommittedBatch {
                pre_prepare: pp,
                commits,
            });
        }
        tail
    }

    /// Tail rule: executes the slots of a state transfer's committed tail
    /// that continue this replica's ledger, each only with q valid COMMITs
    /// from distinct members for its (view, seq, digest) and a batch that
    /// hashes to that digest — a committed-local certificate (§4.2, rule
    /// 4), so no other batch can commit at that seq. Slots already
    /// executed are skipped; a tail that then does not start at the next
    /// slot is ignored.
    fn apply_committed_tail(
        &mut self,
        tail: Vec<CommittedBatch>,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        if tail.len() as u64 > self.cfg.window {
            return Err(PbftError::BadState("committed tail longer than the window"));
        }
        let tail: Vec<CommittedBatch> = tail
            .into_iter()
            .filter(|c| c.pre_prepare.seq > self.last_executed)
            .collect();
        if tail
            .first()
            .is_none_or(|c| c.pre_prepare.seq != self.last_executed.saturating_add(1))
        {
            return Ok(());
        }
        let mut sigs = SigBatch::default();
        let digests = check_committed_tail(&self.rules(), self.last_executed, &tail, &mut sigs)?;
        sigs.verify(self.crypto.as_ref(), &mut self.verified, "committed")?;
        for (c, digest) in tail.into_iter().zip(digests) {
            let pp = c.pre_prepare;
            let seq = pp.seq;
            let certificate = LedgerCertificate::of_commits(pp.digest, c.commits.iter()).encode();
            self.execute(
                ExecutedBatch {
                    seq,
                    view: pp.view,
                    batch: pp.batch,
                },
                digest,
                certificate,
                out,
            );
            if seq.is_multiple_of(self.cfg.checkpoint_interval) {
                self.send_checkpoint(seq, out);
            }
        }
        self.execute_ready(out);
        // A tail cut at its byte budget: the next peer in turn (each has
        // its own serve budget) for the rest, now. Every answer executed
        // at least one certified slot, so this ends.
        if self.has_gap() {
            self.ask_tail(out);
        }
        Ok(())
    }
}

/// Checks a committed tail (see [`Pbft::apply_committed_tail`]) and
/// queues its COMMIT signatures; returns each batch's digest.
fn check_committed_tail(
    rules: &crate::rules::Rules<'_>,
    last_executed: u64,
    tail: &[CommittedBatch],
    sigs: &mut SigBatch,
) -> Result<Vec<Digest>, PbftError> {
    let mut digests = Vec::with_capacity(tail.len());
    for (c, seq) in tail.iter().zip(last_executed.saturating_add(1)..) {
        let pp = &c.pre_prepare;
        let digest = batch_digest(&pp.batch);
        if pp.seq != seq || digest != pp.digest {
            return Err(PbftError::BadState(
                "committed tail does not continue the ledger",
            ));
        }
        let signers: BTreeSet<NodeId> = c.commits.iter().map(|v| v.replica).collect();
        let matching = c
            .commits
            .iter()
            .all(|v| v.view == pp.view && v.seq == seq && v.digest == digest);
        let members = signers.iter().all(|r| r.index() < rules.committee.n());
        if !matching
            || !members
            || signers.len() != c.commits.len()
            || signers.len() < rules.quorum()
        {
            return Err(PbftError::BadState(
                "committed tail without q matching COMMITs",
            ));
        }
        for v in &c.commits {
            sigs.push(
                v.replica,
                domain::COMMIT,
                vote_payload(v.view, v.seq, &v.digest, v.replica),
                v.sig,
            );
        }
        digests.push(digest);
    }
    Ok(digests)
}

impl Pbft {
    /// Gap rule: a replica holding committed slots above one it cannot
    /// execute (it missed that slot's messages, say while it caught up)
    /// waits a fetch timeout, and if the gap is still there asks a peer
    /// for its committed tail ([`Pbft::fetch_tail`]). Without it a replica
    /// that caught up to the last stable checkpoint stayed a few slots
    /// behind for as long as no later checkpoint came (regression test:
    /// `conformance::state_sync`). A next slot committed by digest whose
    /// batch is not here is asked for at once.
    ///
    /// Rejoin rule: a replica restarted from its durable state that has not
    /// executed anything since asks for its first gap at once too. The
    /// slots the cluster committed while it was down are what it is
    /// missing, not a reordering the timer is there to wait out; without
    /// the rule its first commit after a restart waited for the timer or
    /// the next stable checkpoint, whichever came first (regression test:
    /// `replica::normal::a_restarted_replica_asks_for_its_first_gap_at_once`).
    pub(super) fn watch_gap(&mut self, out: &mut Out) {
        if self.catch_up.is_some() || self.fetch_timer || !self.has_gap() {
            return;
        }
        let next = self.last_executed.saturating_add(1);
        // Committed by digest without its batch: nothing else will bring
        // it, so ask now (the timer then retries with the next peer).
        if self.rejoining || self.log.get(&next).is_some_and(|s| s.committed) {
            self.rejoining = false;
            self.ask_tail(out);
        }
        self.tail_gap = Some(next);
        self.fetch_timer = true;
        out.push(Action::SetTimer {
            timer: PbftTimer::Fetch,
            after: self.cfg.view_change_timeout,
        });
    }

    /// The next slot is not committed here and a later one is, or it is
    /// committed by digest without its batch (a NEW-VIEW re-proposed a
    /// batch this replica never received).
    fn has_gap(&self) -> bool {
        let next = self.last_executed.saturating_add(1);
        match self.log.get(&next) {
            Some(s) if s.committed => !s.pre_prepare.as_ref().is_some_and(PrePrepare::has_batch),
            _ => self
                .log
                .range(next.saturating_add(1)..)
                .any(|(_, s)| s.committed),
        }
    }

    /// On the fetch timer: the gap it was armed for is still there, so ask
    /// the next peer in turn for the slots from it on.
    pub(super) fn fetch_tail(&mut self, out: &mut Out) {
        let next = self.last_executed.saturating_add(1);
        if self.catch_up.is_some() || self.tail_gap.take() != Some(next) || !self.has_gap() {
            return;
        }
        self.ask_tail(out);
    }

    /// Follow rule: a replica still changing view when it re-sends its
    /// VIEW-CHANGE asks the next peer in turn for its committed tail too.
    /// A replica that went into a view change alone (cut off, or
    /// restarted) refuses the others' messages of the view they stayed in
    /// as stale, and until the cluster changes view it learned of their
    /// decisions only at each stable checkpoint, so it ended a run up to a
    /// checkpoint interval behind (regression test:
    /// `conformance::state_sync`). The tail is certified slot by slot (q
    /// COMMITs), so executing it takes no part in the view's agreement.
    pub(super) fn follow_committed(&mut self, out: &mut Out) {
        if self.catch_up.is_none() {
            self.ask_tail(out);
        }
    }

    fn ask_tail(&mut self, out: &mut Out) {
        let next = self.last_executed.saturating_add(1);
        let n = self.committee.n();
        self.tails_asked = self.tails_asked.wrapping_add(1);
        let to = NodeId(((self.id.index() + 1 + self.tails_asked % (n - 1).max(1)) % n) as u16);
        out.push(Action::Resend {
            to,
            msg: PbftMessage::Fetch(Fetch { from_seq: next }),
        });
    }
}
