//! QBFT wire messages: PROPOSAL, PREPARE, COMMIT, ROUND-CHANGE, their signed
//! payloads and the block they agree on.
//!
//! Each payload is signed under its own domain tag, so a PREPARE signature
//! never verifies as a COMMIT. The bytes signed are a fixed little-endian
//! layout written here (not the wire codec), so they do not depend on serde.

use crate::error::QbftError;
use bft_core::{
    Committee, Crypto, Digest, NodeId, Request, Signature, SignedItem, WireMessage, batch_digest,
};
use serde::{Deserialize, Serialize};

pub const DOMAIN_PROPOSAL: &str = "bftbench/qbft/proposal/v1";
pub const DOMAIN_PREPARE: &str = "bftbench/qbft/prepare/v1";
pub const DOMAIN_COMMIT: &str = "bftbench/qbft/commit/v1";
/// The commit seal: a signature over the block hash alone, so q seals prove
/// the block final whatever round it was decided in.
pub const DOMAIN_COMMIT_SEAL: &str = "bftbench/qbft/commit-seal/v1";
pub const DOMAIN_ROUND_CHANGE: &str = "bftbench/qbft/round-change/v1";
const DOMAIN_BLOCK: &str = "bftbench/qbft/block/v1";

/// A block of the hash-chained ledger. It has no round and no seals, so a
/// block re-proposed in a later round keeps its hash (agreement is on the
/// block, not on its round or seals).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub height: u64,
    pub parent: Digest,
    /// The validator that built the block; the next height's proposer rotates
    /// from it.
    pub proposer: NodeId,
    pub requests: Vec<Request>,
}

impl Block {
    /// Hash over (height, parent, proposer, batch digest).
    pub fn hash(&self) -> Digest {
        Digest::of(
            DOMAIN_BLOCK,
            &[
                &self.height.to_le_bytes(),
                self.parent.as_bytes(),
                &self.proposer.0.to_le_bytes(),
                batch_digest(&self.requests).as_bytes(),
            ],
        )
    }
}

/// A payload that can be signed: its domain and its canonical bytes.
pub trait Payload {
    const DOMAIN: &'static str;
    fn signing_bytes(&self) -> Vec<u8>;
}

/// PROPOSAL(h, r, digest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalPayload {
    pub height: u64,
    pub round: u64,
    pub digest: Digest,
}

/// PREPARE(h, r, digest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparePayload {
    pub height: u64,
    pub round: u64,
    pub digest: Digest,
}

/// COMMIT(h, r, digest, seal): `seal` signs `digest` under
/// [`DOMAIN_COMMIT_SEAL`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitPayload {
    pub height: u64,
    pub round: u64,
    pub digest: Digest,
    pub seal: Signature,
}

/// ROUND-CHANGE(h, r, prepared round?, prepared value?). The two options are
/// separate on the wire, as in the spec, so a receiver must check that they
/// are both present or both absent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundChangePayload {
    pub height: u64,
    pub round: u64,
    pub prepared_round: Option<u64>,
    pub prepared_value: Option<Digest>,
}

impl RoundChangePayload {
    /// (prepared round, prepared value) if both are present.
    pub fn prepared(&self) -> Option<(u64, Digest)> {
        self.prepared_round.zip(self.prepared_value)
    }
}

fn hrd_bytes(height: u64, round: u64, digest: &Digest) -> Vec<u8> {
    let mut b = Vec::with_capacity(48);
    b.extend_from_slice(&height.to_le_bytes());
    b.extend_from_slice(&round.to_le_bytes());
    b.extend_from_slice(digest.as_bytes());
    b
}

impl Payload for ProposalPayload {
    const DOMAIN: &'static str = DOMAIN_PROPOSAL;
    fn signing_bytes(&self) -> Vec<u8> {
        hrd_bytes(self.height, self.round, &self.digest)
    }
}

impl Payload for PreparePayload {
    const DOMAIN: &'static str = DOMAIN_PREPARE;
    fn signing_bytes(&self) -> Vec<u8> {
        hrd_bytes(self.height, self.round, &self.digest)
    }
}

impl Payload for CommitPayload {
    const DOMAIN: &'static str = DOMAIN_COMMIT;
    fn signing_bytes(&self) -> Vec<u8> {
        let mut b = hrd_bytes(self.height, self.round, &self.digest);
        b.extend_from_slice(self.seal.as_bytes());
        b
    }
}

impl Payload for RoundChangePayload {
    const DOMAIN: &'static str = DOMAIN_ROUND_CHANGE;
    fn signing_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(60);
        b.extend_from_slice(&self.height.to_le_bytes());
        b.extend_from_slice(&self.round.to_le_bytes());
        match self.prepared_round {
            Some(r) => {
                b.push(1);
                b.extend_from_slice(&r.to_le_bytes());
            }
            None => b.push(0),
        }
        match &self.prepared_value {
            Some(d) => {
                b.push(1);
                b.extend_from_slice(d.as_bytes());
            }
            None => b.push(0),
        }
        b
    }
}

/// A payload with its author's signature. Justifications carry these, so the
/// author is part of the message, not inferred from the sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed<T> {
    pub author: NodeId,
    pub payload: T,
    pub signature: Signature,
}

impl<T: Payload> Signed<T> {
    /// Signs `payload` as `crypto.me()`.
    pub fn sign(crypto: &dyn Crypto, payload: T) -> Signed<T> {
        let signature = crypto.sign(T::DOMAIN, &payload.signing_bytes());
        Signed {
            author: crypto.me(),
            payload,
            signature,
        }
    }
}

/// Signatures to verify together: owned message bytes, borrowed as
/// `SignedItem`s for one `verify_batch` call.
#[derive(Default)]
pub struct SignatureBatch {
    entries: Vec<(NodeId, &'static str, Vec<u8>, Signature)>,
}

impl SignatureBatch {
    pub fn push<T: Payload>(&mut self, s: &Signed<T>) {
        self.entries
            .push((s.author, T::DOMAIN, s.payload.signing_bytes(), s.signature));
    }

    /// Adds the commit seal of `c` (a signature over the digest alone).
    pub fn push_seal(&mut self, c: &Signed<CommitPayload>) {
        self.entries.push((
            c.author,
            DOMAIN_COMMIT_SEAL,
            c.payload.digest.as_bytes().to_vec(),
            c.payload.seal,
        ));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True if every signature verifies.
    pub fn verify(&self, crypto: &dyn Crypto) -> bool {
        match self.entries.as_slice() {
            [] => true,
            [(signer, domain, msg, sig)] => crypto.verify(*signer, domain, msg, sig).is_ok(),
            entries => {
                let items: Vec<SignedItem<'_>> = entries
                    .iter()
                    .map(|(signer, domain, msg, sig)| SignedItem {
                        signer: *signer,
                        domain,
                        msg,
                        sig,
                    })
                    .collect();
                crypto.verify_batch(&items).is_ok()
            }
        }
    }
}

/// PROPOSAL: the signed (h, r, digest), the block, and for r > 0 the
/// justification: q signed ROUND-CHANGE payloads for (h, r) and, if any of
/// them is prepared, the q PREPAREs of the highest prepared round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub signed: Signed<ProposalPayload>,
    pub block: Block,
    pub round_changes: Vec<Signed<RoundChangePayload>>,
    pub prepares: Vec<Signed<PreparePayload>>,
}

/// ROUND-CHANGE: the signed payload plus, when prepared, the prepared block
/// and the q PREPAREs that prove it was prepared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundChange {
    pub signed: Signed<RoundChangePayload>,
    pub prepared_block: Option<Block>,
    pub prepares: Vec<Signed<PreparePayload>>,
}

/// A decided block with the q commit seals that make it final: a proof
/// anyone with the committee's keys can re-check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCertificate {
    pub block: Block,
    pub digest: Digest,
    /// The round it was decided in (informational).
    pub round: u64,
    pub seals: Vec<(NodeId, Signature)>,
}

impl CommitCertificate {
    /// Checks the block hash and q = ⌈2n/3⌉ distinct valid seals over it
    /// (at most n: a seal list longer than the committee is refused before
    /// any signature is checked).
    pub fn verify(&self, crypto: &dyn Crypto, committee: &Committee) -> Result<(), QbftError> {
        self.verify_with_quorum(crypto, committee, committee.quorum_two_thirds())
    }

    /// [`CommitCertificate::verify`] against a quorum of `q` seals.
    pub fn verify_with_quorum(
        &self,
        crypto: &dyn Crypto,
        committee: &Committee,
        q: usize,
    ) -> Result<(), QbftError> {
        if self.block.hash() != self.digest {
            return Err(QbftError::DigestMismatch);
        }
        crate::certificate::check_seals(crypto, committee, q, &self.digest, &self.seals)
    }
}

/// Decided heights one DECIDED relay carries at most (the whole archive).
pub const RELAY_HEIGHTS: usize = 64;

/// Request bytes past which a DECIDED relay takes no further height (it
/// always takes the first): with large batches the archive's 64 heights
/// would approach the frame limit.
pub const RELAY_BYTES: usize = 4 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QbftMessage {
    Proposal(Box<Proposal>),
    Prepare(Signed<PreparePayload>),
    Commit(Signed<CommitPayload>),
    RoundChange(Box<RoundChange>),
    /// Catch-up: consecutive decided blocks, lowest first, each with its q
    /// commit seals, sent to a lagging peer by its helpers
    /// (`Qbft::help_lagging_peer`): at most [`RELAY_HEIGHTS`] of them, and
    /// past [`RELAY_BYTES`] of requests no more. Applied in order, each once
    /// its seals verify. Relayed data: its seals are others'.
    Decided(Vec<CommitCertificate>),
    /// State sync from any distance (`bft_core::snapshot`): a replica
    /// beyond its helpers' archive asks every peer for their snapshots
    /// above its committed height `slot`.
    SnapshotRequest {
        slot: u64,
    },
    /// The sender's kept snapshots (each the committed state at a height,
    /// with the next height's round-0 slot), installed once f+1 members
    /// offer the same one.
    Snapshot(Vec<bft_core::Snapshot<u64>>),
}

impl QbftMessage {
    pub fn height(&self) -> u64 {
        match self {
            QbftMessage::Proposal(p) => p.signed.payload.height,
            QbftMessage::Prepare(p) => p.payload.height,
            QbftMessage::Commit(c) => c.payload.height,
            QbftMessage::RoundChange(rc) => rc.signed.payload.height,
            QbftMessage::Decided(c) => c.first().map_or(0, |c| c.block.height),
            QbftMessage::SnapshotRequest { slot } => *slot,
            QbftMessage::Snapshot(s) => s.last().map_or(0, |s| s.slot),
        }
    }

    pub fn round(&self) -> u64 {
        match self {
            QbftMessage::Proposal(p) => p.signed.payload.round,
            QbftMessage::Prepare(p) => p.payload.round,
            QbftMessage::Commit(c) => c.payload.round,
            QbftMessage::RoundChange(rc) => rc.signed.payload.round,
            QbftMessage::Decided(c) => c.first().map_or(0, |c| c.round),
            QbftMessage::SnapshotRequest { .. } | QbftMessage::Snapshot(_) => 0,
        }
    }

    /// The validator that signed the outer payload (a decided block's
    /// proposer: it carries no outer signature); None for the unsigned
    /// snapshot messages, which speak only for their sender.
    pub fn author(&self) -> Option<NodeId> {
        match self {
            QbftMessage::Proposal(p) => Some(p.signed.author),
            QbftMessage::Prepare(p) => Some(p.author),
            QbftMessage::Commit(c) => Some(c.author),
            QbftMessage::RoundChange(rc) => Some(rc.signed.author),
            QbftMessage::Decided(c) => c.first().map(|c| c.block.proposer),
            QbftMessage::SnapshotRequest { .. } | QbftMessage::Snapshot(_) => None,
        }
    }
}

impl WireMessage for QbftMessage {
    fn kind(&self) -> &'static str {
        match self {
            QbftMessage::Proposal(_) => "proposal",
            QbftMessage::Prepare(_) => "prepare",
            QbftMessage::Commit(_) => "commit",
            QbftMessage::RoundChange(_) => "round-change",
            QbftMessage::Decided(_) => "decided",
            QbftMessage::SnapshotRequest { .. } => "snapshot-request",
            QbftMessage::Snapshot(_) => "snapshot",
        }
    }
}

/// Builds a signed COMMIT with its seal, as `crypto.me()`.
pub fn signed_commit(
    crypto: &dyn Crypto,
    height: u64,
    round: u64,
    digest: Digest,
) -> Signed<CommitPayload> {
    let seal = crypto.sign(DOMAIN_COMMIT_SEAL, digest.as_bytes());
    Signed::sign(
        crypto,
        CommitPayload {
            height,
            round,
            digest,
            seal,
        },
    )
}
