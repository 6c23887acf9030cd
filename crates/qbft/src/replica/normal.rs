//! The normal case (Dafny `UponProposal`, `UponPrepare`, `UponCommit`):
//! accept a proposal, PREPARE it, COMMIT on q PREPAREs, decide on q
//! COMMITs; and the round-0 proposer's new block.

use super::state::{Instance, MAX_COMMIT_DIGESTS_PER_ROUND};
use super::{
    ARCHIVE_HEIGHTS, ChainTip, Out, PreparedCertificate, Qbft, QbftTimer, next_round0_slot,
};
use crate::certificate::LedgerCertificate;
use crate::error::QbftError;
use crate::messages::{
    Block, CommitCertificate, CommitPayload, PreparePayload, Proposal, ProposalPayload,
    QbftMessage, RoundChangePayload, SignatureBatch, Signed, signed_commit,
};
use crate::rules::{
    check_extends, check_proposal, check_proposal_justification, check_relay_length, commit_is_new,
    decided, latest_is_new, prepared_certificate,
};
use bft_core::{Action, Decision, Digest, Time};

impl Qbft {
    /// Dafny `UponProposal` / `isValidProposal`. Safety rules 1 and 2: only
    /// proposer(h, r), only a block extending our chain, only a justified
    /// proposal for r > 0, and only one proposal per round — for the current
    /// round if none is accepted yet, or for a higher round (we then move to
    /// it). A validly signed proposal for an older round, or a second one for
    /// this round, is not accepted; only its block is remembered.
    pub(super) fn on_proposal(
        &mut self,
        now: Time,
        p: Proposal,
        out: &mut Out,
    ) -> Result<(), QbftError> {
        let round = p.signed.payload.round;
        let stale = round < self.inst.round;
        let duplicate = round == self.inst.round && self.inst.accepted.is_some();
        let leader = self.proposer_of(round);
        let digest = check_proposal(
            &p,
            leader,
            self.batch.max_size,
            self.inst.height,
            &self.tip.hash,
        )?;
        let mut sigs = SignatureBatch::default();
        sigs.push(&p.signed);
        if stale || duplicate {
            // Not accepted (rule 2: one proposal per round, never an older
            // round), but its block is kept: if q COMMITs seal it, the seals
            // make it final, and we could not finalize a block we never saw.
            if !sigs.verify(self.crypto.as_ref()) {
                return Err(QbftError::BadSignature);
            }
            self.inst.remember_block(round, digest, &p.block);
            self.check_decided(now, out);
            return if duplicate {
                Err(QbftError::DuplicateProposal)
            } else {
                Ok(())
            };
        }
        check_proposal_justification(self.quorum, &p, &digest, leader, &mut sigs)?;
        if !sigs.verify(self.crypto.as_ref()) {
            return Err(QbftError::BadSignature);
        }
        if round > self.inst.round {
            // A justified proposal for a higher round: move there without a
            // ROUND-CHANGE of our own (Besu `handleProposalPayload`).
            self.enter_round(now, round, false, out);
        }
        self.accept(now, digest, &p, out);
        Ok(())
    }

    /// Accepting a proposal: remember it and multicast PREPARE(h, r, digest)
    /// (every validator, proposer included). Our own PREPARE counts at once.
    pub(super) fn accept(&mut self, now: Time, digest: Digest, proposal: &Proposal, out: &mut Out) {
        let block = &proposal.block;
        // Accepted first, so `remember_block` never evicts the block we vote for.
        self.inst.accepted = Some((digest, block.clone()));
        self.inst.remember_block(self.inst.round, digest, block);
        let prepare = Signed::sign(
            self.crypto.as_ref(),
            PreparePayload {
                height: self.inst.height,
                round: self.inst.round,
                digest,
            },
        );
        out.push(Action::Broadcast(QbftMessage::Prepare(prepare.clone())));
        self.inst.prepares.insert(self.id, prepare);
        if self.inst.round > 0 {
            // Its justification holds q ROUND-CHANGEs for this round.
            self.note_round_quorum(out);
        }
        self.check_prepared(now, out);
        self.check_decided(now, out);
    }

    /// Dafny `UponPrepare` (receipt side): a valid PREPARE for this height and
    /// the current or a later round is kept, one per sender (its latest).
    pub(super) fn on_prepare(
        &mut self,
        now: Time,
        p: Signed<PreparePayload>,
        out: &mut Out,
    ) -> Result<(), QbftError> {
        let held = self
            .inst
            .prepares
            .get(&p.author)
            .map(|h| (h, h.payload.round));
        if !latest_is_new(&p, p.payload.round, p.author, self.inst.round, held)? {
            return Ok(());
        }
        let mut sigs = SignatureBatch::default();
        sigs.push(&p);
        if !sigs.verify(self.crypto.as_ref()) {
            return Err(QbftError::BadSignature);
        }
        self.inst.prepares.insert(p.author, p);
        self.check_prepared(now, out);
        Ok(())
    }

    /// Dafny `UponPrepare` (quorum side). Safety rule 3: with q PREPAREs for
    /// exactly (h, r, digest of the accepted proposal), record the prepared
    /// round/value with its certificate and multicast COMMIT with our seal.
    pub(super) fn check_prepared(&mut self, now: Time, out: &mut Out) {
        let Some((digest, block)) = &self.inst.accepted else {
            return;
        };
        if self.inst.sent_commit {
            return;
        }
        let round = self.inst.round;
        let Some(certificate) =
            prepared_certificate(self.quorum.q, round, digest, &self.inst.prepares)
        else {
            return;
        };
        let digest = *digest;
        self.inst.prepared = Some(PreparedCertificate {
            round,
            digest,
            block: block.clone(),
            prepares: certificate,
        });
        self.inst.sent_commit = true;
        let commit = signed_commit(self.crypto.as_ref(), self.inst.height, round, digest);
        out.push(Action::Broadcast(QbftMessage::Commit(commit.clone())));
        self.inst.commits.insert((self.id, round, digest), commit);
        self.check_decided(now, out);
    }

    /// Dafny `UponCommit` (receipt side): a COMMIT with a valid signature and
    /// a valid seal over its digest is kept, per (sender, round, digest).
    /// Commits of earlier rounds of this height count too: a replica that
    /// moved to a later round just before the decision can still finalize.
    /// A second digest from one sender in one round is kept (see
    /// `Instance::commits`); a third is refused as equivocation.
    pub(super) fn on_commit(
        &mut self,
        now: Time,
        c: Signed<CommitPayload>,
        out: &mut Out,
    ) -> Result<(), QbftError> {
        let key = (c.author, c.payload.round, c.payload.digest);
        let same_round = self
            .inst
            .commit_keys_of(c.author)
            .into_iter()
            .filter(|(_, r, _)| *r == c.payload.round)
            .count();
        let held = self.inst.commits.get(&key);
        if !commit_is_new(&c, held, same_round, MAX_COMMIT_DIGESTS_PER_ROUND)? {
            return Ok(());
        }
        let mut sigs = SignatureBatch::default();
        sigs.push(&c);
        sigs.push_seal(&c);
        if !sigs.verify(self.crypto.as_ref()) {
            return Err(QbftError::BadSignature);
        }
        self.inst.commits.insert(key, c);
        self.inst.bound_commits_of(key.0);
        self.check_decided(now, out);
        Ok(())
    }

    /// Safety rule 4 (Dafny `UponCommit`, quorum side): q COMMITs for the same
    /// (h, r, digest) from distinct validators decide the block with that
    /// hash, sealed by their q seals. The block must be known (accepted or
    /// seen in a validated round change); until then we wait.
    pub(super) fn check_decided(&mut self, now: Time, out: &mut Out) {
        let known = |digest: &Digest| self.inst.block(digest).is_some();
        if let Some((round, digest)) = decided(self.quorum.q, &self.inst.commits, known) {
            let commits = self
                .inst
                .commits
                .values()
                .filter(|c| c.payload.round == round && c.payload.digest == digest)
                .cloned()
                .collect();
            self.decide(now, round, digest, commits, out);
        }
    }

    /// The block is final: its q COMMITs become its commit certificate
    /// ([`Self::finalize`]).
    pub(super) fn decide(
        &mut self,
        now: Time,
        round: u64,
        digest: Digest,
        commits: Vec<Signed<CommitPayload>>,
        out: &mut Out,
    ) {
        let Some(known) = self.inst.for_archive(round, &digest).cloned() else {
            return;
        };
        let seals = commits.iter().map(|c| (c.author, c.payload.seal)).collect();
        let cert = CommitCertificate {
            block: known.block,
            digest,
            round,
            seals,
        };
        self.finalize(now, cert, out);
    }

    /// Catch-up (outside the Dafny spec): a helper's relay of consecutive
    /// decided blocks with their commit seals (at most
    /// `rules::check_relay_length`), applied in order from this height on;
    /// blocks below it are skipped (another helper's relay got here first),
    /// and the first block that fails its checks stops the rest and is
    /// counted. Each block is applied only if it
    /// extends the committed chain (`rules::check_extends`) and carries q
    /// distinct valid seals over its hash (`CommitCertificate`): q seals
    /// mean at least q − f honest validators committed it, so by quorum
    /// intersection no other block can be decided at this height. The seals
    /// cover the block's hash only, not the round it was decided in: the
    /// decision reports the certificate's round as the helper states it
    /// (as PBFT's state transfer reports each batch's view), so a Byzantine
    /// helper can misstate that figure, never which block is decided.
    pub(super) fn on_decided(
        &mut self,
        now: Time,
        certs: Vec<CommitCertificate>,
        out: &mut Out,
    ) -> Result<(), QbftError> {
        check_relay_length(certs.len())?;
        for cert in certs {
            if cert.block.height < self.inst.height {
                continue;
            }
            check_extends(&cert.block, self.inst.height, &self.tip.hash)?;
            cert.verify_with_quorum(self.crypto.as_ref(), &self.committee, self.quorum.q)?;
            self.finalize(now, cert, out);
        }
        Ok(())
    }

    /// The block is final: execute its requests (each at most once), emit
    /// the decision, archive its certificate for lagging peers, and start
    /// the next height at round 0.
    pub(super) fn finalize(&mut self, now: Time, cert: CommitCertificate, out: &mut Out) {
        let block = &cert.block;
        let fresh = self.pool.execute(&block.requests);
        out.push(Action::Commit(Decision::executing(
            block.height,
            cert.round,
            cert.digest,
            block.parent,
            &fresh,
            LedgerCertificate::of(&cert).encode(),
        )));
        self.tip = ChainTip {
            height: block.height,
            hash: cert.digest,
            next_round0_slot: next_round0_slot(
                &self.committee,
                self.tip.next_round0_slot,
                block.proposer,
            ),
            committed_at: Some(now),
        };
        self.archive.insert(self.tip.height, cert.clone());
        while self.archive.len() > ARCHIVE_HEIGHTS {
            self.archive.pop_first();
        }
        self.last_certificate = Some(cert);
        self.inst = Instance::new(self.tip.height + 1);
        self.take_snapshot();
    }

    /// Round 0: the proposer of (h, 0) proposes a new block once a batch is
    /// cut — `max_size` requests, or the oldest has waited `max_delay` — and
    /// `block_period` has passed since the last commit. Nothing pending:
    /// nothing proposed (no empty blocks while idle).
    pub(super) fn maybe_propose_new_block(&mut self, now: Time, out: &mut Out) {
        if self.inst.round != 0
            || self.inst.accepted.is_some()
            || self.pool.is_empty()
            || self.proposer_of(0) != self.id
        {
            return;
        }
        let batch_ready = match self.pool.oldest_arrival() {
            Some(_) if self.pool.len() >= self.batch.max_size => now,
            Some(oldest) => oldest.saturating_add(self.batch.max_delay),
            None => return,
        };
        let period_over = self
            .tip
            .committed_at
            .map_or(Time::ZERO, |t| t.saturating_add(self.cfg.block_period));
        let at = batch_ready.max(period_over);
        if at > now {
            if self.propose_timer != Some(at) {
                self.propose_timer = Some(at);
                out.push(Action::SetTimer {
                    timer: QbftTimer::Propose,
                    after: at.since(now),
                });
            }
            return;
        }
        let block = self.new_block();
        self.propose(now, block, Vec::new(), Vec::new(), out);
    }

    /// A new block on our tip from the oldest pending requests. Requests stay
    /// in the pool until a decision executes them.
    pub(super) fn new_block(&self) -> Block {
        Block {
            height: self.inst.height,
            parent: self.tip.hash,
            proposer: self.id,
            requests: self.pool.peek(self.batch.max_size).cloned().collect(),
        }
    }

    /// Multicasts PROPOSAL for the current round and accepts it ourselves.
    pub(super) fn propose(
        &mut self,
        now: Time,
        block: Block,
        round_changes: Vec<Signed<RoundChangePayload>>,
        prepares: Vec<Signed<PreparePayload>>,
        out: &mut Out,
    ) {
        let digest = block.hash();
        let signed = Signed::sign(
            self.crypto.as_ref(),
            ProposalPayload {
                height: self.inst.height,
                round: self.inst.round,
                digest,
            },
        );
        let proposal = Proposal {
            signed,
            block,
            round_changes,
            prepares,
        };
        out.push(Action::Broadcast(QbftMessage::Proposal(Box::new(
            proposal.clone(),
        ))));
        self.accept(now, digest, &proposal, out);
    }
}
