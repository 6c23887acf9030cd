//! The `/metrics` endpoint of real QUIC replicas: a 4-node loopback PBFT
//! cluster serves Prometheus/OpenMetrics text whose counters, scraped once
//! the load has stopped and the cluster is quiet, equal each replica's own
//! final summary (its result record) exactly; other paths get 404 and
//! malformed or oversized requests an error status, without disturbing the
//! replica. The Grafana dashboard (dashboards/bftbench.json) queries only
//! series such a scrape holds, by labels they carry, and
//! dashboards/prometheus.yml is a scrape config for /metrics.

use bft_core::{BatchConfig, NodeId};
use bft_crypto::SecretKeys;
use bft_load::LoadConfig;
use bft_net::cluster::node_identity;
use bft_net::metrics_http::MAX_REQUEST_HEAD;
use bft_net::tls::{PathProfile, client_config};
use bft_net::{LocalCluster, LocalClusterConfig, NetError, NodeSummary};
use bft_pbft::{Pbft, PbftConfig};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
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

/// Every query of the Grafana dashboard (panel targets and template
/// variables) names only series that a real replica's scrape holds, each
/// label it filters, groups or labels legends by is one those series carry,
/// and the Prometheus config beside it scrapes /metrics. The names come from
/// the scrape, not a list: a histogram is queried through the
/// `_bucket`/`_sum`/`_count` series it exposes (its bare family name selects
/// nothing in Prometheus and fails here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_queries_name_only_exported_series() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dashboards");
    let json = std::fs::read_to_string(dir.join("bftbench.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&json).unwrap();
    let queries = dashboard_queries(&dashboard);
    check_prometheus_yml(&std::fs::read_to_string(dir.join("prometheus.yml")).unwrap());

    let cluster = LocalCluster::<Pbft>::start(cluster_cfg(), pbft_cfg())
        .await
        .unwrap();
    // A quiet cluster rejects nothing: one undecodable frame gives
    // `bft_rejected_total` a sample, so its labels are seen too.
    let byzantine = send_garbage_frame(&cluster).await;
    load_and_quiesce(&cluster, 5).await;
    let addrs: Vec<SocketAddr> = (0..4u16)
        .map(|i| cluster.metrics_addr(NodeId(i)).unwrap())
        .collect();
    let scrapes = scrape_when_delivered(&addrs, 5).await;
    drop(byzantine);
    cluster.stop().await.unwrap();
    // Series name -> the label names its samples carry.
    let mut exported: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in scrapes.iter().flatten() {
        exported
            .entry(&s.name)
            .or_default()
            .extend(s.labels.keys().map(String::as_str));
    }

    let mut used_series = BTreeSet::new();
    let mut used_labels = BTreeSet::new();
    for (what, query, legend) in &queries {
        let (series, mut labels) = promql_names(query);
        labels.extend(legend_labels(legend));
        assert!(!series.is_empty(), "{what}: `{query}` names no bft_ series");
        for name in &series {
            let carried = exported.get(name.as_str()).unwrap_or_else(|| {
                panic!(
                    "{what}: `{query}` names {name}, which no replica exports; exported: {:?}",
                    exported.keys()
                )
            });
            for label in &labels {
                assert!(
                    carried.contains(label.as_str()),
                    "{what}: `{query}` uses label {label}, which {name} does not carry ({carried:?})"
                );
            }
        }
        used_series.extend(series);
        used_labels.extend(labels);
    }
    // What the dashboard is for: each of these is shown somewhere.
    for name in [
        "bft_decisions_total",
        "bft_commit_latency_seconds_bucket",
        "bft_messages_sent_total",
        "bft_message_bytes_sent_total",
        "bft_view_changes_total",
        "bft_view",
        "bft_queue_depth",
        "bft_outbound_queue_depth",
        "bft_rejected_total",
        "bft_dropped_total",
        "bft_retained_entries",
        "bft_node_task_cpu_seconds_total",
    ] {
        assert!(used_series.contains(name), "no panel shows {name}");
    }
    for label in ["node", "kind", "reason", "queue", "peer", "cause", "le"] {
        assert!(used_labels.contains(label), "no query uses label {label}");
    }
}

/// Sends replica 0 one frame that cannot decode (its first varint, the
/// enum variant, is 2^32 - 1) over an authenticated connection as node 3,
/// as quic_faults.rs does, and waits until replica 0's scrape counts it.
/// The connection stays open while the returned pair lives.
async fn send_garbage_frame(cluster: &LocalCluster<Pbft>) -> (quinn::Endpoint, quinn::Connection) {
    let keys = |id| SecretKeys::from_seed(cluster_cfg().seed, NodeId(id));
    let member3 = node_identity(&keys(3), NodeId(3)).unwrap();
    let expected = keys(0).member(NodeId(0)).ed25519.0;
    let ep = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let cfg = client_config(&member3, expected, PathProfile::Network).unwrap();
    let conn = ep
        .connect_with(cfg, cluster.addr(NodeId(0)).unwrap(), "bftbench")
        .unwrap()
        .await
        .unwrap();
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f];
    let mut send = conn.open_uni().await.unwrap();
    send.write_all(&(body.len() as u32).to_be_bytes())
        .await
        .unwrap();
    send.write_all(&body).await.unwrap();
    send.finish().unwrap();
    let metrics = cluster.metrics_addr(NodeId(0)).unwrap();
    for _ in 0..200 {
        let (_, text) = get(metrics, "/metrics").await;
        if parse(&text)
            .iter()
            .any(|s| s.name == "bft_rejected_total" && s.value >= 1.0)
        {
            return (ep, conn);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("replica 0 never counted the garbage frame");
}

/// Every PromQL query of `dashboard` with where it is and its legend
/// format: each panel target's `expr` (rows' nested panels included) and
/// each query variable's `query` and `definition`. Also checks the
/// dashboard's shape: unique panel ids, a unit on every graph, every query
/// on the `$datasource` variable.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String, String)> {
    fn panels<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().unwrap() {
            out.push(p);
            if let Some(nested) = p.get("panels") {
                panels(nested, out);
            }
        }
    }
    let str_of = |v: &Value, key: &str| v[key].as_str().unwrap_or("").to_string();
    let mut all = Vec::new();
    panels(&dashboard["panels"], &mut all);
    let mut ids = BTreeSet::new();
    let mut queries = Vec::new();
    for p in all {
        let id = p["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        if p["type"] == "row" {
            continue;
        }
        let title = str_of(p, "title");
        assert!(
            p["fieldConfig"]["defaults"]["unit"].is_string(),
            "panel {id} {title}: no unit"
        );
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {id} {title}: no targets");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "panel {id}");
            let expr = str_of(t, "expr");
            assert!(
                !expr.is_empty(),
                "panel {id} {title}: a target without expr"
            );
            let what = format!("panel {id} ({title}) {}", str_of(t, "refId"));
            queries.push((what, expr, str_of(t, "legendFormat")));
        }
    }
    let vars = dashboard["templating"]["list"].as_array().unwrap();
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no template variable {name}"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    assert_eq!(var("node")["type"], "query");
    for v in vars.iter().filter(|v| v["type"] == "query") {
        let name = str_of(v, "name");
        let query = match &v["query"] {
            Value::Object(q) => q["query"].as_str().unwrap().to_string(),
            q => q.as_str().unwrap().to_string(),
        };
        for q in [query, str_of(v, "definition")] {
            if !q.is_empty() {
                queries.push((format!("variable {name}"), q, String::new()));
            }
        }
    }
    assert!(queries.len() > 10, "{queries:?}");
    queries
}

/// The `bft_` series a PromQL query names, and the label names it uses:
/// matcher names inside `{}`, `by`/`without`/`on`/`ignoring` lists, and
/// the label of Grafana's `label_values(series, label)`. Strings, range
/// durations and Grafana `$variables` are skipped.
fn promql_names(query: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    #[derive(PartialEq)]
    enum Token {
        Ident(String),
        Punct(char),
    }
    let mut tokens = Vec::new();
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
            }
            '[' => {
                chars.by_ref().find(|&d| d == ']');
            }
            '$' if chars.next_if_eq(&'{').is_some() => {
                chars.by_ref().find(|&d| d == '}');
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == '$' => {
                let mut ident = c.to_string();
                while let Some(d) =
                    chars.next_if(|d| d.is_ascii_alphanumeric() || "_:".contains(*d))
                {
                    ident.push(d);
                }
                if c != '$' {
                    tokens.push(Token::Ident(ident));
                }
            }
            c if c.is_whitespace() => {}
            c => tokens.push(Token::Punct(c)),
        }
    }
    let (mut series, mut labels) = (BTreeSet::new(), BTreeSet::new());
    let mut braces = 0;
    let mut label_list = false;
    for (i, t) in tokens.iter().enumerate() {
        let previous = |back: usize| i.checked_sub(back).map(|j| &tokens[j]);
        match t {
            Token::Punct('{') => braces += 1,
            Token::Punct('}') => braces -= 1,
            Token::Punct(')') => label_list = false,
            Token::Punct('(') => {
                label_list = matches!(previous(1), Some(Token::Ident(w))
                    if ["by", "without", "on", "ignoring", "group_left", "group_right"].contains(&w.as_str()));
            }
            Token::Ident(name) if braces > 0 || label_list => {
                labels.insert(name.clone());
            }
            Token::Ident(name) if name.starts_with("bft_") => {
                series.insert(name.clone());
            }
            Token::Ident(name)
                if previous(1) == Some(&Token::Punct(','))
                    && matches!(previous(3), Some(Token::Punct('(')))
                    && matches!(previous(4), Some(Token::Ident(f)) if f == "label_values") =>
            {
                labels.insert(name.clone());
            }
            _ => {}
        }
    }
    (series, labels)
}

/// The labels a Grafana legend format shows (`{{kind}}`).
fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|part| part.split_once("}}"))
        .map(|(label, _)| label.trim().to_string())
        .collect()
}

/// dashboards/prometheus.yml, without a YAML parser: two-space indentation,
/// `key: value` lines, a scrape interval of 1s or 2s, the /metrics path and
/// at least one `host:port` target, each a socket address.
fn check_prometheus_yml(text: &str) {
    let mut keys = BTreeMap::new();
    let mut targets = Vec::new();
    let mut in_targets = false;
    for (n, raw) in text.lines().enumerate() {
        let line = match raw.find('#') {
            Some(at) if at == 0 || raw[..at].ends_with(' ') => &raw[..at],
            _ => raw,
        }
        .trim_end();
        if line.is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        assert!(
            !line.contains('\t') && indent % 2 == 0,
            "prometheus.yml:{}: indentation: {raw}",
            n + 1
        );
        let item = line.trim_start();
        let entry = item.strip_prefix("- ").unwrap_or(item);
        if in_targets && item.starts_with("- ") && !entry.contains(": ") {
            let addr: SocketAddr = entry
                .parse()
                .unwrap_or_else(|e| panic!("prometheus.yml:{}: target {entry}: {e}", n + 1));
            targets.push(addr);
            continue;
        }
        let (key, value) = entry
            .split_once(':')
            .unwrap_or_else(|| panic!("prometheus.yml:{}: not `key: value`: {raw}", n + 1));
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "prometheus.yml:{}: key {key:?}",
            n + 1
        );
        in_targets = key == "targets";
        keys.entry(key.to_string())
            .or_insert_with(Vec::new)
            .push(value.trim().to_string());
    }
    assert!(keys.contains_key("scrape_configs"), "{keys:?}");
    assert_eq!(keys["metrics_path"], ["/metrics"]);
    assert!(
        keys["scrape_interval"]
            .iter()
            .all(|v| v == "1s" || v == "2s"),
        "{keys:?}"
    );
    assert!(!targets.is_empty(), "no targets");
    let distinct: BTreeSet<_> = targets.iter().collect();
    assert_eq!(distinct.len(), targets.len(), "a target twice: {targets:?}");
}
