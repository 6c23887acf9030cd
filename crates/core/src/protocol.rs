//! The sans-IO contract every protocol implements. A protocol never touches
//! sockets, clocks, threads or randomness: it receives an [`Input`] with the
//! current time and appends [`Action`]s. The simulator and the QUIC runner
//! both drive it through [`crate::Node`], so the same code runs in both.

use crate::bytes_array::Digest;
use crate::committee::Committee;
use crate::crypto::Crypto;
use crate::ids::{NodeId, RequestId, Time};
use crate::store::DurableBatches;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

pub use crate::request::{CLIENT_REQUEST_DOMAIN, Request};

/// Digest binding an ordered batch of requests: the thing PBFT's pre-prepare
/// and the other protocols' blocks commit to.
pub fn batch_digest(batch: &[Request]) -> Digest {
    // Small batches (the common case) gather their request digests on the
    // stack rather than in an allocation per batch.
    const ON_STACK: usize = 8;
    let len = (batch.len() as u64).to_le_bytes();
    if batch.len() <= ON_STACK {
        let mut digests = [[0u8; 32]; ON_STACK];
        for (d, r) in digests.iter_mut().zip(batch) {
            *d = r.digest().0;
        }
        let digests = digests.get(..batch.len()).unwrap_or_default();
        return Digest::of("bftbench/batch/v1", &[&len, digests.as_flattened()]);
    }
    let digests: Vec<[u8; 32]> = batch.iter().map(|r| r.digest().0).collect();
    Digest::of("bftbench/batch/v1", &[&len, digests.as_flattened()])
}

/// One entry of a replica's committed ledger. Decisions form a hash chain:
/// `parent` is the previous decision's `block`, slots are contiguous from 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Ledger position, 1, 2, 3, … (PBFT sequence number, QBFT/HotStuff height).
    pub slot: u64,
    /// The view/round in which it was decided (informational; agreement is on
    /// `block`, not on the view).
    pub view: u64,
    pub block: Digest,
    pub parent: Digest,
    /// Requests ordered by this decision; empty for a null (view-change filler).
    pub requests: Vec<RequestId>,
    /// [`Request::digest`] of each of `requests`, in the same order: what
    /// was committed under each id, so an oracle or an auditor can compare
    /// it with what the client signed (an id alone does not say).
    pub request_digests: Vec<Digest>,
    /// The protocol's commit certificate for `block` at `slot`, encoded by
    /// the protocol (PBFT: q COMMITs, or the q CHECKPOINTs of a stable
    /// checkpoint at this slot; QBFT: q commit seals; HotStuff: the QC
    /// over the block): what lets anyone holding the committee's public
    /// keys re-check offline that a quorum committed it
    /// ([`Protocol::check_certificate`]). Empty when the replica learned
    /// the block inside certified history and holds no certificate of its
    /// own for it (PBFT's state transfer between two checkpoints; QBFT and
    /// HotStuff always have one): the block is then certified by the next
    /// certified block its hash chain leads to.
    pub certificate: Bytes,
}

/// What [`Protocol::check_certificate`] found in a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Certified {
    /// Its certificate proves that a quorum committed its block at its slot.
    Quorum,
    /// It carries none: certified only through a later certified block of
    /// the same hash chain.
    ByChain,
}

impl Decision {
    /// The decision at `slot` that executes `fresh` (the requests of the
    /// block not executed before, in block order), with the protocol's
    /// encoded `certificate` (empty: none, see [`Decision::certificate`]).
    pub fn executing(
        slot: u64,
        view: u64,
        block: Digest,
        parent: Digest,
        fresh: &[&Request],
        certificate: Bytes,
    ) -> Decision {
        Decision {
            slot,
            view,
            block,
            parent,
            requests: fresh.iter().map(|r| r.id()).collect(),
            request_digests: fresh.iter().map(|r| r.digest()).collect(),
            certificate,
        }
    }
}

/// The genesis hash every ledger starts from.
pub const GENESIS: Digest = Digest::ZERO;

#[derive(Clone, Debug)]
pub enum Input<M, T> {
    /// Sent once, before anything else.
    Start,
    Message {
        from: NodeId,
        msg: M,
    },
    Timeout(T),
    Request(Request),
}

#[derive(Clone, Debug)]
pub enum Action<M, T> {
    /// To one replica. Sending to oneself is delivered locally, uncounted.
    Send {
        to: NodeId,
        msg: M,
    },
    /// To every replica but oneself.
    Broadcast(M),
    /// A retransmission to one replica: a message sent (or accepted) before,
    /// sent again because the receiver shows it missed it, or catch-up
    /// traffic for a replica that fell behind. Delivered like `Send`; counted
    /// like `Send` and also under [`crate::MsgStats::resent`], so that metrics
    /// can tell what the protocol needs from what it repeats.
    Resend {
        to: NodeId,
        msg: M,
    },
    /// A retransmission to every replica but oneself (see `Resend`).
    Rebroadcast(M),
    /// Arms `timer` to fire `after` from now, replacing a pending one with the
    /// same key.
    SetTimer {
        timer: T,
        after: Duration,
    },
    CancelTimer(T),
    Commit(Decision),
    /// The replica installed a snapshot of the committed state at `slot`,
    /// whose block is `block` (see [`crate::snapshot`]): its ledger resumes
    /// there, the slots between its previous tip and `slot` are not in it,
    /// and its next [`Action::Commit`] is slot `slot + 1` with parent
    /// `block`. Always with [`Action::Persist`] in the same step.
    InstallSnapshot {
        slot: u64,
        block: Digest,
    },
    /// What [`Protocol::durable`] returns has changed (a vote cast, a lock or
    /// certificate taken, a view entered, a decision committed). The node
    /// hands the runtime the new durable state once, at the end of the step,
    /// ahead of every message of the step: a runtime writes it (and the
    /// step's commits) before it lets any of them leave, so no peer ever
    /// sees a message that depends on state a crash could lose.
    Persist,
}

/// A message type the codec can carry and the counters can name.
pub trait WireMessage:
    Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static
{
    /// The label messages are counted under: `"prepare"`, `"vote"`, ….
    fn kind(&self) -> &'static str;
}

/// A protocol's reason for rejecting an input. `reason()` is the stable label
/// the node counts it under (`"bad-signature"`, `"outside-watermarks"`, …).
pub trait Rejection: std::error::Error + Send + Sync + 'static {
    fn reason(&self) -> &'static str;
}

/// How requests are cut into batches/blocks: at `max_size` requests or
/// `max_delay` after the first one waits, whichever comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    pub max_size: usize,
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_size: 1,
            max_delay: Duration::from_millis(1),
        }
    }
}

/// A knob with an impossible value: which key, what value, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    pub key: &'static str,
    pub value: String,
    pub reason: String,
}

/// What a protocol is given at construction.
#[derive(Clone, Debug)]
pub struct NodeContext {
    pub id: NodeId,
    pub committee: Arc<Committee>,
    pub crypto: Arc<dyn Crypto>,
    pub batch: BatchConfig,
}

/// A protocol's observable state, for metrics, tests and memory bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Current view or round.
    pub view: u64,
    /// Number of committed decisions (the last committed slot).
    pub committed: u64,
    /// View/round changes this replica has completed.
    pub view_changes: u64,
    /// Entries the replica is holding in its logs/pools/trees; must stay
    /// bounded over a long run.
    pub retained: usize,
}

pub trait Protocol: Send + 'static {
    /// `"pbft"`, `"qbft"`, `"hotstuff"`.
    const NAME: &'static str;
    /// The message kinds of catch-up: requests for decided history and the
    /// answers carrying it, sent only to bring a lagging replica up to
    /// date. Records count them apart (`catch_up_messages`); one definition
    /// for every protocol.
    const CATCH_UP_KINDS: &'static [&'static str] = &[];
    type Message: WireMessage;
    type Timer: Copy + Eq + Ord + Hash + Debug + Send + Sync + 'static;
    /// The protocol's knobs, the `[pbft]`/`[qbft]`/`[hotstuff]` table of a
    /// scenario file.
    type Config: Clone + Debug + Default + Serialize + DeserializeOwned + Send + Sync + 'static;
    type Error: Rejection;
    /// What the replica must find again after a crash: the state its
    /// protocol's safety needs (what it voted for, its locks and
    /// certificates, its view) and its committed tip. Written by the runtime
    /// whenever the protocol emits [`Action::Persist`]; a restart hands the
    /// last one written to [`Protocol::recover`].
    type Durable: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static;

    fn new(ctx: NodeContext, cfg: &Self::Config) -> Self;

    /// The durable state as of now (see [`Protocol::Durable`]). Must change
    /// only in a step that emitted [`Action::Persist`]; `Node` checks that
    /// when its audit is on.
    fn durable(&self) -> Self::Durable;

    /// The batches `durable` names by their digest ([`batch_digest`])
    /// instead of holding them. A runtime writes each such batch once,
    /// apart from the state (which is rewritten whole at every change and
    /// should stay small), and hands them back to [`Protocol::recover`].
    /// None by default: a protocol whose durable state holds its batches.
    /// A batch is stored once per digest, and [`batch_digest`] covers each
    /// request's id and payload, not its signature bytes: two batches with
    /// the same requests under different valid signatures (a Byzantine
    /// client signing twice) come back with the first one's signatures.
    fn durable_batches(durable: &Self::Durable) -> Vec<Digest> {
        let _ = durable;
        Vec::new()
    }

    /// The requests of a batch the current durable state names (see
    /// [`Protocol::durable_batches`]); None for any other digest.
    fn durable_batch(&self, digest: &Digest) -> Option<&[Request]> {
        let _ = digest;
        None
    }

    /// A replica restarted from `durable`, the last state it had made
    /// durable before it crashed: at the committed tip recorded there, with
    /// the votes, locks and certificates it had, and nothing else (no
    /// pool, no messages in flight). It then catches up like any replica
    /// that fell behind. `Start` follows, as for a new replica. `batches`
    /// holds every batch `durable` names ([`Protocol::durable_batches`]),
    /// each checked against its digest.
    fn recover(
        ctx: NodeContext,
        cfg: &Self::Config,
        durable: Self::Durable,
        batches: &DurableBatches,
    ) -> Self;

    /// Rejects impossible knob values before a run starts, naming the key
    /// (relative to the protocol's table, e.g. `"checkpoint_interval"`).
    fn check_config(cfg: &Self::Config) -> Result<(), ConfigIssue> {
        let _ = cfg;
        Ok(())
    }

    /// Deterministic: the same inputs at the same times give the same actions.
    /// An `Err` means the input was rejected (and is counted by reason); the
    /// actions appended before the error still happen.
    fn handle(
        &mut self,
        now: Time,
        input: Input<Self::Message, Self::Timer>,
        out: &mut Vec<Action<Self::Message, Self::Timer>>,
    ) -> Result<(), Self::Error>;

    fn status(&self) -> Status;

    /// The client requests `msg` asks its receiver to take on trust: the
    /// batch of a proposal it will vote for. [`crate::Node`] checks every
    /// client signature among them before the protocol sees the message
    /// and drops the message if one fails. Requests inside certified
    /// history (a state transfer under a checkpoint proof, a decided block
    /// under its commit seals, a block fetched by the hash a QC names) are
    /// not listed: a quorum already checked them, so at least one honest
    /// replica did.
    fn client_requests(msg: &Self::Message) -> &[Request];

    /// Whether `timer`'s expiry means the replica gave up on its leader
    /// (PBFT's request timer, QBFT's round timer, HotStuff's view timer):
    /// where a leader replacement, the view change every runtime reports,
    /// starts.
    fn is_view_timeout(timer: &Self::Timer) -> bool;

    /// Re-checks `d.certificate` against `committee`'s public keys, with no
    /// state of a replica: `Quorum` if it proves that a quorum committed
    /// `d.block` at `d.slot`, `ByChain` if `d` carries none, an error naming
    /// what is wrong otherwise. `bftbench ledger verify --cluster` runs it
    /// on every stored decision, and the simulator's oracle on every
    /// decision an honest replica commits.
    fn check_certificate(
        d: &Decision,
        committee: &Committee,
        crypto: &dyn Crypto,
    ) -> Result<Certified, Self::Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_digest_is_the_same_on_the_stack_and_in_a_vector() {
        let reference = |batch: &[Request]| {
            let digests: Vec<[u8; 32]> = batch.iter().map(|r| r.digest().0).collect();
            Digest::of(
                "bftbench/batch/v1",
                &[&(batch.len() as u64).to_le_bytes(), digests.as_flattened()],
            )
        };
        let batch: Vec<Request> = (0..20u64)
            .map(|number| {
                Request::unsigned(
                    RequestId { client: 3, number },
                    bytes::Bytes::from(vec![number as u8; number as usize]),
                )
            })
            .collect();
        for len in 0..=batch.len() {
            assert_eq!(
                batch_digest(&batch[..len]),
                reference(&batch[..len]),
                "{len}"
            );
        }
    }
}
