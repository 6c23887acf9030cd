//! `[storage]`: what a replica's store costs in the simulator.
//!
//! Every replica has a model store. Whenever a step changes its durable
//! state (the protocol emits `Action::Persist`), the replica writes it, with
//! the step's commits, before anything the step sends leaves: the step costs
//! `store_write` more CPU, and with `fsync = "always"` the replica also
//! waits `store_fsync` for the disk (busy, but not using a core). A crash
//! keeps exactly what was written (a process crash: the operating system
//! keeps written data whether or not it was synced), and a crash with
//! `until` restarts the replica from it (`Protocol::recover`).

use serde::{Deserialize, Serialize};

pub use bft_core::Fsync;

/// The `[storage]` table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    #[serde(default)]
    pub fsync: Fsync,
    /// Check after every step that no replica changed its durable state
    /// without writing it (`Node::with_durability_audit`; it computes the
    /// durable state after every step, so runs are slower). `bftbench fuzz`
    /// and the restart tests set it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub audit: bool,
}

impl Storage {
    pub fn is_default(&self) -> bool {
        *self == Storage::default()
    }
}
