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
//! [pbft] [qbft] [hotstuff]   protocol knobs
//! [sweep]    protocol = [...], nodes = [...], rate = [...], batch_size = [...], ...
//! ```
//!
//! Unknown keys and impossible values are errors naming the file, the key and
//! the value.

use crate::BenchError;
use crate::protocols::BenchProtocol;
use bft_core::{BatchConfig, CryptoKind, LeaderSchedule, NodeId, Protocol};
use bft_crypto::CostModel;
use bft_hotstuff::HotStuffConfig;
use bft_pbft::PbftConfig;
use bft_qbft::QbftConfig;
use bft_sim::{DelayModel, Fault, LoadConfig, LoadMode, NetworkConfig, Twins};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    }

    /// Checks values the schema cannot: the error names file, key and value.
    pub fn validate(&self, file: &Path) -> Result<(), BenchError> {
        let bad = |key: &str, value: String, reason: &str| BenchError::Invalid {
            file: file.to_path_buf(),
            key: key.to_string(),
            value,
            reason: reason.to_string(),
        };
        if self.nodes < 4 {
            return Err(bad(
                "nodes",
                self.nodes.to_string(),
                "need at least 4 for f ≥ 1",
            ));
        }
        if self.nodes > MAX_NODES {
            return Err(bad(
                "nodes",
                self.nodes.to_string(),
                "at most 1024 replicas are supported",
            ));
        }
        if self.duration.is_zero() {
            return Err(bad(
                "duration",
                "0s".into(),
                "a run needs a positive duration",
            ));
        }
        if let Some(cores) = self.machine.cores {
            if self.runtime == Runtime::Quic {
                return Err(bad(
                    "machine.cores",
                    cores.to_string(),
                    "the simulator's machine model; a QUIC run uses the machine it runs on",
                ));
            }
            if cores == 0 {
                return Err(bad("machine.cores", "0".into(), "need at least one core"));
            }
        }
        if let Some(t) = &self.twins {
            if self.runtime == Runtime::Quic {
                return Err(bad(
                    "twins",
                    format!("{} nodes", t.nodes.len()),
                    "Twins run in the simulator only; use runtime = \"sim\"",
                ));
            }
            t.check(self.nodes)
                .map_err(|e| bad("twins", format!("{:?}", t.nodes), &e))?;
        }
        self.leader_schedule()
            .map_err(|(key, value, reason)| bad(&key, value, &reason))?;
        if self.runtime == Runtime::Quic && !self.faults.is_empty() {
            return Err(bad(
                "faults",
                format!("{} entries", self.faults.len()),
                "fault injection runs in the simulator only; use runtime = \"sim\"",
            ));
        }
        if self.batch.max_size == 0 {
            return Err(bad(
                "batch.max_size",
                "0".into(),
                "a batch holds at least one request",
            ));
        }
        let batch_bytes = self.batch.max_size.saturating_mul(self.load.tx_size + 16);
        if batch_bytes > bft_core::codec::DEFAULT_MAX_FRAME / 2 {
            return Err(bad(
                "batch.max_size",
                self.batch.max_size.to_string(),
                "batch.max_size × load.tx_size exceeds half the 16 MiB frame limit",
            ));
        }
        if let LoadMode::Closed { outstanding: 0 } = self.load.mode {
            return Err(bad(
                "load.outstanding",
                "0".into(),
                "a closed-loop client needs at least 1",
            ));
        }
        for (i, f) in self.faults.iter().enumerate() {
            if f.node.index() >= self.nodes {
                return Err(bad(
                    &format!("faults[{i}].node"),
                    f.node.to_string(),
                    &format!("no such node: nodes are 0..{}", self.nodes),
                ));
            }
            if f.end.is_some_and(|end| end < f.start) {
                return Err(bad(
                    &format!("faults[{i}].until"),
                    format!("{:?}", f.end),
                    "before `at`",
                ));
            }
        }
        self.check_protocol_config().map_err(|issue| {
            bad(
                &format!("{}.{}", self.protocol, issue.key),
                issue.value,
                &issue.reason,
            )
        })?;
        if let Some(sweep) = &self.sweep {
            if let Some(n) = sweep.nodes.iter().find(|n| **n < 4 || **n > MAX_NODES) {
                return Err(bad(
                    "sweep.nodes",
                    n.to_string(),
                    "each n must be in 4..=1024",
                ));
            }
            if let Some(r) = sweep.rate.iter().find(|r| !r.is_finite() || **r <= 0.0) {
                return Err(bad(
                    "sweep.rate",
                    r.to_string(),
                    "rates must be > 0 requests/s",
                ));
            }
            if sweep.batch_size.contains(&0) {
                return Err(bad(
                    "sweep.batch_size",
                    "0".into(),
                    "a batch holds at least one request",
                ));
            }
            if sweep.outstanding.contains(&0) {
                return Err(bad(
                    "sweep.outstanding",
                    "0".into(),
                    "at least one in flight",
                ));
            }
        }
        Ok(())
    }

    fn check_protocol_config(&self) -> Result<(), bft_core::ConfigIssue> {
        crate::with_protocol!(self.protocol, P => P::check_config(&P::config(self)))
    }

    /// The leader schedule `[leaders]` asks for (`None`: round-robin).
    /// Errors are (key, value, reason).
    pub fn leader_schedule(&self) -> Result<Option<LeaderSchedule>, (String, String, String)> {
        let Some(t) = &self.leaders else {
            return Ok(None);
        };
        let n = self.nodes;
        let weight = t.weight.unwrap_or_else(
            || crate::with_protocol!(self.protocol, P => P::default_leader_weight(n)),
        );
        let favourite = match t.placement {
            Placement::RoundRobin => None,
            Placement::Fixed => match t.node {
                Some(id) if id.index() < n => Some(id),
                Some(id) => {
                    return Err((
                        "leaders.node".into(),
                        id.to_string(),
                        format!("no such node: nodes are 0..{n}"),
                    ));
                }
                None => {
                    return Err((
                        "leaders.node".into(),
                        "(missing)".into(),
                        "placement = \"fixed\" needs the node to favour".into(),
                    ));
                }
            },
            Placement::LatencyAware => match &self.network.delay {
                DelayModel::Regions(m) => {
                    let q = self.quorum();
                    Some(NodeId(u16::try_from(m.best_leader(n, q)).unwrap_or(0)))
                }
                _ => {
                    return Err((
                        "leaders.placement".into(),
                        "\"latency-aware\"".into(),
                        "needs network.model = \"regions\" to know the latencies".into(),
                    ));
                }
            },
        };
        let schedule = match favourite {
            None => LeaderSchedule::round_robin(n),
            Some(id) => LeaderSchedule::favouring(n, id, weight),
        }
        .with_prefix(t.prefix.clone());
        schedule.check(n).map_err(|e| {
            (
                "leaders.prefix".into(),
                format!("{:?}", t.prefix),
                e.to_string(),
            )
        })?;
        Ok(Some(schedule))
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

/// What a scenario that names no cost profile runs with:
/// `CostModel::default()`, which equals this file (a test checks it).
pub const BUILT_IN_PROFILE: &str = "built-in default (bench-configs/costs/default.toml)";

/// The keys a region data file (`[network] regions_file`) may hold.
pub const REGIONS_FILE_KEYS: [&str; 4] = ["regions", "one_way_ms", "jitter_ms", "loss"];

/// Where a data file a scenario names (`[network] regions_file`, `[cost]
/// profile`) points: beside the scenario, else
/// under the `bench-configs/` directory that holds the scenario, else under
/// `./bench-configs/`. The first that exists; all candidates when none.
pub fn resolve_data_file(name: &str, scenario: &Path) -> Result<PathBuf, Vec<PathBuf>> {
    let rel = Path::new(name);
    if rel.is_absolute() {
        return if rel.is_file() {
            Ok(rel.to_path_buf())
        } else {
            Err(vec![rel.to_path_buf()])
        };
    }
    let dir = scenario.parent().unwrap_or(Path::new(""));
    let mut candidates = vec![dir.join(rel)];
    candidates.extend(
        dir.ancestors()
            .filter(|a| a.file_name().is_some_and(|n| n == "bench-configs"))
            .map(|a| a.join(rel)),
    );
    candidates.push(Path::new("bench-configs").join(rel));
    candidates.dedup();
    match candidates.iter().find(|c| c.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(candidates),
    }
}

/// Reads a cost profile (`[cost] profile = name`, found like a region data
/// file) and fills the scenario's `[cost]` with every figure it gives that
/// the scenario does not set itself. Returns the profile's path as found.
fn merge_cost_profile(
    scenario: &mut toml::Table,
    name: &toml::Value,
    path: &Path,
) -> Result<String, BenchError> {
    let bad = |value: String, reason: String| BenchError::Invalid {
        file: path.to_path_buf(),
        key: "cost.profile".into(),
        value,
        reason,
    };
    let Some(name) = name.as_str() else {
        return Err(bad(name.to_string(), "must be a path (a string)".into()));
    };
    let found = resolve_data_file(name, path).map_err(|tried| {
        let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
        bad(
            format!("\"{name}\""),
            format!("no such file (looked for {})", tried.join(", ")),
        )
    })?;
    let text = std::fs::read_to_string(&found).map_err(|source| BenchError::Read {
        file: found.clone(),
        source,
    })?;
    let parse_err = |source| BenchError::Parse {
        file: found.clone(),
        source,
    };
    let data: toml::Table = toml::from_str(&text).map_err(parse_err)?;
    let figures = match data.get("cost") {
        Some(toml::Value::Table(t)) => t.clone(),
        _ => {
            return Err(BenchError::Invalid {
                file: found.clone(),
                key: "cost".into(),
                value: "(missing)".into(),
                reason: "a cost profile is a [cost] table of figures".into(),
            });
        }
    };
    // Checked against the schema here, so an error names the profile file.
    let _: CostModel = toml::Value::Table(figures.clone())
        .try_into()
        .map_err(parse_err)?;
    let cost = scenario
        .entry("cost")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(cost) = cost.as_table_mut() {
        for (k, v) in figures {
            cost.entry(k).or_insert(v);
        }
    }
    Ok(display_path(&found).display().to_string())
}

/// Reads and checks a region data file, then merges it into the scenario's
/// `[network.regions]` (creating it; `model` defaults to "regions").
fn merge_regions_file(
    scenario: &mut toml::Table,
    name: &toml::Value,
    path: &Path,
) -> Result<(), BenchError> {
    let bad = |file: &Path, key: &str, value: String, reason: String| BenchError::Invalid {
        file: file.to_path_buf(),
        key: key.to_string(),
        value,
        reason,
    };
    let Some(name) = name.as_str() else {
        return Err(bad(
            path,
            "network.regions_file",
            name.to_string(),
            "must be a path (a string)".into(),
        ));
    };
    let data_path = resolve_data_file(name, path).map_err(|tried| {
        let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
        bad(
            path,
            "network.regions_file",
            format!("\"{name}\""),
            format!("no such file (looked for {})", tried.join(", ")),
        )
    })?;
    let text = std::fs::read_to_string(&data_path).map_err(|source| BenchError::Read {
        file: data_path.clone(),
        source,
    })?;
    let data: toml::Table = toml::from_str(&text).map_err(|source| BenchError::Parse {
        file: data_path.clone(),
        source,
    })?;
    check_regions_data(&data)
        .map_err(|(key, value, reason)| bad(&data_path, &key, value, reason))?;
    let Some(net) = scenario
        .get_mut("network")
        .and_then(toml::Value::as_table_mut)
    else {
        return Ok(());
    };
    match net.get("model").map(|m| m.as_str()) {
        None => {
            net.insert("model".into(), toml::Value::String("regions".into()));
        }
        Some(Some("regions")) => {}
        Some(other) => {
            return Err(bad(
                path,
                "network.model",
                other.map_or_else(|| "(not a string)".into(), |m| format!("\"{m}\"")),
                "regions_file needs model = \"regions\"".into(),
            ));
        }
    }
    let regions = net
        .entry("regions")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(regions) = regions.as_table_mut() else {
        return Err(bad(
            path,
            "network.regions",
            regions.to_string(),
            "must be a table".into(),
        ));
    };
    for (key, value) in data {
        regions.entry(key).or_insert(value);
    }
    Ok(())
}

/// A region data file's keys and shapes; errors are (key, value, reason).
fn check_regions_data(data: &toml::Table) -> Result<(), (String, String, String)> {
    if let Some(key) = data
        .keys()
        .find(|k| !REGIONS_FILE_KEYS.contains(&k.as_str()))
    {
        return Err((
            key.clone(),
            data.get(key).map(ToString::to_string).unwrap_or_default(),
            format!(
                "unknown key in a region data file; expected {}",
                REGIONS_FILE_KEYS.join(", ")
            ),
        ));
    }
    let names = match data.get("regions").and_then(toml::Value::as_array) {
        Some(a) if !a.is_empty() && a.iter().all(toml::Value::is_str) => a.len(),
        Some(a) => {
            return Err((
                "regions".into(),
                toml::Value::Array(a.clone()).to_string(),
                "need a non-empty list of region names".into(),
            ));
        }
        None => {
            return Err((
                "regions".into(),
                "(missing)".into(),
                "a region data file lists its regions' names".into(),
            ));
        }
    };
    for key in ["one_way_ms", "jitter_ms", "loss"] {
        let Some(m) = data.get(key) else {
            if key == "one_way_ms" {
                return Err((
                    key.into(),
                    "(missing)".into(),
                    "the one-way latency matrix is required".into(),
                ));
            }
            continue;
        };
        let rows = m.as_array().map(Vec::as_slice).unwrap_or_default();
        let shaped = m.is_array()
            && rows.len() == names
            && rows
                .iter()
                .all(|r| r.as_array().is_some_and(|r| r.len() == names));
        if !shaped {
            return Err((
                key.into(),
                m.to_string(),
                format!("must be a {names}×{names} matrix, one row per region"),
            ));
        }
        let max = if key == "loss" { 1.0 } else { f64::MAX };
        for (a, row) in rows.iter().enumerate() {
            for (b, v) in row
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let x = v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
                if !x.is_some_and(|x| x.is_finite() && (0.0..=max).contains(&x)) {
                    let want = if key == "loss" {
                        "not a probability in [0, 1]"
                    } else {
                        "need a number of milliseconds ≥ 0"
                    };
                    return Err((format!("{key}[{a}][{b}]"), v.to_string(), want.into()));
                }
            }
        }
    }
    Ok(())
}

/// The path shown in messages: relative when possible.
pub fn display_path(p: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf())
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
