//! The `[network]` table: delay models, the region matrix of a WAN, and
//! partitions.

use bft_core::NodeId;
use serde::{Deserialize, Serialize};
use std::time::Duration;

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
