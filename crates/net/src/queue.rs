//! A peer link's outgoing queue, bounded in frames and in bytes.
//!
//! A link's writer ([`crate::transport::link_writer`]) drains its queue
//! into the link's connection. While the peer is unreachable (crashed,
//! restarting, cut off) nothing drains it, and a bound in frames alone let
//! a replica hold for a dead peer as many frames as the queue has room
//! for, whatever their size: with batches of a few thousand requests, tens
//! of thousands of pre-prepares of up to a megabyte each. The byte bound
//! caps what a replica holds for one peer, the batch its writer is writing
//! included: bytes count from the moment a frame is queued until the write
//! that carries it is over ([`QueueRx::written`]). A frame that does not
//! fit is refused (the caller counts it, as for a queue full of frames),
//! and the protocol recovers what it carried through its own
//! retransmissions and catch-up, as it does for any lost message. A frame
//! larger than the whole budget still goes when nothing else is queued.

use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// What a replica holds for one peer link at most (about 64 frames of the
/// largest batches; at 50 000 tx/s of 512-byte requests, about two seconds
/// of a primary's pre-prepares).
pub const LINK_QUEUE_BYTES: usize = 64 << 20;

/// A queue of at most `frames` frames and `max_bytes` bytes.
pub fn bounded(frames: usize, max_bytes: usize) -> (QueueTx, QueueRx) {
    let (tx, rx) = mpsc::channel(frames);
    let queued = Arc::new(AtomicUsize::new(0));
    (
        QueueTx {
            tx,
            queued: queued.clone(),
            max_bytes,
        },
        QueueRx {
            rx,
            queued: Some(queued),
        },
    )
}

/// The sending side, held by the replica's event loop.
#[derive(Clone, Debug)]
pub struct QueueTx {
    tx: mpsc::Sender<Bytes>,
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl QueueTx {
    /// Queues `body`, or hands it back when the queue holds its frames'
    /// worth, or would hold more than its bytes with it (unless it is
    /// empty), or its writer is gone.
    pub fn try_send(&self, body: Bytes) -> Result<(), Bytes> {
        let len = body.len();
        let before = self.queued.fetch_add(len, Ordering::Relaxed);
        if before > 0 && before + len > self.max_bytes {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return Err(body);
        }
        self.tx.try_send(body).map_err(|e| {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            e.into_inner()
        })
    }

    /// The frames queued (not those being written).
    pub fn queued_frames(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// The bytes queued or being written.
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// The receiving side, held by the link's writer.
#[derive(Debug)]
pub struct QueueRx {
    rx: mpsc::Receiver<Bytes>,
    /// None: a queue bounded in frames only (a client's replies).
    queued: Option<Arc<AtomicUsize>>,
}

impl QueueRx {
    /// A plain channel's receiver, bounded in frames only.
    pub fn unmetered(rx: mpsc::Receiver<Bytes>) -> QueueRx {
        QueueRx { rx, queued: None }
    }

    /// Up to `limit` frames appended to `batch` (0: every sender is gone).
    pub async fn recv_many(&mut self, batch: &mut Vec<Bytes>, limit: usize) -> usize {
        self.rx.recv_many(batch, limit).await
    }

    /// One frame if one is queued, its bytes freed at once (for a reader
    /// that holds no write in progress).
    #[cfg(test)]
    pub(crate) fn try_recv(&mut self) -> Option<Bytes> {
        let body = self.rx.try_recv().ok()?;
        self.written(std::slice::from_ref(&body));
        Some(body)
    }

    /// The write of `batch` is over (done or failed): its bytes are free.
    pub fn written(&self, batch: &[Bytes]) {
        if let Some(queued) = &self.queued {
            let bytes = batch.iter().map(Bytes::len).sum();
            queued.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> Bytes {
        Bytes::from(vec![0u8; len])
    }

    #[tokio::test]
    async fn bytes_are_bounded_until_the_write_is_over() {
        let (tx, mut rx) = bounded(100, 1000);
        assert!(tx.try_send(frame(600)).is_ok());
        assert!(tx.try_send(frame(400)).is_ok());
        assert_eq!(tx.try_send(frame(1)).map_err(|b| b.len()), Err(1), "full");
        let mut batch = Vec::new();
        assert_eq!(rx.recv_many(&mut batch, 10).await, 2);
        assert!(tx.try_send(frame(1)).is_err(), "still being written");
        rx.written(&batch);
        assert_eq!(tx.queued_bytes(), 0);
        assert!(tx.try_send(frame(1000)).is_ok());
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_budget_goes_alone() {
        let (tx, mut rx) = bounded(100, 1000);
        assert!(tx.try_send(frame(5000)).is_ok(), "queue empty");
        assert!(tx.try_send(frame(1)).is_err());
        let mut batch = Vec::new();
        rx.recv_many(&mut batch, 10).await;
        rx.written(&batch);
        assert!(tx.try_send(frame(1)).is_ok());
    }

    #[tokio::test]
    async fn frames_are_bounded_too_and_a_closed_queue_refuses() {
        let (tx, rx) = bounded(2, 1 << 20);
        assert!(tx.try_send(frame(1)).is_ok());
        assert!(tx.try_send(frame(1)).is_ok());
        assert!(tx.try_send(frame(1)).is_err(), "two frames");
        assert_eq!(tx.queued_bytes(), 2, "a refused frame is not counted");
        drop(rx);
        assert!(tx.try_send(frame(1)).is_err());
        assert_eq!(tx.queued_bytes(), 2);
    }
}
