//! bft-sim: a deterministic discrete-event simulator for any
//! [`bft_core::Protocol`].
//!
//! Same seed, same run: one RNG, one event heap ordered by (virtual time,
//! sequence number), no wall clock, no hash-order iteration. Every commit by
//! an honest replica passes the [`oracle`]; a run's [`SimReport`] carries the
//! seed and a trace hash so a failure replays exactly.

pub use bft_load::clients;
pub mod config;
pub mod engine;
pub mod machine;
pub mod network;
pub mod oracle;
pub mod replacements;
pub mod storage;
pub mod timeline;

pub use clients::LatencySummary;
pub use config::{
    BEHAVIOURS, DelayModel, Fault, FaultKind, FaultTable, LoadConfig, LoadMode, NetworkConfig,
    Partition, RegionMatrix, SimConfig, Twins,
};
pub use engine::{NodeReport, OutboundFilter, SimReport, Simulation};
pub use machine::Machine;
pub use replacements::Replacements;
pub use storage::{Fsync, Storage};
pub use timeline::Timeline;

use bft_core::{ConfigIssue, NodeId};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot set up the committee's keys: {0}")]
    Crypto(#[from] bft_crypto::CryptoError),
    #[error("a fault names node {node} but the committee has nodes 0..{n}")]
    NoSuchNode { node: NodeId, n: usize },
    #[error(
        "node {node} crashes until {until:?} and restarts from its store, but [storage] persist = false keeps none (use amnesia = true for a fresh restart)"
    )]
    RestartWithoutStore {
        node: NodeId,
        until: std::time::Duration,
    },
    #[error("{0}")]
    Leaders(bft_core::CoreError),
    #[error("twins: {0}")]
    Twins(String),
    #[error("{}: {} ({})", .0.key, .0.reason, .0.value)]
    Protocol(ConfigIssue),
}
