//! The load generator over QUIC, with the simulator's client semantics
//! (it reuses `bft_load::Clients`, as the simulator does): each request goes to every
//! replica; a request is committed once f+1 replicas reported it; latency
//! runs from the *intended* send time (open loop: request m of the whole
//! stream is intended at m/rate, client m mod clients, whatever the system
//! does — no coordinated omission); closed loop keeps `outstanding` requests
//! in flight per client; `total` caps the requests issued; `warmup` excludes
//! the requests intended before it.
//!
//! One QUIC identity carries all logical clients (`RequestId::client`
//! numbers) of this generator.

use crate::NetError;
use crate::queue::QueueRx;
use crate::tls::{RawKey, TlsIdentity, client_config};
use crate::transport::{LinkLosses, connect_with_backoff, link_writer};
use crate::wire::{FrameReader, Reply};
use bft_core::{NodeId, Request, RequestId, Time, codec};
use bft_crypto::ClientSigner;
use bft_load::Clients;
use bft_load::{LatencySummary, LoadConfig, LoadMode};
use bytes::Bytes;
use hdrhistogram::Histogram;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// What the load generator measured.
#[derive(Clone, Debug)]
pub struct ClientSummary {
    pub requests_issued: u64,
    /// Refused at the client edge (`[load] max_pending`), never sent.
    pub requests_rejected: u64,
    pub requests_committed: u64,
    /// Committed requests intended after the warm-up.
    pub requests_measured: u64,
    pub latency: LatencySummary,
    pub latency_histogram: Histogram<u64>,
    /// Requests sent: one per request per replica; `client_bytes` are their
    /// wire bytes (header + postcard body).
    pub client_messages: u64,
    pub client_bytes: u64,
    /// Request copies not queued to a replica because its queue was full.
    pub dropped_overload: u64,
    /// Request copies lost in a write to a connection that broke.
    pub dropped_link: u64,
    /// From the first request to the end of the run.
    pub wall: Duration,
    /// The requests seen committed (f+1 replies), in the order they were;
    /// empty unless [`ClientSetup::record_committed`].
    pub committed_ids: Vec<RequestId>,
    /// When the load started (the series' time 0).
    pub started: Instant,
    /// Completions and latency per second ([`bft_load::series`]).
    pub series: Vec<bft_load::SeriesPoint>,
}

impl ClientSummary {
    /// Measured requests per second after the warm-up.
    pub fn throughput(&self, warmup: Duration) -> f64 {
        let window = self.wall.saturating_sub(warmup).as_secs_f64();
        if window > 0.0 {
            self.requests_measured as f64 / window
        } else {
            0.0
        }
    }
}

/// Where the generator sends and who it is.
pub struct ClientSetup {
    pub endpoint: quinn::Endpoint,
    pub identity: TlsIdentity,
    /// Every replica's address and Ed25519 key, by id.
    pub replicas: Vec<(SocketAddr, RawKey)>,
    pub load: LoadConfig,
    pub duration: Duration,
    /// Request copies queued per replica before new ones are dropped.
    pub send_queue: usize,
    /// Congestion control profile of the connections this side dials.
    pub profile: crate::tls::PathProfile,
    /// Keep the id of every request seen committed (`bftbench client
    /// --committed`; 16 bytes per request).
    pub record_committed: bool,
    /// Logical client c signs its requests with `signers[c]`; one per
    /// client of `load`.
    pub signers: Vec<ClientSigner>,
}

/// Runs the load until `duration` has passed, `total` requests have all
/// committed, or `stop` resolves.
pub async fn run_load(
    setup: ClientSetup,
    stop: impl Future<Output = ()>,
) -> Result<ClientSummary, NetError> {
    let n = setup.replicas.len();
    let f = n.saturating_sub(1) / 3;
    if setup.load.signed && setup.signers.len() < setup.load.clients as usize {
        return Err(NetError::Invalid {
            key: "clients".into(),
            reason: format!(
                "the load runs {} clients but only {} have a signing key (a cluster file needs one [[clients]] entry per client: `bftbench keygen --clients {}`)",
                setup.load.clients,
                setup.signers.len(),
                setup.load.clients
            ),
        });
    }
    let (replies_tx, replies_rx) = mpsc::channel(8192);
    let losses = Arc::new(LinkLosses::default());
    let mut tasks = JoinSet::new();
    let mut links = Vec::with_capacity(n);
    for (index, &(addr, key)) in setup.replicas.iter().enumerate() {
        let replica = NodeId(u16::try_from(index).unwrap_or(u16::MAX));
        let (out_tx, out_rx) = mpsc::channel(setup.send_queue);
        let (conn_tx, conn_rx) = mpsc::channel(4);
        let cfg = client_config(&setup.identity, key, setup.profile)?;
        tasks.spawn(link_writer(
            QueueRx::unmetered(out_rx),
            conn_rx,
            losses.clone(),
            None,
        ));
        tasks.spawn(replica_loop(
            setup.endpoint.clone(),
            cfg,
            addr,
            replica,
            conn_tx,
            replies_tx.clone(),
        ));
        links.push(out_tx);
    }
    drop(replies_tx);
    let mut generator = Generator::new(setup.load, setup.duration, f + 1, links, setup.signers);
    generator.committed_ids = setup.record_committed.then(Vec::new);
    generator.run(replies_rx, stop).await;
    tasks.shutdown().await;
    setup.endpoint.close(0u32.into(), b"done");
    let mut summary = generator.summary();
    summary.dropped_link = losses.frames.load(Ordering::Relaxed);
    Ok(summary)
}

/// Keeps a connection to one replica: hands it to the request writer and
/// reads the replica's replies from it, tagged with the replica's id (the
/// connection authenticated its key), so that the generator counts distinct
/// replicas.
async fn replica_loop(
    endpoint: quinn::Endpoint,
    cfg: quinn::ClientConfig,
    addr: SocketAddr,
    replica: NodeId,
    conns: mpsc::Sender<quinn::Connection>,
    replies: mpsc::Sender<(NodeId, Vec<RequestId>)>,
) {
    let mut backoff = Duration::from_millis(20);
    loop {
        let conn = connect_with_backoff(&endpoint, &cfg, addr, &mut backoff).await;
        if conns.send(conn.clone()).await.is_err() {
            return;
        }
        while let Ok(recv) = conn.accept_uni().await {
            let mut reader = FrameReader::new(recv, codec::DEFAULT_MAX_FRAME);
            while let Ok(body) = reader.next().await {
                // A reply that does not decode is ignored: a replica can
                // only hurt its own reports.
                let Ok(reply) = codec::decode::<Reply>(&body, codec::DEFAULT_MAX_FRAME) else {
                    continue;
                };
                if replies.send((replica, reply.requests)).await.is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(backoff).await;
    }
}

struct Generator {
    clients: Clients,
    load: LoadConfig,
    duration: Duration,
    links: Vec<mpsc::Sender<Bytes>>,
    signers: Vec<ClientSigner>,
    payload: Bytes,
    start: Instant,
    /// Open loop: index of the next request of the whole stream.
    next_open: u64,
    messages: u64,
    bytes: u64,
    dropped: u64,
    wall: Duration,
    committed_ids: Option<Vec<RequestId>>,
}

impl Generator {
    fn new(
        load: LoadConfig,
        duration: Duration,
        quorum: usize,
        links: Vec<mpsc::Sender<Bytes>>,
        signers: Vec<ClientSigner>,
    ) -> Self {
        Generator {
            clients: Clients::new(load.clone(), quorum),
            signers,
            payload: Bytes::from(vec![0u8; load.tx_size]),
            load,
            duration,
            links,
            start: Instant::now(),
            next_open: 0,
            messages: 0,
            bytes: 0,
            dropped: 0,
            wall: Duration::ZERO,
            committed_ids: None,
        }
    }

    fn now(&self) -> Time {
        Time::from_duration(self.start.elapsed())
    }

    async fn run(
        &mut self,
        mut replies: mpsc::Receiver<(NodeId, Vec<RequestId>)>,
        stop: impl Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        self.start = Instant::now();
        let end = tokio::time::Instant::from_std(self.start + self.duration);
        if let LoadMode::Closed { outstanding } = self.load.mode {
            for client in 0..self.load.clients {
                for _ in 0..outstanding {
                    self.issue(client, self.now());
                }
            }
        }
        while !self.done() {
            let next = self.next_open_at();
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep_until(end) => break,
                r = replies.recv() => {
                    let Some((from, ids)) = r else { break };
                    self.on_reply(from, &ids);
                    while let Ok((from, ids)) = replies.try_recv() {
                        self.on_reply(from, &ids);
                    }
                }
                _ = tokio::time::sleep_until(next.unwrap_or(end)), if next.is_some() => {
                    self.issue_due_open();
                }
            }
        }
        self.wall = self.start.elapsed();
    }

    /// Every issued request committed and nothing more may be issued.
    fn done(&self) -> bool {
        !self.clients.may_issue() && self.clients.committed() >= self.clients.issued()
    }

    fn intended_open(&self, m: u64) -> Option<Duration> {
        match self.load.mode {
            LoadMode::Open { rate } => Some(Duration::from_secs_f64(m as f64 / rate)),
            LoadMode::Closed { .. } => None,
        }
    }

    fn next_open_at(&self) -> Option<tokio::time::Instant> {
        let at = self.intended_open(self.next_open)?;
        if at > self.duration || !self.clients.may_issue() || self.load.clients == 0 {
            return None;
        }
        Some(tokio::time::Instant::from_std(self.start + at))
    }

    fn issue_due_open(&mut self) {
        let clients = u64::from(self.load.clients.max(1));
        while let Some(at) = self.intended_open(self.next_open) {
            if at > self.start.elapsed() || at > self.duration || !self.clients.may_issue() {
                return;
            }
            let client = u32::try_from(self.next_open % clients).unwrap_or(0);
            self.next_open += 1;
            self.issue(client, Time::from_duration(at));
        }
    }

    fn on_reply(&mut self, from: NodeId, ids: &[RequestId]) {
        let now = self.now();
        for &id in ids {
            let before = self.clients.committed();
            let follow_up = self.clients.reply(id, from, now);
            if self.clients.committed() > before
                && let Some(list) = self.committed_ids.as_mut()
            {
                list.push(id);
            }
            if let Some(client) = follow_up {
                self.issue(client, now);
            }
        }
    }

    /// Issues one request intended at `intended` to every replica.
    fn issue(&mut self, client: u32, intended: Time) {
        let bft_load::Issue::Send(id) = self.clients.issue(client, intended) else {
            return;
        };
        let mut req = Request::unsigned(id, self.payload.clone());
        if let Some(signer) = self.signers.get(client as usize) {
            signer.sign(&mut req);
        }
        let Ok(body) = codec::encode(&req, codec::DEFAULT_MAX_FRAME) else {
            return;
        };
        let wire = codec::wire_len(body.len());
        for link in &self.links {
            if link.try_send(body.clone()).is_ok() {
                self.messages += 1;
                self.bytes += wire;
            } else {
                self.dropped += 1;
            }
        }
    }

    fn summary(&self) -> ClientSummary {
        ClientSummary {
            requests_issued: self.clients.issued(),
            requests_rejected: self.clients.rejected(),
            requests_committed: self.clients.committed(),
            requests_measured: self.clients.committed_measured(),
            latency: self.clients.latency(),
            latency_histogram: self.clients.histogram().clone(),
            client_messages: self.messages,
            client_bytes: self.bytes,
            dropped_overload: self.dropped,
            dropped_link: 0,
            wall: self.wall,
            committed_ids: self.committed_ids.clone().unwrap_or_default(),
            started: self.start,
            series: self.clients.series(),
        }
    }
}
