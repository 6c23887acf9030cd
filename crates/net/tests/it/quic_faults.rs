//! Hostile and failing peers on a real loopback cluster: certificates
//! outside the committee, garbage frames from an authenticated peer, and a
//! replica killed and restarted.

use bft_core::node::reasons;
use bft_core::{BatchConfig, NodeId};
use bft_crypto::SecretKeys;
use bft_load::LoadConfig;
use bft_net::client::run_load;
use bft_net::cluster::node_identity;
use bft_net::tls::{PathProfile, TlsIdentity, client_config};
use bft_net::transport::{
    CLIENT_UNDER_INGRESS_ID, FORWARDED_NOT_ITS_OWN, MALFORMED_FORWARDED, UNKNOWN_STREAM,
};
use bft_net::wire::StreamKind;
use bft_net::{LocalCluster, LocalClusterConfig};
use bft_pbft::{Pbft, PbftConfig};
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SEED: u64 = 5;

async fn cluster() -> LocalCluster<Pbft> {
    let cfg = LocalClusterConfig {
        nodes: 4,
        seed: SEED,
        batch: BatchConfig::default(),
        ..LocalClusterConfig::default()
    };
    LocalCluster::<Pbft>::start(cfg, PbftConfig::default())
        .await
        .unwrap()
}

fn key_of(id: u16) -> [u8; 32] {
    SecretKeys::from_seed(SEED, NodeId(id))
        .member(NodeId(id))
        .ed25519
        .0
}

/// Dials `addr` as `who`, expecting the server key `expected`, and reports
/// whether a connection survived the handshake on both sides: a refused
/// client certificate may only show once the server closes the connection.
async fn handshake_survives(who: &TlsIdentity, expected: [u8; 32], addr: SocketAddr) -> bool {
    let ep = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let cfg = client_config(who, expected, PathProfile::Network).unwrap();
    let attempt = async {
        let conn = ep.connect_with(cfg, addr, "bftbench").ok()?.await.ok()?;
        // Give the server its chance to refuse us.
        let closed = tokio::time::timeout(Duration::from_millis(1500), conn.closed()).await;
        closed.is_err().then_some(())
    };
    let survived = tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten()
        .is_some();
    ep.close(0u32.into(), b"");
    survived
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_outside_the_committee_are_refused() {
    let cluster = cluster().await;
    let node0 = cluster.addr(NodeId(0)).unwrap();
    let stranger = TlsIdentity::from_ed25519_seed(&[9u8; 32], "stranger").unwrap();
    assert!(
        !handshake_survives(&stranger, key_of(0), node0).await,
        "a key outside the committee and the client list is refused by the replica"
    );
    let member1 = node_identity(&SecretKeys::from_seed(SEED, NodeId(1)), NodeId(1)).unwrap();
    assert!(
        !handshake_survives(&member1, key_of(2), node0).await,
        "dialling node 0 while expecting node 2's key: node 0's certificate is refused"
    );
    assert!(
        handshake_survives(&member1, key_of(0), node0).await,
        "control: a committee key expecting the right server key is accepted"
    );
    let done = cluster
        .run_clients(
            LoadConfig::closed(1, 1, 64).with_total(5),
            Duration::from_secs(15),
        )
        .await
        .unwrap();
    assert_eq!(done.requests_committed, 5, "the cluster still commits");
    let nodes = cluster.stop().await.unwrap();
    assert!(nodes.iter().all(|n| n.stats.total_rejected() == 0));
}

/// A connection from `ep` to node 0 at `addr` as `who`.
async fn dial(ep: &quinn::Endpoint, who: &TlsIdentity, addr: SocketAddr) -> quinn::Connection {
    let cfg = client_config(who, key_of(0), PathProfile::Network).unwrap();
    ep.connect_with(cfg, addr, "bftbench")
        .unwrap()
        .await
        .unwrap()
}

/// Body that can never decode as a PBFT message: its first varint (the
/// enum variant) is 2^32 − 1.
fn garbage(i: u32) -> Bytes {
    let mut b = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
    b.extend((0..(i % 97)).map(|k| (k as u8).wrapping_mul(31) ^ (i as u8)));
    Bytes::from(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frames_are_counted_and_dropped_while_the_cluster_commits() {
    let cluster = cluster().await;
    let node0 = cluster.addr(NodeId(0)).unwrap();
    // An authenticated but Byzantine node 3 opens an extra connection to
    // node 0 (the real node 3 keeps running).
    let member3 = node_identity(&SecretKeys::from_seed(SEED, NodeId(3)), NodeId(3)).unwrap();
    let ep = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let conn = dial(&ep, &member3, node0).await;
    let load = cluster.client_setup(
        LoadConfig::closed(1, 1, 64).with_total(30),
        Duration::from_secs(20),
    );
    let clients = tokio::spawn(run_load(load.unwrap(), std::future::pending()));

    let frame = |body: Bytes| {
        [
            Bytes::copy_from_slice(&(body.len() as u32).to_be_bytes()),
            body,
        ]
    };
    let mut send = conn.open_uni().await.unwrap();
    let mut frames = frame(StreamKind::Protocol.frame()).to_vec();
    for i in 0..10_000u32 {
        let body = garbage(i);
        frames.push(Bytes::copy_from_slice(&(body.len() as u32).to_be_bytes()));
        frames.push(body);
    }
    send.write_all_chunks(&mut frames).await.unwrap();
    send.finish().unwrap();
    // A second stream declares a 1 GiB frame: refused before allocation,
    // that stream is stopped, the connection lives on.
    let mut huge = conn.open_uni().await.unwrap();
    huge.write_all_chunks(&mut frame(StreamKind::Protocol.frame()))
        .await
        .unwrap();
    huge.write_all(&(1u32 << 30).to_be_bytes()).await.unwrap();
    // The replica may stop the stream as soon as it reads the header, before
    // these bytes go out: a stopped stream is the refusal this checks.
    match huge.write_all(&[0u8; 64]).await {
        Ok(()) | Err(quinn::WriteError::Stopped(_)) => {}
        Err(e) => panic!("the oversized stream failed otherwise: {e}"),
    }
    // A stream naming no kind, and forwarded "requests" that are garbage.
    for (kind, count) in [
        (Bytes::from_static(&[7]), 1),
        (StreamKind::Requests.frame(), 5),
    ] {
        let mut s = conn.open_uni().await.unwrap();
        let mut frames = frame(kind).to_vec();
        frames.extend((0..count).flat_map(|i| frame(garbage(i))));
        // A stream of unknown kind may be stopped before it all goes out.
        let _ = s.write_all_chunks(&mut frames).await;
        let _ = s.finish();
    }
    // Well-formed requests forwarded by node 3 that are not its ingress's
    // (a load client's id, node 1's ingress id).
    let request = |client| {
        let id = bft_core::RequestId { client, number: 0 };
        bft_core::codec::encode(
            &bft_core::Request::unsigned(id, Bytes::from_static(b"x")),
            1 << 20,
        )
        .unwrap()
    };
    let node1_ingress = bft_core::RequestId::ingress_client(NodeId(1), 0).unwrap();
    let mut s = conn.open_uni().await.unwrap();
    let mut frames = frame(StreamKind::Requests.frame()).to_vec();
    frames.extend(
        [request(0), request(node1_ingress)]
            .into_iter()
            .flat_map(frame),
    );
    s.write_all_chunks(&mut frames).await.unwrap();
    s.finish().unwrap();
    // A load client sending under an ingress's client id.
    let identity = cluster
        .client_setup(LoadConfig::closed(1, 1, 64), Duration::from_secs(1))
        .unwrap()
        .identity;
    let client_conn = dial(&ep, &identity, node0).await;
    let mut s = client_conn.open_uni().await.unwrap();
    s.write_all_chunks(&mut frame(request(node1_ingress)))
        .await
        .unwrap();
    s.finish().unwrap();

    let done = clients.await.unwrap().unwrap();
    assert_eq!(done.requests_committed, 30, "the cluster kept committing");
    let start = Instant::now();
    while cluster.snapshots()[0].unwrap().rejected < 10_010
        && start.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        conn.close_reason().is_none(),
        "the Byzantine peer's connection is not killed"
    );
    ep.close(0u32.into(), b"");
    let nodes = cluster.stop().await.unwrap();
    let rejected = &nodes[0].stats.rejected;
    assert_eq!(
        rejected.get(reasons::MALFORMED),
        Some(&10_000),
        "{rejected:?}"
    );
    assert_eq!(rejected.get(reasons::OVERSIZED), Some(&1), "{rejected:?}");
    assert_eq!(rejected.get(UNKNOWN_STREAM), Some(&1), "{rejected:?}");
    assert_eq!(rejected.get(MALFORMED_FORWARDED), Some(&5), "{rejected:?}");
    assert_eq!(
        rejected.get(FORWARDED_NOT_ITS_OWN),
        Some(&2),
        "{rejected:?}"
    );
    assert_eq!(
        rejected.get(CLIENT_UNDER_INGRESS_ID),
        Some(&1),
        "{rejected:?}"
    );
    for n in &nodes[1..] {
        assert_eq!(n.stats.total_rejected(), 0, "node {:?}", n.id);
    }
}

fn committed(c: &LocalCluster<Pbft>, i: usize) -> u64 {
    c.snapshots()[i].map_or(0, |s| s.status.committed)
}

/// Waits (at most 8 s) until node `i` has committed more than `above`.
async fn wait_for(c: &LocalCluster<Pbft>, i: usize, above: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(8);
    while committed(c, i) <= above && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    committed(c, i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_replica_others_carry_on_and_restarted_it_reconnects() {
    let mut cluster = cluster().await;
    let load = cluster
        .client_setup(LoadConfig::open(100.0, 1, 64), Duration::from_secs(9))
        .unwrap();
    let clients = tokio::spawn(run_load(load, std::future::pending()));

    let before = wait_for(&cluster, 0, 20).await;
    assert!(before > 20, "the full cluster commits");
    let killed = cluster.kill(NodeId(3)).await.unwrap();
    assert!(killed.status.committed > 0);
    let at_kill = committed(&cluster, 0);
    for i in 0..3 {
        let now = wait_for(&cluster, i, at_kill + 20).await;
        assert!(
            now > at_kill + 20,
            "node {i} commits without node 3 (f = 1)"
        );
    }

    cluster.restart(NodeId(3)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    while cluster.snapshots()[3].unwrap().received == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        cluster.snapshots()[3].unwrap().received > 0,
        "the restarted replica is reconnected and receives protocol messages"
    );
    let at_restart = committed(&cluster, 0);
    let after = wait_for(&cluster, 0, at_restart + 20).await;
    assert!(
        after > at_restart + 20,
        "the cluster keeps committing after the restart"
    );

    let done = clients.await.unwrap().unwrap();
    assert!(done.requests_committed > 0);
    let nodes = cluster.stop().await.unwrap();
    assert_eq!(nodes.len(), 4);
}
