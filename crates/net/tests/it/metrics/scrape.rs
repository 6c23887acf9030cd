//! Scraped counters against each replica's summary, bad HTTP requests,
//! address clashes, and `bftbench node`'s metrics address.

use super::*;

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

/// `bftbench node --metrics ADDR`'s path: four `run_node_with` replicas
/// from a cluster file, a load from `run_clients`, and each replica's
/// scrape (once two scrapes agree) equal to the summary it returns at
/// shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_node_serves_metrics_equal_to_its_summary() {
    let dir = std::env::temp_dir().join(format!("net-metrics-{}", std::process::id()));
    let mut file = bft_net::keygen(4, 1, "127.0.0.1:1".parse().unwrap(), Some(3), &dir).unwrap();
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
    let clients = bft_net::run_clients(&file, load, Duration::from_secs(30), false)
        .await
        .unwrap();
    if clients.requests_committed != total {
        let mut replicas = String::new();
        for addr in &metrics {
            let (_, body) = get(*addr, "/metrics").await;
            replicas.extend(
                body.lines()
                    .filter(|l| is_diagnostic(l))
                    .map(|l| format!("{l}\n")),
            );
        }
        panic!(
            "{} committed of {total}; {}\n{replicas}",
            clients.requests_committed,
            super::client_report(&clients)
        );
    }
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

/// The series of a scrape that say where a stalled request stopped.
fn is_diagnostic(line: &str) -> bool {
    [
        "bft_view{",
        "bft_view_changes_total{",
        "bft_messages_sent_total{",
        "bft_messages_received_total{",
        "bft_queue_depth{",
        "bft_outbound_queue_depth{",
        "bft_dropped_total{",
        "bft_rejected_total{",
        "bft_client_replies_total{",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}
