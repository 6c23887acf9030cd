//! Connections between replicas, and between clients and replicas.
//!
//! One long-lived QUIC connection per replica pair: the lower id dials the
//! higher, so there is one at a time (besides a restart's announcement and
//! the short overlap of a redial, below). Each side sends its protocol messages on
//! ONE unidirectional stream it opens on that connection (a frame per
//! message, many frames per write), and the requests its HTTP ingress
//! forwards on a second one; the first frame of each names which
//! ([`StreamKind`]). It reads every unidirectional stream the other side
//! opens. A
//! broken connection is redialled with exponential backoff; the acceptor
//! switches its writer to the newest connection from that peer (a restarted
//! peer dials again).
//!
//! A replica restarted on its data directory announces it to each lower id
//! ([`announce_restart`]: a connection it dials, holds a moment and
//! closes), and that peer redials it at once ([`dial_loop`]) rather than
//! go on sending into its connection to the previous run, which it would
//! learn is dead (a stateless reset) only when its next packet gets there:
//! after an outage with much unacknowledged, that is the next loss probe,
//! whose interval doubles through the outage.
//!
//! Nothing here decodes protocol messages: readers hand bodies to the node
//! task, whose `Node::step` decodes and counts them (a malformed body is
//! counted there by reason and dropped).

use crate::queue::QueueRx;
use crate::tls::{Peer, PeerKeys, peer_of};
use crate::wire::{FrameReader, FrameWriter, ReadEnd, StreamKind};
use bft_core::node::reasons;
use bft_core::{NodeId, Request, RequestId, codec};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Reason a stream ended mid-frame (a peer died while writing, usually).
pub const TRUNCATED: &str = "truncated-frame";
/// Reason for a client frame that is not a request.
pub const MALFORMED_CLIENT: &str = "malformed-client-frame";
/// Reason for an oversized client frame.
pub const OVERSIZED_CLIENT: &str = "oversized-client-frame";
/// Reason for a replica stream whose first frame names no [`StreamKind`].
pub const UNKNOWN_STREAM: &str = "unknown-stream-kind";
/// Reason for a forwarded-request frame that is not a request.
pub const MALFORMED_FORWARDED: &str = "malformed-forwarded-request";
/// Reason for a forwarded request that is not the forwarding replica's own
/// ingress's (a replica forwards only what its ingress took in).
pub const FORWARDED_NOT_ITS_OWN: &str = "forwarded-not-its-own";
/// Reason for a client's request under an ingress's client id.
pub const CLIENT_UNDER_INGRESS_ID: &str = "client-under-ingress-id";
/// The largest forwarded-request frame: the largest ingress body and the
/// request's id and signature, with room to spare.
pub const MAX_FORWARDED_FRAME: usize = crate::ingress::MAX_BODY + 1024;

/// What replica readers hand the node task.
#[derive(Debug)]
pub enum PeerEvent {
    Frame {
        from: NodeId,
        body: Bytes,
    },
    /// Refused before it reached the node (counted by the node).
    Rejected(&'static str),
}

/// What client-connection tasks (and the HTTP ingress, and the readers of
/// requests other replicas' ingresses forward) hand the node task.
#[derive(Debug)]
pub enum ClientEvent {
    Connected {
        conn: u64,
        replies: mpsc::Sender<Bytes>,
    },
    Request {
        conn: u64,
        req: Request,
    },
    Rejected(&'static str),
    Disconnected {
        conn: u64,
    },
    /// A request another replica's ingress took in (nobody here replies).
    Forwarded {
        from: NodeId,
        req: Request,
    },
    /// A request this replica's HTTP ingress took in: the replica forwards
    /// it to every other replica, takes it itself, and sends the slot that
    /// commits it to `answer`.
    Submitted {
        req: Request,
        answer: tokio::sync::oneshot::Sender<u64>,
    },
}

/// Where a replica connection's readers hand what they read.
#[derive(Clone)]
pub struct ReplicaInbound {
    pub frames: mpsc::Sender<PeerEvent>,
    /// Forwarded requests go where client requests go.
    pub requests: mpsc::Sender<ClientEvent>,
    pub max_frame: usize,
}

/// Frames lost because a connection broke under them (not overload).
#[derive(Debug, Default)]
pub struct LinkLosses {
    pub frames: AtomicU64,
}

/// Frames written per `write_all_chunks` at most.
pub const WRITE_BATCH: usize = 512;
/// Events a reader may queue to the node task before it waits (QUIC flow
/// control then pushes back on the peer).
pub const INBOUND_QUEUE: usize = 8192;

/// Dials `addr` until a connection is up, backing off from 20 ms to 2 s.
pub async fn connect_with_backoff(
    endpoint: &quinn::Endpoint,
    cfg: &quinn::ClientConfig,
    addr: SocketAddr,
    backoff: &mut Duration,
) -> quinn::Connection {
    loop {
        if let Ok(connecting) = endpoint.connect_with(cfg.clone(), addr, "bftbench")
            && let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_secs(5), connecting).await
        {
            return conn;
        }
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(Duration::from_secs(2));
    }
}

/// Replica side, `me < peer`: keeps a connection to `peer` up, hands each
/// new one to the link's writers, and reads what the peer sends on it.
///
/// `restarts` counts the peer's restart announcements
/// ([`announce_restart`]). One that comes after the current connection was
/// up means the connection may lead into the peer's previous run: dial a
/// fresh one at once and hand it over, and keep reading the old one until
/// then and for [`RETIRE_GRACE`] after before closing it (if the peer had
/// not restarted after all, what either side wrote on it before switching
/// has that long to arrive). One that comes while dialling starts the dial
/// over with the shortest backoff. At most one redial of an up connection
/// per [`RETIRE_GRACE`], so a peer announcing restarts in a loop costs only
/// its own link a handshake a second.
pub async fn dial_loop(
    endpoint: quinn::Endpoint,
    cfg: quinn::ClientConfig,
    addr: SocketAddr,
    peer: NodeId,
    conns: Vec<mpsc::Sender<quinn::Connection>>,
    inbound: ReplicaInbound,
    mut restarts: watch::Receiver<u64>,
) {
    let mut backoff = Duration::from_millis(20);
    let mut last_redial: Option<Instant> = None;
    // The connection an announcement replaced, with its reader: retired
    // once the next one is handed over.
    let mut replaced: Option<(quinn::Connection, Reader)> = None;
    let mut retiring = JoinSet::new();
    loop {
        while retiring.try_join_next().is_some() {}
        // An announcement while dialling (after a long outage the backoff
        // has grown to seconds) starts the dial over at once.
        let dialled = tokio::select! {
            conn = connect_with_backoff(&endpoint, &cfg, addr, &mut backoff) => Some(conn),
            Ok(()) = restarts.changed() => None,
        };
        let Some(conn) = dialled else {
            backoff = Duration::from_millis(20);
            continue;
        };
        let up = Instant::now();
        // Announcements that came while dialling are older than this
        // connection: it reached the peer's current run.
        restarts.borrow_and_update();
        if !hand_over(&conns, &conn).await {
            return;
        }
        if let Some((old, reader)) = replaced.take() {
            retiring.spawn(retire(old, reader));
        }
        let listen_from = last_redial.map_or(up, |t| t + RETIRE_GRACE).max(up);
        let announced = async {
            tokio::time::sleep_until(listen_from.into()).await;
            if restarts.changed().await.is_err() {
                // Nobody can announce any more: the replica is stopping.
                std::future::pending::<()>().await;
            }
        };
        let mut reader = Reader(tokio::spawn(read_replica_conn(
            conn.clone(),
            peer,
            inbound.clone(),
        )));
        tokio::select! {
            _ = &mut reader.0 => {
                if up.elapsed() > Duration::from_secs(1) {
                    backoff = Duration::from_millis(20);
                }
                tokio::time::sleep(backoff).await;
            }
            () = announced => {
                last_redial = Some(Instant::now());
                backoff = Duration::from_millis(20);
                replaced = Some((conn, reader));
            }
        }
    }
}

/// How long a replaced connection is still read before it is closed.
pub const RETIRE_GRACE: Duration = Duration::from_secs(1);

/// A connection's reading task, stopped when dropped (with the dial loop
/// that owns it).
struct Reader(tokio::task::JoinHandle<()>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Lets a replaced connection's reader go on for [`RETIRE_GRACE`] (the
/// frames the peer wrote on it before it switched), then closes it.
async fn retire(conn: quinn::Connection, mut reader: Reader) {
    if tokio::time::timeout(RETIRE_GRACE, &mut reader.0)
        .await
        .is_err()
    {
        conn.close(0u32.into(), b"replaced");
    }
}

/// Replica side, restarted on its data directory, to each lower id `peer`:
/// dials it once, which tells it that this replica runs again (its
/// [`dial_loop`] then redials at once), holds the connection for
/// [`RETIRE_GRACE`] and closes it. Nothing is sent on it. Gives up quietly
/// if the peer cannot be reached: it will dial this replica when it can.
pub async fn announce_restart(
    endpoint: quinn::Endpoint,
    cfg: quinn::ClientConfig,
    addr: SocketAddr,
) {
    let Ok(connecting) = endpoint.connect_with(cfg, addr, "bftbench") else {
        return;
    };
    if let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_secs(5), connecting).await {
        tokio::time::sleep(RETIRE_GRACE).await;
        conn.close(0u32.into(), b"restart announced");
    }
}

/// Hands a new connection with a peer to the link's writers: the protocol
/// writer (first) waits for it; the forwarded-request writer gets it only if
/// it has room (a writer that has not taken the last four is stuck in a
/// write, and takes those first), so forwarded traffic never holds up the
/// protocol's link. False once the writers are gone.
async fn hand_over(writers: &[mpsc::Sender<quinn::Connection>], conn: &quinn::Connection) -> bool {
    let Some((protocol, others)) = writers.split_first() else {
        return true;
    };
    if protocol.send(conn.clone()).await.is_err() {
        return false;
    }
    for writer in others {
        let _ = writer.try_send(conn.clone());
    }
    true
}

/// Reads every unidirectional stream of a replica connection until it
/// closes; frames go to the node task tagged with the authenticated sender.
pub async fn read_replica_conn(conn: quinn::Connection, from: NodeId, inbound: ReplicaInbound) {
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            s = conn.accept_uni() => match s {
                Ok(recv) => {
                    let reader = FrameReader::new(recv, inbound.max_frame);
                    streams.spawn(read_replica_stream(reader, from, inbound.clone()));
                }
                Err(_) => break,
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
        }
    }
    streams.shutdown().await;
}

/// Reads the stream's kind, then its frames.
async fn read_replica_stream(mut reader: FrameReader, from: NodeId, inbound: ReplicaInbound) {
    let first = reader.next().await;
    match first.as_deref().ok().and_then(StreamKind::parse) {
        Some(StreamKind::Protocol) => read_protocol_stream(reader, from, inbound.frames).await,
        Some(StreamKind::Requests) => {
            reader.set_max_frame(MAX_FORWARDED_FRAME.min(inbound.max_frame));
            read_forwarded_stream(reader, from, inbound).await;
        }
        None => {
            if !matches!(first, Err(ReadEnd::Closed)) {
                reader.stop();
                let _ = inbound
                    .frames
                    .send(PeerEvent::Rejected(UNKNOWN_STREAM))
                    .await;
            }
        }
    }
}

async fn read_protocol_stream(
    mut reader: FrameReader,
    from: NodeId,
    inbound: mpsc::Sender<PeerEvent>,
) {
    loop {
        let event = match reader.next().await {
            Ok(body) => PeerEvent::Frame { from, body },
            Err(ReadEnd::Closed) => return,
            Err(ReadEnd::Truncated) => PeerEvent::Rejected(TRUNCATED),
            Err(ReadEnd::Oversized) => {
                reader.stop();
                PeerEvent::Rejected(reasons::OVERSIZED)
            }
        };
        let last = matches!(event, PeerEvent::Rejected(_));
        if inbound.send(event).await.is_err() || last {
            return;
        }
    }
}

/// Decodes forwarded requests in the reader task; a frame that is not a
/// request, or a request that is not of `from`'s own ingress, is counted
/// (under the replica's rejections) and dropped.
async fn read_forwarded_stream(reader: FrameReader, from: NodeId, inbound: ReplicaInbound) {
    let accept = |req: Request| {
        if RequestId::ingress_node(req.id().client) == Some(from) {
            ClientEvent::Forwarded { from, req }
        } else {
            ClientEvent::Rejected(FORWARDED_NOT_ITS_OWN)
        }
    };
    let reasons = (MALFORMED_FORWARDED, reasons::OVERSIZED);
    read_requests(
        reader,
        MAX_FORWARDED_FRAME,
        reasons,
        accept,
        inbound.requests,
    )
    .await;
}

/// Decodes a stream of request frames in the reader task and hands each to
/// the node task as `accept` makes it; a frame that is not a request is
/// rejected as `malformed`. A truncated stream, or one whose header declares
/// more than the cap (rejected as `oversized`, the stream stopped), ends
/// the reading.
async fn read_requests(
    mut reader: FrameReader,
    max_frame: usize,
    (malformed, oversized): (&'static str, &'static str),
    accept: impl Fn(Request) -> ClientEvent,
    events: mpsc::Sender<ClientEvent>,
) {
    loop {
        let (event, last) = match reader.next().await {
            Ok(body) => match codec::decode::<Request>(&body, max_frame) {
                Ok(req) => (accept(req), false),
                Err(_) => (ClientEvent::Rejected(malformed), false),
            },
            Err(ReadEnd::Closed) => return,
            Err(ReadEnd::Truncated) => (ClientEvent::Rejected(TRUNCATED), true),
            Err(ReadEnd::Oversized) => {
                reader.stop();
                (ClientEvent::Rejected(oversized), true)
            }
        };
        if events.send(event).await.is_err() || last {
            return;
        }
    }
}

/// The writer of one peer link (or one client's replies): sends queued
/// bodies as frames on the current connection, after a first frame naming
/// the stream's `kind` when it has one (replica links; a client's reply
/// stream has none); switches when a newer connection arrives; frames lost
/// in a failed write are counted in `losses`.
pub async fn link_writer(
    mut out: QueueRx,
    mut conns: mpsc::Receiver<quinn::Connection>,
    losses: Arc<LinkLosses>,
    kind: Option<StreamKind>,
) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut next: Option<quinn::Connection> = None;
    loop {
        let conn = match next.take() {
            Some(c) => c,
            None => match conns.recv().await {
                Some(c) => c,
                None => return,
            },
        };
        let Ok(send) = conn.open_uni().await else {
            continue;
        };
        let mut writer = FrameWriter::new(send);
        if let Some(kind) = kind
            && writer.write(&[kind.frame()]).await.is_err()
        {
            continue;
        }
        loop {
            tokio::select! {
                c = conns.recv() => match c {
                    Some(c) => { next = Some(c); break; }
                    None => return,
                },
                n = out.recv_many(&mut batch, WRITE_BATCH) => {
                    if n == 0 {
                        return;
                    }
                    let failed = writer.write(&batch).await.is_err();
                    out.written(&batch);
                    if failed {
                        losses.frames.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                    batch.clear();
                    if failed {
                        break;
                    }
                }
                _ = conn.closed() => break,
            }
        }
    }
}

/// Everything an accepted connection may be routed to.
#[derive(Clone)]
pub struct AcceptCtx {
    pub me: NodeId,
    pub keys: Arc<PeerKeys>,
    /// Per peer id: where a connection from a lower id goes (its link's
    /// writers; none for this replica).
    pub link_conns: Vec<Vec<mpsc::Sender<quinn::Connection>>>,
    /// Per peer id: where a higher id's restart announcement goes (its
    /// [`dial_loop`]'s counter; None for this replica and lower ids).
    pub restarts: Vec<Option<watch::Sender<u64>>>,
    pub inbound: ReplicaInbound,
    pub clients: mpsc::Sender<ClientEvent>,
    pub max_frame: usize,
    pub next_conn: Arc<AtomicU64>,
}

/// Accepts connections until the endpoint closes. The handshake already
/// refused keys outside the committee and the client list.
pub async fn accept_loop(endpoint: quinn::Endpoint, ctx: AcceptCtx) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(i) => { conns.spawn(handle_incoming(i, ctx.clone())); }
                None => break,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

async fn handle_incoming(incoming: quinn::Incoming, ctx: AcceptCtx) {
    let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_secs(5), incoming).await else {
        return;
    };
    match peer_of(&conn, &ctx.keys) {
        Some(Peer::Replica(peer)) if peer < ctx.me => {
            // A lower id dialled us: ours to write on.
            if let Some(writers) = ctx.link_conns.get(peer.index()) {
                hand_over(writers, &conn).await;
            }
            read_replica_conn(conn, peer, ctx.inbound.clone()).await;
        }
        Some(Peer::Replica(peer)) if peer > ctx.me => {
            // A higher id dials us only to announce its restart
            // ([`announce_restart`]): our dial loop to it redials. Whatever
            // it sends on this connection is read, never answered on it.
            if let Some(Some(restarts)) = ctx.restarts.get(peer.index()) {
                restarts.send_modify(|n| *n = n.wrapping_add(1));
            }
            read_replica_conn(conn, peer, ctx.inbound.clone()).await;
        }
        Some(Peer::Client(_)) => serve_client(conn, ctx).await,
        _ => conn.close(1u32.into(), b"not a peer of this replica"),
    }
}

/// Replies queued per client connection before they are dropped (counted).
pub const REPLY_QUEUE: usize = 4096;

async fn serve_client(conn: quinn::Connection, ctx: AcceptCtx) {
    let id = ctx.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(REPLY_QUEUE);
    let connected = ClientEvent::Connected {
        conn: id,
        replies: tx,
    };
    if ctx.clients.send(connected).await.is_err() {
        return;
    }
    let (conn_tx, conn_rx) = mpsc::channel(1);
    let _ = conn_tx.send(conn.clone()).await;
    let losses = Arc::new(LinkLosses::default());
    tokio::select! {
        _ = link_writer(QueueRx::unmetered(rx), conn_rx, losses, None) => {}
        _ = read_client_conn(conn.clone(), id, ctx.clients.clone(), ctx.max_frame) => {}
    }
    let _ = ctx
        .clients
        .send(ClientEvent::Disconnected { conn: id })
        .await;
}

async fn read_client_conn(
    conn: quinn::Connection,
    id: u64,
    events: mpsc::Sender<ClientEvent>,
    max_frame: usize,
) {
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            s = conn.accept_uni() => match s {
                Ok(recv) => {
                    streams.spawn(read_client_stream(FrameReader::new(recv, max_frame), id, events.clone(), max_frame));
                }
                Err(_) => break,
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
        }
    }
    streams.shutdown().await;
}

/// Decodes requests in the reader task (in parallel with the node task);
/// a frame that is not a request is counted and dropped.
async fn read_client_stream(
    reader: FrameReader,
    conn: u64,
    events: mpsc::Sender<ClientEvent>,
    max_frame: usize,
) {
    // Ingress client ids are the replicas' own (see `RequestId::ingress_client`).
    let accept = |req: Request| {
        if RequestId::ingress_node(req.id().client).is_some() {
            ClientEvent::Rejected(CLIENT_UNDER_INGRESS_ID)
        } else {
            ClientEvent::Request { conn, req }
        }
    };
    let reasons = (MALFORMED_CLIENT, OVERSIZED_CLIENT);
    read_requests(reader, max_frame, reasons, accept, events).await;
}
