//! The `/metrics` endpoint of real QUIC replicas: a 4-node loopback PBFT
//! cluster serves Prometheus/OpenMetrics text whose counters, scraped once
//! the load has stopped and the cluster is quiet, equal each replica's own
//! final summary (its result record) exactly; other paths get 404 and
//! malformed or oversized requests an error status, without disturbing the
//! replica. The Grafana dashboard (dashboards/bftbench.json) queries only
//! series such a scrape holds, by labels they carry, and
//! dashboards/prometheus.yml is a scrape config for /metrics.

use crate::free_addr;
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

mod dashboard;
mod scrape;

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
    assert_eq!(
        clients.requests_committed,
        total,
        "{}; replicas: {:?}",
        client_report(&clients),
        cluster.snapshots()
    );
    assert!(
        cluster
            .quiesce(Duration::from_millis(300), Duration::from_secs(10))
            .await,
        "the cluster did not go quiet: {:?}",
        cluster.snapshots()
    );
}

/// What a closed-loop client's run says about where a request went, for
/// an assertion's message (a request lost on the way stalls these tests).
fn client_report(c: &bft_net::ClientSummary) -> String {
    format!(
        "client: {} issued, {} committed, {} copies sent, {} refused by a full queue, {} lost in a broken write, wall {:?}",
        c.requests_issued,
        c.requests_committed,
        c.client_messages,
        c.dropped_overload,
        c.dropped_link,
        c.wall
    )
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
