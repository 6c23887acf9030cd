//! `[storage]`: whether replicas persist, and what their store costs.
//!
//! With `persist = true` (the default) every replica has a store: in the
//! simulator a model store, over QUIC a data directory (`bft-store`). Whenever a step changes its durable
//! state (the protocol emits `Action::Persist`), the replica writes it, with
//! the step's commits, before anything the step sends leaves: the step costs
//! `store_write` more CPU, and with `fsync = "always"` the replica also
//! waits `store_fsync` for the disk (busy, but not using a core). A crash
//! keeps exactly what was written (a process crash: the operating system
//! keeps written data whether or not it was synced), and a crash with
//! `until` restarts the replica from it (`Protocol::recover`).
//!
//! The simulator charges the store per step that persisted; the QUIC
//! runtime writes once per batch of events it handled (a group commit), so
//! under load it pays for fewer writes than the simulator charges.
//!
//! `persist = false`: replicas keep nothing, in either runtime, and nothing
//! is charged; a crash can then only restart with `amnesia` (the scenario
//! is refused otherwise). For measuring what the store costs.

use serde::{Deserialize, Serialize};

pub use bft_core::Fsync;

/// The `[storage]` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub persist: bool,
    #[serde(default)]
    pub fsync: Fsync,
    /// Check after every step that no replica changed its durable state
    /// without writing it (`Node::with_durability_audit`; it computes the
    /// durable state after every step, so runs are slower). `bftbench fuzz`
    /// and the restart tests set it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub audit: bool,
}

impl Default for Storage {
    fn default() -> Storage {
        Storage {
            persist: true,
            fsync: Fsync::default(),
            audit: false,
        }
    }
}

fn yes() -> bool {
    true
}

impl Storage {
    pub fn is_default(&self) -> bool {
        *self == Storage::default()
    }
}
