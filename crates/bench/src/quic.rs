//! `runtime = "quic"`: the same scenario over real QUIC sockets on loopback
//! (all nodes and clients in this process), and the multi-process commands
//! (`keygen`, `node`, `client`). Real crypto always.

use crate::BenchError;
use crate::measure::{Measured, latency_cdf, record};
use crate::protocols::BenchProtocol;
use crate::record::{NodeRecord, Record};
use crate::scenario::Scenario;
use bft_core::{NodeId, Protocol};
use bft_net::{ClusterFile, LocalClusterConfig, NodeSummary};
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Unsupported(format!("cannot start the tokio runtime: {e}")))
}

/// What a QUIC run may add to the scenario (command-line flags).
#[derive(Clone, Debug, Default)]
pub struct QuicOptions {
    /// Serve each replica's `GET /metrics`: in-process replica i on this
    /// address's port + i (port 0: an ephemeral port each); for `node`,
    /// exactly this address.
    pub metrics: Option<std::net::SocketAddr>,
    /// Persist each replica's durable state and ledger: for `node`, in
    /// exactly this directory; in process, replica i in `node-<i>` below
    /// it. None: replicas keep nothing.
    pub store: Option<bft_net::durable::StoreConfig>,
    /// `node` only: serve `POST /submit` ([`bft_net::ingress`]) there.
    pub http: Option<bft_net::ingress::IngressConfig>,
}

/// The scenario's `[leaders]` as a leader schedule for a committee of `n`
/// (the cluster's size, whatever the scenario's `nodes` says), the one the
/// simulator would use.
pub fn leader_schedule(
    s: &Scenario,
    n: usize,
    file: &Path,
) -> Result<Option<bft_core::LeaderSchedule>, BenchError> {
    let mut s = s.clone();
    s.nodes = n;
    s.leader_schedule()
        .map_err(|(key, value, reason)| BenchError::Invalid {
            file: file.to_path_buf(),
            key,
            value,
            reason,
        })
}

/// Runs n replicas and the clients in this process on 127.0.0.1.
pub fn run_local<P: Protocol>(s: &Scenario, proto: P::Config) -> Result<Record, BenchError> {
    run_local_with::<P>(s, proto, &QuicOptions::default())
}

/// Runs the scenario over QUIC in this process, with `options`: the
/// protocol from the scenario's `protocol` line.
pub fn run_scenario(s: &Scenario, options: &QuicOptions) -> Result<Record, BenchError> {
    crate::with_protocol!(s.protocol, P => run_local_with::<P>(s, P::config(s), options))
}

/// [`run_local`] with [`QuicOptions`]. The committee leads by the
/// scenario's `[leaders]` exactly as in the simulator.
pub fn run_local_with<P: Protocol>(
    s: &Scenario,
    proto: P::Config,
    options: &QuicOptions,
) -> Result<Record, BenchError> {
    let store = StoreDirs::for_run(s, options)?;
    let cfg = LocalClusterConfig {
        nodes: s.nodes,
        seed: s.seed,
        load: s.load.clone(),
        batch: s.batch,
        duration: s.duration,
        cost: s.cost,
        metrics: options.metrics,
        leaders: leader_schedule(s, s.nodes, Path::new("(scenario)"))?,
        store: store.config.clone(),
        ..LocalClusterConfig::default()
    };
    let peak_rss = reset_peak_rss();
    let start_rss = peak_rss.and_then(|()| rss_bytes());
    let sampler = RssSampler::start();
    let r = runtime()?.block_on(bft_net::run_local_cluster::<P>(cfg, proto));
    let rss = sampler.stop();
    let r = r?;
    let mut series = r.series.clone();
    let since_load = |at: Instant| {
        at.checked_duration_since(r.load_started)
            .map(|d| d.as_secs_f64())
    };
    let samples: Vec<(f64, u64)> = rss
        .into_iter()
        .filter_map(|(at, bytes)| since_load(at).map(|t| (t, bytes)))
        .collect();
    bft_load::series::add_rss(&mut series, &samples);
    let load_s = r.load_wall.as_secs_f64();
    let measured = Measured {
        runtime: "quic",
        stats: r.stats.clone(),
        decisions: r.max_decisions,
        empty_decisions: r.empty_decisions,
        requests_issued: r.requests_issued,
        rejected_requests: r.requests_rejected,
        requests_committed: r.requests_committed,
        duration_s: load_s,
        throughput_tx_s: r.throughput(s.load.warmup),
        latency: r.latency,
        latency_cdf: latency_cdf(&r.latency_histogram),
        client_messages: r.client_messages,
        client_bytes: r.client_bytes,
        view_changes: r.view_changes,
        replacements: None,
        // The oracle lives in the simulator; over QUIC the replicas' own
        // checks are all there is, so no violations are reported here.
        violations: Vec::new(),
        liveness: None,
        nodes: r
            .statuses
            .iter()
            .enumerate()
            .map(|(i, st)| NodeRecord {
                id: i as u16,
                view: st.view,
                committed: st.committed,
                view_changes: st.view_changes,
                retained: st.retained,
                cpu_s: r.cpu_s_per_node.get(i).copied().unwrap_or(0.0),
                ..NodeRecord::default()
            })
            .collect(),
        events: 0,
        trace_hash: String::new(),
        catch_up_kinds: P::CATCH_UP_KINDS,
        store: if store.config.is_some() {
            "redb"
        } else {
            "none"
        },
        fsync: store.config.as_ref().map(|s| s.fsync.as_str()),
        peak_rss_bytes: peak_rss.and_then(|()| peak_rss_bytes()),
        start_rss_bytes: start_rss,
        series,
        wall: r.wall,
    };
    Ok(record(s, measured))
}

/// Samples this process's resident memory (`VmRSS`) once a second on a
/// thread of its own, for [`Record::over_time`].
struct RssSampler {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<Vec<(Instant, u64)>>,
}

impl RssSampler {
    fn start() -> RssSampler {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            loop {
                if let Some(bytes) = rss_bytes() {
                    samples.push((Instant::now(), bytes));
                }
                match stopped.recv_timeout(std::time::Duration::from_secs(1)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return samples,
                }
            }
        });
        RssSampler { stop, thread }
    }

    /// The samples so far (none where `/proc` is not there).
    fn stop(self) -> Vec<(Instant, u64)> {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or_default()
    }
}

/// Resets the process's peak resident set (Linux: 5 written to
/// `/proc/self/clear_refs`) to what is resident now, so that
/// [`peak_rss_bytes`] does not carry an earlier run's peak; memory an
/// earlier run freed but the allocator kept still counts (see
/// [`crate::record::Record::start_rss_bytes`]). None where it cannot.
fn reset_peak_rss() -> Option<()> {
    std::fs::write("/proc/self/clear_refs", "5").ok()
}

/// The process's resident set now, bytes (`VmRSS` in `/proc/self/status`).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kb(&status, "VmRSS:")
}

/// The process's peak resident set since the last reset, bytes (`VmHWM`
/// in `/proc/self/status`).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

/// `VmHWM:   123456 kB` → 123456 · 1024.
fn parse_vm_hwm(status: &str) -> Option<u64> {
    parse_status_kb(status, "VmHWM:")
}

/// `FIELD   123456 kB` of `/proc/self/status` → 123456 · 1024.
fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    let mut fields = line.split_whitespace().skip(1);
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next()? {
        "kB" => value.checked_mul(1024),
        _ => None,
    }
}

/// Where an in-process QUIC run's replicas persist: the `--data-dir` given
/// (kept), or, with `[storage] persist = true` (the default), a fresh
/// directory under the OS temp dir, removed when the run ends; none with
/// `persist = false`.
struct StoreDirs {
    config: Option<bft_net::durable::StoreConfig>,
    temporary: Option<std::path::PathBuf>,
}

impl StoreDirs {
    fn for_run(s: &Scenario, options: &QuicOptions) -> Result<StoreDirs, BenchError> {
        if let Some(given) = &options.store {
            if !s.storage.persist {
                return Err(BenchError::Unsupported(format!(
                    "--data-dir {}: the scenario says [storage] persist = false",
                    given.dir.display()
                )));
            }
            return Ok(StoreDirs {
                config: Some(given.clone()),
                temporary: None,
            });
        }
        if !s.storage.persist {
            return Ok(StoreDirs {
                config: None,
                temporary: None,
            });
        }
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("bftbench-store-{}-{run}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(StoreDirs {
            config: Some(bft_net::durable::StoreConfig {
                dir: dir.clone(),
                fsync: s.storage.fsync,
            }),
            temporary: Some(dir),
        })
    }
}

impl Drop for StoreDirs {
    fn drop(&mut self) {
        if let Some(dir) = &self.temporary {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Writes a cluster file and key files for `nodes` replicas and `clients`
/// clients.
pub fn keygen(
    nodes: usize,
    clients: u32,
    base: std::net::SocketAddr,
    seed: Option<u64>,
    out_dir: &Path,
) -> Result<ClusterFile, BenchError> {
    Ok(bft_net::keygen(nodes, clients, base, seed, out_dir)?)
}

/// Runs replica `id` of a cluster until `shutdown`, with the protocol and
/// knobs of `scenario`.
pub fn run_node(
    cluster: &Path,
    id: NodeId,
    key: Option<&Path>,
    scenario: &Scenario,
    shutdown: impl Future<Output = ()>,
) -> Result<NodeSummary, BenchError> {
    run_node_with(
        cluster,
        id,
        key,
        scenario,
        &QuicOptions::default(),
        shutdown,
    )
}

/// [`run_node`] with [`QuicOptions`] (a metrics endpoint). The committee
/// leads by the scenario's `[leaders]` for the cluster file's n, as the
/// simulator would: every node of a cluster must get the same scenario.
pub fn run_node_with(
    cluster: &Path,
    id: NodeId,
    key: Option<&Path>,
    scenario: &Scenario,
    options: &QuicOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<NodeSummary, BenchError> {
    let file = ClusterFile::load(cluster)?;
    let node_options = bft_net::NodeOptions {
        metrics: options.metrics,
        store: options.store.clone(),
        leaders: leader_schedule(scenario, file.nodes.len(), Path::new("(scenario)"))?,
        unsigned_requests: !scenario.load.signed,
        http: options.http.clone(),
    };
    let key_path = match key {
        Some(k) => k.to_path_buf(),
        None => file.dir.join(format!("node-{}.key", id.0)),
    };
    let secret = bft_net::read_node_key(&key_path)?;
    let rt = runtime()?;
    let batch = scenario.batch;
    let summary = crate::with_protocol!(scenario.protocol, P => {
        rt.block_on(bft_net::run_node_with::<P>(
            &file,
            id,
            secret,
            P::config(scenario),
            batch,
            node_options,
            shutdown,
        ))
    })?;
    Ok(summary)
}

/// Runs the scenario's load against a running cluster; with
/// `record_committed`, the summary lists every request seen committed.
pub fn run_client(
    cluster: &Path,
    scenario: &Scenario,
    record_committed: bool,
) -> Result<bft_net::ClientSummary, BenchError> {
    let file = ClusterFile::load(cluster)?;
    let rt = runtime()?;
    Ok(rt.block_on(bft_net::run_clients(
        &file,
        scenario.load.clone(),
        scenario.duration,
        record_committed,
    ))?)
}

/// A record of a `bftbench client` run against a cluster of `n`, for
/// `bftbench plot` and `summary.csv`: latency, throughput and client traffic
/// as measured by the client. Protocol message counts and per-node CPU live
/// in each node's own JSON (`bftbench node --out`), so they are zero here.
pub fn client_record(s: &Scenario, n: usize, c: &bft_net::ClientSummary) -> Record {
    let mut s = s.clone();
    s.nodes = n;
    s.runtime = crate::scenario::Runtime::Quic;
    let measured = Measured {
        runtime: "quic",
        stats: bft_core::MsgStats::default(),
        decisions: 0,
        empty_decisions: 0,
        requests_issued: c.requests_issued,
        rejected_requests: c.requests_rejected,
        requests_committed: c.requests_committed,
        duration_s: c.wall.as_secs_f64(),
        throughput_tx_s: c.throughput(s.load.warmup),
        latency: c.latency,
        latency_cdf: latency_cdf(&c.latency_histogram),
        client_messages: c.client_messages,
        client_bytes: c.client_bytes,
        view_changes: 0,
        replacements: None,
        violations: Vec::new(),
        liveness: None,
        nodes: Vec::new(),
        events: 0,
        trace_hash: String::new(),
        catch_up_kinds: &[],
        // What the nodes did is in each node's own JSON.
        store: "unknown",
        fsync: None,
        peak_rss_bytes: None,
        start_rss_bytes: None,
        series: c.series.clone(),
        wall: c.wall,
    };
    record(&s, measured)
}

/// A future that resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Used by tests: a shutdown after a fixed time.
pub async fn after(d: Duration) {
    tokio::time::sleep(d).await;
}

#[cfg(test)]
mod tests {
    use super::parse_vm_hwm;

    #[test]
    fn vm_hwm_is_read_in_bytes() {
        let status = "Name:\tbftbench\nVmPeak:\t  900 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(12345 * 1024));
        assert_eq!(parse_vm_hwm("VmRSS:\t 100 kB\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t 100 MB\n"), None);
        assert_eq!(
            super::parse_status_kb("VmRSS:\t 100 kB\n", "VmRSS:"),
            Some(102_400)
        );
    }
}
