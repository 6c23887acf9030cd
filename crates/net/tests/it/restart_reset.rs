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
