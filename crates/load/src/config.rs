//! The `[load]` table: open- or closed-loop clients, request size, how
//! many requests and the warm-up.

use serde::{Deserialize, Serialize};
use std::time::Duration;

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
    /// Clients sign their requests and every replica checks the signatures
    /// (`bft_core::client_auth`); the default. With `false` requests carry
    /// no signature and replicas check none: one Ed25519 verification per
    /// request per replica saved, and nothing stops a Byzantine leader
    /// from committing a payload of its own under a real request id (the
    /// oracle still reports it).
    pub signed: bool,
    /// Open loop, the admission policy at the client edge: a client keeps
    /// at most this many requests pending (sent, not yet reported committed
    /// by f+1 replicas); a request its schedule calls for beyond that is
    /// refused by the client itself, never sent, and counted as rejected
    /// (`rejected_requests`). Past saturation this bounds what the replicas
    /// hold and so the latency of what they commit, at the price of the
    /// refused requests; None (the default) sends every request however
    /// many are pending.
    pub max_pending: Option<u32>,
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
    #[serde(default = "yes")]
    pub signed: bool,
    /// Open loop: requests pending per client at most (see
    /// [`LoadConfig::max_pending`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pending: Option<u32>,
}

impl TryFrom<LoadTable> for LoadConfig {
    type Error = String;
    fn try_from(t: LoadTable) -> Result<Self, String> {
        let mode = match t.mode.as_deref().unwrap_or("closed") {
            "closed" => {
                if t.rate.is_some() {
                    return Err("rate: only for mode = \"open\"".into());
                }
                if t.max_pending.is_some() {
                    return Err(
                        "max_pending: only for mode = \"open\" (a closed loop keeps `outstanding` pending)"
                            .into(),
                    );
                }
                LoadMode::Closed {
                    outstanding: t.outstanding.unwrap_or(1),
                }
            }
            "open" => {
                if t.max_pending == Some(0) {
                    return Err(
                        "max_pending = 0: a client must keep at least one request pending".into(),
                    );
                }
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
            signed: t.signed,
            max_pending: t.max_pending,
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
            signed: c.signed,
            max_pending: c.max_pending,
        }
    }
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
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
            signed: true,
            max_pending: None,
        }
    }
    pub fn open(rate: f64, clients: u32, tx_size: usize) -> LoadConfig {
        LoadConfig {
            mode: LoadMode::Open { rate },
            clients,
            tx_size,
            total: None,
            warmup: Duration::ZERO,
            signed: true,
            max_pending: None,
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
    /// At most `n` requests pending per client (see
    /// [`LoadConfig::max_pending`]).
    pub fn with_max_pending(mut self, n: u32) -> LoadConfig {
        self.max_pending = Some(n);
        self
    }
    /// Unsigned requests, unchecked (see [`LoadConfig::signed`]).
    pub fn unsigned(mut self) -> LoadConfig {
        self.signed = false;
        self
    }
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig::closed(1, 1, 128)
    }
}
