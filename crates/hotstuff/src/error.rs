//! The crate's one error type: why an input was rejected. `reason()` is the
//! stable label the node counts rejections under.

use bft_core::{Height, NodeId, Rejection, View};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HotStuffError {
    // --- quorum certificates ---
    #[error("QC for view 0 that is not the genesis QC")]
    QcBadGenesis,
    #[error("QC signer bitmap does not fit the committee")]
    QcBadBitmap,
    #[error("QC has {signers} distinct signers, needs {quorum}")]
    QcTooFewSigners { signers: usize, quorum: usize },
    #[error("QC aggregate signature does not verify over (view, block)")]
    QcBadSignature,
    #[error("ledger certificate does not decode")]
    MalformedCertificate,
    #[error("ledger certificate is a QC for another block or view than the decision's")]
    CertificateMismatch,

    // --- proposals and blocks ---
    #[error("proposal for view {view} from {from}, whose leader is {leader}")]
    WrongProposer {
        view: View,
        from: NodeId,
        leader: NodeId,
    },
    #[error("proposal for view {view} but we are in view {current}")]
    StaleProposal { view: View, current: View },
    #[error("view {view} is more than the window beyond our view {current}")]
    ViewTooFar { view: View, current: View },
    #[error("block already received")]
    DuplicateBlock,
    #[error("a second, different proposal from the leader of view {view}")]
    EquivocatingProposal { view: View },
    #[error("block's parent is not the block its QC certifies, or the QC is not older")]
    JustifyMismatch,
    #[error("block height {height} is not its parent's height + 1")]
    BadHeight { height: Height },
    #[error("block carries {len} requests, more than the batch maximum {max}")]
    OversizedBlock { len: usize, max: usize },
    #[error("unknown parent certified in view {qc_view}, before our committed view {committed}")]
    ParentBelowCommit { qc_view: View, committed: View },
    #[error("block's parent is unknown (fetch requested)")]
    UnknownParent,
    #[error("block response that was not asked for")]
    UnsolicitedBlock,
    #[error("block request for a block we do not hold")]
    UnknownBlock,
    #[error("{0} asked for more blocks than its serve budget allows")]
    ServeLimited(NodeId),
    #[error("snapshot refused: {0}")]
    BadSnapshot(bft_core::SnapshotFault),

    // --- votes ---
    #[error("vote for view {view} sent to a replica that does not lead view {view}+1")]
    NotNextLeader { view: View },
    #[error("vote signature does not decode or fails the subgroup check")]
    MalformedVote,
    #[error("second vote from {voter} in view {view}")]
    DuplicateVote { voter: NodeId, view: View },
    #[error("{voter} voted for two blocks in view {view}")]
    EquivocatingVote { voter: NodeId, view: View },
    #[error("{dropped} vote(s) with bad signatures dropped after the aggregate failed")]
    BadVoteSignatures { dropped: usize },

    // --- pacemaker ---
    #[error("new-view for view {view} carries a QC of a later view {qc_view}")]
    NewViewQcAhead { view: View, qc_view: View },

    // --- should be impossible with at most f faults ---
    #[error("a three-chain commits a block that does not extend the committed block")]
    ConflictingCommit,
}

impl Rejection for HotStuffError {
    fn reason(&self) -> &'static str {
        match self {
            HotStuffError::QcBadGenesis => "qc-bad-genesis",
            HotStuffError::QcBadBitmap => "qc-bad-bitmap",
            HotStuffError::QcTooFewSigners { .. } => "qc-too-few-signers",
            HotStuffError::QcBadSignature => "qc-bad-signature",
            HotStuffError::MalformedCertificate => "malformed-certificate",
            HotStuffError::CertificateMismatch => "certificate-mismatch",
            HotStuffError::WrongProposer { .. } => "wrong-proposer",
            HotStuffError::StaleProposal { .. } => "stale-proposal",
            HotStuffError::ViewTooFar { .. } => "view-too-far",
            HotStuffError::DuplicateBlock => "duplicate-block",
            HotStuffError::EquivocatingProposal { .. } => "equivocating-proposal",
            HotStuffError::JustifyMismatch => "justify-mismatch",
            HotStuffError::BadHeight { .. } => "bad-height",
            HotStuffError::OversizedBlock { .. } => "oversized-block",
            HotStuffError::ParentBelowCommit { .. } => "parent-below-commit",
            HotStuffError::UnknownParent => "unknown-parent",
            HotStuffError::UnsolicitedBlock => "unsolicited-block",
            HotStuffError::UnknownBlock => "unknown-block",
            HotStuffError::ServeLimited(_) => "serve-limited",
            HotStuffError::BadSnapshot(_) => "bad-snapshot",
            HotStuffError::NotNextLeader { .. } => "not-next-leader",
            HotStuffError::MalformedVote => "malformed-vote",
            HotStuffError::DuplicateVote { .. } => "duplicate-vote",
            HotStuffError::EquivocatingVote { .. } => "equivocating-vote",
            HotStuffError::BadVoteSignatures { .. } => "bad-vote-signature",
            HotStuffError::NewViewQcAhead { .. } => "new-view-qc-ahead",
            HotStuffError::ConflictingCommit => "conflicting-commit",
        }
    }
}
