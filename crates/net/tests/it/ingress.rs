//! `bftbench node --http`: transactions POSTed to one replica's ingress are
//! signed with its key, forwarded to every replica, committed and answered
//! with their slot; admission refuses past `max_pending` with a 503 and a
//! request not committed in time gets a 504; every bad request gets its
//! status, is counted, and the node keeps serving.

use crate::free_addr;
use bft_core::{BatchConfig, NodeId, RequestId};
use bft_net::ingress::{IngressConfig, IngressStats, MAX_BODY};
use bft_net::{ClusterFile, NodeOptions, NodeSummary};
use bft_pbft::{Pbft, PbftConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A keygen'd cluster of four on free loopback ports.
fn cluster(name: &str) -> (ClusterFile, PathBuf) {
    let dir = std::env::temp_dir().join(format!("net-ingress-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut file = bft_net::keygen(4, 1, "127.0.0.1:1".parse().unwrap(), Some(5), &dir).unwrap();
    for node in &mut file.nodes {
        node.address = free_addr(true);
    }
    (file, dir)
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<NodeSummary, bft_net::NetError>>,
}

/// Starts node `i` of `file` (keys in `dir`), with `http` on node 0.
fn start(
    file: &ClusterFile,
    dir: &std::path::Path,
    i: u16,
    http: Option<IngressConfig>,
) -> Running {
    let key = bft_net::read_node_key(&dir.join(format!("node-{i}.key"))).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let file = file.clone();
    let options = NodeOptions {
        http,
        ..Default::default()
    };
    let task = tokio::spawn(async move {
        bft_net::run_node_with::<Pbft>(
            &file,
            NodeId(i),
            key,
            PbftConfig::default(),
            BatchConfig::default(),
            options,
            async move {
                let _ = stopped.await;
            },
        )
        .await
    });
    Running { stop, task }
}

async fn stop(node: Running) -> NodeSummary {
    let _ = node.stop.send(());
    node.task.await.unwrap().unwrap()
}

async fn connect(addr: SocketAddr) -> TcpStream {
    for _ in 0..200 {
        if let Ok(s) = TcpStream::connect(addr).await {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{addr} never listened");
}

/// One response: status line, head, body.
#[derive(Debug)]
struct Response {
    status: String,
    head: String,
    body: String,
}

/// Reads the next response from `stream` (bytes past it stay in `buf`);
/// None if the connection closed first.
async fn response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Response> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(buf[..end].to_vec()).unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.parse().unwrap());
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8(buf[end + 4..end + 4 + len].to_vec()).unwrap();
                buf.drain(..end + 4 + len);
                let status = head.lines().next().unwrap().to_string();
                return Some(Response { status, head, body });
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sends `raw` on a new connection and reads one response.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut s = connect(addr).await;
    s.write_all(raw).await.unwrap();
    response(&mut s, &mut Vec::new()).await.unwrap()
}

fn post(body: &str) -> Vec<u8> {
    format!(
        "POST /submit HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn counted(stats: &IngressStats) -> std::collections::BTreeMap<&'static str, u64> {
    stats
        .to_sorted()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_requests_commit_everywhere_and_are_answered_with_their_slot() {
    let (file, dir) = cluster("commit");
    let http = free_addr(false);
    let mut nodes = vec![start(&file, &dir, 0, Some(IngressConfig::new(http)))];
    nodes.extend((1..4).map(|i| start(&file, &dir, i, None)));
    let mut s = connect(http).await;
    let mut buf = Vec::new();
    let mut answers = Vec::new();
    // Three one at a time on one kept-alive connection, then two pipelined
    // in one write.
    for tx in ["a", "b", "c"] {
        s.write_all(&post(tx)).await.unwrap();
        answers.push(response(&mut s, &mut buf).await.unwrap());
    }
    s.write_all(&[post("d"), post("e")].concat()).await.unwrap();
    for _ in 0..2 {
        answers.push(response(&mut s, &mut buf).await.unwrap());
    }
    let mut top = 0;
    for (number, a) in answers.iter().enumerate() {
        assert_eq!(a.status, "HTTP/1.1 200 OK", "{a:?}");
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        let client = u32::try_from(v["client"].as_u64().unwrap()).unwrap();
        assert_eq!(RequestId::ingress_node(client), Some(NodeId(0)));
        assert_eq!(v["number"].as_u64(), Some(number as u64));
        top = top.max(v["slot"].as_u64().unwrap());
    }
    let mut summaries = Vec::new();
    for node in nodes {
        summaries.push(stop(node).await);
    }
    // Each request went to the three others; a quorum committed the slots
    // answered, and no replica refused an ingress signature.
    assert_eq!(
        (
            summaries[0].forwarded_requests,
            summaries[0].dropped_forwards
        ),
        (15, 0)
    );
    let stats = summaries[0].ingress.as_ref().unwrap();
    assert_eq!(counted(stats), [("committed", 5)].into());
    let caught_up = summaries
        .iter()
        .filter(|s| s.status.committed >= top)
        .count();
    assert!(
        caught_up >= 3,
        "{:?}",
        summaries.iter().map(|s| s.status).collect::<Vec<_>>()
    );
    for s in &summaries {
        assert!(
            s.stats.rejected.get("bad-client-signature").is_none(),
            "{:?}",
            s.stats.rejected
        );
        assert!(
            s.stats.rejected.get("unknown-client").is_none(),
            "{:?}",
            s.stats.rejected
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Node 0 alone cannot commit: its one pending request holds the only
/// admission slot, so the next is refused at once with a 503, and each
/// waits `commit_wait` for a 504.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_refuses_past_max_pending_and_answers_504_when_nothing_commits() {
    let (file, dir) = cluster("admission");
    let http = free_addr(false);
    let cfg = IngressConfig {
        max_pending: 1,
        commit_wait: Duration::from_secs(2),
        ..IngressConfig::new(http)
    };
    let node = start(&file, &dir, 0, Some(cfg));
    let mut first = connect(http).await;
    first.write_all(&post("waits")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = exchange(http, &post("refused")).await;
    assert_eq!(refused.status, "HTTP/1.1 503 Service Unavailable");
    assert!(refused.head.contains("Retry-After: 1"), "{refused:?}");
    assert!(
        refused.body.contains("1 requests already wait"),
        "{refused:?}"
    );
    let timed_out = response(&mut first, &mut Vec::new()).await.unwrap();
    assert_eq!(timed_out.status, "HTTP/1.1 504 Gateway Timeout");
    // The slot is free again: the next one is admitted (and times out).
    let again = exchange(http, &post("admitted")).await;
    assert_eq!(again.status, "HTTP/1.1 504 Gateway Timeout");
    let summary = stop(node).await;
    let stats = summary.ingress.as_ref().unwrap();
    assert_eq!(
        counted(stats),
        [("commit-timeout", 2), ("overloaded", 1)].into()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_request_gets_its_status_is_counted_and_the_node_serves_on() {
    let (file, dir) = cluster("bad");
    let http = free_addr(false);
    let cfg = IngressConfig {
        read_timeout: Duration::from_millis(300),
        ..IngressConfig::new(http)
    };
    let node = start(&file, &dir, 0, Some(cfg));
    let big_head = format!("POST /submit HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(9000));
    let too_large = format!(
        "POST /submit HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY + 1
    );
    let cases: Vec<(&[u8], &str)> = vec![
        (b"GET /submit HTTP/1.1\r\n\r\n", "405 Method Not Allowed"),
        (
            b"POST /other HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
            "404 Not Found",
        ),
        (
            b"POST /submit HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "400 Bad Request",
        ),
        (b"POST /submit HTTP/1.1\r\n\r\n", "411 Length Required"),
        (
            b"POST /submit HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
            "411 Length Required",
        ),
        (too_large.as_bytes(), "413 Content Too Large"),
        (big_head.as_bytes(), "431 Request Header Fields Too Large"),
        (b"HELLO\r\n\r\n", "400 Bad Request"),
        // Slow: a head never finished, a body never sent in full.
        (b"POST /submit HTTP/1.1\r\n", "408 Request Timeout"),
        (
            b"POST /submit HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
            "408 Request Timeout",
        ),
    ];
    for (raw, status) in &cases {
        let r = exchange(http, raw).await;
        let what = String::from_utf8_lossy(&raw[..raw.len().min(60)]).into_owned();
        assert_eq!(r.status, format!("HTTP/1.1 {status}"), "{what}");
    }
    let allow = exchange(http, b"GET /submit HTTP/1.1\r\n\r\n").await;
    assert!(allow.head.contains("Allow: POST"), "{allow:?}");
    let summary = stop(node).await;
    let stats = summary.ingress.as_ref().unwrap();
    let expected = [
        ("bad-request", 2),
        ("head-too-large", 1),
        ("length-required", 2),
        ("method-not-allowed", 2),
        ("not-found", 1),
        ("slow-client", 2),
        ("too-large", 1),
    ];
    assert_eq!(counted(stats), expected.into());
    let _ = std::fs::remove_dir_all(&dir);
}
