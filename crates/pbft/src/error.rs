//! The one error enum of the crate: why a replica rejected an input. The
//! `reason()` labels are stable; the node counts rejections under them.

use bft_core::{NodeId, Rejection};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PbftError {
    #[error("invalid signature ({what})")]
    BadSignature { what: &'static str },
    #[error("sequence number {seq} outside the watermarks ({low}, {high}]")]
    OutsideWatermarks { seq: u64, low: u64, high: u64 },
    #[error("PREPARE from {0}, the primary of its view (the primary sends no PREPARE)")]
    PrepareFromPrimary(NodeId),
    #[error("second PREPARE from {replica} for seq {seq}")]
    DuplicatePrepare { replica: NodeId, seq: u64 },
    #[error("second COMMIT from {replica} for seq {seq}")]
    DuplicateCommit { replica: NodeId, seq: u64 },
    #[error("second CHECKPOINT from {replica} for seq {seq}")]
    DuplicateCheckpoint { replica: NodeId, seq: u64 },
    #[error("PRE-PREPARE for seq {seq} already accepted in this view")]
    DuplicatePrePrepare { seq: u64 },
    #[error("PRE-PREPARE for seq {seq} conflicts with the digest already accepted in this view")]
    ConflictingPrePrepare { seq: u64 },
    #[error("{from} is not the primary of view {view}")]
    NotPrimary { from: NodeId, view: u64 },
    #[error("message signed by {signer} arrived from {from}")]
    SenderMismatch { from: NodeId, signer: NodeId },
    #[error("digest does not bind the batch")]
    DigestMismatch,
    #[error("batch of {len} requests exceeds the maximum of {max}")]
    BatchTooLarge { len: usize, max: usize },
    #[error("message for view {view}, below the current view {current}")]
    StaleView { view: u64, current: u64 },
    #[error("buffer for future-view messages from {0} is full")]
    FutureBufferFull(NodeId),
    #[error("checkpoint seq {seq} is not a multiple of the interval")]
    CheckpointOffInterval { seq: u64 },
    #[error("invalid checkpoint proof: {0}")]
    BadCheckpointProof(&'static str),
    #[error("invalid prepared certificate: {0}")]
    BadPreparedCert(&'static str),
    #[error("invalid VIEW-CHANGE: {0}")]
    BadViewChange(&'static str),
    #[error("invalid NEW-VIEW: {0}")]
    BadNewView(&'static str),
    #[error(
        "a view change names batches by digest, but the pre-prepare for seq {seq} carries its batch"
    )]
    BatchNotByDigest { seq: u64 },
    #[error("NEW-VIEW's O differs from the O recomputed from its V")]
    NewViewMismatch,
    #[error("invalid ledger certificate: {0}")]
    BadCertificate(&'static str),
    #[error("invalid state transfer: {0}")]
    BadState(&'static str),
    #[error("{0} asked for more state transfers than its serve budget allows")]
    ServeLimited(NodeId),
    #[error("snapshot offer refused: {0}")]
    BadSnapshot(bft_core::SnapshotFault),
}

impl Rejection for PbftError {
    fn reason(&self) -> &'static str {
        match self {
            PbftError::BadSignature { .. } => "bad-signature",
            PbftError::OutsideWatermarks { .. } => "outside-watermarks",
            PbftError::PrepareFromPrimary(_) => "prepare-from-primary",
            PbftError::DuplicatePrepare { .. } => "duplicate-prepare",
            PbftError::DuplicateCommit { .. } => "duplicate-commit",
            PbftError::DuplicateCheckpoint { .. } => "duplicate-checkpoint",
            PbftError::DuplicatePrePrepare { .. } => "duplicate-pre-prepare",
            PbftError::ConflictingPrePrepare { .. } => "conflicting-pre-prepare",
            PbftError::NotPrimary { .. } => "not-primary",
            PbftError::SenderMismatch { .. } => "sender-mismatch",
            PbftError::DigestMismatch => "digest-mismatch",
            PbftError::BatchTooLarge { .. } => "batch-too-large",
            PbftError::StaleView { .. } => "stale-view",
            PbftError::FutureBufferFull(_) => "future-buffer-full",
            PbftError::CheckpointOffInterval { .. } => "checkpoint-off-interval",
            PbftError::BadCheckpointProof(_) => "bad-checkpoint-proof",
            PbftError::BadPreparedCert(_) => "bad-prepared-cert",
            PbftError::BadViewChange(_) => "bad-view-change",
            PbftError::BadNewView(_) => "bad-new-view",
            PbftError::BatchNotByDigest { .. } => "batch-not-by-digest",
            PbftError::NewViewMismatch => "new-view-mismatch",
            PbftError::BadState(_) => "bad-state",
            PbftError::ServeLimited(_) => "serve-limited",
            PbftError::BadSnapshot(_) => "bad-snapshot",
            PbftError::BadCertificate(_) => "bad-certificate",
        }
    }
}
