//! bft-net: the protocols over real QUIC.
//!
//! - [`tls`]: mutual TLS whose certificate key IS the node's Ed25519
//!   protocol key; peers outside the committee (and the client list) are
//!   refused at the handshake.
//! - [`transport`]: one connection per replica pair (lower id dials),
//!   length-delimited frames on one unidirectional stream per direction,
//!   redial with backoff, bounded send queues whose drops are counted.
//! - [`runner`]: one tokio task per replica drives `bft_core::Node<P>`, the
//!   type the simulator drives, so both count the same messages.
//! - [`client`]: the load generator with the simulator's client semantics.
//! - [`local`]: n replicas + clients in one process on 127.0.0.1.
//! - [`cluster`]: cluster file, key files and [`keygen`], for one node per
//!   process or host ([`run_node`], [`run_clients`]).
//! - [`ingress`]: `POST /submit` over HTTP/1.1 for load tools nobody here
//!   wrote, answered at this replica's commit ([`NodeOptions::http`]).
//! - [`metrics`], [`metrics_http`]: per-replica Prometheus metrics (the
//!   core's counters, exported) served as `GET /metrics` when asked
//!   ([`NodeOptions::metrics`], [`LocalClusterConfig::metrics`]); metric
//!   names are listed in [`metrics`].

pub mod client;
pub mod cluster;
pub mod durable;
pub mod ingress;
pub mod local;
pub mod metrics;
pub mod metrics_http;
pub mod pipe;
pub mod queue;
pub mod runner;
pub mod tls;
pub mod transport;
pub mod wire;

pub use client::ClientSummary;
pub use cluster::{ClientEntry, ClusterFile, NodeEntry, keygen, read_client_key, read_node_key};
pub use local::{LocalCluster, LocalClusterConfig, run_local_cluster};
pub use runner::{NodeSummary, Snapshot};

use bft_core::codec::DEFAULT_MAX_FRAME;
use bft_core::{BatchConfig, Crypto, MsgStats, NodeContext, NodeId, Protocol, Status};
use bft_crypto::{CostModel, RealCrypto, SecretKeys, VerifiedKeys};
use bft_load::{LatencySummary, LoadConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Errors of the network crate; each names the file, key or address at
/// fault.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cluster file {}: {reason}", path.display())]
    ClusterFile { path: PathBuf, reason: String },
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("node {0} is not in the cluster")]
    NoSuchNode(NodeId),
    #[error("{0} nodes: at most 65535 are supported")]
    TooManyNodes(usize),
    #[error("cluster file has no client key file: add `key_file` to [[clients]] entry 0")]
    NoClientKey,
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("committee: {0}")]
    Core(bft_core::CoreError),
    #[error("keys: {0}")]
    Crypto(bft_crypto::CryptoError),
    #[error("cannot serve metrics on TCP {addr}: {source}")]
    MetricsBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot serve the HTTP ingress on TCP {addr}: {source}")]
    IngressBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("a node task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Store(bft_store::StoreError),
    #[error("{}: the stored state does not decode ({source}); the directory was left as it is", file.display())]
    Recover {
        file: PathBuf,
        source: bft_core::CoreError,
    },
    #[error("data directory: {0}")]
    StoreWrite(bft_core::StoreError),
}

/// What a QUIC run measured; the fields mirror `bft_sim::SimReport`.
#[derive(Clone, Debug)]
pub struct QuicReport {
    /// Protocol traffic summed over the replicas (the core's counters).
    pub stats: MsgStats,
    /// Committed slots, minimum over replicas.
    pub decisions: u64,
    pub max_decisions: u64,
    /// Of the `max_decisions` of the replica that committed most, the ones
    /// that ordered no request.
    pub empty_decisions: u64,
    pub requests_issued: u64,
    /// Refused at the client edge (`[load] max_pending`), never sent.
    pub requests_rejected: u64,
    pub requests_committed: u64,
    pub requests_measured: u64,
    pub latency: LatencySummary,
    pub latency_histogram: hdrhistogram::Histogram<u64>,
    /// Client traffic, apart: request copies (one per replica) plus one
    /// logical reply per request id per replica; bytes are wire bytes.
    pub client_messages: u64,
    pub client_bytes: u64,
    pub view_changes: u64,
    /// Wall time of the load (first request to end); `run_local_cluster`
    /// overwrites it with setup + load + quiesce + shutdown.
    pub wall: Duration,
    /// Wall time of the load alone: divide `requests_measured` by it (less
    /// the warm-up) for throughput.
    pub load_wall: Duration,
    /// Per replica: CPU seconds of the thread running the replica's node
    /// task, measured around event handling (decode + protocol + real
    /// crypto + encode). QUIC/TLS/UDP work of the transport tasks is not in
    /// it; see `process_cpu_s`.
    pub cpu_s_per_node: Vec<f64>,
    /// CPU seconds of the whole process over the run (all replicas, the
    /// clients and the transport), 0 when not measured.
    pub process_cpu_s: f64,
    pub statuses: Vec<Status>,
    /// Frames/requests/replies dropped because a bounded queue was full.
    pub dropped_overload: u64,
    /// Frames lost in writes to connections that broke.
    pub dropped_link: u64,
    /// When the load started, and its completions and latency per second
    /// ([`bft_load::series`]).
    pub load_started: std::time::Instant,
    pub series: Vec<bft_load::SeriesPoint>,
}

impl QuicReport {
    /// Measured requests per second after `warmup`.
    pub fn throughput(&self, warmup: Duration) -> f64 {
        let window = self.load_wall.saturating_sub(warmup).as_secs_f64();
        if window > 0.0 {
            self.requests_measured as f64 / window
        } else {
            0.0
        }
    }
}

/// What a node run may add to the cluster file's settings.
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// Serve `GET /metrics` (Prometheus/OpenMetrics text) on this TCP
    /// address while the node runs; bound before the node starts. None:
    /// no endpoint, no metrics bookkeeping.
    pub metrics: Option<SocketAddr>,
    /// Who leads each view (`Committee::with_leaders`): the same schedule
    /// the simulator uses for the scenario's `[leaders]`, so every node of
    /// the cluster must be given the same one. None: round-robin.
    pub leaders: Option<bft_core::LeaderSchedule>,
    /// The replica's data directory and fsync policy; None: nothing
    /// persists and a restart is a fresh replica.
    pub store: Option<durable::StoreConfig>,
    /// The cluster's clients do not sign their requests (`[load] signed =
    /// false`): check no client signature.
    pub unsigned_requests: bool,
    /// Serve `POST /submit` ([`ingress`]) while the node runs; bound
    /// before the node starts. None: no ingress.
    pub http: Option<ingress::IngressConfig>,
}

/// Runs replica `id` of `cluster` until `shutdown` resolves, then returns
/// its counters. Crypto is real; `CostModel::default()` only feeds the
/// core's crypto-CPU bookkeeping.
pub async fn run_node<P: Protocol>(
    cluster: &ClusterFile,
    id: NodeId,
    key: SecretKeys,
    proto: P::Config,
    batch: BatchConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<NodeSummary, NetError> {
    run_node_with::<P>(
        cluster,
        id,
        key,
        proto,
        batch,
        NodeOptions::default(),
        shutdown,
    )
    .await
}

/// [`run_node`] with [`NodeOptions`] (e.g. a metrics endpoint).
pub async fn run_node_with<P: Protocol>(
    cluster: &ClusterFile,
    id: NodeId,
    key: SecretKeys,
    proto: P::Config,
    batch: BatchConfig,
    options: NodeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<NodeSummary, NetError> {
    P::check_config(&proto).map_err(|i| NetError::Invalid {
        key: format!("{}.{}", P::NAME, i.key),
        reason: format!("{} ({})", i.reason, i.value),
    })?;
    let committee = Arc::new(local::with_leaders(
        cluster.committee()?,
        options.leaders.as_ref(),
    )?);
    let keys = VerifiedKeys::new(&committee).map_err(NetError::Crypto)?;
    let addr = cluster
        .nodes
        .get(id.index())
        .map(|e| e.address)
        .ok_or(NetError::NoSuchNode(id))?;
    let identity = cluster::node_identity(&key, id)?;
    let ingress_signer = (!options.unsigned_requests).then(|| key.ingress_signer());
    let crypto = RealCrypto::new(keys, id, key, CostModel::default())
        .map_err(NetError::Crypto)?
        .with_clients(Arc::new(cluster.client_request_keys()?));
    let peer_keys = Arc::new(tls::PeerKeys::new(&committee, cluster.client_keys()?));
    let server = tls::server_config(&identity, peer_keys.clone(), tls::PathProfile::Network)?;
    let endpoint = crate::tls::bind_endpoint(addr, Some((server, &identity)))?;
    let metrics = options.metrics.map(metrics_http::bind).transpose()?;
    let http = match options.http {
        Some(config) => Some((ingress::bind(config.addr)?, config)),
        None => None,
    };
    if let Some(Ok(bound)) = metrics.as_ref().map(std::net::TcpListener::local_addr) {
        tracing::info!(node = id.0, %bound, "serving GET /metrics");
    }
    let ctx = NodeContext {
        id,
        committee,
        crypto: Arc::new(crypto) as Arc<dyn Crypto>,
        batch,
    };
    let data_dir = options.store.as_ref().map(|s| s.dir.clone());
    let mut opened =
        durable::open_replica::<P>(ctx, &proto, options.store.map(|s| (s.dir, s.fsync)))?;
    opened
        .node
        .check_client_signatures(!options.unsigned_requests);
    // After the data directory is open: its epoch file is this node's.
    let ingress = match http {
        Some((listener, config)) => Some(ingress::IngressSetup::new(
            listener,
            config,
            id,
            data_dir.as_deref(),
            batch.max_size,
            ingress_signer,
        )?),
        None => None,
    };
    let setup = runner::ReplicaSetup {
        id,
        endpoint,
        addrs: cluster.addresses(),
        identity,
        keys: peer_keys,
        node: opened.node,
        store: opened.store,
        resumed_at: opened.resumed_at,
        max_frame: DEFAULT_MAX_FRAME,
        send_queue: 65_536,
        profile: tls::PathProfile::Network,
        metrics,
        ingress,
    };
    let (snap_tx, _snap_rx) = tokio::sync::watch::channel(Snapshot::default());
    runner::run_replica(setup, shutdown, snap_tx).await
}

/// Runs the load generator against `cluster` as client 0 (the key file the
/// cluster file names). One generator per cluster: its logical clients are
/// numbered 0..load.clients, and a second generator with the same numbers
/// would have its requests deduplicated away.
pub async fn run_clients(
    cluster: &ClusterFile,
    load: LoadConfig,
    duration: Duration,
    record_committed: bool,
) -> Result<ClientSummary, NetError> {
    let path = cluster.client_key_path(0).ok_or(NetError::NoClientKey)?;
    let secret = read_client_key(&path)?;
    let identity = tls::TlsIdentity::from_ed25519_seed(&secret, "client-0")?;
    let signers = (0..load.clients as usize)
        .filter(|_| load.signed)
        .map_while(|c| cluster.client_key_path(c))
        .map(|path| read_client_key(&path).map(|s| bft_crypto::ClientSigner::from_secret(&s)))
        .collect::<Result<Vec<_>, _>>()?;
    let committee = cluster.committee()?;
    let replicas = cluster
        .addresses()
        .into_iter()
        .zip(committee.members().iter().map(|m| m.ed25519.0))
        .collect();
    let bind = match cluster.nodes.first().map(|n| n.address) {
        Some(SocketAddr::V6(_)) => SocketAddr::from(([0u16; 8], 0)),
        _ => SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    let endpoint = crate::tls::bind_endpoint(bind, None)?;
    let setup = client::ClientSetup {
        endpoint,
        identity,
        replicas,
        load,
        duration,
        send_queue: 65_536,
        profile: tls::PathProfile::Network,
        record_committed,
        signers,
    };
    client::run_load(setup, std::future::pending()).await
}
