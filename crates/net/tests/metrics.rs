//! The `/metrics` endpoint of real QUIC replicas: a 4-node loopback PBFT
//! cluster serves Prometheus/OpenMetrics text whose counters, scraped once
//! the load has stopped and the cluster is quiet, equal each replica's own
//! final summary (its result record) exactly; other paths get 404 and
//! malformed or oversized requests an error status, without disturbing the
//! replica.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use bft_core::{BatchConfig, NodeId};
use bft_net::metrics_http::MAX_REQUEST_HEAD;
use bft_net::{LocalCluster, LocalClusterConfig, NetError, NodeSummary};
use bft_pbft::{Pbft, PbftConfig};
use bft_sim::LoadConfig;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Timers far above any loopback delay: an idle replica then has nothing
/// pending, so the counters cannot move between a scrape and the summary.
fn pbft_cfg() -> PbftConfig {
    PbftConfig {
        view_change_timeout: Duration::from_secs(10),
        ..PbftConfig::default()
    }
}

fn cluster_cfg() -> LocalClusterConfig {
    LocalClusterConfig {
        nodes: 4,
        seed: 7,
        batch: BatchConfig::default(),
        metrics: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..LocalClusterConfig::default()
    }
}

/// Runs `total` requests through the cluster and waits until it is quiet.
async fn load_and_quiesce(cluster: &LocalCluster<Pbft>, total: u64) {
    let load = LoadConfig::closed(1, 1, 128).with_total(total);
    let clients = cluster
        .run_clients(load, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(clients.requests_committed, total);
    assert!(
        cluster
            .quiesce(Duration::from_millis(300), Duration::from_secs(10))
            .await,
        "the cluster did not go quiet: {:?}",
        cluster.snapshots()
    );
}

/// Status line and body of the response to `request`, sent raw.
async fn http(addr: SocketAddr, request: &[u8]) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before it read everything.
    let _ = stream.write_all(request).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("").to_string();
    (status, body.to_string())
}

async fn get(addr: SocketAddr, path: &str) -> (String, String) {
    http(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes(),
    )
    .await
}

/// One sample line: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses OpenMetrics text: `# TYPE`/`# HELP`/`# UNIT` lines, samples
/// `name{k="v",...} value`, and the closing `# EOF`. Panics on anything
/// else, so a passing test means the text parsed.
fn parse(text: &str) -> Vec<Sample> {
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.pop(), Some("# EOF"), "ends with # EOF");
    let mut typed = Vec::new();
    let mut samples = Vec::new();
    for line in lines {
        if let Some(meta) = line.strip_prefix("# ") {
            let mut words = meta.splitn(3, ' ');
            let keyword = words.next().unwrap();
            let family = words.next().unwrap();
            assert!(
                ["TYPE", "HELP", "UNIT"].contains(&keyword),
                "bad line {line}"
            );
            if keyword == "TYPE" {
                let kind = words.next().unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                typed.push(family.to_string());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        let value: f64 = value.parse().expect(line);
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').expect(line))),
            None => (series, BTreeMap::new()),
        };
        assert!(
            typed.iter().any(|f| name.starts_with(f.as_str())),
            "sample {name} before its # TYPE"
        );
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    samples
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect(text);
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect(text) {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect(text).1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_string(), value);
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    labels
}

/// `name`'s samples of replica `node`, keyed by the value of `label`.
fn by_label(samples: &[Sample], node: NodeId, name: &str, label: &str) -> BTreeMap<String, u64> {
    samples
        .iter()
        .filter(|s| s.name == name && s.labels.get("node") == Some(&node.0.to_string()))
        .map(|s| (s.labels[label].clone(), s.value as u64))
        .collect()
}

/// The one sample `name` of replica `node`.
fn single(samples: &[Sample], node: NodeId, name: &str) -> f64 {
    let found: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == name && s.labels.get("node") == Some(&node.0.to_string()))
        .map(|s| s.value)
        .collect();
    assert_eq!(found.len(), 1, "{name}: {found:?}");
    found[0]
}

fn nonzero<V: Copy>(m: BTreeMap<String, V>, is_zero: impl Fn(V) -> bool) -> BTreeMap<String, V> {
    m.into_iter().filter(|(_, v)| !is_zero(*v)).collect()
}

/// The scraped counters equal the replica's summary, kind by kind.
fn assert_scrape_equals_summary(samples: &[Sample], s: &NodeSummary) {
    let id = s.id;
    let sent = s.stats.sent.to_sorted();
    let received = s.stats.received.to_sorted();
    let count = |m: &BTreeMap<String, bft_core::KindCount>| {
        nonzero(m.iter().map(|(k, c)| (k.clone(), c.count)).collect(), |v| {
            v == 0
        })
    };
    let bytes = |m: &BTreeMap<String, bft_core::KindCount>| {
        nonzero(m.iter().map(|(k, c)| (k.clone(), c.bytes)).collect(), |v| {
            v == 0
        })
    };
    let scraped = |name| nonzero(by_label(samples, id, name, "kind"), |v| v == 0);
    assert!(!sent.is_empty(), "node {id} sent nothing");
    assert_eq!(
        scraped("bft_messages_sent_total"),
        count(&sent),
        "node {id} sent"
    );
    assert_eq!(
        scraped("bft_message_bytes_sent_total"),
        bytes(&sent),
        "node {id} sent bytes"
    );
    assert_eq!(
        scraped("bft_messages_received_total"),
        count(&received),
        "node {id} received"
    );
    assert_eq!(
        scraped("bft_message_bytes_received_total"),
        bytes(&received),
        "node {id} received bytes"
    );
    assert_eq!(
        nonzero(by_label(samples, id, "bft_rejected_total", "reason"), |v| v
            == 0),
        nonzero(s.stats.rejected.to_sorted(), |v| v == 0),
        "node {id} rejected"
    );
    assert_eq!(
        single(samples, id, "bft_decisions_total") as u64,
        s.status.committed
    );
    assert_eq!(single(samples, id, "bft_view") as u64, s.status.view);
    assert_eq!(
        single(samples, id, "bft_view_changes_total") as u64,
        s.status.view_changes
    );
    assert_eq!(
        single(samples, id, "bft_retained_entries") as u64,
        s.status.retained as u64
    );
    assert_eq!(
        single(samples, id, "bft_client_replies_total") as u64,
        s.client_messages
    );
    assert_eq!(
        single(samples, id, "bft_client_reply_bytes_total") as u64,
        s.client_bytes
    );
    let dropped = by_label(samples, id, "bft_dropped_total", "cause");
    assert_eq!(dropped["overload"], s.dropped_overload);
    assert_eq!(dropped["reply-overload"], s.dropped_replies);
}

/// The commit-latency histogram is well formed and counts at most the
/// committed requests (a request committed here before its own copy
/// arrived is not measured).
fn assert_latency_histogram(samples: &[Sample], id: NodeId, committed_requests: u64) {
    let count = single(samples, id, "bft_commit_latency_seconds_count") as u64;
    assert!(
        count <= committed_requests,
        "{count} > {committed_requests}"
    );
    let buckets: Vec<(f64, u64)> = samples
        .iter()
        .filter(|s| {
            s.name == "bft_commit_latency_seconds_bucket"
                && s.labels.get("node") == Some(&id.0.to_string())
        })
        .map(|s| (s.labels["le"].parse::<f64>().unwrap(), s.value as u64))
        .collect();
    assert!(buckets.len() > 2);
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
    );
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, count));
    assert!(single(samples, id, "bft_commit_latency_seconds_sum") >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_counters_equal_each_replicas_summary() {
    let total = 10;
    let cluster = LocalCluster::<Pbft>::start(cluster_cfg(), pbft_cfg())
        .await
        .unwrap();
    load_and_quiesce(&cluster, total).await;
    let addrs: Vec<SocketAddr> = (0..4u16)
        .map(|i| cluster.metrics_addr(NodeId(i)).unwrap())
        .collect();
    let scrapes = scrape_when_delivered(&addrs, total).await;
    for &addr in &addrs {
        let (status, _) = get(addr, "/").await;
        assert_eq!(status, "HTTP/1.1 404 Not Found");
        let (status, _) = get(addr, "/metrics/other").await;
        assert_eq!(status, "HTTP/1.1 404 Not Found");
    }
    let summaries = cluster.stop().await.unwrap();
    assert_eq!(summaries.len(), 4);
    for (samples, summary) in scrapes.iter().zip(&summaries) {
        assert!(summary.status.committed >= total);
        assert_scrape_equals_summary(samples, summary);
        assert_latency_histogram(samples, summary.id, total);
        // Only this replica's series in its registry.
        assert!(
            samples
                .iter()
                .all(|s| s.labels.get("node") == Some(&summary.id.0.to_string())),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_an_error_and_the_replica_keeps_running() {
    let cluster = LocalCluster::<Pbft>::start(cluster_cfg(), pbft_cfg())
        .await
        .unwrap();
    let addr = cluster.metrics_addr(NodeId(1)).unwrap();
    let oversized = vec![b'A'; MAX_REQUEST_HEAD * 3];
    let (status, _) = http(addr, &oversized).await;
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    let mut long_header = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    long_header.extend(vec![b'x'; MAX_REQUEST_HEAD * 2]);
    long_header.extend(b"\r\n\r\n");
    let (status, _) = http(addr, &long_header).await;
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    for garbage in [
        &b"\x00\xff\xfe garbage\r\n\r\n"[..],
        b"GET /metrics\r\n\r\n",
        b"GET metrics HTTP/1.1\r\n\r\n",
        b"\r\n\r\n",
    ] {
        let (status, _) = http(addr, garbage).await;
        assert_eq!(status, "HTTP/1.1 400 Bad Request", "{garbage:?}");
    }
    let (status, _) = http(addr, b"POST /metrics HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    // A request cut short: the server answers 400 once the peer closes.
    let (status, _) = {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /met").await.unwrap();
        s.shutdown().await.unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw).await;
        let text = String::from_utf8(raw).unwrap();
        (text.lines().next().unwrap_or("").to_string(), ())
    };
    assert_eq!(status, "HTTP/1.1 400 Bad Request");

    // The replica (and its endpoint) still work.
    load_and_quiesce(&cluster, 5).await;
    let addrs: Vec<SocketAddr> = (0..4u16)
        .map(|i| cluster.metrics_addr(NodeId(i)).unwrap())
        .collect();
    let scrapes = scrape_when_delivered(&addrs, 5).await;
    let summaries = cluster.stop().await.unwrap();
    for (samples, summary) in scrapes.iter().zip(&summaries) {
        assert_scrape_equals_summary(samples, summary);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_address_in_use_fails_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = LocalClusterConfig {
        metrics: Some(taken.local_addr().unwrap()),
        ..cluster_cfg()
    };
    match LocalCluster::<Pbft>::start(cfg, pbft_cfg()).await {
        Err(NetError::MetricsBind { addr, .. }) => {
            assert_eq!(addr, taken.local_addr().unwrap())
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("started on a taken metrics address"),
    }
}

#[test]
fn replica_i_serves_on_base_port_plus_i() {
    let base: SocketAddr = "127.0.0.1:9100".parse().unwrap();
    assert_eq!(
        bft_net::local::metrics_addr_for(base, NodeId(3)).unwrap(),
        "127.0.0.1:9103".parse::<SocketAddr>().unwrap()
    );
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    assert_eq!(
        bft_net::local::metrics_addr_for(any, NodeId(3)).unwrap(),
        any
    );
    let high: SocketAddr = "127.0.0.1:65535".parse().unwrap();
    assert!(bft_net::local::metrics_addr_for(high, NodeId(1)).is_err());
}

/// An address on 127.0.0.1 that was free a moment ago (TCP or UDP).
fn free_addr(udp: bool) -> SocketAddr {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }
}

/// `bftbench node --metrics ADDR`'s path: four `run_node_with` replicas
/// from a cluster file, a load from `run_clients`, and each replica's
/// scrape (once two scrapes agree) equal to the summary it returns at
/// shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_node_serves_metrics_equal_to_its_summary() {
    let dir = std::env::temp_dir().join(format!("net-metrics-{}", std::process::id()));
    let mut file = bft_net::keygen(4, "127.0.0.1:1".parse().unwrap(), Some(3), &dir).unwrap();
    for node in &mut file.nodes {
        node.address = free_addr(true);
    }
    let metrics: Vec<SocketAddr> = (0..4).map(|_| free_addr(false)).collect();
    let mut stops = Vec::new();
    let mut nodes = Vec::new();
    for (i, addr) in metrics.iter().enumerate() {
        let id = NodeId(i as u16);
        let key = bft_net::read_node_key(&dir.join(format!("node-{i}.key"))).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let file = file.clone();
        let options = bft_net::NodeOptions {
            metrics: Some(*addr),
            ..Default::default()
        };
        nodes.push(tokio::spawn(async move {
            bft_net::run_node_with::<Pbft>(
                &file,
                id,
                key,
                pbft_cfg(),
                BatchConfig::default(),
                options,
                async move {
                    let _ = stopped.await;
                },
            )
            .await
        }));
        stops.push(stop);
    }
    // Up: the metrics listener is bound after the QUIC endpoint.
    for addr in &metrics {
        let mut up = false;
        for _ in 0..200 {
            if TcpStream::connect(addr).await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up, "{addr} never listened");
    }
    let total = 6;
    let load = LoadConfig::closed(1, 1, 128).with_total(total);
    let clients = bft_net::run_clients(&file, load, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(clients.requests_committed, total);
    let scrapes = scrape_when_delivered(&metrics, total).await;
    for stop in stops {
        let _ = stop.send(());
    }
    for (node, samples) in nodes.into_iter().zip(&scrapes) {
        let summary = node.await.unwrap().unwrap();
        assert_scrape_equals_summary(samples, &summary);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Scrapes every replica until all committed `total` and, kind by kind,
/// the cluster received every message it sent (bounded wait: a link may
/// still be redialling). Replicas with patient timers then send nothing
/// more, so the scrapes are final.
async fn scrape_when_delivered(addrs: &[SocketAddr], total: u64) -> Vec<Vec<Sample>> {
    let mut scrapes = Vec::new();
    for _ in 0..300 {
        scrapes.clear();
        for addr in addrs {
            let (status, body) = get(*addr, "/metrics").await;
            assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
            scrapes.push(parse(&body));
        }
        if all_delivered(&scrapes, total) {
            return scrapes;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never quiet: {scrapes:?}");
}

/// Every replica of `scrapes` committed `total`, and per kind the messages
/// sent add up to the messages received.
fn all_delivered(scrapes: &[Vec<Sample>], total: u64) -> bool {
    let sum = |name: &str| {
        let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
        for samples in scrapes {
            for s in samples.iter().filter(|s| s.name == name) {
                *by_kind.entry(s.labels["kind"].clone()).or_default() += s.value as u64;
            }
        }
        by_kind
    };
    let committed = scrapes.iter().all(|samples| {
        samples
            .iter()
            .any(|s| s.name == "bft_decisions_total" && s.value as u64 >= total)
    });
    committed
        && sum("bft_messages_sent_total") == sum("bft_messages_received_total")
        && sum("bft_message_bytes_sent_total") == sum("bft_message_bytes_received_total")
}
