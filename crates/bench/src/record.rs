//! The machine-readable result of one run: what `bftbench run` writes and
//! what sweeps, tables and plots read. Plots are made from these files only.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KindRecord {
    pub count: u64,
    pub bytes: u64,
    pub per_decision: f64,
    pub bytes_per_decision: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub git_rev: String,
    pub cores: usize,
    pub os: String,
    pub arch: String,
    pub bftbench_version: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: u16,
    pub view: u64,
    pub committed: u64,
    pub view_changes: u64,
    pub retained: usize,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub rejected: u64,
    /// Virtual CPU seconds (sim) or process CPU seconds (quic).
    pub cpu_s: f64,
    pub faulty: bool,
    pub byzantine: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The resolved scenario (file plus overrides), as TOML-compatible JSON.
    pub scenario: serde_json::Value,
    pub protocol: String,
    pub n: usize,
    pub f: usize,
    pub runtime: String,
    pub crypto: String,
    pub seed: u64,
    pub git_rev: String,
    pub environment: Environment,
    /// Slots committed by every honest replica without a fault.
    pub decisions: u64,
    pub requests_issued: u64,
    /// Requests the load generator's clients refused themselves, never
    /// sent: the admission policy at the client edge (`[load]
    /// max_pending`, a bound on each client's pending requests). The same
    /// definition for every protocol and runtime; 0 without a policy.
    #[serde(default)]
    pub rejected_requests: u64,
    pub requests_committed: u64,
    /// Virtual (sim) or wall-clock (quic) seconds the run covered.
    pub duration_s: f64,
    pub warmup_s: f64,
    pub throughput_tx_s: f64,
    pub decisions_per_s: f64,
    pub latency_ms: LatencyMs,
    /// Of `decisions` (those of the honest replica that committed most), the
    /// ones that ordered no request: HotStuff's empty blocks, PBFT's null
    /// requests after a view change.
    #[serde(default)]
    pub empty_decisions: u64,
    /// Every protocol message (retransmissions included) over `decisions`,
    /// empty ones included.
    pub messages_per_decision: f64,
    pub bytes_per_decision: f64,
    /// Every protocol message and wire byte (retransmissions and catch-up
    /// included; client traffic not) over `requests_committed`: what one
    /// client request cost the replicas. The same definition for every
    /// protocol; the headline figure.
    #[serde(default)]
    pub messages_per_request: f64,
    #[serde(default)]
    pub bytes_per_request: f64,
    /// Every protocol message sent, by kind, retransmissions included.
    pub messages_by_kind: BTreeMap<String, KindRecord>,
    /// The part of `messages_by_kind` that were retransmissions or catch-up
    /// traffic (a message re-sent because its receiver showed it missed it,
    /// block and state fetches): what the protocol repeated, not what it
    /// needs when messages arrive.
    #[serde(default)]
    pub retransmissions_by_kind: BTreeMap<String, KindRecord>,
    #[serde(default)]
    pub retransmitted_messages: u64,
    #[serde(default)]
    pub retransmitted_bytes: u64,
    /// Catch-up traffic (`Protocol::CATCH_UP_KINDS`: PBFT `fetch`/`state`,
    /// QBFT `decided`, HotStuff `block-request`/`block-response`/
    /// `blocks-after`, and `snapshot-request`/`snapshot` in all three), all
    /// of it: requests for decided history and the answers carrying it.
    /// Part of `retransmitted_*` too, which also counts plain
    /// retransmissions.
    #[serde(default)]
    pub catch_up_messages: u64,
    #[serde(default)]
    pub catch_up_bytes: u64,
    /// Snapshots installed, summed over replicas: each time a replica
    /// beyond its peers' archives skipped to a snapshot f+1 of them offered
    /// alike (`bft_core::snapshot`).
    #[serde(default)]
    pub snapshots_installed: u64,
    pub client_messages: u64,
    pub client_bytes: u64,
    pub rejected: BTreeMap<String, u64>,
    /// Completed leader replacements ([`bft_sim::replacements`]): from the
    /// first honest view timeout to the first decision in a later view or
    /// round. The same definition for every protocol; measured by the
    /// simulator (None over QUIC, where it is not tracked).
    #[serde(default)]
    pub view_changes: Option<u64>,
    /// Everything every replica sent during those replacements (the new
    /// leader's proposal with its justification and the first decision's
    /// votes included), retransmissions not included.
    #[serde(default)]
    pub view_change_messages: Option<u64>,
    #[serde(default)]
    pub view_change_bytes: Option<u64>,
    /// Retransmissions and catch-up sent during them, apart.
    #[serde(default)]
    pub view_change_retransmitted: Option<u64>,
    /// Mean time of one replacement, seconds.
    #[serde(default)]
    pub view_change_s: Option<f64>,
    /// The protocol's own view-change counter, the most any honest replica
    /// reached. Not comparable across protocols: PBFT counts completed view
    /// changes, QBFT every round increment, HotStuff views left on a timeout
    /// certificate.
    #[serde(default)]
    pub protocol_view_changes: u64,
    pub safety_violations: Vec<String>,
    /// The liveness check after the network heals (simulator runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<LivenessRecord>,
    pub nodes: Vec<NodeRecord>,
    pub events: u64,
    pub trace_hash: String,
    /// Where the replicas kept their durable state and ledger: "model" (the
    /// simulator's model store, each write charged from the cost profile),
    /// "redb" (QUIC replicas with data directories) or "none" (QUIC
    /// replicas that keep nothing).
    #[serde(default)]
    pub store: String,
    /// The fsync policy of that store ("always" | "never"); None with no
    /// store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsync: Option<String>,
    /// Whether clients signed their requests and every replica checked the
    /// signatures (`[load] signed`): one Ed25519 verification per request
    /// per replica, the same for every protocol.
    #[serde(default = "signed_by_default")]
    pub signed_requests: bool,
    /// Peak resident memory of the process that ran the replicas, bytes:
    /// for an in-process QUIC run (`bftbench run --runtime quic`, `compare`
    /// and `saturate` over QUIC) every replica and the load generator
    /// together, reset at the start of each run (Linux `VmHWM` after
    /// writing 5 to `/proc/self/clear_refs`). None in the simulator (its
    /// memory is the simulation's, not a replica's), for `bftbench client`
    /// (the replicas are other processes) and where the reset or the
    /// reading is not available. The reset lowers the peak only to the
    /// resident memory at that moment: where a command runs several runs
    /// in one process (`saturate`, `sweep`, `compare`), memory an earlier
    /// run freed but the allocator kept counts from the start, so read it
    /// against [`Record::start_rss_bytes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// Resident memory of that process when the run started, right after
    /// the reset (Linux `VmRSS`): what [`Record::peak_rss_bytes`] cannot go
    /// below. Near the process's baseline for the first run of a process;
    /// after an earlier run in the same process, what that run left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_rss_bytes: Option<u64>,
    /// Each second of the run since the load started (warm-up included):
    /// requests completed in it, their p50 and p99 latency, and for an
    /// in-process QUIC run the process's resident memory sampled in it
    /// (`bft_load::series`; one definition for both runtimes and every
    /// protocol). What `bftbench plot` draws over time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub over_time: Vec<bft_load::SeriesPoint>,
    pub wall_s: f64,
    /// Latency CDF points (ms, fraction), for plots.
    #[serde(default)]
    pub latency_cdf: Vec<(f64, f64)>,
}

impl Environment {
    pub fn current() -> Environment {
        Environment {
            git_rev: git_rev(),
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            bftbench_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// `git rev-parse --short HEAD`, with `-dirty` for uncommitted changes
/// outside `results/`, or "unknown" outside a checkout.
pub fn git_rev() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            // results/ holds what runs write, not what they run: a compare
            // rewriting it must not mark its own later records dirty.
            let dirty = run(&[
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(top,exclude)results",
            ])
            .is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        None => "unknown".to_string(),
    }
}

/// What the liveness check after the network heals found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LivenessRecord {
    /// False when the scenario has no fault to heal from, too many faults
    /// (liveness is promised for at most f), or too short a duration.
    pub checked: bool,
    /// Why it was not checked, if it was not.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub skipped: String,
    pub heal_s: f64,
    pub bound_s: f64,
    /// How the bound was computed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rule: String,
    /// One line per honest replica that committed nothing within the bound.
    pub failures: Vec<String>,
}

/// Records written before requests were signed carry no
/// `signed_requests`; they had none.
fn signed_by_default() -> bool {
    false
}
