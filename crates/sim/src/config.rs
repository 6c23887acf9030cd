//! What a simulation is told to do: committee size, seed, network, load,
//! faults. These types are also the `[network]`, `[load]` and `[[faults]]`
//! tables of a scenario file, hence serde with `deny_unknown_fields`.

use bft_core::{Attack, BatchConfig, CryptoKind, Forgery, LeaderSchedule, Mutation, NodeId};
use bft_crypto::CostModel;
use serde::{Deserialize, Serialize};
use std::time::Duration;

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
        }
    }
}

/// How long a message takes from one endpoint to another.
#[derive(Clone, Debug, PartialEq)]
pub enum DelayModel {
    /// Every message takes exactly this long.
    Fixed(Duration),
    /// Uniform in `[min, max]`; messages may overtake each other.
    Uniform { min: Duration, max: Duration },
    /// One-way latency between regions plus uniform jitter (and per-link
    /// loss) from a region matrix.
    Regions(RegionMatrix),
}

/// Named regions with one-way latencies, per-link jitter and loss, and where
/// each node and the clients sit. Usually loaded from a data file under
/// `bench-configs/regions/` (`[network] regions_file`); checked, with
/// placements resolved to region indexes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RegionTable", into = "RegionTable")]
pub struct RegionMatrix {
    /// Region names, in matrix order.
    pub regions: Vec<String>,
    /// `one_way_ms[a][b]`: one-way latency from region a to region b.
    pub one_way_ms: Vec<Vec<f64>>,
    /// `jitter_ms[a][b]`: each message from a to b takes an extra delay
    /// uniform in `[0, jitter_ms[a][b]]` (empty: none).
    pub jitter_ms: Vec<Vec<f64>>,
    /// `loss[a][b]`: probability that a replica-to-replica message from a
    /// to b is lost (empty: none). Clients' messages are never lost.
    pub loss: Vec<Vec<f64>>,
    /// Region index of each node; node i sits in `placement[i % len]`.
    pub placement: Vec<usize>,
    /// Region index where clients sit.
    pub client_region: usize,
    /// Extra jitter bound added to every link's `jitter_ms`.
    pub jitter: Duration,
}

/// A region named by its index in `regions` or by its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RegionRef {
    Index(usize),
    Name(String),
}

impl Default for RegionRef {
    fn default() -> Self {
        RegionRef::Index(0)
    }
}

impl std::fmt::Display for RegionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegionRef::Index(i) => write!(f, "{i}"),
            RegionRef::Name(n) => write!(f, "\"{n}\""),
        }
    }
}

/// The `[network.regions]` table as written (or merged from a
/// `regions_file`): regions by index or by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionTable {
    pub regions: Vec<String>,
    pub one_way_ms: Vec<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jitter_ms: Vec<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss: Vec<Vec<f64>>,
    pub placement: Vec<RegionRef>,
    #[serde(default)]
    pub client_region: RegionRef,
    #[serde(default, with = "humantime_serde")]
    pub jitter: Duration,
}

/// Checks a k×k matrix of finite values in `range`; the error names `key`.
fn check_matrix(
    key: &str,
    m: &[Vec<f64>],
    k: usize,
    range: std::ops::RangeInclusive<f64>,
    what: &str,
) -> Result<(), String> {
    if m.len() != k || m.iter().any(|row| row.len() != k) {
        let rows: Vec<usize> = m.iter().map(Vec::len).collect();
        return Err(format!(
            "{key}: must be a {k}×{k} matrix, one row per region (got rows of lengths {rows:?})"
        ));
    }
    for (a, row) in m.iter().enumerate() {
        for (b, v) in row.iter().enumerate() {
            if !v.is_finite() || !range.contains(v) {
                return Err(format!("{key}[{a}][{b}] = {v}: {what}"));
            }
        }
    }
    Ok(())
}

impl TryFrom<RegionTable> for RegionMatrix {
    type Error = String;
    fn try_from(t: RegionTable) -> Result<Self, String> {
        let k = t.regions.len();
        if k == 0 {
            return Err("regions: at least one region is needed".into());
        }
        let mut names: Vec<&String> = t.regions.iter().collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("regions: \"{}\" is named twice", w[0]));
        }
        check_matrix(
            "one_way_ms",
            &t.one_way_ms,
            k,
            0.0..=f64::MAX,
            "not a latency (need a finite value ≥ 0)",
        )?;
        if !t.jitter_ms.is_empty() {
            check_matrix(
                "jitter_ms",
                &t.jitter_ms,
                k,
                0.0..=f64::MAX,
                "not a jitter bound (need a finite value ≥ 0)",
            )?;
        }
        if !t.loss.is_empty() {
            check_matrix("loss", &t.loss, k, 0.0..=1.0, "not a probability in [0, 1]")?;
        }
        if t.placement.is_empty() {
            return Err("placement: name a region (name or index) for each node".into());
        }
        let resolve = |key: &str, r: &RegionRef| -> Result<usize, String> {
            match r {
                RegionRef::Index(i) if *i < k => Ok(*i),
                RegionRef::Index(i) => Err(format!(
                    "{key} = {i}: region index out of range, there are {k} regions (0..{k})"
                )),
                RegionRef::Name(n) => t.regions.iter().position(|x| x == n).ok_or_else(|| {
                    format!(
                        "{key} = \"{n}\": no such region; regions are {}",
                        t.regions.join(", ")
                    )
                }),
            }
        };
        let placement = t
            .placement
            .iter()
            .enumerate()
            .map(|(i, r)| resolve(&format!("placement[{i}]"), r))
            .collect::<Result<Vec<_>, _>>()?;
        let client_region = resolve("client_region", &t.client_region)?;
        Ok(RegionMatrix {
            regions: t.regions,
            one_way_ms: t.one_way_ms,
            jitter_ms: t.jitter_ms,
            loss: t.loss,
            placement,
            client_region,
            jitter: t.jitter,
        })
    }
}

impl From<RegionMatrix> for RegionTable {
    fn from(m: RegionMatrix) -> RegionTable {
        let name = |i: usize| {
            m.regions
                .get(i)
                .map_or(RegionRef::Index(i), |n| RegionRef::Name(n.clone()))
        };
        RegionTable {
            placement: m.placement.iter().map(|&i| name(i)).collect(),
            client_region: name(m.client_region),
            regions: m.regions,
            one_way_ms: m.one_way_ms,
            jitter_ms: m.jitter_ms,
            loss: m.loss,
            jitter: m.jitter,
        }
    }
}

impl RegionMatrix {
    /// Regions by name: `one_way_ms` and node placement; no jitter, no loss.
    pub fn new(
        regions: &[&str],
        one_way_ms: Vec<Vec<f64>>,
        placement: &[&str],
        client_region: &str,
    ) -> Result<RegionMatrix, String> {
        RegionMatrix::try_from(RegionTable {
            regions: regions.iter().map(|r| (*r).to_string()).collect(),
            one_way_ms,
            placement: placement
                .iter()
                .map(|r| RegionRef::Name((*r).to_string()))
                .collect(),
            client_region: RegionRef::Name(client_region.to_string()),
            ..RegionTable::default()
        })
    }

    /// Checks shape and values; the error names the offending key.
    pub fn check(&self) -> Result<(), String> {
        RegionMatrix::try_from(RegionTable::from(self.clone())).map(|_| ())
    }

    pub fn region_of(&self, node: usize) -> usize {
        self.placement
            .get(node % self.placement.len().max(1))
            .copied()
            .unwrap_or(0)
    }

    /// How long node `i` of `n` waits to hear from a quorum of `q` (itself
    /// included, at zero): the q-th smallest one-way latency from it.
    pub fn quorum_latency(&self, i: usize, n: usize, q: usize) -> Duration {
        let mut lat: Vec<Duration> = (0..n)
            .map(|j| {
                if i == j {
                    Duration::ZERO
                } else {
                    self.one_way(self.region_of(i), self.region_of(j))
                }
            })
            .collect();
        lat.sort();
        lat.get(q.saturating_sub(1)).copied().unwrap_or_default()
    }

    /// The node with the lowest latency to a quorum of `q` (lowest id on a
    /// tie): the latency-aware leader.
    pub fn best_leader(&self, n: usize, q: usize) -> usize {
        (0..n)
            .min_by_key(|&i| (self.quorum_latency(i, n, q), i))
            .unwrap_or(0)
    }

    fn entry(m: &[Vec<f64>], a: usize, b: usize) -> f64 {
        m.get(a)
            .and_then(|r| r.get(b))
            .copied()
            .unwrap_or(0.0)
            .max(0.0)
    }

    pub fn one_way(&self, from_region: usize, to_region: usize) -> Duration {
        Duration::from_secs_f64(Self::entry(&self.one_way_ms, from_region, to_region) / 1000.0)
    }

    /// Upper bound of the jitter added to a message from region a to b.
    pub fn jitter_bound(&self, from_region: usize, to_region: usize) -> Duration {
        self.jitter
            + Duration::from_secs_f64(Self::entry(&self.jitter_ms, from_region, to_region) / 1000.0)
    }

    /// Probability that a replica message from region a to b is lost.
    pub fn link_loss(&self, from_region: usize, to_region: usize) -> f64 {
        Self::entry(&self.loss, from_region, to_region).min(1.0)
    }
}

/// Messages across groups are dropped between `start` and `end`. Nodes not
/// named in any group form one more group together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    #[serde(with = "humantime_serde")]
    pub end: Duration,
    pub groups: Vec<Vec<NodeId>>,
}

impl Partition {
    /// `groups` (node indices) cut off from each other from `start` to `end`.
    pub fn between(start: Duration, end: Duration, groups: &[&[u16]]) -> Partition {
        Partition {
            start,
            end,
            groups: groups
                .iter()
                .map(|group| group.iter().map(|&i| NodeId(i)).collect())
                .collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "NetworkTable", into = "NetworkTable")]
pub struct NetworkConfig {
    pub delay: DelayModel,
    /// Probability that a replica-to-replica message is lost.
    pub loss: f64,
    pub partitions: Vec<Partition>,
}

/// The `[network]` table as written in a scenario file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkTable {
    /// `fixed` (default), `uniform` or `regions`.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay: Option<Duration>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub min: Option<Duration>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub max: Option<Duration>,
    /// `model = "regions"`: the matrix, inline or merged from the data file
    /// a scenario names with `regions_file` (see `bftbench::scenario`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<RegionTable>,
    #[serde(default)]
    pub loss: f64,
    #[serde(default)]
    pub partitions: Vec<Partition>,
}

impl TryFrom<NetworkTable> for NetworkConfig {
    type Error = String;
    fn try_from(t: NetworkTable) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&t.loss) {
            return Err(format!(
                "loss = {}: must be a probability in [0, 1]",
                t.loss
            ));
        }
        let delay = match t.model.as_deref().unwrap_or("fixed") {
            "fixed" => DelayModel::Fixed(t.delay.unwrap_or(Duration::from_millis(1))),
            "uniform" => {
                let (Some(min), Some(max)) = (t.min, t.max) else {
                    return Err("model = \"uniform\" needs `min` and `max`".into());
                };
                if min > max {
                    return Err(format!("min = {min:?} is above max = {max:?}"));
                }
                DelayModel::Uniform { min, max }
            }
            "regions" => {
                let Some(m) = t.regions else {
                    return Err("model = \"regions\" needs a [network.regions] table".into());
                };
                DelayModel::Regions(
                    RegionMatrix::try_from(m).map_err(|e| format!("network.regions.{e}"))?,
                )
            }
            other => {
                return Err(format!(
                    "model = \"{other}\": expected fixed, uniform or regions"
                ));
            }
        };
        for p in &t.partitions {
            if p.start > p.end {
                return Err(format!(
                    "partitions: start {:?} is after end {:?}",
                    p.start, p.end
                ));
            }
        }
        Ok(NetworkConfig {
            delay,
            loss: t.loss,
            partitions: t.partitions,
        })
    }
}

impl From<NetworkConfig> for NetworkTable {
    fn from(c: NetworkConfig) -> Self {
        let mut t = NetworkTable {
            loss: c.loss,
            partitions: c.partitions,
            ..Default::default()
        };
        match c.delay {
            DelayModel::Fixed(d) => {
                t.model = Some("fixed".into());
                t.delay = Some(d);
            }
            DelayModel::Uniform { min, max } => {
                t.model = Some("uniform".into());
                (t.min, t.max) = (Some(min), Some(max));
            }
            DelayModel::Regions(m) => {
                t.model = Some("regions".into());
                t.regions = Some(RegionTable::from(m));
            }
        }
        t
    }
}

impl NetworkConfig {
    pub fn fixed(delay: Duration) -> NetworkConfig {
        NetworkConfig {
            delay: DelayModel::Fixed(delay),
            loss: 0.0,
            partitions: Vec::new(),
        }
    }
    pub fn uniform(min: Duration, max: Duration) -> NetworkConfig {
        NetworkConfig {
            delay: DelayModel::Uniform { min, max },
            loss: 0.0,
            partitions: Vec::new(),
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig::fixed(Duration::from_millis(1))
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoadMode {
    /// Each client keeps `outstanding` requests in flight.
    Closed { outstanding: u32 },
    /// Requests are issued at `rate` per second in total, on a fixed
    /// schedule whatever the system does (latency is measured from the
    /// intended send time: no coordinated omission).
    Open { rate: f64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LoadTable", into = "LoadTable")]
pub struct LoadConfig {
    pub mode: LoadMode,
    pub clients: u32,
    /// Payload bytes per request.
    pub tx_size: usize,
    /// Stop issuing after this many requests in total.
    pub total: Option<u64>,
    /// Requests intended before this are not measured.
    pub warmup: Duration,
}

/// The `[load]` table as written in a scenario file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadTable {
    /// `closed` (default) or `open`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Open loop: requests per second, all clients together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Closed loop: requests in flight per client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outstanding: Option<u32>,
    #[serde(default = "one")]
    pub clients: u32,
    #[serde(default = "default_tx_size")]
    pub tx_size: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    pub warmup: Duration,
}

impl TryFrom<LoadTable> for LoadConfig {
    type Error = String;
    fn try_from(t: LoadTable) -> Result<Self, String> {
        let mode = match t.mode.as_deref().unwrap_or("closed") {
            "closed" => {
                if t.rate.is_some() {
                    return Err("rate: only for mode = \"open\"".into());
                }
                LoadMode::Closed {
                    outstanding: t.outstanding.unwrap_or(1),
                }
            }
            "open" => {
                if t.outstanding.is_some() {
                    return Err("outstanding: only for mode = \"closed\"".into());
                }
                match t.rate {
                    Some(r) if r.is_finite() && r > 0.0 => LoadMode::Open { rate: r },
                    Some(r) => return Err(format!("rate = {r}: must be > 0 requests/s")),
                    None => return Err("mode = \"open\" needs `rate` (requests/s)".into()),
                }
            }
            other => return Err(format!("mode = \"{other}\": expected closed or open")),
        };
        if t.clients == 0 {
            return Err("clients = 0: need at least one client".into());
        }
        Ok(LoadConfig {
            mode,
            clients: t.clients,
            tx_size: t.tx_size,
            total: t.total,
            warmup: t.warmup,
        })
    }
}

impl From<LoadConfig> for LoadTable {
    fn from(c: LoadConfig) -> Self {
        let (mode, rate, outstanding) = match c.mode {
            LoadMode::Closed { outstanding } => ("closed", None, Some(outstanding)),
            LoadMode::Open { rate } => ("open", Some(rate), None),
        };
        LoadTable {
            mode: Some(mode.into()),
            rate,
            outstanding,
            clients: c.clients,
            tx_size: c.tx_size,
            total: c.total,
            warmup: c.warmup,
        }
    }
}

fn one() -> u32 {
    1
}
fn default_tx_size() -> usize {
    128
}

impl LoadConfig {
    pub fn closed(clients: u32, outstanding: u32, tx_size: usize) -> LoadConfig {
        LoadConfig {
            mode: LoadMode::Closed { outstanding },
            clients,
            tx_size,
            total: None,
            warmup: Duration::ZERO,
        }
    }
    pub fn open(rate: f64, clients: u32, tx_size: usize) -> LoadConfig {
        LoadConfig {
            mode: LoadMode::Open { rate },
            clients,
            tx_size,
            total: None,
            warmup: Duration::ZERO,
        }
    }
    /// No generated load (tests submit requests by hand).
    pub fn none() -> LoadConfig {
        LoadConfig::closed(0, 0, 0)
    }
    pub fn with_total(mut self, total: u64) -> LoadConfig {
        self.total = Some(total);
        self
    }
    pub fn with_warmup(mut self, warmup: Duration) -> LoadConfig {
        self.warmup = warmup;
        self
    }
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig::closed(1, 1, 128)
    }
}

/// What a faulty replica does while its fault is active (`at` ≤ t < `until`).
///
/// Benign faults (crash without amnesia, silence, omission, delay) leave the
/// replica honest: its commits still pass the oracle. Everything else makes
/// it Byzantine: excluded from the oracle and from liveness, and counted
/// against f.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Stops handling anything at `start`. With `end` it restarts then:
    /// with its state (timers that fell due while down fire at restart), or,
    /// with `amnesia`, as a fresh replica that forgot its last voted view,
    /// lock and prepared certificates (Byzantine-equivalent).
    Crash { amnesia: bool },
    /// Keeps receiving but sends nothing.
    Silent,
    /// Sends nothing to these peers (omission to a subset).
    Omission { peers: Vec<NodeId> },
    /// Everything it sends leaves this much later.
    Delay { by: Duration },
    /// Besides each message, re-sends one of its own earlier messages
    /// (a stale replay) to the same recipient.
    StaleReplay,
    /// Ignores the requests of these clients (as leader it never proposes
    /// them).
    Censor { clients: Vec<u32> },
    /// A protocol-specific attack, built by `Adversarial::tamper`.
    Attack(Attack),
}

impl FaultKind {
    /// Does this fault make the replica Byzantine (outside the oracle)?
    pub fn is_byzantine(&self) -> bool {
        match self {
            FaultKind::Crash { amnesia } => *amnesia,
            FaultKind::Silent | FaultKind::Omission { .. } | FaultKind::Delay { .. } => false,
            FaultKind::StaleReplay | FaultKind::Censor { .. } | FaultKind::Attack(_) => true,
        }
    }

    /// The `behaviour` name in a scenario file.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Crash { .. } => "crash",
            FaultKind::Silent => "silent",
            FaultKind::Omission { .. } => "omission",
            FaultKind::Delay { .. } => "delay",
            FaultKind::StaleReplay => "stale-replay",
            FaultKind::Censor { .. } => "censor",
            FaultKind::Attack(a) => match a {
                Attack::Equivocate => "equivocate",
                Attack::DoubleVote => "double-vote",
                Attack::Forge(_) => "forge",
                Attack::InflateView(_) => "inflate-view",
                Attack::Mutate(_) => "mutate",
                Attack::BadSignature => "bad-signature",
                Attack::Fork(_) => "fork",
            },
        }
    }
}

/// Every `behaviour` a `[[faults]]` table may name.
pub const BEHAVIOURS: [&str; 13] = [
    "crash",
    "silent",
    "omission",
    "delay",
    "stale-replay",
    "censor",
    "equivocate",
    "double-vote",
    "forge",
    "inflate-view",
    "mutate",
    "bad-signature",
    "fork",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FaultTable", into = "FaultTable")]
pub struct Fault {
    pub node: NodeId,
    pub kind: FaultKind,
    pub start: Duration,
    pub end: Option<Duration>,
}

/// A `[[faults]]` table as written: the behaviour and its parameters side by
/// side, checked into a [`Fault`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultTable {
    pub node: NodeId,
    pub behaviour: String,
    #[serde(default, with = "humantime_serde")]
    pub at: Duration,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<Duration>,
    /// crash: restart with no memory (needs `until`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub amnesia: bool,
    /// omission: the peers it never sends to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<NodeId>,
    /// delay: how late everything it sends leaves.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay: Option<Duration>,
    /// censor: the clients whose requests it ignores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<u32>,
    /// forge: below-quorum, duplicate-signers, wrong-round or wrong-digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forgery: Option<Forgery>,
    /// inflate-view: how far ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<u64>,
    /// mutate: round-plus-one, round-minus-one, stale-digest or swap-sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutation: Option<Mutation>,
    /// fork: the seed of the per-view plan (`bft_core::ForkChoice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<u64>,
}

impl TryFrom<FaultTable> for Fault {
    type Error = String;
    fn try_from(t: FaultTable) -> Result<Fault, String> {
        let b = t.behaviour.as_str();
        let needs = |what: &str| format!("behaviour = \"{b}\" needs `{what}`");
        let kind = match b {
            "crash" => {
                if t.amnesia && t.until.is_none() {
                    return Err("amnesia = true needs `until` (the restart time)".into());
                }
                FaultKind::Crash { amnesia: t.amnesia }
            }
            "silent" => FaultKind::Silent,
            "omission" => {
                if t.peers.is_empty() {
                    return Err(needs("peers"));
                }
                FaultKind::Omission {
                    peers: t.peers.clone(),
                }
            }
            "delay" => FaultKind::Delay {
                by: t.delay.ok_or_else(|| needs("delay"))?,
            },
            "stale-replay" => FaultKind::StaleReplay,
            "censor" => {
                if t.clients.is_empty() {
                    return Err(needs("clients"));
                }
                FaultKind::Censor {
                    clients: t.clients.clone(),
                }
            }
            "equivocate" => FaultKind::Attack(Attack::Equivocate),
            "double-vote" => FaultKind::Attack(Attack::DoubleVote),
            "forge" => FaultKind::Attack(Attack::Forge(t.forgery.ok_or_else(|| needs("forgery"))?)),
            "inflate-view" => {
                FaultKind::Attack(Attack::InflateView(t.by.ok_or_else(|| needs("by"))?))
            }
            "mutate" => {
                FaultKind::Attack(Attack::Mutate(t.mutation.ok_or_else(|| needs("mutation"))?))
            }
            "bad-signature" => FaultKind::Attack(Attack::BadSignature),
            "fork" => FaultKind::Attack(Attack::Fork(t.plan.ok_or_else(|| needs("plan"))?)),
            other => {
                return Err(format!(
                    "behaviour = \"{other}\": expected one of {}",
                    BEHAVIOURS.join(", ")
                ));
            }
        };
        if t.amnesia && !matches!(kind, FaultKind::Crash { .. }) {
            return Err(format!("amnesia applies to crash only, not \"{b}\""));
        }
        if let Some(end) = t.until {
            if end < t.at {
                return Err(format!("until = {end:?} is before at = {:?}", t.at));
            }
        }
        Ok(Fault {
            node: t.node,
            kind,
            start: t.at,
            end: t.until,
        })
    }
}

impl From<Fault> for FaultTable {
    fn from(f: Fault) -> FaultTable {
        let mut t = FaultTable {
            node: f.node,
            behaviour: f.kind.name().to_string(),
            at: f.start,
            until: f.end,
            ..Default::default()
        };
        match f.kind {
            FaultKind::Crash { amnesia } => t.amnesia = amnesia,
            FaultKind::Omission { peers } => t.peers = peers,
            FaultKind::Delay { by } => t.delay = Some(by),
            FaultKind::Censor { clients } => t.clients = clients,
            FaultKind::Attack(Attack::Forge(g)) => t.forgery = Some(g),
            FaultKind::Attack(Attack::InflateView(by)) => t.by = Some(by),
            FaultKind::Attack(Attack::Mutate(m)) => t.mutation = Some(m),
            FaultKind::Attack(Attack::Fork(plan)) => t.plan = Some(plan),
            FaultKind::Silent | FaultKind::StaleReplay | FaultKind::Attack(_) => {}
        }
        t
    }
}

impl Fault {
    pub fn new(node: NodeId, kind: FaultKind, start: Duration) -> Fault {
        Fault {
            node,
            kind,
            start,
            end: None,
        }
    }
    pub fn crash(node: NodeId, at: Duration) -> Fault {
        Fault::new(node, FaultKind::Crash { amnesia: false }, at)
    }
    pub fn silent(node: NodeId, from: Duration) -> Fault {
        Fault::new(node, FaultKind::Silent, from)
    }
    pub fn attack(node: NodeId, attack: Attack, from: Duration) -> Fault {
        Fault::new(node, FaultKind::Attack(attack), from)
    }
    pub fn until(mut self, end: Duration) -> Fault {
        self.end = Some(end);
        self
    }
    /// Active at `t`?
    pub fn active_at(&self, t: Duration) -> bool {
        t >= self.start && self.end.is_none_or(|e| t < e)
    }
}

/// Twins (Bano et al., 2022): up to f identities run as two instances that
/// share a key but not state, under a partition schedule of the instances
/// per round; afterwards the network heals.
///
/// Instance `i < n` is node i; instance `n + j` is the twin of `nodes[j]`.
/// Round r covers virtual time `[r·round, (r+1)·round)`; a message sent in
/// round r reaches only the instances in its sender's group of
/// `partitions[r]` (instances a round's groups leave out are isolated).
/// After the last round every instance reaches every other. The leader of
/// each round's view comes from the leader schedule's prefix
/// (`SimConfig::leaders`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Twins {
    pub nodes: Vec<NodeId>,
    #[serde(with = "humantime_serde")]
    pub round: Duration,
    #[serde(default)]
    pub partitions: Vec<Vec<Vec<u16>>>,
}

impl Twins {
    /// When the last round ends and the network heals.
    pub fn heal(&self) -> Duration {
        self.round
            .saturating_mul(u32::try_from(self.partitions.len()).unwrap_or(u32::MAX))
    }

    /// The round containing `t`, or None once healed.
    pub fn round_at(&self, t: Duration) -> Option<&[Vec<u16>]> {
        if self.round.is_zero() {
            return None;
        }
        let r = t.as_nanos() / self.round.as_nanos();
        self.partitions
            .get(usize::try_from(r).ok()?)
            .map(Vec::as_slice)
    }

    /// May instance `a`'s message reach instance `b` when sent at `t`?
    pub fn connected(&self, t: Duration, a: u16, b: u16) -> bool {
        let Some(groups) = self.round_at(t) else {
            return true;
        };
        groups.iter().any(|g| g.contains(&a) && g.contains(&b))
    }

    /// Checks ids against a committee of `n`.
    pub fn check(&self, n: usize) -> Result<(), String> {
        let instances = n + self.nodes.len();
        if let Some(id) = self.nodes.iter().find(|id| id.index() >= n) {
            return Err(format!(
                "twins.nodes: node {id} is not in the committee of {n}"
            ));
        }
        let mut seen = self.nodes.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != self.nodes.len() {
            return Err("twins.nodes: a node is named twice".into());
        }
        if self.round.is_zero() && !self.partitions.is_empty() {
            return Err("twins.round = 0s: a round needs a length".into());
        }
        for (r, groups) in self.partitions.iter().enumerate() {
            for g in groups {
                if let Some(i) = g.iter().find(|&&i| usize::from(i) >= instances) {
                    return Err(format!(
                        "twins.partitions[{r}]: instance {i}, but there are {instances} (0..{n} are the nodes, {n}.. their twins)"
                    ));
                }
            }
        }
        Ok(())
    }
}
