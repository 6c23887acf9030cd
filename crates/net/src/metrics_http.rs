//! A minimal HTTP/1.x responder for `GET /metrics` on a tokio TCP listener:
//! one request per connection, a bounded request head, a bounded number of
//! connections at once, and an error status (never a panic) for anything
//! else. A scrape first asks the replica task to refresh the registry (so an
//! idle replica's figures are exact), waiting at most [`REFRESH_WAIT`].

use crate::NetError;
use crate::metrics::NodeMetrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

/// The largest request head (request line + headers) accepted, bytes.
pub const MAX_REQUEST_HEAD: usize = 8192;
/// Connections served at once; more are closed unanswered.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// After an answer: bytes read and discarded at most, and for how long.
const DRAIN_LIMIT: usize = 1 << 16;
const DRAIN_WAIT: Duration = Duration::from_secs(1);
/// How long a scrape waits for the replica task's refresh before it encodes
/// what the registry holds.
pub const REFRESH_WAIT: Duration = Duration::from_secs(1);
/// The OpenMetrics text format, what `prometheus_client` encodes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A scrape's request to the replica task: refresh, then acknowledge.
pub type RefreshRequest = oneshot::Sender<()>;

/// Binds the metrics listener (before the node starts, so a bad address
/// fails the start).
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, NetError> {
    let bind_err = |source| NetError::MetricsBind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    Ok(listener)
}

/// What a request head asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Metrics,
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// Routes a complete request head (request line first).
pub fn route(head: &[u8]) -> Route {
    let Ok(text) = std::str::from_utf8(head) else {
        return Route::BadRequest;
    };
    let line = text.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Route::BadRequest;
    }
    if method != "GET" {
        return Route::MethodNotAllowed;
    }
    let path = target.split('?').next().unwrap_or(target);
    if path == "/metrics" {
        Route::Metrics
    } else {
        Route::NotFound
    }
}

/// Length of the request head in `buf` (through the blank line), if `buf`
/// holds all of it.
pub fn head_len(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A complete HTTP/1.1 response that closes the connection.
pub fn response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

fn plain(status: &str) -> Vec<u8> {
    response(status, "text/plain; charset=utf-8", &format!("{status}\n"))
}

/// What reading a request head came to.
enum Head {
    Complete(Route),
    TooLarge,
    Incomplete,
    TimedOut,
}

async fn read_head(stream: &mut TcpStream) -> Head {
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(n) = head_len(&buf) {
                return Head::Complete(route(buf.get(..n).unwrap_or(&buf)));
            }
            if buf.len() > MAX_REQUEST_HEAD {
                return Head::TooLarge;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Head::Incomplete,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
            }
        }
    };
    tokio::time::timeout(READ_TIMEOUT, read)
        .await
        .unwrap_or(Head::TimedOut)
}

async fn serve_connection(
    mut stream: TcpStream,
    metrics: Arc<NodeMetrics>,
    refresh: mpsc::Sender<RefreshRequest>,
) {
    let reply = match read_head(&mut stream).await {
        Head::Complete(Route::Metrics) => {
            let (ack, done) = oneshot::channel();
            if refresh.try_send(ack).is_ok() {
                let _ = tokio::time::timeout(REFRESH_WAIT, done).await;
            }
            response("200 OK", CONTENT_TYPE, &metrics.encode())
        }
        Head::Complete(Route::NotFound) => plain("404 Not Found"),
        Head::Complete(Route::MethodNotAllowed) => plain("405 Method Not Allowed"),
        Head::Complete(Route::BadRequest) | Head::Incomplete => plain("400 Bad Request"),
        Head::TooLarge => plain("431 Request Header Fields Too Large"),
        Head::TimedOut => plain("408 Request Timeout"),
    };
    let _ = stream.write_all(&reply).await;
    let _ = stream.shutdown().await;
    drain(&mut stream).await;
}

/// Reads (and discards) what the client still sends, a bounded amount for a
/// bounded time, so that closing with unread data does not reset the
/// connection before the client has read the response.
pub(crate) async fn drain(stream: &mut TcpStream) {
    let discard = async {
        let mut chunk = [0u8; 4096];
        let mut left = DRAIN_LIMIT;
        while left > 0 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_WAIT, discard).await;
}

/// Serves `GET /metrics` until the task is aborted (the replica stops).
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<NodeMetrics>,
    refresh: mpsc::Sender<RefreshRequest>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if conns.len() < MAX_CONNECTIONS => {
                    conns.spawn(serve_connection(stream, metrics.clone(), refresh.clone()));
                }
                // Over the limit: closed unanswered.
                Ok(_) => {}
                // Out of descriptors and the like: back off a little.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_requests() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metricsx HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET metrics HTTP/1.1\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"\xff\xfe\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b""), Route::BadRequest);
    }

    #[test]
    fn finds_the_end_of_the_head() {
        assert_eq!(head_len(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), Some(27));
        assert_eq!(head_len(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_len(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }
}
