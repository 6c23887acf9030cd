//! The replica's side of HTTP ingress ([`crate::ingress`]): requests taken
//! in here are forwarded to every other replica and waited on until this
//! replica commits them; requests other replicas' ingresses forward are
//! taken like a client's.

use crate::queue::QueueTx;
use bft_core::{NodeId, Request, RequestId, codec};
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// Waiters at which closed ones are first swept out; the threshold then
/// doubles with what is left, so sweeping costs O(1) per request and the
/// map holds at most twice the waiters still open (the ingress bounds
/// those at its `max_pending`).
const FIRST_SWEEP: usize = 1024;

pub(super) struct Forwarder {
    me: NodeId,
    /// Per peer: its forwarded-request queue (None for this replica).
    queues: Vec<Option<QueueTx>>,
    /// Requests of this replica's ingress not yet committed here.
    waiting: BTreeMap<RequestId, oneshot::Sender<u64>>,
    sweep_at: usize,
    /// Copies handed to peers' queues, and copies dropped because a queue
    /// was full.
    pub(super) forwarded: u64,
    pub(super) dropped: u64,
}

impl Forwarder {
    pub(super) fn new(me: NodeId, queues: Vec<Option<QueueTx>>) -> Forwarder {
        Forwarder {
            me,
            queues,
            waiting: BTreeMap::new(),
            sweep_at: FIRST_SWEEP,
            forwarded: 0,
            dropped: 0,
        }
    }

    /// Remembers who waits for `req` and sends it to every other replica.
    pub(super) fn submitted(&mut self, req: &Request, answer: oneshot::Sender<u64>) {
        if self.waiting.len() >= self.sweep_at {
            self.waiting.retain(|_, tx| !tx.is_closed());
            self.sweep_at = (2 * self.waiting.len()).max(FIRST_SWEEP);
        }
        self.waiting.insert(req.id(), answer);
        let Ok(body) = codec::encode(req, codec::DEFAULT_MAX_FRAME) else {
            return;
        };
        for queue in self.queues.iter().flatten() {
            match queue.try_send(body.clone()) {
                Ok(()) => self.forwarded += 1,
                Err(_) => self.dropped += 1,
            }
        }
    }

    /// Answers the waiters of the requests of this replica's ingress that
    /// `slot` committed.
    pub(super) fn committed(&mut self, slot: u64, requests: &[RequestId]) {
        if self.waiting.is_empty() {
            return;
        }
        for id in requests {
            if RequestId::ingress_node(id.client) == Some(self.me)
                && let Some(tx) = self.waiting.remove(id)
            {
                let _ = tx.send(slot);
            }
        }
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{LINK_QUEUE_BYTES, bounded};
    use bytes::Bytes;

    fn request(node: u16, number: u64) -> Request {
        let client = RequestId::ingress_client(NodeId(node), 0).unwrap_or_default();
        Request::unsigned(RequestId { client, number }, Bytes::from_static(b"tx"))
    }

    #[test]
    fn a_request_goes_to_every_other_replica_and_its_commit_to_its_waiter() {
        let (a, mut ra) = bounded(4, LINK_QUEUE_BYTES);
        let (b, mut rb) = bounded(1, LINK_QUEUE_BYTES);
        let mut f = Forwarder::new(NodeId(1), vec![Some(a), None, Some(b)]);
        let (tx, mut rx) = oneshot::channel();
        let req = request(1, 0);
        f.submitted(&req, tx);
        let sent = ra.try_recv().expect("a copy for replica 0");
        assert_eq!(
            codec::decode::<Request>(&sent, usize::MAX).unwrap().id(),
            req.id()
        );
        assert!(rb.try_recv().is_some());
        assert_eq!((f.forwarded, f.dropped), (2, 0));
        f.committed(7, &[request(2, 0).id(), req.id()]);
        assert_eq!(rx.try_recv(), Ok(7));
        assert_eq!(f.waiting(), 0);
    }

    #[test]
    fn a_full_queue_drops_the_copy_and_counts_it() {
        let (b, _rb) = bounded(1, LINK_QUEUE_BYTES);
        let mut f = Forwarder::new(NodeId(0), vec![None, Some(b)]);
        for n in 0..3 {
            f.submitted(&request(0, n), oneshot::channel().0);
        }
        assert_eq!((f.forwarded, f.dropped), (1, 2));
    }

    #[test]
    fn waiters_that_gave_up_are_swept_out() {
        let mut f = Forwarder::new(NodeId(0), vec![None]);
        let mut open = Vec::new();
        for n in 0..(3 * FIRST_SWEEP as u64) {
            let (tx, rx) = oneshot::channel();
            if n % 8 == 0 {
                open.push(rx);
            }
            f.submitted(&request(0, n), tx);
        }
        assert!(
            f.waiting() <= 2 * open.len() + FIRST_SWEEP,
            "{}",
            f.waiting()
        );
    }
}
