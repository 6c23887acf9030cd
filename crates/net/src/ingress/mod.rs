//! The HTTP ingress of `bftbench node --http ADDR`: transactions from load
//! tools nobody here wrote (oha, wrk2, k6, curl), answered when this
//! replica commits them.
//!
//! `POST /submit` with the transaction as the body (Content-Length, 1 to
//! [`MAX_BODY`] bytes) becomes a request of this node's ingress client
//! (`bft_core::RequestId::ingress_client`: a client id of its own per
//! start, numbers from 0), signed with the node's Ed25519 key when the
//! cluster's requests are signed. The replica forwards it to every other
//! replica, as a client would have sent it to all, takes it itself, and the
//! connection is answered `200` with `{"client":C,"number":N,"slot":S}` once
//! this replica commits it.
//!
//! Every other outcome has its status and its counter ([`IngressStats`]):
//!
//! | status | when | counter |
//! |---|---|---|
//! | 400 | empty body; a request line or header that does not parse | `bad-request` |
//! | 404 | a path other than `/submit` | `not-found` |
//! | 405 | a method other than POST (`Allow: POST`) | `method-not-allowed` |
//! | 408 | the head or the body took longer than `read_timeout` (default [`DEFAULT_READ_TIMEOUT`]) | `slow-client` |
//! | 411 | no Content-Length (chunked bodies are not taken) | `length-required` |
//! | 413 | a body over [`MAX_BODY`] | `too-large` |
//! | 431 | a head over [`MAX_REQUEST_HEAD`] | `head-too-large` |
//! | 503 | admission: `max_pending` requests of this ingress wait for their commit, or the replica's queue is full, or it stopped (`Retry-After: 1`) | `overloaded` |
//! | 504 | not committed within `commit_wait` (it may still commit later) | `commit-timeout` |
//!
//! Memory is bounded: [`MAX_CONNECTIONS`] at once (more are answered 503
//! and closed, counted `connections-refused`), a head of at most
//! [`MAX_REQUEST_HEAD`] bytes, a body of at most [`MAX_BODY`], at most
//! `max_pending` requests waiting. Connections are kept alive (HTTP/1.1
//! unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`)
//! and pipelined requests are answered in order; after a response to a
//! request whose body was not read (411, 413, 408, 431, 400 on the head)
//! the connection is closed.

use crate::NetError;
use crate::transport::ClientEvent;
use bft_core::{NodeId, Request, RequestId};
use bft_crypto::ClientSigner;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;

mod http;
use http::{Answer, serve};
pub use http::{Head, parse_head};

/// The largest transaction taken, bytes.
pub const MAX_BODY: usize = 64 << 10;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long a client may take to send a request's head, and its body, by
/// default.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests waiting for their commit, by default. Each connection has one
/// request in progress at a time (pipelined ones wait their turn), so this
/// is below [`MAX_CONNECTIONS`]: admission refuses before connections are.
pub const DEFAULT_MAX_PENDING: usize = 2048;
/// How long a request waits for its commit, by default.
pub const DEFAULT_COMMIT_WAIT: Duration = Duration::from_secs(30);

/// How a node's ingress is set up.
#[derive(Clone, Debug)]
pub struct IngressConfig {
    pub addr: SocketAddr,
    /// Requests that may wait for their commit at once; beyond, 503.
    pub max_pending: usize,
    /// How long a request waits for its commit before a 504.
    pub commit_wait: Duration,
    /// How long a client may take to send a request's head, and its body,
    /// before a 408.
    pub read_timeout: Duration,
    /// The largest transaction taken, bytes (at most [`MAX_BODY`]); see
    /// [`body_limit`].
    pub max_body: usize,
}

impl IngressConfig {
    pub fn new(addr: SocketAddr) -> IngressConfig {
        IngressConfig {
            addr,
            max_pending: DEFAULT_MAX_PENDING,
            commit_wait: DEFAULT_COMMIT_WAIT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_body: MAX_BODY,
        }
    }
}

/// The largest transaction a cluster cutting batches of up to
/// `batch_max_size` requests can take: a full batch of them stays within
/// half the frame limit, the bound scenario validation puts on
/// `batch.max_size × load.tx_size` (a larger batch could not be sent, and
/// every leader would cut it again), and at most [`MAX_BODY`].
pub fn body_limit(batch_max_size: usize) -> usize {
    let per_request_overhead = 16 + 1 + bft_core::Signature::LEN;
    (bft_core::codec::DEFAULT_MAX_FRAME / 2 / batch_max_size.max(1))
        .saturating_sub(per_request_overhead)
        .clamp(1, MAX_BODY)
}

/// Binds the ingress listener (before the node starts, so a bad address
/// fails the start).
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, NetError> {
    let bind_err = |source| NetError::IngressBind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    Ok(listener)
}

/// A bound ingress, for [`crate::runner::ReplicaSetup::ingress`].
pub struct IngressSetup {
    pub listener: std::net::TcpListener,
    pub config: IngressConfig,
    /// Its client id (`RequestId::ingress_client`).
    pub client: u32,
    /// Signs its requests; None in unsigned runs.
    pub signer: Option<ClientSigner>,
}

impl IngressSetup {
    /// Node `id`'s ingress on `listener`: its client id for this start
    /// ([`next_epoch`] in `data_dir`), its body limit for batches of
    /// `batch_max_size` ([`body_limit`]).
    pub fn new(
        listener: std::net::TcpListener,
        mut config: IngressConfig,
        id: NodeId,
        data_dir: Option<&std::path::Path>,
        batch_max_size: usize,
        signer: Option<ClientSigner>,
    ) -> Result<IngressSetup, NetError> {
        let epoch = next_epoch(data_dir)?;
        let client = RequestId::ingress_client(id, epoch).ok_or(NetError::Invalid {
            key: "--http".into(),
            reason: format!(
                "node {id}: an ingress needs a node id below {}",
                bft_core::MAX_INGRESS_NODES
            ),
        })?;
        config.max_body = config.max_body.min(body_limit(batch_max_size));
        tracing::info!(node = id.0, addr = %config.addr, client, max_body = config.max_body, "serving POST /submit");
        Ok(IngressSetup {
            listener,
            config,
            client,
            signer,
        })
    }
}

/// Starts serving `setup` in `tasks`, handing requests to the replica task
/// through `submit`; the counters it will keep.
pub fn start(
    setup: IngressSetup,
    submit: mpsc::Sender<ClientEvent>,
    tasks: &mut JoinSet<()>,
) -> Result<Arc<IngressStats>, NetError> {
    let addr = setup.config.addr;
    let listener = TcpListener::from_std(setup.listener)
        .map_err(|source| NetError::IngressBind { addr, source })?;
    let ingress = Ingress::new(&setup.config, setup.client, setup.signer, submit);
    let stats = ingress.stats();
    tasks.spawn(serve(listener, Arc::new(ingress)));
    Ok(stats)
}

/// The file in a data directory that numbers the ingress's starts.
pub const EPOCH_FILE: &str = "ingress-epoch";

/// The epoch of this start of a node's ingress (see
/// `RequestId::ingress_client`). A reused epoch would make the new start's
/// requests look executed already (they would never commit), so:
/// - with a data directory, one more than the last start's, kept in
///   [`EPOCH_FILE`] there (written and synced before the ingress takes
///   anything); a directory without the file (a new or wiped disk) starts
///   from the clock's epoch below, not from 0;
/// - without one, the wall clock's seconds halved, modulo 2^16: a restart
///   reuses an epoch only if it comes within 2 s of an earlier start or a
///   multiple of about 36 hours after one.
///
/// Call it after the data directory is opened (and locked), so that a
/// mistaken second start on a live node's directory changes nothing.
pub fn next_epoch(dir: Option<&std::path::Path>) -> Result<u16, NetError> {
    let clock = || {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        ((secs / 2) % (1 << 16)) as u16
    };
    let Some(dir) = dir else {
        return Ok(clock());
    };
    let path = dir.join(EPOCH_FILE);
    let io = |source| NetError::Io {
        path: path.clone(),
        source,
    };
    let last = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text.trim().parse::<u16>().map_err(|_| NetError::Invalid {
            key: path.display().to_string(),
            reason: format!("holds {:?}, not an epoch number (0..=65535)", text.trim()),
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let epoch = last.map_or_else(clock, |e| e.wrapping_add(1));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!("{EPOCH_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{epoch}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(io)?;
    Ok(epoch)
}

/// What the ingress answered, by outcome (see the module's table).
#[derive(Debug, Default)]
pub struct IngressStats {
    pub committed: AtomicU64,
    pub bad_request: AtomicU64,
    pub not_found: AtomicU64,
    pub method_not_allowed: AtomicU64,
    pub slow_client: AtomicU64,
    pub length_required: AtomicU64,
    pub too_large: AtomicU64,
    pub head_too_large: AtomicU64,
    pub overloaded: AtomicU64,
    pub commit_timeout: AtomicU64,
    pub connections_refused: AtomicU64,
}

impl IngressStats {
    /// Every counter by its label.
    pub fn to_sorted(&self) -> BTreeMap<&'static str, u64> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BTreeMap::from([
            ("committed", get(&self.committed)),
            ("bad-request", get(&self.bad_request)),
            ("not-found", get(&self.not_found)),
            ("method-not-allowed", get(&self.method_not_allowed)),
            ("slow-client", get(&self.slow_client)),
            ("length-required", get(&self.length_required)),
            ("too-large", get(&self.too_large)),
            ("head-too-large", get(&self.head_too_large)),
            ("overloaded", get(&self.overloaded)),
            ("commit-timeout", get(&self.commit_timeout)),
            ("connections-refused", get(&self.connections_refused)),
        ])
    }
}

/// A running ingress: what each connection shares.
pub struct Ingress {
    client: u32,
    next: AtomicU64,
    signer: Option<ClientSigner>,
    pending: Arc<Semaphore>,
    max_pending: usize,
    commit_wait: Duration,
    read_timeout: Duration,
    max_body: usize,
    submit: mpsc::Sender<ClientEvent>,
    stats: Arc<IngressStats>,
}

impl Ingress {
    /// The ingress of client id `client` (see
    /// `RequestId::ingress_client`), handing requests to the replica task
    /// through `submit`; `signer` signs them (None in unsigned runs).
    pub fn new(
        cfg: &IngressConfig,
        client: u32,
        signer: Option<ClientSigner>,
        submit: mpsc::Sender<ClientEvent>,
    ) -> Ingress {
        Ingress {
            client,
            next: AtomicU64::new(0),
            signer,
            pending: Arc::new(Semaphore::new(cfg.max_pending.min(Semaphore::MAX_PERMITS))),
            max_pending: cfg.max_pending,
            commit_wait: cfg.commit_wait,
            read_timeout: cfg.read_timeout,
            max_body: cfg.max_body.min(MAX_BODY),
            submit,
            stats: Arc::new(IngressStats::default()),
        }
    }

    pub fn stats(&self) -> Arc<IngressStats> {
        self.stats.clone()
    }

    /// Submits `tx` and waits for its commit; the status line, headers and
    /// body of the answer.
    async fn submit(&self, tx: Bytes) -> Answer {
        let Ok(permit) = self.pending.clone().try_acquire_owned() else {
            return self.overloaded(format!(
                "{} requests already wait for their commit",
                self.max_pending
            ));
        };
        // The queue's slot first, the number after: a number is taken only
        // by a request that goes out, so the ingress's numbers have no
        // holes (each replica remembers a client's executed numbers above
        // the first hole one by one, in its durable state).
        let slot = match self.submit.try_reserve() {
            Ok(slot) => slot,
            Err(mpsc::error::TrySendError::Full(())) => {
                return self.overloaded("the replica's queue is full".into());
            }
            Err(mpsc::error::TrySendError::Closed(())) => {
                return self.overloaded("the replica stopped".into());
            }
        };
        let id = RequestId {
            client: self.client,
            number: self.next.fetch_add(1, Ordering::Relaxed),
        };
        let mut req = Request::unsigned(id, tx);
        if let Some(signer) = &self.signer {
            signer.sign(&mut req);
        }
        let (answer, committed) = oneshot::channel();
        slot.send(ClientEvent::Submitted { req, answer });
        let outcome = tokio::time::timeout(self.commit_wait, committed).await;
        drop(permit);
        match outcome {
            Ok(Ok(slot)) => {
                self.stats.committed.fetch_add(1, Ordering::Relaxed);
                let body = format!(
                    "{{\"client\":{},\"number\":{},\"slot\":{slot}}}\n",
                    id.client, id.number
                );
                Answer::new("200 OK", "application/json", body)
            }
            Ok(Err(_)) => self.overloaded("the replica stopped".into()),
            Err(_) => {
                self.stats.commit_timeout.fetch_add(1, Ordering::Relaxed);
                Answer::text(
                    "504 Gateway Timeout",
                    format!(
                        "request {id:?} not seen committed here within {:?}; it may have \
                         committed (this replica may have skipped its slot in a state \
                         transfer) or commit later",
                        self.commit_wait
                    ),
                )
            }
        }
    }

    fn overloaded(&self, why: String) -> Answer {
        self.stats.overloaded.fetch_add(1, Ordering::Relaxed);
        let mut a = Answer::text("503 Service Unavailable", format!("overloaded: {why}"));
        a.extra = "Retry-After: 1\r\n";
        a
    }

    fn refuse(&self, counter: &AtomicU64, status: &'static str, why: String) -> Answer {
        counter.fetch_add(1, Ordering::Relaxed);
        Answer::text(status, why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_batch_of_the_largest_body_fits_half_a_frame() {
        assert_eq!(body_limit(1), MAX_BODY);
        assert_eq!(body_limit(0), MAX_BODY);
        for batch in [2000, 10_000, 1 << 20] {
            let limit = body_limit(batch);
            let per_request = limit + 16 + 1 + bft_core::Signature::LEN;
            assert!((1..MAX_BODY).contains(&limit));
            assert!(batch * per_request <= bft_core::codec::DEFAULT_MAX_FRAME / 2 || limit == 1);
        }
    }

    #[test]
    fn each_start_on_a_data_directory_takes_the_next_epoch() {
        let dir = std::env::temp_dir().join(format!("bftbench-epoch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = next_epoch(Some(&dir)).unwrap();
        assert_eq!(next_epoch(Some(&dir)).unwrap(), first.wrapping_add(1));
        std::fs::write(dir.join(EPOCH_FILE), "65535\n").unwrap();
        assert_eq!(next_epoch(Some(&dir)).unwrap(), 0);
        std::fs::write(dir.join(EPOCH_FILE), "not a number").unwrap();
        let err = next_epoch(Some(&dir)).unwrap_err().to_string();
        assert!(
            err.contains(EPOCH_FILE) && err.contains("not a number"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
