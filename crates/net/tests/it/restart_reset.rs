//! A replica killed without a word and started again on its address: its
//! peers learn at once that their old connections are dead (a stateless
//! reset they accept), instead of sending into them until the idle timeout.

use bft_core::{Committee, NodeId};
use bft_crypto::SecretKeys;
use bft_net::cluster::node_identity;
use bft_net::tls::{
    PathProfile, PeerKeys, TlsIdentity, bind_endpoint, client_config, server_config,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const SEED: u64 = 11;

fn identity(id: u16) -> TlsIdentity {
    node_identity(&SecretKeys::from_seed(SEED, NodeId(id)), NodeId(id)).unwrap()
}

fn peer_keys() -> Arc<PeerKeys> {
    let members = (0..4)
        .map(|i| SecretKeys::from_seed(SEED, NodeId(i)).member(NodeId(i)))
        .collect();
    Arc::new(PeerKeys::new(&Committee::new(members).unwrap(), Vec::new()))
}

/// Serves as replica 1 on `addr` inside the current runtime, holding every
/// connection it accepts for as long as the runtime lives.
fn serve(addr: SocketAddr) -> SocketAddr {
    let id = identity(1);
    let server = server_config(&id, peer_keys(), PathProfile::Loopback).unwrap();
    let endpoint = bind_endpoint(addr, Some((server, &id))).unwrap();
    let bound = endpoint.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(incoming) = endpoint.accept().await {
            if let Ok(conn) = incoming.await {
                held.push(conn);
            }
        }
    });
    bound
}

/// Regression: a replica restarted after SIGKILL used a fresh random reset
/// key, so its peers could not recognise its resets and kept the dead
/// connection until the 3 s idle timeout; over QUIC the first commit after
/// a restart took about 2 s (scripts/kill-restart.sh).
#[test]
fn a_restarted_replica_resets_the_connections_of_its_previous_run() {
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // Replica 1's first run lives in a runtime of its own, dropped below
    // without being polled again: its endpoint and connection vanish and no
    // CONNECTION_CLOSE leaves, as with SIGKILL.
    let first_run = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr = first_run.block_on(async { serve(SocketAddr::from(([127, 0, 0, 1], 0))) });

    let dialer = identity(0);
    let expected = identity(1).public;
    let conn = main.block_on(async {
        let ep = bind_endpoint(SocketAddr::from(([127, 0, 0, 1], 0)), None).unwrap();
        let cfg = client_config(&dialer, expected, PathProfile::Loopback).unwrap();
        let conn = ep
            .connect_with(cfg, addr, "bftbench")
            .unwrap()
            .await
            .unwrap();
        (ep, conn)
    });

    // Dropping a runtime drops its tasks unpolled and waits for its threads.
    drop(first_run);
    let reason = main.block_on(async {
        // The second run, on the same address; the dialer's keep-alives
        // (after 100 ms idle) reach it on the old connection.
        serve(addr);
        tokio::time::timeout(Duration::from_secs(10), conn.1.closed())
            .await
            .expect("the old connection ends within the idle timeout at the latest")
    });
    assert!(
        matches!(reason, quinn::ConnectionError::Reset),
        "the restarted replica's stateless reset ends the old connection, not the idle timeout: {reason:?}"
    );
}

/// Regression: a restarted replica announces itself to each lower id, whose
/// dial loop then redials at once instead of waiting for its connection into
/// the previous run to end. A primary that had sent much into the dead
/// connection learned of the restart only at that connection's next loss
/// probe, whose interval had doubled through the outage: its messages
/// reached the restarted replica about 0.8 s after its restart, every time
/// (scripts/kill-restart.sh, PBFT). Here replica 1 announces a restart with
/// its first connection still up: replica 0 hands over a second connection
/// without waiting for the first to end, and closes the first after the
/// grace it reads it for.
#[test]
fn a_restart_announcement_makes_the_lower_peer_redial_at_once() {
    use bft_net::transport::{AcceptCtx, ReplicaInbound, accept_loop, announce_restart, dial_loop};
    use std::sync::atomic::AtomicU64;
    use tokio::sync::{mpsc, watch};

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let addr1 = serve(loopback);
        let id0 = identity(0);
        let server0 = server_config(&id0, peer_keys(), PathProfile::Loopback).unwrap();
        let ep0 = bind_endpoint(loopback, Some((server0, &id0))).unwrap();
        let addr0 = ep0.local_addr().unwrap();

        let (frames, _frames_rx) = mpsc::channel(64);
        let (requests, _requests_rx) = mpsc::channel(64);
        let inbound = ReplicaInbound {
            frames,
            requests: requests.clone(),
            max_frame: 1 << 20,
        };
        let (handed_tx, mut handed) = mpsc::channel(4);
        let (restarts, announced) = watch::channel(0);
        let cfg = client_config(&id0, identity(1).public, PathProfile::Loopback).unwrap();
        tokio::spawn(dial_loop(
            ep0.clone(),
            cfg,
            addr1,
            NodeId(1),
            vec![handed_tx],
            inbound.clone(),
            announced,
        ));
        let ctx = AcceptCtx {
            me: NodeId(0),
            keys: peer_keys(),
            link_conns: vec![Vec::new(), Vec::new()],
            restarts: vec![None, Some(restarts)],
            inbound,
            clients: requests,
            max_frame: 1 << 20,
            next_conn: Arc::new(AtomicU64::new(0)),
        };
        tokio::spawn(accept_loop(ep0.clone(), ctx));

        let wait = Duration::from_secs(10);
        let first: quinn::Connection = tokio::time::timeout(wait, handed.recv())
            .await
            .expect("the dial loop connects")
            .unwrap();

        let id1 = identity(1);
        let ep1 = bind_endpoint(loopback, None).unwrap();
        let cfg1 = client_config(&id1, id0.public, PathProfile::Loopback).unwrap();
        tokio::spawn(announce_restart(ep1, cfg1, addr0));

        let second: quinn::Connection = tokio::time::timeout(wait, handed.recv())
            .await
            .expect("the announcement makes the dial loop hand over a new connection")
            .unwrap();
        assert_ne!(first.stable_id(), second.stable_id());
        assert!(
            first.close_reason().is_none(),
            "redialled without waiting for the first connection to end"
        );
        let reason = tokio::time::timeout(wait, first.closed())
            .await
            .expect("the replaced connection is closed after its grace");
        assert!(
            matches!(reason, quinn::ConnectionError::LocallyClosed),
            "{reason:?}"
        );
        assert!(second.close_reason().is_none(), "the new one stays up");
    });
}
