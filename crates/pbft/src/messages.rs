//! PBFT's wire messages (Castro–Liskov, signature variant) and the exact bytes
//! each one signs. Every message is Ed25519-signed under its own domain tag,
//! so a signature for one kind never verifies as another.

use bft_core::{Crypto, Digest, NodeId, Request, Signature, WireMessage, batch_digest};
use serde::{Deserialize, Serialize};

/// Domain tags, one per signed kind.
pub mod domain {
    pub const PRE_PREPARE: &str = "bftbench/pbft/pre-prepare/v1";
    pub const PREPARE: &str = "bftbench/pbft/prepare/v1";
    pub const COMMIT: &str = "bftbench/pbft/commit/v1";
    pub const CHECKPOINT: &str = "bftbench/pbft/checkpoint/v1";
    pub const VIEW_CHANGE: &str = "bftbench/pbft/view-change/v1";
    pub const NEW_VIEW: &str = "bftbench/pbft/new-view/v1";
}

/// `<PRE-PREPARE, v, n, d>_σp` with the batch `m` piggybacked. The primary of
/// `view` signs `(view, seq, digest)`; `digest = batch_digest(batch)` binds the
/// batch (checked by every receiver). An empty batch is the null request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrePrepare {
    pub view: u64,
    pub seq: u64,
    pub digest: Digest,
    pub batch: Vec<Request>,
    pub sig: Signature,
}

/// `<PREPARE, v, n, d, i>_σi` (backups only) and `<COMMIT, v, n, d, i>_σi`
/// share this shape; the domain tag tells them apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub view: u64,
    pub seq: u64,
    pub digest: Digest,
    pub replica: NodeId,
    pub sig: Signature,
}

/// `<CHECKPOINT, n, d, i>_σi`: `state` is the ledger hash-chain head after
/// executing `seq`, so 2f+1 matching checkpoints certify the whole prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub state: Digest,
    pub replica: NodeId,
    pub sig: Signature,
}

/// A prepared certificate: a pre-prepare and 2f matching PREPAREs from
/// distinct backups of its view. A replica keeps its own with the batch; in
/// a VIEW-CHANGE the pre-prepare names its batch by digest only
/// ([`PrePrepare::by_digest`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedCert {
    pub pre_prepare: PrePrepare,
    pub prepares: Vec<Vote>,
}

/// `<VIEW-CHANGE, v+1, n, C, P, i>_σi`: `stable_seq` = n, `checkpoint_proof`
/// = C (2f+1 CHECKPOINTs for n; empty when n = 0), `prepared` = P (for every
/// seq above n, the prepared certificate from the highest view).
///
/// P names batches by digest, as the paper's view change does (TOCS 2002
/// §4.4: "requests are not included"): a VIEW-CHANGE carrying every
/// prepared batch above the stable checkpoint outgrew the transport's frame
/// limit once batches were large (2000 requests of 512 B, a window of
/// them), and the view change could then never complete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewChange {
    pub new_view: u64,
    pub stable_seq: u64,
    pub stable_state: Digest,
    pub checkpoint_proof: Vec<Checkpoint>,
    pub prepared: Vec<PreparedCert>,
    pub replica: NodeId,
    pub sig: Signature,
}

/// `<NEW-VIEW, v+1, V, O>_σp`: V = 2f+1 VIEW-CHANGEs for `view`, O = the
/// pre-prepares the new primary re-proposes (signed for `view`), each
/// naming its batch by digest. A replica takes each batch from what it
/// holds (its prepared certificate or the pre-prepare it had for that
/// slot); one it lacks it still votes for, and fetches as part of a
/// committed tail before executing it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewView {
    pub view: u64,
    pub view_changes: Vec<ViewChange>,
    pub pre_prepares: Vec<PrePrepare>,
    pub sig: Signature,
}

/// State transfer request from a replica that is behind a stable checkpoint:
/// "send me the executed batches from `from_seq` up to your stable
/// checkpoint". Unsigned: the answer is checked against a checkpoint proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    pub from_seq: u64,
}

/// One executed slot in a state transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutedBatch {
    pub seq: u64,
    pub view: u64,
    pub batch: Vec<Request>,
}

/// State transfer answer: the batches executed in `(from_seq - 1, seq]` and
/// the proof C that checkpoint `seq` with chain head `state` is stable. The
/// receiver re-hashes the chain from its own head and must arrive at `state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateTransfer {
    pub seq: u64,
    pub state: Digest,
    pub proof: Vec<Checkpoint>,
    pub batches: Vec<ExecutedBatch>,
    /// The responder's executed slots after `seq`, in order, each with the
    /// q COMMITs that committed it (as far as it holds them in one view):
    /// so the receiver reaches the responder's tip, not only its stable
    /// checkpoint, even when no later checkpoint follows.
    pub committed: Vec<CommittedBatch>,
}

/// The q CHECKPOINTs that make a snapshot's checkpoint stable: a replica
/// installs a PBFT snapshot only at a stable checkpoint, so that it may
/// move its low watermark there and discard the log below as the paper's
/// garbage collection does (installing below an unproven checkpoint would
/// drop prepared certificates a view change still needs). Replicas hold
/// different q-subsets of the CHECKPOINTs, so the proof is not part of the
/// snapshot's identity; it is checked when the snapshot is installed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StableProof(pub Vec<Checkpoint>);

impl bft_core::SnapshotTip for StableProof {
    fn identity(&self) -> Digest {
        Digest::ZERO
    }
}

/// An executed slot above the stable checkpoint and its commit
/// certificate: the pre-prepare with its batch, and q COMMITs from distinct
/// replicas for its (view, seq, digest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedBatch {
    pub pre_prepare: PrePrepare,
    pub commits: Vec<Vote>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PbftMessage {
    PrePrepare(PrePrepare),
    Prepare(Vote),
    Commit(Vote),
    Checkpoint(Checkpoint),
    ViewChange(ViewChange),
    NewView(NewView),
    /// State transfer, counted apart from the protocol's kinds.
    Fetch(Fetch),
    State(StateTransfer),
    /// State sync from any distance (`bft_core::snapshot`): a replica
    /// whose fetch is below its peers' history asks every peer for their
    /// snapshots above its last executed sequence number `slot`.
    SnapshotRequest {
        slot: u64,
    },
    /// The sender's kept snapshots (each the state at a stable checkpoint:
    /// the ledger head, the requests executed up to it and the checkpoint's
    /// q-proof), installed once f+1 members offer the same one and its
    /// proof checks.
    Snapshot(Vec<bft_core::Snapshot<StableProof>>),
}

impl WireMessage for PbftMessage {
    fn kind(&self) -> &'static str {
        match self {
            PbftMessage::PrePrepare(_) => "pre-prepare",
            PbftMessage::Prepare(_) => "prepare",
            PbftMessage::Commit(_) => "commit",
            PbftMessage::Checkpoint(_) => "checkpoint",
            PbftMessage::ViewChange(_) => "view-change",
            PbftMessage::NewView(_) => "new-view",
            PbftMessage::Fetch(_) => "fetch",
            PbftMessage::State(_) => "state",
            PbftMessage::SnapshotRequest { .. } => "snapshot-request",
            PbftMessage::Snapshot(_) => "snapshot",
        }
    }
}

impl PbftMessage {
    /// The view a normal-case message belongs to (None for the others).
    pub fn normal_case_view(&self) -> Option<u64> {
        match self {
            PbftMessage::PrePrepare(p) => Some(p.view),
            PbftMessage::Prepare(v) | PbftMessage::Commit(v) => Some(v.view),
            _ => None,
        }
    }
}

/// A little-endian byte builder for signing payloads.
struct Bytes(Vec<u8>);

impl Bytes {
    fn new() -> Bytes {
        Bytes(Vec::with_capacity(96))
    }
    fn u64(mut self, x: u64) -> Bytes {
        self.0.extend_from_slice(&x.to_le_bytes());
        self
    }
    fn node(mut self, id: NodeId) -> Bytes {
        self.0.extend_from_slice(&id.0.to_le_bytes());
        self
    }
    fn digest(mut self, d: &Digest) -> Bytes {
        self.0.extend_from_slice(d.as_bytes());
        self
    }
    fn raw(mut self, b: &[u8]) -> Bytes {
        self.0.extend_from_slice(b);
        self
    }
}

/// Bytes a pre-prepare's signature covers: `(view, seq, digest)`.
pub fn pre_prepare_payload(view: u64, seq: u64, digest: &Digest) -> Vec<u8> {
    Bytes::new().u64(view).u64(seq).digest(digest).0
}

/// Bytes a PREPARE/COMMIT signature covers: `(view, seq, digest, replica)`.
pub fn vote_payload(view: u64, seq: u64, digest: &Digest, replica: NodeId) -> Vec<u8> {
    Bytes::new()
        .u64(view)
        .u64(seq)
        .digest(digest)
        .node(replica)
        .0
}

/// Bytes a CHECKPOINT signature covers: `(seq, state, replica)`.
pub fn checkpoint_payload(seq: u64, state: &Digest, replica: NodeId) -> Vec<u8> {
    Bytes::new().u64(seq).digest(state).node(replica).0
}

/// Bytes a VIEW-CHANGE signature covers: the target view, the stable
/// checkpoint claimed, and the identity `(view, seq, digest)` of every
/// certificate in P, so nobody can strip or swap the sender's certificates.
/// (C and the certificates' own signatures authenticate themselves.)
pub fn view_change_payload(
    new_view: u64,
    stable_seq: u64,
    stable_state: &Digest,
    prepared: &[PreparedCert],
    replica: NodeId,
) -> Vec<u8> {
    let mut b = Bytes::new()
        .u64(new_view)
        .u64(stable_seq)
        .digest(stable_state)
        .node(replica)
        .u64(prepared.len() as u64);
    for c in prepared {
        let p = &c.pre_prepare;
        b = b.u64(p.view).u64(p.seq).digest(&p.digest);
    }
    b.0
}

/// Bytes a NEW-VIEW signature covers: the view, each VIEW-CHANGE in V by
/// `(replica, signature)` (which binds its content), and O by `(seq, digest)`.
pub fn new_view_payload(view: u64, view_changes: &[ViewChange], o: &[PrePrepare]) -> Vec<u8> {
    let mut b = Bytes::new().u64(view).u64(view_changes.len() as u64);
    for vc in view_changes {
        b = b.node(vc.replica).raw(vc.sig.as_bytes());
    }
    b = b.u64(o.len() as u64);
    for p in o {
        b = b.u64(p.seq).digest(&p.digest);
    }
    b.0
}

// ----- signing: every message signs exactly its payload function's bytes ----

impl PrePrepare {
    /// PRE-PREPARE(view, seq, d) for `batch`, d = its digest, signed by
    /// `crypto`'s node (the primary of `view`, when honest).
    pub fn signed(crypto: &dyn Crypto, view: u64, seq: u64, batch: Vec<Request>) -> PrePrepare {
        PrePrepare {
            view,
            seq,
            digest: batch_digest(&batch),
            batch,
            sig: Signature::default(),
        }
        .signed_by(crypto)
    }

    /// PRE-PREPARE(view, seq, d) naming its batch by digest only, signed by
    /// `crypto`'s node: what NEW-VIEW's O re-proposes.
    pub fn signed_by_digest(
        crypto: &dyn Crypto,
        view: u64,
        seq: u64,
        digest: Digest,
    ) -> PrePrepare {
        PrePrepare {
            view,
            seq,
            digest,
            batch: Vec::new(),
            sig: Signature::default(),
        }
        .signed_by(crypto)
    }

    /// The same pre-prepare without its batch (the signature covers only
    /// (view, seq, digest), so it still verifies).
    pub fn by_digest(&self) -> PrePrepare {
        PrePrepare {
            view: self.view,
            seq: self.seq,
            digest: self.digest,
            batch: Vec::new(),
            sig: self.sig,
        }
    }

    /// False for a pre-prepare named by digest whose batch is not here
    /// (the null request's empty batch is its whole batch).
    pub fn has_batch(&self) -> bool {
        !self.batch.is_empty() || self.digest == batch_digest(&[])
    }

    /// This pre-prepare signed over its current (view, seq, digest).
    pub fn signed_by(mut self, crypto: &dyn Crypto) -> PrePrepare {
        let payload = pre_prepare_payload(self.view, self.seq, &self.digest);
        self.sig = crypto.sign(domain::PRE_PREPARE, &payload);
        self
    }
}

impl PreparedCert {
    /// The certificate as a VIEW-CHANGE carries it: its pre-prepare by
    /// digest.
    pub fn by_digest(&self) -> PreparedCert {
        PreparedCert {
            pre_prepare: self.pre_prepare.by_digest(),
            prepares: self.prepares.clone(),
        }
    }
}

impl Vote {
    /// This vote signed over its current fields under `dom`
    /// ([`domain::PREPARE`] or [`domain::COMMIT`]).
    pub fn signed_by(mut self, crypto: &dyn Crypto, dom: &'static str) -> Vote {
        let payload = vote_payload(self.view, self.seq, &self.digest, self.replica);
        self.sig = crypto.sign(dom, &payload);
        self
    }
}

impl Checkpoint {
    /// This checkpoint signed over its current (seq, state, replica).
    pub fn signed_by(mut self, crypto: &dyn Crypto) -> Checkpoint {
        let payload = checkpoint_payload(self.seq, &self.state, self.replica);
        self.sig = crypto.sign(domain::CHECKPOINT, &payload);
        self
    }
}

impl ViewChange {
    /// This VIEW-CHANGE signed over its current fields.
    pub fn signed_by(mut self, crypto: &dyn Crypto) -> ViewChange {
        let payload = view_change_payload(
            self.new_view,
            self.stable_seq,
            &self.stable_state,
            &self.prepared,
            self.replica,
        );
        self.sig = crypto.sign(domain::VIEW_CHANGE, &payload);
        self
    }
}
