//! What a simulation is told to do: committee size, seed, network, load,
//! faults. These types are also the `[network]`, `[load]` and `[[faults]]`
//! tables of a scenario file, hence serde with `deny_unknown_fields`.

use bft_core::{BatchConfig, CryptoKind, LeaderSchedule};
use bft_crypto::CostModel;
use std::time::Duration;

mod faults;
mod network;

pub use bft_load::{LoadConfig, LoadMode, LoadTable};
pub use faults::{BEHAVIOURS, Fault, FaultKind, FaultTable, Twins};
pub use network::{
    DelayModel, NetworkConfig, NetworkTable, Partition, RegionMatrix, RegionRef, RegionTable,
};

#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    pub nodes: usize,
    pub seed: u64,
    pub crypto: CryptoKind,
    /// Virtual CPU charged per crypto operation (for both kinds of crypto)
    /// and per event a node handles (`cost.handling`).
    pub cost: CostModel,
    /// Virtual-time limit of `run()`.
    pub duration: Duration,
    pub network: NetworkConfig,
    pub load: LoadConfig,
    pub batch: BatchConfig,
    pub faults: Vec<Fault>,
    /// Who leads each view; `None` is round-robin.
    pub leaders: Option<LeaderSchedule>,
    /// Twin instances and their partition schedule.
    pub twins: Option<Twins>,
    /// Keep every node's committed decisions (tests read them); off for long
    /// sweeps to keep memory flat.
    pub keep_ledgers: bool,
    /// Dedicated machines (the default) or replicas sharing C cores.
    pub machine: crate::Machine,
    /// `[storage]`: the fsync policy of every replica's store, and whether
    /// to audit durability.
    pub storage: crate::Storage,
}

impl SimConfig {
    /// When the network is stable again: the end of the last partition,
    /// Twins round and bounded fault, or the start of the last fault that
    /// never ends (see `Simulation::heal_time`).
    pub fn heal_time(&self) -> Duration {
        let partitions = self.network.partitions.iter().map(|p| p.end);
        let twins = self.twins.iter().map(Twins::heal);
        let faults = self.faults.iter().map(|f| f.end.unwrap_or(f.start));
        partitions
            .chain(twins)
            .chain(faults)
            .max()
            .unwrap_or_default()
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 4,
            seed: 1,
            crypto: CryptoKind::Model,
            cost: CostModel::default(),
            duration: Duration::from_secs(10),
            network: NetworkConfig::default(),
            load: LoadConfig::default(),
            batch: BatchConfig::default(),
            faults: Vec::new(),
            leaders: None,
            twins: None,
            keep_ledgers: true,
            machine: crate::Machine::default(),
            storage: crate::Storage::default(),
        }
    }
}
