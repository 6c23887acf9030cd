//! A replica's links to its peers: per peer, a protocol link and a
//! forwarded-request link, each with its own writer task and stream on the
//! pair's one connection, which the lower id dials.

use super::ReplicaSetup;
use crate::NetError;
use crate::queue::{self, LINK_QUEUE_BYTES, QueueTx};
use crate::tls::client_config;
use crate::transport::{LinkLosses, ReplicaInbound, announce_restart, dial_loop, link_writer};
use crate::wire::StreamKind;
use bft_core::{NodeId, Protocol};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Forwarded requests queued per peer before new ones are dropped (and
/// counted), and at most [`LINK_QUEUE_BYTES`] of them.
pub(super) const FORWARD_QUEUE: usize = 4096;

/// Per peer id (None or empty for this replica).
pub(super) struct Links {
    /// The protocol messages' queues.
    pub(super) protocol: Vec<Option<QueueTx>>,
    /// The forwarded requests' queues.
    pub(super) requests: Vec<Option<QueueTx>>,
    /// Where a new connection with the peer goes: both writers.
    pub(super) conns: Vec<Vec<mpsc::Sender<quinn::Connection>>>,
    /// Where a higher id's restart announcement goes: its dial loop.
    pub(super) restarts: Vec<Option<watch::Sender<u64>>>,
}

/// Starts every peer's two writers (each queue bounded in frames and in
/// bytes, [`crate::queue`]), and a dial loop to each higher id; a
/// replica resumed from its data directory announces its restart to each
/// lower id.
pub(super) fn spawn<P: Protocol>(
    setup: &ReplicaSetup<P>,
    inbound: &ReplicaInbound,
    losses: &Arc<LinkLosses>,
    tasks: &mut JoinSet<()>,
) -> Result<Links, NetError> {
    let n = setup.addrs.len();
    let mut links = Links {
        protocol: Vec::with_capacity(n),
        requests: Vec::with_capacity(n),
        conns: Vec::with_capacity(n),
        restarts: Vec::with_capacity(n),
    };
    for (j, &addr) in setup.addrs.iter().enumerate() {
        let peer = NodeId(u16::try_from(j).map_err(|_| NetError::TooManyNodes(n))?);
        if peer == setup.id {
            links.protocol.push(None);
            links.requests.push(None);
            links.conns.push(Vec::new());
            links.restarts.push(None);
            continue;
        }
        let mut writers = Vec::with_capacity(2);
        for (kind, queues, capacity) in [
            (StreamKind::Protocol, &mut links.protocol, setup.send_queue),
            (StreamKind::Requests, &mut links.requests, FORWARD_QUEUE),
        ] {
            let (out_tx, out_rx) = queue::bounded(capacity, LINK_QUEUE_BYTES);
            let (conn_tx, conn_rx) = mpsc::channel(4);
            tasks.spawn(link_writer(out_rx, conn_rx, losses.clone(), Some(kind)));
            queues.push(Some(out_tx));
            writers.push(conn_tx);
        }
        let expected = setup.keys.replicas.get(j).copied().unwrap_or_default();
        let cfg = client_config(&setup.identity, expected, setup.profile)?;
        if peer > setup.id {
            let (restarts, announced) = watch::channel(0);
            tasks.spawn(dial_loop(
                setup.endpoint.clone(),
                cfg,
                addr,
                peer,
                writers.clone(),
                inbound.clone(),
                announced,
            ));
            links.restarts.push(Some(restarts));
        } else {
            if setup.resumed_at.is_some() {
                tasks.spawn(announce_restart(setup.endpoint.clone(), cfg, addr));
            }
            links.restarts.push(None);
        }
        links.conns.push(writers);
    }
    Ok(links)
}
