//! The one error type of the crate: why a QBFT replica refused an input.
//! `reason()` is the stable label the `Node` counts rejections under.

use bft_core::{NodeId, Rejection};

/// Why an input was rejected. Benign staleness (a late PREPARE for a height
/// already decided) is not an error: it is dropped silently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QbftError {
    #[error("message signed by {author} arrived from {from}")]
    AuthorNotSender { author: NodeId, from: NodeId },
    #[error("signer {0} is not in the committee")]
    UnknownSigner(NodeId),
    #[error("invalid signature")]
    BadSignature,
    #[error("proposal for round {round} from {author}, but the proposer is {expected}")]
    NotProposer {
        round: u64,
        author: NodeId,
        expected: NodeId,
    },
    #[error("block hash does not match the signed digest")]
    DigestMismatch,
    #[error("block does not extend the committed chain at this height")]
    WrongParent,
    #[error("new block's proposer field is not the round's proposer")]
    WrongBlockProposer,
    #[error("block holds {len} requests, more than the batch size {max}")]
    OversizedBlock { len: usize, max: usize },
    #[error("justification lists {len} entries, more than the committee size")]
    OversizedJustification { len: usize },
    #[error("justification present where none is allowed")]
    UnexpectedJustification,
    #[error("{got} round changes from distinct validators, need {need}")]
    InsufficientRoundChanges { got: usize, need: usize },
    #[error("signer {0} appears twice")]
    DuplicateSigner(NodeId),
    #[error("round change for another height or round than the proposal")]
    RoundChangeMismatch,
    #[error("round change for round 0")]
    RoundChangeForRoundZero,
    #[error("prepared round and prepared value must be both present or both absent")]
    PreparedFieldsInconsistent,
    #[error("prepared round {prepared} is not below round {round}")]
    PreparedRoundNotBelow { prepared: u64, round: u64 },
    #[error("proposed block is not the value of the highest prepared round")]
    NotHighestPrepared,
    #[error("prepare for another height, round or digest than the certificate")]
    PrepareMismatch,
    #[error("{got} prepares from distinct validators, need {need}")]
    InsufficientPrepares { got: usize, need: usize },
    #[error("{got} commit seals from distinct validators, need {need}")]
    InsufficientSeals { got: usize, need: usize },
    #[error("prepared block does not hash to the prepared value")]
    PreparedBlockMismatch,
    #[error("second proposal for a round that already has one")]
    DuplicateProposal,
    #[error("{0} sent two different messages of one kind for one round")]
    Equivocation(NodeId),
    #[error("future-message buffer for {0} is full")]
    FutureBufferFull(NodeId),
    #[error("height {height} is beyond the buffering window")]
    TooFarInFuture { height: u64 },
    #[error("{0} asked for more relays than its serve budget allows")]
    ServeLimited(NodeId),
    #[error("relay of {heights} decided heights, more than {max}")]
    OversizedRelay { heights: usize, max: usize },
    #[error("relay of no decided height")]
    EmptyRelay,
    #[error("ledger certificate does not decode")]
    MalformedCertificate,
    #[error("snapshot offer refused: {0}")]
    BadSnapshot(bft_core::SnapshotFault),
}

impl Rejection for QbftError {
    fn reason(&self) -> &'static str {
        match self {
            QbftError::AuthorNotSender { .. } => "author-not-sender",
            QbftError::UnknownSigner(_) => "unknown-signer",
            QbftError::BadSignature => "bad-signature",
            QbftError::NotProposer { .. } => "not-proposer",
            QbftError::DigestMismatch => "digest-mismatch",
            QbftError::WrongParent => "wrong-parent",
            QbftError::WrongBlockProposer => "wrong-block-proposer",
            QbftError::OversizedBlock { .. } => "oversized-block",
            QbftError::OversizedJustification { .. } => "oversized-justification",
            QbftError::UnexpectedJustification => "unexpected-justification",
            QbftError::InsufficientRoundChanges { .. } => "insufficient-round-changes",
            QbftError::DuplicateSigner(_) => "duplicate-signer",
            QbftError::RoundChangeMismatch => "round-change-mismatch",
            QbftError::RoundChangeForRoundZero => "round-change-for-round-zero",
            QbftError::PreparedFieldsInconsistent => "prepared-fields-inconsistent",
            QbftError::PreparedRoundNotBelow { .. } => "prepared-round-not-below",
            QbftError::NotHighestPrepared => "not-highest-prepared",
            QbftError::PrepareMismatch => "prepare-mismatch",
            QbftError::InsufficientPrepares { .. } => "insufficient-prepares",
            QbftError::InsufficientSeals { .. } => "insufficient-seals",
            QbftError::PreparedBlockMismatch => "prepared-block-mismatch",
            QbftError::DuplicateProposal => "duplicate-proposal",
            QbftError::Equivocation(_) => "equivocation",
            QbftError::FutureBufferFull(_) => "future-buffer-full",
            QbftError::TooFarInFuture { .. } => "too-far-in-future",
            QbftError::ServeLimited(_) => "serve-limited",
            QbftError::OversizedRelay { .. } => "oversized-relay",
            QbftError::EmptyRelay => "empty-relay",
            QbftError::BadSnapshot(_) => "bad-snapshot",
            QbftError::MalformedCertificate => "malformed-certificate",
        }
    }
}
