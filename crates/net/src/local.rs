//! n replicas and a load generator in this process, on 127.0.0.1 ephemeral
//! ports, talking real QUIC with real crypto. [`LocalCluster`] also lets a
//! test kill and restart a replica.

use crate::client::{ClientSetup, ClientSummary, run_load};
use crate::cluster::{client_secret_from_seed, node_identity};
use crate::runner::{NodeSummary, ReplicaSetup, Snapshot, run_replica};
use crate::tls::{PathProfile, PeerKeys, TlsIdentity, server_config};
use crate::{NetError, QuicReport};
use bft_core::codec::DEFAULT_MAX_FRAME;
use bft_core::{
    BatchConfig, Committee, Crypto, CryptoKind, LeaderSchedule, MsgStats, NodeContext, NodeId,
    Protocol,
};
use bft_crypto::{ClientKeys, ClientSigner, CostModel, RealCrypto, SecretKeys, VerifiedKeys};
use bft_load::LoadConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// A loopback cluster run: what `run_local_cluster` is told.
#[derive(Clone, Debug)]
pub struct LocalClusterConfig {
    pub nodes: usize,
    pub seed: u64,
    pub load: LoadConfig,
    pub batch: BatchConfig,
    /// How long the load runs (the run ends earlier once `load.total`
    /// requests have all committed and the replicas went quiet).
    pub duration: Duration,
    /// Only for the core's crypto-CPU bookkeeping; the crypto is real.
    pub cost: CostModel,
    /// Frames queued per peer link before new ones are dropped (counted).
    pub send_queue: usize,
    /// How long to wait, after the load ends, for the replicas to stop
    /// sending (so per-decision counts are complete), at most.
    pub quiesce: Duration,
    /// Congestion control: `Network` (Cubic, the default) or `Loopback`
    /// (fixed window; what the benchmark uses, see `tls::PathProfile`).
    pub path: PathProfile,
    /// Serve each replica's `GET /metrics` over TCP: replica i on this
    /// address's port + i, or, with port 0, on an ephemeral port each
    /// (see [`LocalCluster::metrics_addr`]). None: no metrics.
    pub metrics: Option<SocketAddr>,
    /// Who leads each view (`Committee::with_leaders`), the simulator's
    /// `SimConfig::leaders`; None: round-robin.
    pub leaders: Option<LeaderSchedule>,
    /// Data directories, replica i's in `node-<i>` under `dir`: each
    /// replica persists there, and [`LocalCluster::restart`] resumes from
    /// it. None: nothing persists, a restart is a fresh replica.
    pub store: Option<crate::durable::StoreConfig>,
}

impl Default for LocalClusterConfig {
    fn default() -> Self {
        LocalClusterConfig {
            nodes: 4,
            seed: 1,
            load: LoadConfig::default(),
            batch: BatchConfig::default(),
            duration: Duration::from_secs(10),
            cost: CostModel::default(),
            send_queue: 65_536,
            quiesce: Duration::from_secs(2),
            path: PathProfile::Network,
            metrics: None,
            leaders: None,
            store: None,
        }
    }
}

struct Running {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<Result<NodeSummary, NetError>>,
    snapshots: watch::Receiver<Snapshot>,
}

/// A running in-process cluster.
pub struct LocalCluster<P: Protocol> {
    cfg: LocalClusterConfig,
    proto: P::Config,
    committee: Arc<Committee>,
    keys: Arc<VerifiedKeys>,
    /// Client request keys, derived from the seed like the signers the
    /// load generator gets.
    client_keys: Arc<ClientKeys>,
    secrets: Vec<SecretKeys>,
    peer_keys: Arc<PeerKeys>,
    addrs: Vec<SocketAddr>,
    /// Where each replica serves `/metrics` (as bound; kept over restarts).
    metrics_addrs: Vec<Option<SocketAddr>>,
    endpoints: Vec<Option<quinn::Endpoint>>,
    running: Vec<Option<Running>>,
    /// Summaries of replicas that were killed, by id, in kill order.
    killed: Vec<NodeSummary>,
    client: TlsIdentity,
}

impl<P: Protocol> LocalCluster<P> {
    /// Binds every replica's endpoint on 127.0.0.1 and starts them.
    pub async fn start(cfg: LocalClusterConfig, proto: P::Config) -> Result<Self, NetError> {
        P::check_config(&proto).map_err(|i| NetError::Invalid {
            key: format!("{}.{}", P::NAME, i.key),
            reason: format!("{} ({})", i.reason, i.value),
        })?;
        let ids = (0..cfg.nodes)
            .map(|i| u16::try_from(i).map(NodeId))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| NetError::TooManyNodes(cfg.nodes))?;
        let secrets: Vec<SecretKeys> = ids
            .iter()
            .map(|&id| SecretKeys::from_seed(cfg.seed, id))
            .collect();
        let members = ids
            .iter()
            .zip(&secrets)
            .map(|(&id, s)| s.member(id))
            .collect();
        let committee = Arc::new(with_leaders(
            Committee::new(members).map_err(NetError::Core)?,
            cfg.leaders.as_ref(),
        )?);
        let keys = VerifiedKeys::new(&committee).map_err(NetError::Crypto)?;
        let client =
            TlsIdentity::from_ed25519_seed(&client_secret_from_seed(cfg.seed, 0), "client-0")?;
        let peer_keys = Arc::new(PeerKeys::new(&committee, vec![client.public]));
        let cfg_seed = cfg.seed;
        let mut cluster = LocalCluster {
            endpoints: Vec::new(),
            running: Vec::new(),
            addrs: Vec::new(),
            metrics_addrs: Vec::new(),
            killed: Vec::new(),
            cfg,
            proto,
            committee,
            keys,
            client_keys: Arc::new(ClientKeys::seeded(cfg_seed)),
            secrets,
            peer_keys,
            client,
        };
        for &id in &ids {
            let ep = cluster.bind(id, SocketAddr::from(([127, 0, 0, 1], 0)))?;
            let addr = ep.local_addr().map_err(|e| NetError::Bind {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                source: e,
            })?;
            cluster.addrs.push(addr);
            cluster.endpoints.push(Some(ep));
            cluster.running.push(None);
            let metrics = match cluster.cfg.metrics {
                Some(base) => Some(metrics_addr_for(base, id)?),
                None => None,
            };
            cluster.metrics_addrs.push(metrics);
        }
        for &id in &ids {
            cluster.launch(id)?;
        }
        Ok(cluster)
    }

    fn bind(&self, id: NodeId, addr: SocketAddr) -> Result<quinn::Endpoint, NetError> {
        let secret = self
            .secrets
            .get(id.index())
            .ok_or(NetError::NoSuchNode(id))?;
        let identity = node_identity(secret, id)?;
        let server = server_config(&identity, self.peer_keys.clone(), self.cfg.path)?;
        crate::tls::bind_endpoint(addr, Some((server, &identity)))
    }

    /// Starts replica `id` on its bound endpoint: resumed from its data
    /// directory if the cluster has them, fresh otherwise.
    fn launch(&mut self, id: NodeId) -> Result<(), NetError> {
        let secret = self
            .secrets
            .get(id.index())
            .ok_or(NetError::NoSuchNode(id))?
            .clone();
        let endpoint = self
            .endpoints
            .get_mut(id.index())
            .and_then(Option::take)
            .ok_or(NetError::NoSuchNode(id))?;
        let identity = node_identity(&secret, id)?;
        let metrics = self.bind_metrics(id)?;
        let crypto = RealCrypto::new(self.keys.clone(), id, secret, self.cfg.cost)
            .map_err(NetError::Crypto)?
            .with_clients(self.client_keys.clone());
        let ctx = NodeContext {
            id,
            committee: self.committee.clone(),
            crypto: Arc::new(crypto) as Arc<dyn Crypto>,
            batch: self.cfg.batch,
        };
        let dir = self.cfg.store.as_ref().map(|s| {
            let dir = s.dir.join(format!("node-{}", id.0));
            (dir, s.fsync)
        });
        let mut opened = crate::durable::open_replica::<P>(ctx, &self.proto, dir)?;
        opened.node.check_client_signatures(self.cfg.load.signed);
        let setup = ReplicaSetup {
            id,
            endpoint,
            addrs: self.addrs.clone(),
            identity,
            keys: self.peer_keys.clone(),
            node: opened.node,
            store: opened.store,
            resumed_at: opened.resumed_at,
            max_frame: DEFAULT_MAX_FRAME,
            send_queue: self.cfg.send_queue,
            profile: self.cfg.path,
            metrics,
            ingress: None,
        };
        let (stop, stop_rx) = oneshot::channel::<()>();
        let (snap_tx, snapshots) = watch::channel(Snapshot::default());
        let handle = tokio::spawn(run_replica(
            setup,
            async move {
                let _ = stop_rx.await;
            },
            snap_tx,
        ));
        if let Some(slot) = self.running.get_mut(id.index()) {
            *slot = Some(Running {
                stop,
                handle,
                snapshots,
            });
        }
        Ok(())
    }

    /// Binds replica `id`'s metrics listener at its address, remembering
    /// the port the OS chose for port 0 (a restart binds the same one).
    fn bind_metrics(&mut self, id: NodeId) -> Result<Option<std::net::TcpListener>, NetError> {
        let Some(slot) = self.metrics_addrs.get_mut(id.index()) else {
            return Err(NetError::NoSuchNode(id));
        };
        let Some(addr) = *slot else {
            return Ok(None);
        };
        let listener = crate::metrics_http::bind(addr)?;
        *slot = Some(
            listener
                .local_addr()
                .map_err(|source| NetError::MetricsBind { addr, source })?,
        );
        Ok(Some(listener))
    }

    /// Where replica `id` serves `GET /metrics` (None without metrics).
    pub fn metrics_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.metrics_addrs.get(id.index()).copied().flatten()
    }

    pub fn addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.addrs.get(id.index()).copied()
    }

    pub fn committee(&self) -> Arc<Committee> {
        self.committee.clone()
    }

    /// The latest published state of each running replica (None if down).
    pub fn snapshots(&self) -> Vec<Option<Snapshot>> {
        self.running
            .iter()
            .map(|r| r.as_ref().map(|r| *r.snapshots.borrow()))
            .collect()
    }

    /// Stops replica `id` (its tasks and endpoint) and returns its counters.
    pub async fn kill(&mut self, id: NodeId) -> Result<NodeSummary, NetError> {
        let running = self
            .running
            .get_mut(id.index())
            .and_then(Option::take)
            .ok_or(NetError::NoSuchNode(id))?;
        let summary = stop(running).await?;
        self.killed.push(summary.clone());
        Ok(summary)
    }

    /// Restarts a killed replica, same key, same address: from its data
    /// directory if the cluster has them, with fresh state otherwise.
    pub async fn restart(&mut self, id: NodeId) -> Result<(), NetError> {
        let addr = self.addr(id).ok_or(NetError::NoSuchNode(id))?;
        // The old socket is closed; retry briefly in case the OS lags.
        let mut attempt = 0;
        let ep = loop {
            match self.bind(id, addr) {
                Ok(ep) => break ep,
                Err(e) if attempt >= 20 => return Err(e),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        if let Some(slot) = self.endpoints.get_mut(id.index()) {
            *slot = Some(ep);
        }
        self.launch(id)
    }

    /// Runs the load generator against the cluster.
    pub async fn run_clients(
        &self,
        load: LoadConfig,
        duration: Duration,
    ) -> Result<ClientSummary, NetError> {
        run_load(self.client_setup(load, duration)?, std::future::pending()).await
    }

    /// A load generator for this cluster, to run with
    /// [`crate::client::run_load`] in its own task (e.g. while replicas are
    /// killed and restarted).
    pub fn client_setup(
        &self,
        load: LoadConfig,
        duration: Duration,
    ) -> Result<ClientSetup, NetError> {
        let bind = SocketAddr::from(([127, 0, 0, 1], 0));
        let endpoint = crate::tls::bind_endpoint(bind, None)?;
        let signers = (0..load.clients)
            .filter(|_| load.signed)
            .map(|c| ClientSigner::seeded(CryptoKind::Real, self.cfg.seed, c))
            .collect();
        let replicas = self
            .addrs
            .iter()
            .zip(&self.peer_keys.replicas)
            .map(|(a, k)| (*a, *k))
            .collect();
        let setup = ClientSetup {
            endpoint,
            identity: self.client.clone(),
            replicas,
            load,
            duration,
            send_queue: self.cfg.send_queue,
            profile: self.cfg.path,
            record_committed: false,
            signers,
        };
        Ok(setup)
    }

    /// Waits until every running replica has the same committed count and
    /// none sent anything for `quiet`, or `limit` passed. True if quiet.
    pub async fn quiesce(&self, quiet: Duration, limit: Duration) -> bool {
        let start = Instant::now();
        let mut last: Vec<Option<Snapshot>> = self.snapshots();
        let mut stable_since = Instant::now();
        while start.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = self.snapshots();
            let committed: Vec<u64> = now.iter().flatten().map(|s| s.status.committed).collect();
            let agree = committed.windows(2).all(|w| w[0] == w[1]);
            if now != last || !agree {
                stable_since = Instant::now();
                last = now;
            } else if stable_since.elapsed() >= quiet {
                return true;
            }
        }
        false
    }

    /// Stops every running replica; summaries in id order (running ones
    /// only; killed replicas' summaries are in `killed()`).
    pub async fn stop(mut self) -> Result<Vec<NodeSummary>, NetError> {
        let mut out = Vec::new();
        for slot in &mut self.running {
            if let Some(r) = slot.take() {
                out.push(stop(r).await?);
            }
        }
        Ok(out)
    }

    pub fn killed(&self) -> &[NodeSummary] {
        &self.killed
    }
}

/// The committee with `leaders` as its leader schedule (unchanged, i.e.
/// round-robin, for None); a schedule naming a non-member is refused.
pub fn with_leaders(
    committee: Committee,
    leaders: Option<&LeaderSchedule>,
) -> Result<Committee, NetError> {
    match leaders {
        None => Ok(committee),
        Some(l) => committee
            .with_leaders(l.clone())
            .map_err(|e| NetError::Invalid {
                key: "leaders".into(),
                reason: e.to_string(),
            }),
    }
}

/// Replica `id`'s metrics address: `base`'s port + id, or port 0 (chosen
/// by the OS) when `base`'s port is 0.
pub fn metrics_addr_for(base: SocketAddr, id: NodeId) -> Result<SocketAddr, NetError> {
    if base.port() == 0 {
        return Ok(base);
    }
    let port = base
        .port()
        .checked_add(id.0)
        .ok_or_else(|| NetError::Invalid {
            key: "metrics".to_string(),
            reason: format!("{base}: port + {} is beyond 65535", id.0),
        })?;
    Ok(SocketAddr::new(base.ip(), port))
}

async fn stop(r: Running) -> Result<NodeSummary, NetError> {
    let _ = r.stop.send(());
    r.handle.await.map_err(|e| NetError::Task(e.to_string()))?
}

/// n nodes + clients in this process on 127.0.0.1 ephemeral ports.
pub async fn run_local_cluster<P: Protocol>(
    cfg: LocalClusterConfig,
    proto: P::Config,
) -> Result<QuicReport, NetError> {
    let started = Instant::now();
    let process_cpu = cpu_time::ProcessTime::try_now().ok();
    let cluster = LocalCluster::<P>::start(cfg.clone(), proto).await?;
    let clients = cluster.run_clients(cfg.load.clone(), cfg.duration).await?;
    if cfg.load.total.is_some() {
        cluster
            .quiesce(Duration::from_millis(200), cfg.quiesce)
            .await;
    }
    let nodes = cluster.stop().await?;
    let mut report = report(&nodes, &clients);
    report.wall = started.elapsed();
    report.process_cpu_s = process_cpu
        .and_then(|t| t.try_elapsed().ok())
        .map_or(0.0, |d| d.as_secs_f64());
    Ok(report)
}

/// Combines replica summaries and the generator's into a report.
pub fn report(nodes: &[NodeSummary], clients: &ClientSummary) -> QuicReport {
    let mut stats = MsgStats::default();
    for n in nodes {
        stats.merge(&n.stats);
    }
    let committed = nodes.iter().map(|n| n.status.committed);
    let busiest = nodes.iter().max_by_key(|n| n.status.committed);
    QuicReport {
        stats,
        decisions: committed.clone().min().unwrap_or(0),
        max_decisions: committed.max().unwrap_or(0),
        empty_decisions: busiest.map_or(0, |n| n.stats.empty_decisions),
        requests_issued: clients.requests_issued,
        requests_rejected: clients.requests_rejected,
        requests_committed: clients.requests_committed,
        requests_measured: clients.requests_measured,
        latency: clients.latency,
        latency_histogram: clients.latency_histogram.clone(),
        client_messages: clients.client_messages
            + nodes.iter().map(|n| n.client_messages).sum::<u64>(),
        client_bytes: clients.client_bytes + nodes.iter().map(|n| n.client_bytes).sum::<u64>(),
        view_changes: nodes
            .iter()
            .map(|n| n.status.view_changes)
            .max()
            .unwrap_or(0),
        wall: clients.wall,
        load_wall: clients.wall,
        cpu_s_per_node: nodes.iter().map(|n| n.cpu_s).collect(),
        process_cpu_s: 0.0,
        statuses: nodes.iter().map(|n| n.status).collect(),
        dropped_overload: clients.dropped_overload
            + nodes
                .iter()
                .map(|n| n.dropped_overload + n.dropped_replies)
                .sum::<u64>(),
        dropped_link: clients.dropped_link + nodes.iter().map(|n| n.dropped_link).sum::<u64>(),
        load_started: clients.started,
        series: clients.series.clone(),
    }
}
