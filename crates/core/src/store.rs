//! Where a real runtime keeps what a replica must not forget: its durable
//! state and its committed ledger.
//!
//! Protocols stay sans-IO: a protocol only emits [`crate::Action::Persist`]
//! when its durable state changes, and [`crate::Node`] turns that into
//! [`crate::Output::Persist`] ahead of the step's sends. A runtime that owns
//! a [`Store`] then writes [`crate::Node::durable_write`] and the step's
//! [`Decision`]s with one [`Store::write`], and releases the step's sends,
//! timers and client replies only after it returned: nothing another replica
//! or a client sees can depend on state that a crash could take back.
//!
//! The simulator keeps its own model of a store (what was written before a
//! crash survives it); `bft-store` is the embedded database behind this trait
//! for the QUIC runtime.

use crate::bytes_array::Digest;
use crate::protocol::{Decision, Request};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// When a store forces its writes to the disk. The same policy, with the
/// same meaning, in the simulator's model store (`[storage] fsync`) and in
/// a QUIC replica's data directory (`bftbench node --fsync`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// After every write: what survives a power loss too. The default of
    /// `bftbench node`.
    Always,
    /// Never: every write reaches the operating system, so a process crash
    /// (SIGKILL) loses nothing written, but a power loss may lose recent
    /// writes, and a replica restarted after one could equivocate. For
    /// measuring what fsync costs; the simulator's default.
    #[default]
    Never,
}

impl Fsync {
    pub fn as_str(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Never => "never",
        }
    }
}

impl std::str::FromStr for Fsync {
    type Err = String;

    fn from_str(s: &str) -> Result<Fsync, String> {
        match s {
            "always" => Ok(Fsync::Always),
            "never" => Ok(Fsync::Never),
            other => Err(format!(
                "unknown fsync policy {other:?}: expected always or never"
            )),
        }
    }
}

/// A store's failure, boxed so that the trait stays object safe and each
/// store keeps its own error type (with the file and what is wrong).
pub type StoreError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One change to a replica's committed ledger, in the order it made them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerEntry {
    /// The next decision.
    Commit(Decision),
    /// The replica installed a snapshot ([`crate::Action::InstallSnapshot`]):
    /// the ledger resumes after `block` at `slot`; the slots between the
    /// previous entry and `slot` are not in it.
    Snapshot { slot: u64, block: Digest },
}

impl LedgerEntry {
    /// The slot the ledger is at after this entry.
    pub fn slot(&self) -> u64 {
        match self {
            LedgerEntry::Commit(d) => d.slot,
            LedgerEntry::Snapshot { slot, .. } => *slot,
        }
    }
}

/// The batches a durable state names by digest
/// ([`crate::Protocol::durable_batches`]), decoded and checked against
/// their digests: what [`crate::Protocol::recover`] gets back.
pub type DurableBatches = BTreeMap<Digest, Vec<Request>>;

/// What a store holds of a replica's durable state: the state, encoded, and
/// each batch it names, encoded once (a `Vec<Request>` in the codec).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredState {
    pub state: Bytes,
    pub batches: BTreeMap<Digest, Bytes>,
}

/// One write of the durable state: the state whole, and the change to the
/// stored batches since the last write (`Some`: a batch the state now names
/// that the store does not hold yet; `None`: one nothing names any more).
/// Each batch is written once however many writes name it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateWrite {
    pub state: Bytes,
    pub batches: BTreeMap<Digest, Option<Bytes>>,
}

impl StateWrite {
    /// A state that names no batch.
    pub fn whole(state: impl Into<Bytes>) -> StateWrite {
        StateWrite {
            state: state.into(),
            batches: BTreeMap::new(),
        }
    }

    /// This write followed by `newer`, as one: the newer state, and each
    /// batch as the later of the two left it.
    pub fn merge(&mut self, newer: StateWrite) {
        self.state = newer.state;
        self.batches.extend(newer.batches);
    }
}

/// A replica's durable state and committed ledger.
pub trait Store: Send {
    /// The durable state last written with the batches it names, or None
    /// for a store never written.
    fn load_state(&self) -> Result<Option<StoredState>, StoreError>;

    /// The highest committed slot in the ledger (0: none).
    fn committed_tip(&self) -> Result<u64, StoreError>;

    /// Writes, as one atomic change, the durable state and its batches
    /// (None: unchanged since the last write) and the ledger's entries since the last write
    /// (decisions, snapshots installed), in order. Returns once the store's
    /// fsync policy is met; an error means nothing of this write may be
    /// relied on, and the runtime must stop the replica rather than send.
    fn write(
        &mut self,
        state: Option<&StateWrite>,
        ledger: &[LedgerEntry],
    ) -> Result<(), StoreError>;

    /// Records that the replica stopped cleanly (after its last write).
    fn close(&mut self) -> Result<(), StoreError>;
}
