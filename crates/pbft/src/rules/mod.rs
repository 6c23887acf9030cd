//! PBFT's safety rules as pure functions (TOCS 2002): the view gate,
//! acceptance of PRE-PREPARE, PREPARE and COMMIT, the watermarks, prepared
//! and committed-local (§4.2, §4.3); the certificates carried inside
//! CHECKPOINT proofs, VIEW-CHANGE and NEW-VIEW, the computation of O (§4.4,
//! in `view_change.rs`),
//! and what a state transfer must prove (§5.3.2).
//! Backups and the new primary call the same `plan_new_view`, which is what
//! lets a backup recompute O and reject a NEW-VIEW whose O differs. Each
//! function returns the `PbftError` named after the rule that failed; the
//! replica (`crate::replica`) checks signatures after the cheap rules and
//! applies the result.
//!
//! Signature checks are collected into one [`SigBatch`](crate::verified::SigBatch) and verified with a
//! single `verify_batch` call: a VIEW-CHANGE carries up to (2f+1) + L(2f+1)
//! signatures.

mod view_change;

pub use view_change::{
    NewViewPlan, ViewChangePlace, check_by_digest, check_view_change, plan_new_view,
    push_pre_prepare, view_change_place,
};
#[cfg(feature = "mutants")]
use view_change::{Prefer, plan_new_view_by};

use crate::error::PbftError;
use crate::messages::{
    Checkpoint, PrePrepare, StateTransfer, ViewChange, Vote, checkpoint_payload, domain,
};
use crate::verified::SigBatch;
use bft_core::{Committee, Digest, GENESIS, NodeId, batch_digest};
use std::collections::{BTreeMap, BTreeSet};

/// The parameters the checks depend on.
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    pub committee: &'a Committee,
    pub checkpoint_interval: u64,
    pub window: u64,
    pub max_batch: usize,
    /// The planted bug, if any (feature `mutants`).
    #[cfg(feature = "mutants")]
    pub mutant: Option<crate::config::PbftMutant>,
}

impl Rules<'_> {
    pub fn primary(&self, view: u64) -> NodeId {
        self.committee.leader(view)
    }
    /// The PBFT quorum, [`quorum`].
    pub fn quorum(&self) -> usize {
        #[cfg(feature = "mutants")]
        if self.mutant == Some(crate::config::PbftMutant::Quorum2f) {
            // MUTANT(quorum-2f): 2f instead of ⌈(n+f+1)/2⌉.
            return 2 * self.committee.f();
        }
        quorum(self.committee)
    }
    /// O computed from V ([`plan_new_view`]) under these rules.
    pub fn plan_new_view(&self, view_changes: &[ViewChange]) -> NewViewPlan {
        #[cfg(feature = "mutants")]
        if self.mutant == Some(crate::config::PbftMutant::OSetLowestView) {
            return plan_new_view_by(view_changes, Prefer::LowestView);
        }
        plan_new_view(view_changes)
    }
    /// Matching PREPAREs from backups needed to be prepared: quorum − 1 (the
    /// primary's pre-prepare stands for its vote), 2f when n = 3f+1.
    pub fn prepare_quorum(&self) -> usize {
        self.quorum().saturating_sub(1)
    }
}

/// PBFT's quorum: ⌈(n+f+1)/2⌉, which is exactly 2f+1 when n = 3f+1 (the
/// paper's setting). For other n (5, 6, 8, …) a bare 2f+1 is unsafe: two
/// quorums of 2f+1 may then intersect only in Byzantine replicas (the IBFT
/// 1.0 bug); ⌈(n+f+1)/2⌉ makes any two quorums share at least f+1 replicas,
/// one of them honest, and stays ≤ n − f so f silent replicas cannot block
/// progress.
pub fn quorum(committee: &Committee) -> usize {
    (committee.n() + committee.f() + 1).div_ceil(2)
}

/// Digest binding: a pre-prepare's `digest` must be `batch_digest(batch)`,
/// and a batch is at most `max_batch` requests. (Wrong in the wild: digest
/// not bound to the batch.)
pub fn check_batch(pp: &PrePrepare, max_batch: usize) -> Result<(), PbftError> {
    if pp.batch.len() > max_batch {
        return Err(PbftError::BatchTooLarge {
            len: pp.batch.len(),
            max: max_batch,
        });
    }
    if batch_digest(&pp.batch) != pp.digest {
        return Err(PbftError::DigestMismatch);
    }
    Ok(())
}

/// **Sender is signer**: PREPARE, COMMIT, CHECKPOINT and VIEW-CHANGE come
/// from the replica that signed them, never relayed (`sender-mismatch`).
pub fn check_sender(from: NodeId, signer: NodeId) -> Result<(), PbftError> {
    if from == signer {
        Ok(())
    } else {
        Err(PbftError::SenderMismatch { from, signer })
    }
}

/// The sequence numbers a replica accepts: `low < seq ≤ high`, where `low`
/// is its last stable checkpoint h and `high` = h + L.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watermarks {
    pub low: u64,
    pub high: u64,
}

/// **Watermarks** (rule 5, §4.3): a PRE-PREPARE, PREPARE or COMMIT is
/// accepted only for h < n ≤ H, so a faulty primary cannot exhaust the
/// sequence space and the log stays L slots long
/// (`outside-watermarks`).
pub fn check_watermarks(seq: u64, window: Watermarks) -> Result<(), PbftError> {
    if seq > window.low && seq <= window.high {
        Ok(())
    } else {
        Err(PbftError::OutsideWatermarks {
            seq,
            low: window.low,
            high: window.high,
        })
    }
}

/// Where a normal-case message (PRE-PREPARE, PREPARE, COMMIT) of `view`
/// goes at a replica in view `current` (`active`: it has entered it, its
/// NEW-VIEW accepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewGate {
    /// v < current view: rejected (`stale-view`); the sender is behind and
    /// is answered with what lets it catch up.
    Stale,
    /// v > current view, or v = current view not yet entered: kept until
    /// the view starts (its NEW-VIEW may still be in flight), within the
    /// sender's quota.
    Early,
    /// v = current view, entered: checked by the acceptance rules below.
    Current,
}

/// **View gate** (§4.2: "it is in view v"): a replica accepts normal-case
/// messages only for the view it is in. See [`ViewGate`] for the three
/// outcomes.
pub fn view_gate(view: u64, current: u64, active: bool) -> ViewGate {
    if view < current {
        ViewGate::Stale
    } else if view > current || !active {
        ViewGate::Early
    } else {
        ViewGate::Current
    }
}

/// **Pre-prepare acceptance** (rule 1, §4.2), checked in this order: the
/// sender is primary(v) (`not-primary`); h < n ≤ H (`outside-watermarks`);
/// the batch is at most `max_batch` requests and hashes to d
/// ([`check_batch`]); no pre-prepare was accepted for (v, n) before
/// (`duplicate-pre-prepare` for the same digest, `conflicting-pre-prepare`
/// for another). `accepted` is the pre-prepare this replica holds for n in
/// view v. The caller has already checked that the replica is in view v and
/// not changing view (`Pbft::on_message`), and checks the primary's
/// signature after this, so a cheap rule rejects first.
pub fn check_pre_prepare(
    rules: &Rules<'_>,
    from: NodeId,
    pp: &PrePrepare,
    window: Watermarks,
    accepted: Option<&PrePrepare>,
) -> Result<(), PbftError> {
    if from != rules.primary(pp.view) {
        return Err(PbftError::NotPrimary {
            from,
            view: pp.view,
        });
    }
    check_watermarks(pp.seq, window)?;
    check_batch(pp, rules.max_batch)?;
    if let Some(existing) = accepted {
        return Err(if existing.digest == pp.digest {
            PbftError::DuplicatePrePrepare { seq: pp.seq }
        } else {
            PbftError::ConflictingPrePrepare { seq: pp.seq }
        });
    }
    Ok(())
}

/// **Prepares come from backups** (rule 2, §4.2), in this order: the
/// sender signed it (`sender-mismatch`); the signer is not primary(v), whose
/// PRE-PREPARE stands for its vote (`prepare-from-primary`); h < n ≤ H
/// (`outside-watermarks`); it is the signer's first PREPARE for n in this
/// view (`duplicate-prepare`; `seen` says whether one is held). The
/// signature is checked by the caller after this.
pub fn check_prepare(
    rules: &Rules<'_>,
    from: NodeId,
    prepare: &Vote,
    window: Watermarks,
    seen: bool,
) -> Result<(), PbftError> {
    check_sender(from, prepare.replica)?;
    if prepare.replica == rules.primary(prepare.view) {
        return Err(PbftError::PrepareFromPrimary(prepare.replica));
    }
    check_watermarks(prepare.seq, window)?;
    if seen {
        return Err(PbftError::DuplicatePrepare {
            replica: prepare.replica,
            seq: prepare.seq,
        });
    }
    Ok(())
}

/// **Commit acceptance** (§4.2), in this order: the sender signed it
/// (`sender-mismatch`); h < n ≤ H (`outside-watermarks`); it is the
/// signer's first COMMIT for n in this view (`duplicate-commit`; `seen`
/// says whether one is held). The primary's COMMIT counts like any other.
/// The signature is checked by the caller after this.
pub fn check_commit(
    from: NodeId,
    commit: &Vote,
    window: Watermarks,
    seen: bool,
) -> Result<(), PbftError> {
    check_sender(from, commit.replica)?;
    check_watermarks(commit.seq, window)?;
    if seen {
        return Err(PbftError::DuplicateCommit {
            replica: commit.replica,
            seq: commit.seq,
        });
    }
    Ok(())
}

/// **Prepared** (rule 3, §4.2): the pre-prepare and q−1 PREPAREs
/// ([`Rules::prepare_quorum`], 2f when n = 3f+1) from distinct backups that
/// match its view and digest. `prepares` holds at most one PREPARE per
/// replica, none from the primary ([`check_prepare`]). Returns the
/// certificate's PREPAREs (the first q−1 matching, in replica order), or
/// `None` while there are too few.
pub fn prepared_certificate(
    rules: &Rules<'_>,
    pre_prepare: &PrePrepare,
    prepares: &BTreeMap<NodeId, Vote>,
) -> Option<Vec<Vote>> {
    let need = rules.prepare_quorum();
    let matching: Vec<Vote> = prepares
        .values()
        .filter(|p| p.view == pre_prepare.view && p.digest == pre_prepare.digest)
        .take(need)
        .cloned()
        .collect();
    (matching.len() >= need).then_some(matching)
}

/// **Committed-local** (rule 4, §4.2): prepared, and q COMMITs
/// ([`Rules::quorum`], 2f+1 when n = 3f+1) from distinct replicas that
/// match the pre-prepare's view and digest. `commits` holds at most one
/// COMMIT per replica ([`check_commit`]). Execution then goes in sequence
/// order, each request at most once.
pub fn committed_local(
    rules: &Rules<'_>,
    pre_prepare: &PrePrepare,
    commits: &BTreeMap<NodeId, Vote>,
) -> bool {
    let matching = commits
        .values()
        .filter(|c| c.view == pre_prepare.view && c.digest == pre_prepare.digest)
        .count();
    matching >= rules.quorum()
}

/// Where a CHECKPOINT falls relative to the watermarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointPlace {
    /// n ≤ h: a late vote for a checkpoint already stable here; ignored.
    Stable,
    /// h < n ≤ H: counted towards a stable checkpoint.
    InWindow,
    /// n > H: evidence that this replica is behind (kept apart, newest per
    /// sender).
    Ahead,
}

/// **Checkpoint acceptance** (rule 5, §4.3), checked in this order: the
/// sender signed it (`sender-mismatch`); n is a multiple of the checkpoint
/// interval K (`checkpoint-off-interval`); then by place (see
/// [`CheckpointPlace`]); inside the window, it is the sender's first
/// CHECKPOINT for n (`duplicate-checkpoint`; `seen` says whether one is
/// held). The signature is checked by the caller after this.
pub fn check_checkpoint(
    rules: &Rules<'_>,
    from: NodeId,
    checkpoint: &Checkpoint,
    window: Watermarks,
    seen: impl FnOnce() -> bool,
) -> Result<CheckpointPlace, PbftError> {
    check_sender(from, checkpoint.replica)?;
    if !checkpoint.seq.is_multiple_of(rules.checkpoint_interval) {
        return Err(PbftError::CheckpointOffInterval {
            seq: checkpoint.seq,
        });
    }
    if checkpoint.seq <= window.low {
        return Ok(CheckpointPlace::Stable);
    }
    if checkpoint.seq > window.high {
        return Ok(CheckpointPlace::Ahead);
    }
    if seen() {
        return Err(PbftError::DuplicateCheckpoint {
            replica: checkpoint.replica,
            seq: checkpoint.seq,
        });
    }
    Ok(CheckpointPlace::InWindow)
}

/// **Stable checkpoint** (rule 5, §4.3): q CHECKPOINTs for n from distinct
/// replicas ([`Rules::quorum`]) whose state is the one this replica itself
/// reached at n (`own_state`). Returns the proof (the first q matching, in
/// replica order) that moves the low watermark and garbage-collects the log;
/// `None` while there are too few.
pub fn stable_proof(
    rules: &Rules<'_>,
    own_state: &Digest,
    checkpoints: &BTreeMap<NodeId, Checkpoint>,
) -> Option<Vec<Checkpoint>> {
    let quorum = rules.quorum();
    let proof: Vec<Checkpoint> = checkpoints
        .values()
        .filter(|c| c.state == *own_state)
        .take(quorum)
        .cloned()
        .collect();
    (proof.len() >= quorum).then_some(proof)
}

/// A stable-checkpoint proof C for (n, d): n = 0 with the genesis state and no
/// proof, or n a multiple of K with 2f+1 CHECKPOINTs for exactly (n, d) from
/// distinct replicas.
pub fn check_checkpoint_proof(
    rules: &Rules<'_>,
    seq: u64,
    state: &Digest,
    proof: &[Checkpoint],
    sigs: &mut SigBatch,
) -> Result<(), PbftError> {
    if seq == 0 {
        return if proof.is_empty() && *state == GENESIS {
            Ok(())
        } else {
            Err(PbftError::BadCheckpointProof("seq 0 must be genesis"))
        };
    }
    if !seq.is_multiple_of(rules.checkpoint_interval) {
        return Err(PbftError::BadCheckpointProof("seq off the interval"));
    }
    let mut signers = BTreeSet::new();
    for c in proof {
        if c.seq != seq || c.state != *state {
            return Err(PbftError::BadCheckpointProof("checkpoint does not match"));
        }
        if !rules.committee.contains(c.replica) || !signers.insert(c.replica) {
            return Err(PbftError::BadCheckpointProof("unknown or duplicate signer"));
        }
        sigs.push(
            c.replica,
            domain::CHECKPOINT,
            checkpoint_payload(c.seq, &c.state, c.replica),
            c.sig,
        );
    }
    if signers.len() < rules.quorum() {
        return Err(PbftError::BadCheckpointProof(
            "fewer than a quorum of checkpoints",
        ));
    }
    Ok(())
}

/// **State transfer** (§5.3.2, simplified): a STATE message brings the
/// batches from `last_executed` + 1 up to a checkpoint n, with its proof.
/// Checked in this order: the proof is a stable-checkpoint proof for
/// (n, state) ([`check_checkpoint_proof`]: `bad-checkpoint-proof`, its
/// signatures pushed to `sigs`); the batches are exactly last_executed + 1
/// ..= n, in order (`bad-state`); the hash chain from `head` through them
/// reaches the proven state (`bad-state`). Returns each batch's digest. A
/// STATE at or below `last_executed` teaches nothing and is ignored before
/// this check.
pub fn check_state_transfer(
    rules: &Rules<'_>,
    last_executed: u64,
    head: Digest,
    st: &StateTransfer,
    sigs: &mut SigBatch,
) -> Result<Vec<Digest>, PbftError> {
    check_checkpoint_proof(rules, st.seq, &st.state, &st.proof, sigs)?;
    let first = last_executed.saturating_add(1);
    let contiguous = st.batches.len() as u64 == st.seq.saturating_sub(last_executed)
        && st.batches.iter().zip(first..).all(|(b, seq)| b.seq == seq);
    if !contiguous {
        return Err(PbftError::BadState("batches do not continue the ledger"));
    }
    let digests: Vec<Digest> = st.batches.iter().map(|b| batch_digest(&b.batch)).collect();
    let reached = st
        .batches
        .iter()
        .zip(&digests)
        .fold(head, |head, (b, d)| block_hash(&head, b.seq, d));
    if reached != st.state {
        return Err(PbftError::BadState("chain does not reach the proven state"));
    }
    Ok(digests)
}

/// The ledger's hash chain: block = H(parent, seq, batch digest). It is also
/// the state digest a CHECKPOINT carries.
pub fn block_hash(parent: &Digest, seq: u64, digest: &Digest) -> Digest {
    Digest::of(
        "bftbench/pbft/block/v1",
        &[parent.as_bytes(), &seq.to_le_bytes(), digest.as_bytes()],
    )
}
