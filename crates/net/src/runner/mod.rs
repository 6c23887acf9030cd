//! One tokio task per replica drives `Node<P>` — the same type the simulator
//! drives — with inbound frames, timers and client requests, and carries out
//! its outputs: frames to per-peer bounded queues, timers, and replies to
//! clients for each committed decision.
//!
//! With a store (a data directory), the outputs of each batch of events are
//! held until the batch's durable state and committed decisions are written,
//! then released in order: nothing a peer or a client sees depends on state
//! a crash could take back. One [`Store::write`] is in progress at a time,
//! on a writer thread; the replica handles its next events meanwhile, and
//! the batches handled during a write go together into the next one (a
//! group commit), with the durable state encoded once for it. A failed
//! write stops the replica.
//!
//! Timer semantics are the simulator's: a `SetTimer` for a key replaces the
//! pending one (the old deadline never fires), `CancelTimer` removes it, and
//! a timer fires at most once.

use crate::NetError;
use crate::metrics::{MetricsState, NodeMetrics, RunnerFigures};
use crate::metrics_http::RefreshRequest;
use crate::queue::QueueTx;
use crate::tls::{PeerKeys, TlsIdentity};
use crate::transport::{
    AcceptCtx, ClientEvent, INBOUND_QUEUE, LinkLosses, PeerEvent, ReplicaInbound, accept_loop,
};
use bft_core::{Node, NodeId, NodeInput, Output, Protocol, Store, Time};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

mod ingress;
mod links;
mod persist;
mod replies;
mod summary;
mod timers;
mod writer;
use ingress::Forwarder;
use persist::next_done;
use replies::Unrouted;
pub use summary::{NodeSummary, Snapshot};
use timers::Timers;
use writer::{Done, Writer};

/// Everything a replica needs to run; the endpoint is already bound.
pub struct ReplicaSetup<P: Protocol> {
    pub id: NodeId,
    pub endpoint: quinn::Endpoint,
    /// Every replica's address, by id.
    pub addrs: Vec<SocketAddr>,
    pub identity: TlsIdentity,
    pub keys: Arc<PeerKeys>,
    pub node: Node<P>,
    pub max_frame: usize,
    /// Frames queued per peer before new ones are dropped (and counted).
    pub send_queue: usize,
    /// Congestion control profile of the connections this side dials.
    pub profile: crate::tls::PathProfile,
    /// A bound (non-blocking) TCP listener to serve `GET /metrics` on while
    /// the replica runs (see [`crate::metrics_http::bind`]); None: no
    /// metrics.
    pub metrics: Option<std::net::TcpListener>,
    /// The replica's data directory, opened (see [`crate::durable`]); None:
    /// nothing persists.
    pub store: Option<Box<dyn Store>>,
    /// What [`crate::durable::open_replica`] resumed at.
    pub resumed_at: Option<u64>,
    /// An HTTP ingress to serve while the replica runs; None: none.
    pub ingress: Option<crate::ingress::IngressSetup>,
}

/// Runs a replica until `shutdown` resolves; then stops every task it
/// started, closes the endpoint and returns the counters.
pub async fn run_replica<P: Protocol>(
    setup: ReplicaSetup<P>,
    shutdown: impl Future<Output = ()>,
    snapshots: watch::Sender<Snapshot>,
) -> Result<NodeSummary, NetError> {
    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
    let (clients_tx, clients_rx) = mpsc::channel(INBOUND_QUEUE);
    let losses = Arc::new(LinkLosses::default());
    let mut tasks = JoinSet::new();
    let inbound = ReplicaInbound {
        frames: inbound_tx,
        requests: clients_tx.clone(),
        max_frame: setup.max_frame,
    };
    let links = links::spawn(&setup, &inbound, &losses, &mut tasks)?;
    let ctx = AcceptCtx {
        me: setup.id,
        keys: setup.keys.clone(),
        link_conns: links.conns,
        restarts: links.restarts,
        inbound,
        clients: clients_tx.clone(),
        max_frame: setup.max_frame,
        next_conn: Arc::new(AtomicU64::new(0)),
    };
    tasks.spawn(accept_loop(setup.endpoint.clone(), ctx));
    let forwarder = Forwarder::new(setup.id, links.requests);
    let mut driver = Driver::new(setup.node, links.protocol, forwarder, losses.clone());
    if let Some(ingress) = setup.ingress {
        driver.summary.ingress = Some(crate::ingress::start(ingress, clients_tx, &mut tasks)?);
    }
    if let Some(store) = setup.store {
        let (writer, done) = Writer::start(store);
        driver.writer = Some(writer);
        driver.done = Some(done);
    }
    driver.summary.resumed_at = setup.resumed_at;
    let mut refresh_rx = None;
    if let Some(listener) = setup.metrics {
        let addr = listener.local_addr().unwrap_or_else(|_| unspecified());
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|source| NetError::MetricsBind { addr, source })?;
        let metrics = Arc::new(NodeMetrics::new(setup.id));
        let (refresh_tx, rx) = mpsc::channel(METRICS_REFRESH_QUEUE);
        tasks.spawn(crate::metrics_http::serve(
            listener,
            metrics.clone(),
            refresh_tx,
        ));
        driver.metrics = Some(MetricsState::new(metrics));
        refresh_rx = Some(rx);
    }
    driver
        .run(inbound_rx, clients_rx, refresh_rx, shutdown, &snapshots)
        .await;
    tasks.shutdown().await;
    setup.endpoint.close(0u32.into(), b"shutdown");
    let _ = tokio::time::timeout(Duration::from_millis(500), setup.endpoint.wait_idle()).await;
    let closed = driver.close_store();
    let mut summary = driver.summary();
    summary.dropped_link = losses.frames.load(Ordering::Relaxed);
    closed?;
    Ok(summary)
}

/// Events handled per wake-up before the driver looks at timers and the
/// other channel again.
const DRAIN: usize = 256;
/// Batches waiting for the next write, at most, before the replica stops
/// handling new events until the write in progress is done.
const MAX_BATCHES_WAITING: usize = 64;
/// How often, at most, the replica publishes its [`Snapshot`].
const PUBLISH_EVERY: Duration = Duration::from_millis(5);
/// Scrapes that may wait for a metrics refresh at once (more are served
/// without one).
const METRICS_REFRESH_QUEUE: usize = 16;
/// Logical clients remembered for routing replies (bounded against a client
/// inventing numbers).
const MAX_ROUTED_CLIENTS: usize = 1 << 20;

struct Driver<P: Protocol> {
    node: Node<P>,
    out: Vec<Output<P::Timer>>,
    links: Vec<Option<QueueTx>>,
    timers: Timers<P::Timer>,
    start: Instant,
    /// Client connection id → its reply queue.
    client_conns: BTreeMap<u64, mpsc::Sender<Bytes>>,
    /// Logical client number → the connection that last submitted for it.
    owner: BTreeMap<u32, u64>,
    /// Committed requests no connection could be told of yet.
    unrouted: Unrouted,
    summary: NodeSummary,
    cpu: Duration,
    /// Frames lost in broken writes (the link writers count them).
    losses: Arc<LinkLosses>,
    /// Prometheus bookkeeping, when an endpoint serves it.
    metrics: Option<MetricsState>,
    /// Requests of the HTTP ingress: forwarded, and waited on.
    forwarder: Forwarder,
    /// The data directory's writer; with it, `held` keeps the batch's
    /// outputs until [`Driver::flush`] hands the batch to it (or to
    /// `waiting`, while a write is in progress), and `in_flight` keeps them
    /// until that write is done.
    writer: Option<Writer>,
    done: Option<mpsc::UnboundedReceiver<Done>>,
    held: Vec<Output<P::Timer>>,
    /// Outputs waiting for write `seq`, in submission order.
    in_flight: std::collections::VecDeque<(u64, Vec<Output<P::Timer>>)>,
    /// Outputs of the batches handled while a write was in progress: they
    /// go out after the next write, and how many batches they are.
    waiting: Vec<Output<P::Timer>>,
    batches_waiting: usize,
    next_write: u64,
    /// The durable state changed since the last write.
    dirty: bool,
    /// Ledger entries (decisions, snapshots installed) since the last write.
    committed: Vec<bft_core::LedgerEntry>,
    /// A write failed: the replica stops.
    store_failed: Option<crate::NetError>,
}

impl<P: Protocol> Driver<P> {
    fn new(
        node: Node<P>,
        links: Vec<Option<QueueTx>>,
        forwarder: Forwarder,
        losses: Arc<LinkLosses>,
    ) -> Self {
        let id = node.id();
        Driver {
            node,
            out: Vec::new(),
            links,
            timers: Timers::new(),
            start: Instant::now(),
            client_conns: BTreeMap::new(),
            owner: BTreeMap::new(),
            unrouted: Unrouted::default(),
            summary: NodeSummary {
                id,
                ..NodeSummary::default()
            },
            cpu: Duration::ZERO,
            losses,
            metrics: None,
            forwarder,
            writer: None,
            done: None,
            held: Vec::new(),
            in_flight: std::collections::VecDeque::new(),
            waiting: Vec::new(),
            batches_waiting: 0,
            next_write: 0,
            dirty: false,
            committed: Vec::new(),
            store_failed: None,
        }
    }

    fn now(&self) -> Time {
        Time::from_duration(self.start.elapsed())
    }

    async fn run(
        &mut self,
        mut inbound: mpsc::Receiver<PeerEvent>,
        mut clients: mpsc::Receiver<ClientEvent>,
        mut refreshes: Option<mpsc::Receiver<RefreshRequest>>,
        shutdown: impl Future<Output = ()>,
        snapshots: &watch::Sender<Snapshot>,
    ) {
        tokio::pin!(shutdown);
        let mut done = self.done.take();
        self.step(NodeInput::Start);
        self.flush();
        let mut published = Instant::now();
        // Handled events not yet published: a wake-up is armed for them, so
        // a replica that goes idle still publishes its last state.
        let mut unpublished = false;
        loop {
            let publish_at = tokio::time::Instant::from_std(published + PUBLISH_EVERY);
            let deadline = self.timers.next_deadline();
            let sleep = tokio::time::sleep_until(
                deadline.map_or_else(far_future, tokio::time::Instant::from_std),
            );
            // Backpressure: with this many batches waiting for the disk, the
            // replica handles nothing new until the write is done (each
            // waiting batch holds its outputs).
            let open = self.batches_waiting < MAX_BATCHES_WAITING;
            tokio::select! {
                _ = &mut shutdown => break,
                ev = inbound.recv(), if open => {
                    let Some(ev) = ev else { break };
                    let t0 = cpu_now();
                    self.peer_event(ev);
                    for _ in 0..DRAIN {
                        let Ok(ev) = inbound.try_recv() else { break };
                        self.peer_event(ev);
                    }
                    self.cpu += cpu_since(t0);
                }
                ev = clients.recv(), if open => {
                    let Some(ev) = ev else { break };
                    let t0 = cpu_now();
                    self.client_event(ev);
                    for _ in 0..DRAIN {
                        let Ok(ev) = clients.try_recv() else { break };
                        self.client_event(ev);
                    }
                    self.cpu += cpu_since(t0);
                }
                _ = sleep, if deadline.is_some() && open => {}
                _ = tokio::time::sleep_until(publish_at), if unpublished => {}
                Some(ack) = next_refresh(&mut refreshes) => {
                    self.refresh_metrics(inbound.len(), clients.len());
                    let _ = ack.send(());
                }
                Some(d) = next_done(&mut done) => {
                    self.written(d);
                    while let Some(Ok(d)) = done.as_mut().map(mpsc::UnboundedReceiver::try_recv) {
                        self.written(d);
                    }
                }
            }
            let t0 = cpu_now();
            if self.batches_waiting < MAX_BATCHES_WAITING {
                self.fire_due();
            }
            self.flush();
            self.cpu += cpu_since(t0);
            if self.store_failed.is_some() {
                break;
            }
            unpublished = published.elapsed() < PUBLISH_EVERY;
            if !unpublished {
                published = Instant::now();
                snapshots.send_replace(self.snapshot());
            }
            if self.metrics.as_ref().is_some_and(MetricsState::due) {
                self.refresh_metrics(inbound.len(), clients.len());
            }
        }
        // The writes still in flight report to this receiver while the
        // store is closed: dropped now, they would find no one listening.
        self.done = done;
        snapshots.send_replace(self.snapshot());
        self.summary.wall = self.start.elapsed();
        self.refresh_metrics(inbound.len(), clients.len());
    }

    /// Copies the core's counters and the runner's figures into the
    /// Prometheus registry (no-op without metrics).
    fn refresh_metrics(&mut self, inbound_depth: usize, clients_depth: usize) {
        let Some(state) = self.metrics.as_mut() else {
            return;
        };
        let figures = RunnerFigures {
            inbound_depth,
            clients_depth,
            outbound_depths: self
                .links
                .iter()
                .map(|l| l.as_ref().map(QueueTx::queued_frames))
                .collect(),
            outbound_bytes: self
                .links
                .iter()
                .map(|l| l.as_ref().map(QueueTx::queued_bytes))
                .collect(),
            dropped_overload: self.summary.dropped_overload,
            dropped_replies: self.summary.dropped_replies,
            dropped_link: self.losses.frames.load(Ordering::Relaxed),
            client_messages: self.summary.client_messages,
            client_bytes: self.summary.client_bytes,
            cpu_s: self.cpu.as_secs_f64(),
        };
        state.refresh(self.node.stats(), &self.node.status(), &figures);
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            status: self.node.status(),
            sent: self.node.stats().total_sent().count,
            received: self
                .node
                .stats()
                .received
                .iter()
                .map(|(_, c)| c.count)
                .sum(),
            rejected: self.node.stats().total_rejected(),
        }
    }

    fn fire_due(&mut self) {
        while let Some(timer) = self.timers.pop_due(Instant::now()) {
            self.step(NodeInput::Timeout(timer));
        }
    }

    fn peer_event(&mut self, ev: PeerEvent) {
        match ev {
            PeerEvent::Frame { from, body } => self.step(NodeInput::Frame { from, body: &body }),
            PeerEvent::Rejected(reason) => self.node.count_rejected(reason),
        }
    }

    fn client_event(&mut self, ev: ClientEvent) {
        match ev {
            ClientEvent::Connected { conn, replies } => {
                self.client_conns.insert(conn, replies);
            }
            ClientEvent::Disconnected { conn } => {
                self.client_conns.remove(&conn);
            }
            ClientEvent::Rejected(reason) => self.node.count_rejected(reason),
            ClientEvent::Request { conn, req } => {
                if self.owner.len() < MAX_ROUTED_CLIENTS
                    || self.owner.contains_key(&req.id().client)
                {
                    self.owner.insert(req.id().client, conn);
                }
                if self.answer_late(conn, req.id()) {
                    return;
                }
                if let Some(m) = self.metrics.as_mut() {
                    m.arrivals.arrive(req.id(), Instant::now());
                }
                self.step(NodeInput::Request(req));
            }
            ClientEvent::Forwarded { req, .. } => self.step(NodeInput::Request(req)),
            ClientEvent::Submitted { req, answer } => {
                if let Some(m) = self.metrics.as_mut() {
                    m.arrivals.arrive(req.id(), Instant::now());
                }
                self.forwarder.submitted(&req, answer);
                self.step(NodeInput::Request(req));
            }
        }
    }

    fn step(&mut self, input: NodeInput<'_, P::Timer>) {
        if self.store_failed.is_some() {
            return;
        }
        let now = self.now();
        let mut out = std::mem::take(&mut self.out);
        self.node.step(now, input, &mut out);
        if self.writer.is_none() {
            for o in out.drain(..) {
                self.output(o);
            }
        } else {
            for o in out.drain(..) {
                match o {
                    Output::Persist => self.dirty = true,
                    Output::Commit(ref d) => {
                        self.committed
                            .push(bft_core::LedgerEntry::Commit(d.clone()));
                        self.held.push(o);
                    }
                    Output::InstallSnapshot { slot, block } => {
                        self.committed
                            .push(bft_core::LedgerEntry::Snapshot { slot, block });
                    }
                    o => self.held.push(o),
                }
            }
        }
        self.out = out;
    }

    fn output(&mut self, o: Output<P::Timer>) {
        match o {
            Output::Send { to, body, .. } => self.send(to, body),
            Output::SetTimer { timer, after } => {
                let at = Instant::now() + after;
                self.timers.set(timer, at);
            }
            Output::CancelTimer(timer) => self.timers.cancel(timer),
            // Handled in `step`: with a store it marks the batch for
            // `flush`; without one nothing persists.
            Output::Persist => {}
            // With a store it is written in `step`; nothing to reply.
            Output::InstallSnapshot { .. } => {}
            Output::Commit(d) => {
                if self.summary.first_commit_s.is_none() {
                    self.summary.first_commit_s = Some(self.start.elapsed().as_secs_f64());
                }
                if let Some(m) = self.metrics.as_mut() {
                    m.committed(&d.requests, Instant::now());
                }
                self.forwarder.committed(d.slot, &d.requests);
                self.reply(d.slot, &d.requests);
            }
        }
    }

    fn send(&mut self, to: NodeId, body: Bytes) {
        let Some(Some(link)) = self.links.get(to.index()) else {
            return;
        };
        if link.try_send(body).is_err() {
            self.summary.dropped_overload += 1;
        }
    }

    fn summary(&self) -> NodeSummary {
        let mut s = self.summary.clone();
        s.stats = self.node.stats().clone();
        s.status = self.node.status();
        s.forwarded_requests = self.forwarder.forwarded;
        s.dropped_forwards = self.forwarder.dropped;
        s.cpu_s = self.cpu.as_secs_f64();
        s
    }
}

/// The next scrape's refresh request; never resolves without an endpoint.
async fn next_refresh(
    refreshes: &mut Option<mpsc::Receiver<RefreshRequest>>,
) -> Option<RefreshRequest> {
    match refreshes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400)
}

fn cpu_now() -> Option<cpu_time::ThreadTime> {
    cpu_time::ThreadTime::try_now().ok()
}

fn cpu_since(t0: Option<cpu_time::ThreadTime>) -> Duration {
    t0.and_then(|t| t.try_elapsed().ok())
        .unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests;
