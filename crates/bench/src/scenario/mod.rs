//! Scenario files: one TOML schema drives every run.
//!
//! ```toml
//! protocol = "hotstuff"   # pbft | qbft | hotstuff — the one line to swap
//! nodes = 4
//! runtime = "sim"         # sim (quic comes with the network crate)
//! duration = "10s"
//! seed = 1
//! crypto = "model"        # real | model
//! [load]     mode, rate | outstanding, clients, tx_size, total, warmup
//! [batch]    max_size, max_delay
//! [network]  model = fixed | uniform | regions, delay, min, max, loss, partitions,
//!            regions_file (a region data file, merged into [network.regions])
//! [network.regions]  regions, one_way_ms, jitter_ms, loss (matrices; or from
//!            regions_file), placement (region name or index per node, node i
//!            in placement[i % len]), client_region, jitter
//! [[faults]] node, behaviour, at, until + the behaviour's parameter:
//!            crash (amnesia), silent, omission (peers), delay (delay),
//!            stale-replay, censor (clients), equivocate, double-vote,
//!            forge (forgery), inflate-view (by), mutate (mutation), bad-signature
//! [leaders]  placement = round-robin | fixed | latency-aware, node, weight, prefix
//! [twins]    nodes, round, partitions (per round, groups of instances)
//! [cost]     what the simulator charges: virtual CPU per crypto operation
//!            and per event (`handling`); profile = "FILE" reads a cost
//!            profile (`bftbench calibrate` writes one) under the keys given
//! [machine]  cores = C: replicas and clients share C cores, paying for
//!            their frames (absent: each replica on a dedicated machine)
//! [storage]  persist = true (default) | false: replicas keep their durable
//!            state and ledger (simulator: a model store; QUIC: a data
//!            directory per replica, temporary unless --data-dir); fsync =
//!            always | never (default): whether each write is forced to the
//!            disk; audit = true checks durability after every step
//! [pbft] [qbft] [hotstuff]   protocol knobs
//! [sweep]    protocol = [...], nodes = [...], rate = [...], batch_size = [...], ...
//! ```
//!
//! Unknown keys and impossible values are errors naming the file, the key and
//! the value.

use crate::BenchError;
use crate::protocols::BenchProtocol;
use bft_core::{BatchConfig, CryptoKind, NodeId};
use bft_crypto::CostModel;
use bft_hotstuff::HotStuffConfig;
use bft_pbft::PbftConfig;
use bft_qbft::QbftConfig;
use bft_sim::{Fault, LoadConfig, NetworkConfig, Twins};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use std::time::Duration;

mod data;
mod validate;

pub use data::{BUILT_IN_PROFILE, REGIONS_FILE_KEYS, display_path, resolve_data_file};
use data::{merge_cost_profile, merge_regions_file};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolName {
    Pbft,
    Qbft,
    Hotstuff,
}

impl ProtocolName {
    pub const ALL: [ProtocolName; 3] = [
        ProtocolName::Pbft,
        ProtocolName::Qbft,
        ProtocolName::Hotstuff,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolName::Pbft => "pbft",
            ProtocolName::Qbft => "qbft",
            ProtocolName::Hotstuff => "hotstuff",
        }
    }
}

impl fmt::Display for ProtocolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProtocolName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pbft" => Ok(ProtocolName::Pbft),
            "qbft" => Ok(ProtocolName::Qbft),
            "hotstuff" => Ok(ProtocolName::Hotstuff),
            other => Err(format!(
                "unknown protocol \"{other}\": expected pbft, qbft or hotstuff"
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Sim,
    Quic,
}

impl std::str::FromStr for Runtime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sim" => Ok(Runtime::Sim),
            "quic" => Ok(Runtime::Quic),
            other => Err(format!("unknown runtime \"{other}\": expected sim or quic")),
        }
    }
}

/// The axes of a sweep; every combination is one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepAxes {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocol: Vec<ProtocolName>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<usize>,
    /// Open-loop offered load, requests/s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate: Vec<f64>,
    /// Closed-loop requests in flight per client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outstanding: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch_size: Vec<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tx_size: Vec<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seed: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub protocol: ProtocolName,
    pub nodes: usize,
    #[serde(default = "default_runtime")]
    pub runtime: Runtime,
    #[serde(with = "humantime_serde", default = "default_duration")]
    pub duration: Duration,
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default = "default_crypto")]
    pub crypto: CryptoKind,
    #[serde(default)]
    pub load: LoadConfig,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    #[serde(default)]
    pub cost: CostModel,
    /// The cost profile `[cost]` was read from (`profile = "FILE"`, as
    /// resolved), or [`BUILT_IN_PROFILE`]. Informational: the resolved
    /// figures are in `cost`. A scenario written back out (a record, a fuzz
    /// finding) carries it, and reading it back keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_profile: Option<String>,
    /// `[machine]`: dedicated machines (absent) or the whole cluster on
    /// `cores` shared cores. Simulator only.
    #[serde(default, skip_serializing_if = "bft_sim::Machine::is_dedicated")]
    pub machine: bft_sim::Machine,
    /// `[storage]`: whether replicas persist, their fsync policy (and the
    /// durability audit), in both runtimes.
    #[serde(default, skip_serializing_if = "bft_sim::Storage::is_default")]
    pub storage: bft_sim::Storage,
    #[serde(default)]
    pub pbft: PbftConfig,
    #[serde(default)]
    pub qbft: QbftConfig,
    #[serde(default)]
    pub hotstuff: HotStuffConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaders: Option<LeadersTable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twins: Option<Twins>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepAxes>,
}

/// Where leaders sit: the `[leaders]` table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Leader of view k is node k mod n.
    #[default]
    RoundRobin,
    /// `node` is favoured.
    Fixed,
    /// The node with the lowest latency to a quorum (from the region matrix)
    /// is favoured.
    LatencyAware,
}

/// `[leaders]`: which node leads each view. A favoured node leads `weight`
/// views in a row, then every member leads one in turn (so a crashed
/// favourite is rotated past, and every honest node gets to lead).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadersTable {
    #[serde(default)]
    pub placement: Placement,
    /// `fixed`: the favoured node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
    /// Views the favourite leads in a row. Default: 1 for PBFT (its primary
    /// keeps its view until a view change anyway), 3n for QBFT and HotStuff,
    /// whose leaders rotate every height/view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<usize>,
    /// Leaders pinned for the first views, before the placement applies
    /// (Twins scenarios schedule leaders this way).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<NodeId>,
}

fn default_runtime() -> Runtime {
    Runtime::Sim
}
fn default_duration() -> Duration {
    Duration::from_secs(10)
}
fn default_seed() -> u64 {
    1
}
fn default_crypto() -> CryptoKind {
    CryptoKind::Model
}

/// Largest committee a scenario may ask for.
pub const MAX_NODES: usize = 1024;

/// Flags given on the command line, which override the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub protocol: Option<ProtocolName>,
    pub nodes: Option<usize>,
    pub seed: Option<u64>,
    pub runtime: Option<Runtime>,
    pub crypto: Option<CryptoKind>,
    pub duration: Option<Duration>,
    /// Open-loop load at this many requests per second in total (a
    /// closed-loop `[load]` becomes open-loop; clients and sizes stay).
    pub rate: Option<f64>,
}

impl Scenario {
    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Scenario, BenchError> {
        let text = std::fs::read_to_string(path).map_err(|source| BenchError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let mut s = Scenario::parse(&text, path)?;
        s.apply(overrides);
        s.validate(path)?;
        Ok(s)
    }

    /// Parses a scenario. A `[network] regions_file` is read (relative to
    /// the scenario's directory, else to `bench-configs/`) and merged into
    /// `[network.regions]` before the schema applies, so errors still name
    /// the scenario file; keys the scenario writes itself win over the file.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, BenchError> {
        let parse_err = |e| BenchError::Parse {
            file: path.to_path_buf(),
            source: e,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(parse_err)?;
        let file = match table.get_mut("network").and_then(toml::Value::as_table_mut) {
            Some(net) => net.remove("regions_file"),
            None => None,
        };
        let profile = match table.get_mut("cost").and_then(toml::Value::as_table_mut) {
            Some(cost) => cost.remove("profile"),
            None => None,
        };
        if file.is_none() && profile.is_none() {
            // The common case: straight from the text, so errors keep
            // their line and column.
            let mut s: Scenario = toml::from_str(text).map_err(parse_err)?;
            s.cost_profile
                .get_or_insert_with(|| BUILT_IN_PROFILE.into());
            return Ok(s);
        }
        if let Some(file) = file {
            merge_regions_file(&mut table, &file, path)?;
        }
        let profile = match profile {
            Some(name) => merge_cost_profile(&mut table, &name, path)?,
            None => BUILT_IN_PROFILE.into(),
        };
        let mut s: Scenario = toml::Value::Table(table).try_into().map_err(parse_err)?;
        s.cost_profile = Some(profile);
        Ok(s)
    }

    pub fn apply(&mut self, o: &Overrides) {
        if let Some(p) = o.protocol {
            self.protocol = p;
        }
        if let Some(n) = o.nodes {
            self.nodes = n;
        }
        if let Some(s) = o.seed {
            self.seed = s;
        }
        if let Some(r) = o.runtime {
            self.runtime = r;
        }
        if let Some(c) = o.crypto {
            self.crypto = c;
        }
        if let Some(d) = o.duration {
            self.duration = d;
        }
        if let Some(rate) = o.rate {
            self.load.mode = bft_sim::LoadMode::Open { rate };
        }
    }

    /// The quorum size of this scenario's protocol.
    pub fn quorum(&self) -> usize {
        crate::with_protocol!(self.protocol, P => P::quorum(self.nodes))
    }

    /// Nodes that are faulty in any way: a configured fault or a twin.
    pub fn faulty_nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self.faults.iter().map(|f| f.node).collect();
        if let Some(t) = &self.twins {
            nodes.extend(t.nodes.iter().copied());
        }
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// f for this scenario's n.
    pub fn f(&self) -> usize {
        bft_core::committee::max_faulty(self.nodes)
    }

    /// Nodes with a configured fault beyond f: safety is then not promised.
    pub fn faulty_beyond_f(&self) -> Option<usize> {
        let nodes = self.faulty_nodes();
        (nodes.len() > self.f()).then_some(nodes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, BenchError> {
        let s = Scenario::parse(text, Path::new("t.toml"))?;
        s.validate(Path::new("t.toml"))?;
        Ok(s)
    }

    #[test]
    fn minimal_scenario_gets_defaults() {
        let s = parse("protocol = \"pbft\"\nnodes = 4\n").unwrap();
        assert_eq!(
            (s.runtime, s.crypto, s.seed),
            (Runtime::Sim, CryptoKind::Model, 1)
        );
        assert_eq!(s.duration, Duration::from_secs(10));
    }

    #[test]
    fn too_few_nodes_names_file_key_and_value() {
        let e = parse("protocol = \"pbft\"\nnodes = 2\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "t.toml: nodes = 2: need at least 4 for f ≥ 1");
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let e = parse("protocol = \"pbft\"\nnodes = 4\nnodez = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.toml") && e.contains("nodez"), "{e}");
        let e = parse("protocol = \"pbft\"\nnodes = 4\n[load]\nrat = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rat"), "{e}");
        let e = parse("protocol = \"raft\"\nnodes = 4\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("raft"), "{e}");
    }

    #[test]
    fn fault_on_missing_node_is_an_error() {
        let text = "protocol = \"qbft\"\nnodes = 4\n[[faults]]\nnode = 7\nbehaviour = \"crash\"\nat = \"1s\"\n";
        let e = parse(text).unwrap_err().to_string();
        assert_eq!(
            e,
            "t.toml: faults[0].node = 7: no such node: nodes are 0..4"
        );
    }

    #[test]
    fn open_load_without_rate_is_an_error() {
        let e = parse("protocol = \"pbft\"\nnodes = 4\n[load]\nmode = \"open\"\n").unwrap_err();
        assert!(e.to_string().contains("needs `rate`"), "{e}");
    }

    #[test]
    fn overrides_win_over_the_file() {
        let mut s = parse("protocol = \"pbft\"\nnodes = 4\n").unwrap();
        s.apply(&Overrides {
            protocol: Some(ProtocolName::Hotstuff),
            nodes: Some(16),
            ..Default::default()
        });
        assert_eq!((s.protocol, s.nodes), (ProtocolName::Hotstuff, 16));
    }

    /// Requests are signed unless `[load] signed = false`, which survives
    /// a round trip through TOML.
    #[test]
    fn requests_are_signed_by_default_and_signed_false_turns_it_off() {
        assert!(
            parse("protocol = \"pbft\"\nnodes = 4\n")
                .unwrap()
                .load
                .signed
        );
        let s = parse("protocol = \"pbft\"\nnodes = 4\n[load]\nsigned = false\n").unwrap();
        assert!(!s.load.signed);
        let text = toml::to_string(&s).unwrap();
        assert!(!Scenario::parse(&text, Path::new("x")).unwrap().load.signed);
    }

    /// `--rate` turns a closed-loop `[load]` into open loop at that rate,
    /// keeping clients and sizes; a rate that is not positive is refused
    /// naming `load.rate`.
    #[test]
    fn a_rate_override_makes_the_load_open_loop() {
        let text = "protocol = \"qbft\"\nnodes = 4\n[load]\nmode = \"closed\"\nclients = 3\noutstanding = 2\n";
        let mut s = parse(text).unwrap();
        s.apply(&Overrides {
            rate: Some(50_000.0),
            ..Default::default()
        });
        assert_eq!(s.load.mode, bft_sim::LoadMode::Open { rate: 50_000.0 });
        assert_eq!(s.load.clients, 3);
        s.validate(Path::new("t.toml")).unwrap();
        s.apply(&Overrides {
            rate: Some(0.0),
            ..Default::default()
        });
        let e = s.validate(Path::new("t.toml")).unwrap_err().to_string();
        assert!(e.starts_with("t.toml: load.rate = 0:"), "{e}");
    }

    #[test]
    fn scenario_round_trips_through_toml() {
        let s = parse(
            "protocol = \"hotstuff\"\nnodes = 7\n[load]\nmode = \"open\"\nrate = 500\n[network]\nmodel = \"uniform\"\nmin = \"1ms\"\nmax = \"3ms\"\n",
        )
        .unwrap();
        let text = toml::to_string(&s).unwrap();
        assert_eq!(Scenario::parse(&text, Path::new("x")).unwrap(), s);
    }
}
