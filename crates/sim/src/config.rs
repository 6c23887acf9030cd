//! What a simulation is told to do: committee size, seed, network, load,
//! faults. These types are also the `[network]`, `[load]` and `[[faults]]`
//! tables of a scenario file, hence serde with `deny_unknown_fields`.

use bft_core::{BatchConfig, CryptoKind, LeaderSchedule, NodeId};
use bft_crypto::CostModel;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    pub nodes: usize,
    pub seed: u64,
    pub crypto: CryptoKind,
    /// Virtual CPU charged per crypto operation (for both kinds of crypto).
    pub cost: CostModel,
    /// Virtual CPU charged per event a node handles, besides crypto: decoding,
    /// state updates, encoding.
    pub handling_cpu: Duration,
    /// Virtual-time limit of `run()`.
    pub duration: Duration,
    pub network: NetworkConfig,
    pub load: LoadConfig,
    pub batch: BatchConfig,
    pub faults: Vec<Fault>,
    /// Who leads each view; `None` is round-robin.
    pub leaders: Option<LeaderSchedule>,
    /// Keep every node's committed decisions (tests read them); off for long
    /// sweeps to keep memory flat.
    pub keep_ledgers: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 4,
            seed: 1,
            crypto: CryptoKind::Model,
            cost: CostModel::default(),
            handling_cpu: Duration::from_micros(2),
            duration: Duration::from_secs(10),
            network: NetworkConfig::default(),
            load: LoadConfig::default(),
            batch: BatchConfig::default(),
            faults: Vec::new(),
            leaders: None,
            keep_ledgers: true,
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
    /// One-way latency between regions plus uniform jitter.
    Regions(RegionMatrix),
}

/// Named regions with one-way latencies, and where each node and the clients
/// sit. Usually loaded from a data file under `bench-configs/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionMatrix {
    /// Region names, in matrix order.
    pub regions: Vec<String>,
    /// `one_way_ms[a][b]`: one-way latency from region a to region b.
    pub one_way_ms: Vec<Vec<f64>>,
    /// Region index of each node; node i sits in `placement[i % len]`.
    pub placement: Vec<usize>,
    /// Region index where clients sit.
    #[serde(default)]
    pub client_region: usize,
    #[serde(default, with = "humantime_serde")]
    pub jitter: Duration,
}

impl RegionMatrix {
    /// Checks shape and values; the error names the offending key.
    pub fn check(&self) -> Result<(), String> {
        let k = self.regions.len();
        if k == 0 {
            return Err("regions: at least one region is needed".into());
        }
        if self.one_way_ms.len() != k || self.one_way_ms.iter().any(|row| row.len() != k) {
            return Err(format!(
                "one_way_ms: must be a {k}×{k} matrix, one row per region"
            ));
        }
        if let Some(v) = self
            .one_way_ms
            .iter()
            .flatten()
            .find(|v| !v.is_finite() || **v < 0.0)
        {
            return Err(format!(
                "one_way_ms: {v} is not a latency (need a finite value ≥ 0)"
            ));
        }
        if self.placement.is_empty() {
            return Err("placement: name a region index for each node".into());
        }
        if let Some(p) = self
            .placement
            .iter()
            .chain([&self.client_region])
            .find(|p| **p >= k)
        {
            return Err(format!(
                "placement/client_region: region index {p} but only {k} regions"
            ));
        }
        Ok(())
    }

    pub fn region_of(&self, node: usize) -> usize {
        self.placement
            .get(node % self.placement.len().max(1))
            .copied()
            .unwrap_or(0)
    }

    pub fn one_way(&self, from_region: usize, to_region: usize) -> Duration {
        let ms = self
            .one_way_ms
            .get(from_region)
            .and_then(|r| r.get(to_region))
            .copied();
        Duration::from_secs_f64(ms.unwrap_or(0.0).max(0.0) / 1000.0)
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<RegionMatrix>,
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
                m.check().map_err(|e| format!("network.regions.{e}"))?;
                DelayModel::Regions(m)
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
                t.regions = Some(m);
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// Stops handling anything at `start`; with `end`, resumes with its
    /// state (timers that fell due while down fire at restart).
    Crash,
    /// Keeps receiving but sends nothing between `start` and `end`.
    Silent,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub node: NodeId,
    #[serde(rename = "behaviour")]
    pub kind: FaultKind,
    #[serde(default, with = "humantime_serde", rename = "at")]
    pub start: Duration,
    #[serde(default, with = "humantime_serde", rename = "until")]
    pub end: Option<Duration>,
}

impl Fault {
    pub fn crash(node: NodeId, at: Duration) -> Fault {
        Fault {
            node,
            kind: FaultKind::Crash,
            start: at,
            end: None,
        }
    }
    pub fn silent(node: NodeId, from: Duration) -> Fault {
        Fault {
            node,
            kind: FaultKind::Silent,
            start: from,
            end: None,
        }
    }
    pub fn until(mut self, end: Duration) -> Fault {
        self.end = Some(end);
        self
    }
}
