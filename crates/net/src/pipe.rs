//! One replica-to-replica link on loopback, on its own: what `bftbench
//! calibrate` times to learn what moving a frame costs this machine (the
//! `transport_per_message` and `transport_per_kib` figures the simulator
//! charges when replicas share cores).
//!
//! It is the cluster's own path: two endpoints bound like a replica's
//! ([`crate::tls::bind_endpoint`]), mutual TLS with the replicas' identities,
//! the loopback transport profile, one unidirectional stream written with
//! [`FrameWriter`] in batches of at most [`WRITE_BATCH`] frames (as a link
//! writer does) and read with [`FrameReader`].

use crate::NetError;
use crate::cluster::node_identity;
use crate::tls::{PathProfile, PeerKeys, bind_endpoint, client_config, server_config};
use crate::transport::WRITE_BATCH;
use crate::wire::{FrameReader, FrameWriter};
use bft_core::{Committee, NodeId, codec};
use bft_crypto::SecretKeys;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;

/// A connected link from replica 0 to replica 1 of a 4-replica committee.
pub struct FramePipe {
    writer: FrameWriter,
    reader: FrameReader,
    // Kept so the connection stays open.
    _ends: (
        quinn::Endpoint,
        quinn::Endpoint,
        quinn::Connection,
        quinn::Connection,
    ),
}

impl FramePipe {
    /// Binds both ends on 127.0.0.1 and connects them.
    pub async fn open() -> Result<FramePipe, NetError> {
        let ids: Vec<NodeId> = (0..4).map(NodeId).collect();
        let secrets: Vec<SecretKeys> = ids.iter().map(|&id| SecretKeys::from_seed(1, id)).collect();
        let members = ids
            .iter()
            .zip(&secrets)
            .map(|(&id, s)| s.member(id))
            .collect();
        let committee = Committee::new(members).map_err(NetError::Core)?;
        let keys = Arc::new(PeerKeys::new(&committee, Vec::new()));
        let (a, b) = (
            node_identity(&secrets[0], ids[0])?,
            node_identity(&secrets[1], ids[1])?,
        );
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let server = server_config(&b, keys, PathProfile::Loopback)?;
        let b_end = bind_endpoint(any, Some((server, &b)))?;
        let b_addr = b_end
            .local_addr()
            .map_err(|source| NetError::Bind { addr: any, source })?;
        let a_end = bind_endpoint(any, None)?;
        let cfg = client_config(&a, b.public, PathProfile::Loopback)?;
        let link = |e: String| NetError::Task(format!("calibration link: {e}"));
        let connecting = a_end
            .connect_with(cfg, b_addr, "bftbench")
            .map_err(|e| link(e.to_string()))?;
        let accepting = async {
            let incoming = b_end
                .accept()
                .await
                .ok_or_else(|| link("endpoint closed".into()))?;
            incoming.await.map_err(|e| link(e.to_string()))
        };
        let (a_conn, b_conn) = tokio::join!(connecting, accepting);
        let (a_conn, b_conn) = (a_conn.map_err(|e| link(e.to_string()))?, b_conn?);
        let send = a_conn.open_uni().await.map_err(|e| link(e.to_string()))?;
        let mut writer = FrameWriter::new(send);
        // The stream reaches the peer with its first frame.
        writer
            .write(&[Bytes::from_static(b"hello")])
            .await
            .map_err(|e| link(e.to_string()))?;
        let recv = b_conn.accept_uni().await.map_err(|e| link(e.to_string()))?;
        let mut reader = FrameReader::new(recv, codec::DEFAULT_MAX_FRAME);
        reader.next().await.map_err(|e| link(format!("{e:?}")))?;
        Ok(FramePipe {
            writer,
            reader,
            _ends: (a_end, b_end, a_conn, b_conn),
        })
    }

    /// Sends `frames` frames of `size` body bytes, `per_write` frames per
    /// write (at most [`WRITE_BATCH`]), and waits until the other end has
    /// read them all.
    pub async fn carry(
        &mut self,
        frames: usize,
        size: usize,
        per_write: usize,
    ) -> Result<(), NetError> {
        let body = Bytes::from(vec![0x5a; size]);
        let batch: Vec<Bytes> = vec![body; per_write.clamp(1, WRITE_BATCH).min(frames.max(1))];
        let link = |e: String| NetError::Task(format!("calibration link: {e}"));
        let writer = &mut self.writer;
        let reader = &mut self.reader;
        let write = async {
            let mut left = frames;
            while left > 0 {
                let k = left.min(batch.len());
                writer
                    .write(&batch[..k])
                    .await
                    .map_err(|e| link(e.to_string()))?;
                left -= k;
            }
            Ok::<(), NetError>(())
        };
        let read = async {
            for _ in 0..frames {
                reader.next().await.map_err(|e| link(format!("{e:?}")))?;
            }
            Ok::<(), NetError>(())
        };
        let (w, r) = tokio::join!(write, read);
        w.and(r)
    }

    /// One frame of `size` body bytes from one end to the other, alone on
    /// an idle link: returns when the other end has read it (the one-way
    /// latency of a frame, including both ends' tasks waking).
    pub async fn one(&mut self, size: usize) -> Result<(), NetError> {
        self.carry(1, size, 1).await
    }
}
