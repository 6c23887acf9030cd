//! Blocks, quorum certificates and the wire messages.
//!
//! A block's hash binds its parent, view, height, batch and the (view, block)
//! its justify QC certifies. It does not bind the QC's aggregate signature:
//! two valid aggregates over the same (view, block) certify the same thing.

use bft_core::{
    AggregateSignature, BlsSignature, Digest, GENESIS, Height, Request, SignerBitmap, Snapshot,
    SnapshotTip, View, WireMessage, batch_digest,
};
use serde::{Deserialize, Serialize};

/// Domain tag of a vote: a partial BLS signature over exactly
/// [`vote_payload`]`(view, block)`.
pub const VOTE_DOMAIN: &str = "bftbench/hotstuff/vote/v1";

/// Domain of the block hash.
const BLOCK_DOMAIN: &str = "bftbench/hotstuff/block/v1";

/// The bytes a vote signs: the view (little-endian u64) then the block hash.
/// Nothing else, so a vote for one (view, block) never counts for another.
pub fn vote_payload(view: View, block: &Digest) -> [u8; 40] {
    let mut out = [0u8; 40];
    let (v, h) = out.split_at_mut(8);
    v.copy_from_slice(&view.0.to_le_bytes());
    h.copy_from_slice(block.as_bytes());
    out
}

/// A quorum certificate: n−f replicas voted for `block` in `view`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumCert {
    pub view: View,
    pub block: Digest,
    /// One aggregate BLS signature over `vote_payload(view, block)` plus the
    /// signer bitmap.
    pub signature: AggregateSignature,
}

impl QuorumCert {
    /// The QC every replica starts with: it certifies the genesis block at
    /// view 0 and carries no signature. It is the only QC accepted unsigned.
    pub fn genesis() -> QuorumCert {
        QuorumCert {
            view: View::ZERO,
            block: GENESIS,
            signature: AggregateSignature {
                signers: SignerBitmap::default(),
                signature: BlsSignature::ZERO,
            },
        }
    }

    pub fn is_genesis(&self) -> bool {
        *self == QuorumCert::genesis()
    }
}

/// A block of the chain. `parent == justify.block` for every valid block
/// (the leader extends the block its QC certifies, Algorithm 4 `createLeaf`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub parent: Digest,
    pub view: View,
    /// Parent's height + 1; the committed height is the ledger slot.
    pub height: Height,
    pub batch: Vec<Request>,
    pub justify: QuorumCert,
}

impl Block {
    /// Hash binding parent, view, height, batch and the justified (view, block).
    pub fn hash(&self) -> Digest {
        Digest::of(
            BLOCK_DOMAIN,
            &[
                self.parent.as_bytes(),
                &self.view.0.to_le_bytes(),
                &self.height.0.to_le_bytes(),
                batch_digest(&self.batch).as_bytes(),
                &self.justify.view.0.to_le_bytes(),
                self.justify.block.as_bytes(),
            ],
        )
    }
}

/// A replica's vote for `block` in `view`, sent to the leader of `view + 1`.
/// The voter is the authenticated sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub view: View,
    pub block: Digest,
    pub signature: BlsSignature,
}

/// Pacemaker message: "I timed out in `view`; this is my highest QC",
/// broadcast to every replica (n−f of them for one view end it for
/// everyone: [`crate::pacemaker`]).
///
/// It also carries the sender's last vote when that vote is newer than its
/// highest QC (the vote went to a next leader that never proposed). The
/// leader of `view + 1` aggregates n−f such votes into the lost QC, so a
/// dead next leader costs one view, not the three-chain. Without this, one
/// crashed replica at n = 4 under round-robin leaders would stop every
/// commit: its view and the view before it would both fail in every round
/// of four, never leaving three consecutive certified views.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewView {
    pub view: View,
    pub high_qc: QuorumCert,
    pub last_vote: Option<Vote>,
}

/// Most blocks one block response carries (the requested one and its
/// ancestors), so a replica far behind catches up in few round trips.
pub const MAX_FETCH_CHAIN: usize = 16;

/// Everything a HotStuff replica sends.
///
/// `Proposal`, `Vote` and `NewView` are the protocol (Algorithm 4 and its
/// pacemaker). `BlockRequest`/`BlockResponse` are block synchronisation: a
/// replica that receives a block whose parent it never got (the leader left
/// it out, or it was down) asks the sender for it. They are never sent in a
/// fault-free run, so they do not change the steady-state counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Proposal(Block),
    Vote(Vote),
    NewView(NewView),
    /// Asks for `block` and its ancestors down to, not including, height
    /// `above`: the requester holds a block at that height (or its
    /// committed tip is there), so the ancestors below it would cross the
    /// wire for nothing.
    BlockRequest {
        block: Digest,
        above: Height,
    },
    /// The requested block first, then some of its ancestors, newest to
    /// oldest: at most [`MAX_FETCH_CHAIN`] blocks, none at or below the
    /// request's `above` but the requested one.
    BlockResponse(Vec<Block>),
    /// Catch-up from far behind: the blocks after `block` on the
    /// responder's chain (its committed blocks, then the tree up to its
    /// highQC's block), answered with a BLOCK-RESPONSE of at most
    /// [`MAX_FETCH_CHAIN`], newest first, the oldest a child of `block`.
    BlocksAfter {
        block: Digest,
    },
    /// State sync from any distance (`bft_core::snapshot`): a replica that
    /// sees blocks further above its committed height than the archive
    /// reaches asks every peer for their snapshots above `slot`.
    SnapshotRequest {
        slot: u64,
    },
    /// The sender's kept snapshots (each the committed block at a height
    /// with the requests executed up to it), installed once f+1 members
    /// offer the same one.
    Snapshot(Vec<Snapshot<Block>>),
}

/// A snapshot's block is named by its hash, which leaves out the
/// signature of the QC it carries (replicas may hold different aggregates
/// of one QC).
impl SnapshotTip for Block {
    fn identity(&self) -> Digest {
        self.hash()
    }
}

impl WireMessage for Message {
    fn kind(&self) -> &'static str {
        match self {
            Message::Proposal(_) => "proposal",
            Message::Vote(_) => "vote",
            Message::NewView(_) => "new-view",
            Message::BlockRequest { .. } => "block-request",
            Message::BlockResponse(_) => "block-response",
            Message::BlocksAfter { .. } => "blocks-after",
            Message::SnapshotRequest { .. } => "snapshot-request",
            Message::Snapshot(_) => "snapshot",
        }
    }
}

/// The protocol's timers. Each key has at most one pending expiry
/// (`SetTimer` replaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// The pacemaker's view timer: expiry means the current view failed.
    View,
    /// The leader's batch timer: the oldest request has waited `max_delay`.
    Batch,
    /// The leader of a view entered on a timeout certificate stops waiting
    /// for the NEW-VIEWs that could rebuild a lost QC
    /// ([`crate::pacemaker`], rule 6).
    Rebuild,
}
