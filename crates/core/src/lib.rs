//! bft-core: the vocabulary every other crate shares.
//!
//! - [`ids`]: `NodeId`, `View`, `Seq`, `Height`, `Time`, `RequestId`.
//! - [`committee`]: who the replicas are and the three quorum rules.
//! - [`crypto`]: the synchronous `Crypto` trait and its byte types.
//! - [`protocol`]: the sans-IO `Protocol` trait, `Input`/`Action`, `Decision`.
//! - [`codec`]: postcard frames with a length header and a size cap.
//! - [`node`]: `Node<P>`, the only place messages are encoded and counted.
//! - [`client_auth`]: the check of client signatures every `Node` runs.
//! - [`store`]: the `Store` trait a runtime persists a replica through.

pub mod adversary;
pub mod bytes_array;
pub mod client_auth;
pub mod codec;
pub mod committee;
pub mod crypto;
pub mod durable;
pub mod ids;
pub mod leaders;
pub mod mix;
pub mod node;
pub mod pool;
pub mod protocol;
pub mod request;
pub mod serve;
pub mod snapshot;
pub mod store;

pub use adversary::{
    Adversarial, Attack, CRASH_SLACK, FORK_DEPTHS, Forgery, ForkChoice, MessageEdit, Mutation,
    TAMPER_HISTORY, TamperContext, crash_recovery_bound, protocol_specific, swapped_payload,
    tamper_generic,
};
pub use bytes_array::Digest;
pub use client_auth::ClientAuth;
pub use committee::{Committee, Member};
pub use crypto::{
    AggregateSignature, BlsPop, BlsPublicKey, BlsSignature, Crypto, CryptoKind, Ed25519PublicKey,
    Signature, SignedItem, SignerBitmap,
};
pub use ids::{Height, INGRESS_CLIENT_BASE, MAX_INGRESS_NODES, NodeId, RequestId, Seq, Time, View};
pub use leaders::LeaderSchedule;
pub use node::{KindCount, MsgStats, Node, NodeInput, Output, Tally};
pub use pool::{Executed, RequestPool};
pub use protocol::{
    Action, BatchConfig, CLIENT_REQUEST_DOMAIN, Certified, ConfigIssue, Decision, GENESIS, Input,
    NodeContext, Protocol, Rejection, Request, Status, WireMessage, batch_digest,
};
pub use serve::ServeBudget;
pub use snapshot::{
    OverBudget, SNAPSHOTS_KEPT, Snapshot, SnapshotFault, SnapshotTip, SnapshotVotes, Snapshots,
};
pub use store::{DurableBatches, Fsync, LedgerEntry, StateWrite, Store, StoreError, StoredState};

/// Errors of the core: committee setup, the codec and crypto checks.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("committee of {n} replicas: need at least 4 for f ≥ 1")]
    CommitteeTooSmall { n: usize },
    #[error("committee of {n} replicas: at most 65535 are supported")]
    CommitteeTooLarge { n: usize },
    #[error("committee member at position {position} has id {id}; ids must be 0..n in order")]
    CommitteeOrder { position: usize, id: NodeId },
    #[error("leader schedule: {0}")]
    LeaderSchedule(String),

    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge { len: usize, max: usize },
    #[error("malformed frame: {0}")]
    Decode(postcard::Error),
    #[error("frame has {extra} trailing bytes after the message")]
    TrailingBytes { extra: usize },
    #[error("cannot encode message: {0}")]
    Encode(String),

    #[error("signer {0} is not in the committee")]
    UnknownSigner(NodeId),
    #[error("signer {0} appears twice")]
    DuplicateSigner(NodeId),
    #[error("invalid signature from {0}")]
    BadSignature(NodeId),
    #[error("invalid batch of signatures")]
    BadBatch,
    #[error("signature bytes do not decode to a valid group element")]
    MalformedSignature,
    #[error("invalid aggregate signature")]
    BadAggregate,
    #[error("aggregate has no signers")]
    EmptyAggregate,
    #[error("aggregate signer bitmap does not fit the committee")]
    BitmapMismatch,
    #[error("public key of {0} is malformed")]
    BadPublicKey(NodeId),
    #[error("BLS key of {0} has no valid proof of possession")]
    BadProofOfPossession(NodeId),
    #[error("no secret key for {0}")]
    NotAMember(NodeId),
    #[error("client {0} has no key in the cluster")]
    UnknownClient(u32),
    #[error("invalid signature of client {0}")]
    BadClientSignature(u32),

    #[error("the durable state names batch {digest:?} and the store holds none")]
    MissingBatch { digest: Digest },
    #[error("the batch named {digest:?} does not hash to that digest")]
    BatchDigest { digest: Digest },
    #[error("the protocol's durable state names batch {digest:?} it does not hold")]
    UnheldBatch { digest: Digest },
}
