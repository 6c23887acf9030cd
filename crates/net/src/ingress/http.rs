//! The HTTP/1.1 side of the ingress: request heads, answers, and the
//! connection loop (keep-alive, pipelining, the bounds of the module above).

use super::{Ingress, MAX_CONNECTIONS};
use crate::metrics_http::{MAX_REQUEST_HEAD, drain, head_len};
use bytes::{Buf, Bytes, BytesMut};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A response, before it is written.
pub(super) struct Answer {
    status: &'static str,
    content_type: &'static str,
    pub(super) extra: &'static str,
    body: String,
}

impl Answer {
    pub(super) fn new(status: &'static str, content_type: &'static str, body: String) -> Answer {
        Answer {
            status,
            content_type,
            extra: "",
            body,
        }
    }

    pub(super) fn text(status: &'static str, why: String) -> Answer {
        Answer::new(
            status,
            "text/plain; charset=utf-8",
            format!("{status}: {why}\n"),
        )
    }

    /// The response, with `Connection: keep-alive` (which HTTP/1.0 clients
    /// need to keep the connection) or `close`.
    fn encode(&self, keep_alive: bool) -> Vec<u8> {
        let connection = if keep_alive { "keep-alive" } else { "close" };
        let mut out = format!(
            "HTTP/1.1 {}\r\n{}Content-Type: {}\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
            self.status,
            self.extra,
            self.content_type,
            self.body.len(),
        )
        .into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub path: String,
    pub content_length: Option<usize>,
    pub chunked: bool,
    pub expect_continue: bool,
    pub keep_alive: bool,
    pub http11: bool,
}

/// Parses a complete request head; None if the request line or a header
/// does not parse (or Content-Length is not a number, or given twice
/// differently).
pub fn parse_head(head: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.lines();
    let mut parts = lines.next()?.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if !target.starts_with('/') {
        return None;
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return None,
    };
    let mut keep_alive = http11;
    let (mut content_length, mut chunked, mut expect_continue) = (None, false, false);
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let n: usize = value.parse().ok()?;
                if content_length.is_some_and(|m| m != n) {
                    return None;
                }
                content_length = Some(n);
            }
            // Any transfer coding: the body is not framed by Content-Length.
            "transfer-encoding" => chunked = true,
            "expect" => expect_continue = value.eq_ignore_ascii_case("100-continue"),
            "connection" => {
                let tokens = || value.split(',').map(str::trim);
                if tokens().any(|t| t.eq_ignore_ascii_case("close")) {
                    keep_alive = false;
                } else if tokens().any(|t| t.eq_ignore_ascii_case("keep-alive")) {
                    keep_alive = true;
                }
            }
            _ => {}
        }
    }
    Some(Head {
        method: method.to_string(),
        path: target.split('?').next().unwrap_or(target).to_string(),
        content_length,
        chunked,
        expect_continue,
        keep_alive,
        http11,
    })
}

/// Serves the ingress until the task is aborted (the replica stops).
pub(super) async fn serve(listener: TcpListener, ingress: Arc<Ingress>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if conns.len() < MAX_CONNECTIONS => {
                    conns.spawn(serve_connection(stream, ingress.clone()));
                }
                Ok((stream, _)) => {
                    ingress.stats.connections_refused.fetch_add(1, Ordering::Relaxed);
                    let busy = Answer::text(
                        "503 Service Unavailable",
                        format!("{MAX_CONNECTIONS} connections already open"),
                    );
                    let _ = stream.try_write(&busy.encode(false));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// What reading the next request came to.
enum Next {
    /// A request whose body (if any) has been read: answer and go on.
    Answer(Answer, bool),
    /// Answer, then close (the rest of the stream cannot be framed).
    Close(Answer),
    /// The client closed (or broke) the connection between requests.
    Gone,
}

async fn serve_connection(mut stream: TcpStream, ingress: Arc<Ingress>) {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let next = next_request(&mut stream, &mut buf, &ingress).await;
        let (answer, keep_alive) = match next {
            Next::Answer(a, keep_alive) => (a, keep_alive),
            Next::Close(a) => (a, false),
            Next::Gone => return,
        };
        // A client that stops reading holds its connection no longer than a
        // slow sender would.
        let bytes = answer.encode(keep_alive);
        let write = stream.write_all(&bytes);
        if !matches!(
            tokio::time::timeout(ingress.read_timeout, write).await,
            Ok(Ok(()))
        ) {
            return;
        }
        if !keep_alive {
            let _ = stream.shutdown().await;
            drain(&mut stream).await;
            return;
        }
    }
}

/// Reads into `buf` until it holds `want` bytes, within `wait`.
async fn fill(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    want: usize,
    wait: Duration,
) -> Result<(), Fill> {
    let read = async {
        while buf.len() < want {
            match stream.read_buf(buf).await {
                Ok(0) | Err(_) => return Err(Fill::Closed),
                Ok(_) => {}
            }
        }
        Ok(())
    };
    tokio::time::timeout(wait, read)
        .await
        .unwrap_or(Err(Fill::Slow))
}

enum Fill {
    Closed,
    Slow,
}

async fn next_request(stream: &mut TcpStream, buf: &mut BytesMut, ingress: &Ingress) -> Next {
    let stats = &ingress.stats;
    let head_end = async {
        loop {
            if let Some(n) = head_len(buf) {
                return Ok(n);
            }
            if buf.len() > MAX_REQUEST_HEAD {
                return Err(None);
            }
            match stream.read_buf(buf).await {
                Ok(0) | Err(_) => return Err(Some(buf.is_empty())),
                Ok(_) => {}
            }
        }
    };
    let wait = ingress.read_timeout;
    let n = match tokio::time::timeout(wait, head_end).await {
        Ok(Ok(n)) if n <= MAX_REQUEST_HEAD => n,
        Ok(Ok(_) | Err(None)) => {
            let why = format!("request head over {MAX_REQUEST_HEAD} bytes");
            return Next::Close(ingress.refuse(
                &stats.head_too_large,
                "431 Request Header Fields Too Large",
                why,
            ));
        }
        // Closed between requests, or mid-head: nobody to answer.
        Ok(Err(Some(_))) => return Next::Gone,
        Err(_) if buf.is_empty() => return Next::Gone,
        Err(_) => {
            let why = format!("no complete request head within {wait:?}");
            return Next::Close(ingress.refuse(&stats.slow_client, "408 Request Timeout", why));
        }
    };
    let head = parse_head(buf.get(..n).unwrap_or(&[]));
    buf.advance(n);
    let Some(head) = head else {
        let why = "the request line or a header does not parse".to_string();
        return Next::Close(ingress.refuse(&stats.bad_request, "400 Bad Request", why));
    };
    let keep_alive = head.keep_alive;
    let Some(len) = head.content_length.filter(|_| !head.chunked) else {
        if head.chunked || head.method == "POST" {
            let why = "a body needs Content-Length (chunked bodies are not taken)".to_string();
            return Next::Close(ingress.refuse(&stats.length_required, "411 Length Required", why));
        }
        return Next::Answer(route_error(&head, ingress), keep_alive);
    };
    if len > ingress.max_body {
        let why = format!("a body of {len} bytes; at most {}", ingress.max_body);
        return Next::Close(ingress.refuse(&stats.too_large, "413 Content Too Large", why));
    }
    if head.expect_continue && head.http11 && buf.len() < len {
        let go_on = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        if !matches!(tokio::time::timeout(wait, go_on).await, Ok(Ok(()))) {
            return Next::Gone;
        }
    }
    buf.reserve(len.saturating_sub(buf.len()));
    match fill(stream, buf, len, wait).await {
        Ok(()) => {}
        Err(Fill::Closed) => return Next::Gone,
        Err(Fill::Slow) => {
            let why = format!("the body's {len} bytes did not arrive within {wait:?}");
            return Next::Close(ingress.refuse(&stats.slow_client, "408 Request Timeout", why));
        }
    }
    // A copy of its own: a slice of `buf` would keep the connection's whole
    // read buffer alive while the request sits in pools and queues.
    let body = Bytes::copy_from_slice(buf.get(..len).unwrap_or(&[]));
    buf.advance(len);
    if head.path != "/submit" || head.method != "POST" {
        return Next::Answer(route_error(&head, ingress), keep_alive);
    }
    if body.is_empty() {
        let why = "an empty transaction".to_string();
        return Next::Answer(
            ingress.refuse(&stats.bad_request, "400 Bad Request", why),
            keep_alive,
        );
    }
    Next::Answer(ingress.submit(body).await, keep_alive)
}

/// The answer to a request that is not `POST /submit`.
fn route_error(head: &Head, ingress: &Ingress) -> Answer {
    let stats = &ingress.stats;
    if head.path != "/submit" {
        let why = format!("{} is not here; POST transactions to /submit", head.path);
        return ingress.refuse(&stats.not_found, "404 Not Found", why);
    }
    let mut a = ingress.refuse(
        &stats.method_not_allowed,
        "405 Method Not Allowed",
        format!("{} /submit; POST the transaction as the body", head.method),
    );
    a.extra = "Allow: POST\r\n";
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_head() {
        let h = parse_head(b"POST /submit?x=1 HTTP/1.1\r\nHost: a\r\ncontent-length: 12\r\n\r\n")
            .unwrap();
        assert_eq!(
            h,
            Head {
                method: "POST".into(),
                path: "/submit".into(),
                content_length: Some(12),
                chunked: false,
                expect_continue: false,
                keep_alive: true,
                http11: true,
            }
        );
        let h = parse_head(
            b"POST /submit HTTP/1.0\r\nConnection: Keep-Alive\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
        assert!(h.keep_alive && h.expect_continue && h.content_length.is_none());
        let h = parse_head(
            b"POST /submit HTTP/1.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
        assert!(!h.keep_alive && h.chunked);
        assert!(!parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
    }

    #[test]
    fn refuses_heads_that_do_not_parse() {
        for bad in [
            &b"POST /submit\r\n\r\n"[..],
            b"POST submit HTTP/1.1\r\n\r\n",
            b"POST /submit HTTP/2\r\n\r\n",
            b"POST /submit HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
            b"POST /submit HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST /submit HTTP/1.1\r\nno colon here\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
        ] {
            assert_eq!(parse_head(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_kept_alive_answer_carries_its_length_and_extra_headers() {
        let mut a = Answer::text("503 Service Unavailable", "busy".into());
        a.extra = "Retry-After: 1\r\n";
        let open = String::from_utf8(a.encode(true)).unwrap();
        assert!(open.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(open.contains("Retry-After: 1\r\n") && open.contains("Connection: keep-alive\r\n"));
        assert!(open.ends_with("\r\n\r\n503 Service Unavailable: busy\n"));
        let closing = String::from_utf8(a.encode(false)).unwrap();
        assert!(closing.starts_with("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"));
        assert!(closing.contains("Connection: close\r\n"));
    }
}
