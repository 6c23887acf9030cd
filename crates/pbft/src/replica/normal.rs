//! The normal case (§4.2): requests and batching at the primary,
//! PRE-PREPARE, PREPARE, COMMIT, prepared and committed-local, execution
//! in sequence order.

use super::{Out, Pbft, PbftTimer};
use crate::certificate::LedgerCertificate;
use crate::error::PbftError;
use crate::messages::{
    ExecutedBatch, PbftMessage, PrePrepare, PreparedCert, Vote, domain, pre_prepare_payload,
    vote_payload,
};
use crate::rules::{
    block_hash, check_commit, check_pre_prepare, check_prepare, committed_local,
    prepared_certificate,
};
use bft_core::{Action, Decision, Digest, NodeId, Request, Time};
use bytes::Bytes;

impl Pbft {
    pub(super) fn on_request(&mut self, now: Time, req: Request) {
        self.pool.add(now, req);
    }

    /// Primary, in a view: cut batches while the window has room — a batch at
    /// `max_size` requests, or when the oldest request has waited
    /// `max_delay`, whichever comes first (arming the batch timer otherwise).
    pub(super) fn propose_ready(&mut self, now: Time, out: &mut Out) {
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
                .filter(|r| !self.reproposed.contains(&r.id()))
                .collect();
            if !batch.is_empty() {
                self.propose(batch, out);
            }
        }
    }

    /// Primary: PRE-PREPARE(v, n, d) with the batch, multicast to backups.
    pub(super) fn propose(&mut self, batch: Vec<Request>, out: &mut Out) {
        let seq = self.next_seq;
        self.next_seq = seq.saturating_add(1);
        let pp = self.sign_pre_prepare(self.view, seq, batch);
        out.push(Action::Broadcast(PbftMessage::PrePrepare(pp.clone())));
        self.log.entry(seq).or_default().pre_prepare = Some(pp);
        self.log_epoch += 1;
    }

    // ----- normal case ------------------------------------------------------

    /// Safety rule 1 (§4.2): accept PRE-PREPARE(v, n, d) only in view v, from
    /// and signed by primary(v), with d bound to the batch, h < n <= H, and no
    /// other pre-prepare accepted for (v, n). Then multicast PREPARE.
    pub(super) fn on_pre_prepare(
        &mut self,
        from: NodeId,
        pp: PrePrepare,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        let accepted = self.log.get(&pp.seq).and_then(|s| s.pre_prepare.as_ref());
        check_pre_prepare(&self.rules(), from, &pp, self.watermarks(), accepted)?;
        let primary = self.primary(pp.view);
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
    pub(super) fn accept_pre_prepare(&mut self, pp: PrePrepare, out: &mut Out) {
        let (view, seq, digest) = (pp.view, pp.seq, pp.digest);
        self.log.entry(seq).or_default().pre_prepare = Some(pp);
        self.log_epoch += 1;
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
    pub(super) fn on_prepare(
        &mut self,
        from: NodeId,
        p: Vote,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        let seen = self
            .log
            .get(&p.seq)
            .is_some_and(|s| s.prepares.contains_key(&p.replica));
        check_prepare(&self.rules(), from, &p, self.watermarks(), seen)?;
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
    pub(super) fn on_commit(
        &mut self,
        from: NodeId,
        c: Vote,
        out: &mut Out,
    ) -> Result<(), PbftError> {
        let seen = self
            .log
            .get(&c.seq)
            .is_some_and(|s| s.commits.contains_key(&c.replica));
        check_commit(from, &c, self.watermarks(), seen)?;
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
    pub(super) fn check_prepared(&mut self, seq: u64, out: &mut Out) {
        let Some(slot) = self.log.get(&seq) else {
            return;
        };
        let Some(pp) = slot.pre_prepare.as_ref().filter(|_| !slot.prepared) else {
            return;
        };
        let Some(matching) = prepared_certificate(&self.rules(), pp, &slot.prepares) else {
            return;
        };
        let cert = PreparedCert {
            pre_prepare: pp.clone(),
            prepares: matching,
        };
        let commit = self.sign_vote(domain::COMMIT, pp.view, seq, pp.digest);
        out.push(Action::Broadcast(PbftMessage::Commit(commit.clone())));
        if let Some(slot) = self.log.get_mut(&seq) {
            slot.prepared = true;
            if let Some(replaced) = slot.cert.replace(cert) {
                slot.keep_earlier(replaced.pre_prepare);
            }
            slot.commits.insert(self.id, commit);
        }
        self.log_epoch += 1;
        self.check_committed(seq, out);
    }

    /// Safety rule 4: committed-local(m, v, n, i) = prepared + q (2f+1) COMMITs
    /// for the same (v, n, d) from distinct replicas (possibly its own).
    pub(super) fn check_committed(&mut self, seq: u64, out: &mut Out) {
        let rules = self.rules();
        let Some(slot) = self.log.get(&seq) else {
            return;
        };
        if !slot.prepared || slot.committed {
            return;
        }
        let Some(pp) = slot.pre_prepare.as_ref() else {
            return;
        };
        if !committed_local(&rules, pp, &slot.commits) {
            return;
        }
        if let Some(slot) = self.log.get_mut(&seq) {
            slot.committed = true;
        }
        self.log_epoch += 1;
        self.execute_ready(out);
    }

    /// Executes committed slots in seq order: each extends the hash chain and
    /// executes only the requests not executed before (exactly-once). Every
    /// K-th seq multicasts a CHECKPOINT of the chain head. A slot committed
    /// by digest whose batch is not here waits for it ([`Pbft::watch_gap`]).
    pub(super) fn execute_ready(&mut self, out: &mut Out) {
        loop {
            let seq = self.last_executed + 1;
            let Some(pp) = self
                .log
                .get(&seq)
                .filter(|s| s.committed)
                .and_then(|s| s.pre_prepare.as_ref())
                .filter(|pp| pp.has_batch())
            else {
                return;
            };
            let executed = ExecutedBatch {
                seq,
                view: pp.view,
                batch: pp.batch.clone(),
            };
            let digest = pp.digest;
            let certificate = self.commit_certificate(seq);
            self.execute(executed, digest, certificate, out);
            if seq.is_multiple_of(self.cfg.checkpoint_interval) {
                self.send_checkpoint(seq, out);
            }
        }
    }

    /// The ledger certificate of committed slot `seq`: the quorum of its
    /// COMMITs that match its pre-prepare (`committed_local` held).
    fn commit_certificate(&self, seq: u64) -> Bytes {
        let Some((pp, slot)) = self
            .log
            .get(&seq)
            .and_then(|s| Some((s.pre_prepare.as_ref()?, s)))
        else {
            return Bytes::new();
        };
        let matching = slot
            .commits
            .values()
            .filter(|c| c.view == pp.view && c.digest == pp.digest)
            .take(self.rules().quorum());
        LedgerCertificate::of_commits(pp.digest, matching).encode()
    }

    /// Executes slot `last_executed + 1`: the requests not executed before,
    /// a Commit extending the hash chain with the slot's ledger
    /// `certificate` (`crate::certificate`), and the batch kept for lagging
    /// replicas.
    pub(super) fn execute(
        &mut self,
        executed: ExecutedBatch,
        digest: Digest,
        certificate: Bytes,
        out: &mut Out,
    ) {
        self.rejoining = false;
        for r in &executed.batch {
            self.reproposed.remove(&r.id());
        }
        let block = block_hash(&self.head, executed.seq, &digest);
        let fresh = self.pool.execute(&executed.batch);
        if !fresh.is_empty() {
            self.failed_views = 0;
        }
        out.push(Action::Commit(Decision::executing(
            executed.seq,
            executed.view,
            block,
            self.head,
            &fresh,
            certificate,
        )));
        self.head = block;
        self.last_executed = executed.seq;
        self.history.insert(executed.seq, executed);
        self.take_snapshot();
    }
}
