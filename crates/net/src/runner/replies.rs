//! Replies to clients. A decision's request ids go to the connection that
//! last submitted for their client, one frame per connection per decision.
//!
//! Rule (PBFT §4.1: a replica re-sends its reply to a request it has
//! already executed): a request can be committed here before its client's
//! own copy arrives (the primary received it first and the cluster decided
//! it while this replica's client connection was still being set up), and
//! then this replica knows no connection to answer on. Such a decision's
//! ids are remembered, a bounded number ([`MAX_UNROUTED`], oldest
//! forgotten first), and a copy that arrives later is answered at once
//! instead of being handed to the core, which would drop it as executed
//! (regression test
//! `a_request_committed_before_its_copy_arrived_is_answered_when_it_does`).
//! The simulator's replicas reply on every commit, routed or not.

use super::Driver;
use crate::wire::Reply;
use bft_core::{Protocol, RequestId, codec};
use std::collections::BTreeMap;
use tokio::sync::mpsc;

/// Committed requests remembered for a copy still to arrive.
pub(super) const MAX_UNROUTED: usize = 1 << 16;

/// Committed requests this replica could not answer yet, with their slots:
/// a bounded map, the oldest forgotten first.
#[derive(Debug, Default)]
pub(super) struct Unrouted {
    /// Each id's slot and the stamp of its entry in `by_age`.
    slots: BTreeMap<RequestId, (u64, u64)>,
    /// The ids by insertion stamp, oldest first.
    by_age: BTreeMap<u64, RequestId>,
    next_stamp: u64,
}

impl Unrouted {
    pub(super) fn remember(&mut self, id: RequestId, slot: u64) {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        if let Some((_, old)) = self.slots.insert(id, (slot, stamp)) {
            self.by_age.remove(&old);
        }
        self.by_age.insert(stamp, id);
        while self.slots.len() > MAX_UNROUTED {
            if let Some((_, oldest)) = self.by_age.pop_first() {
                self.slots.remove(&oldest);
            }
        }
    }

    /// The slot `id` was committed in, if it is remembered (then no more).
    pub(super) fn take(&mut self, id: RequestId) -> Option<u64> {
        let (slot, stamp) = self.slots.remove(&id)?;
        self.by_age.remove(&stamp);
        Some(slot)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }
}

impl<P: Protocol> Driver<P> {
    /// Sends each submitting connection the ids of `requests` it submitted;
    /// the others are remembered for their copy to arrive.
    pub(super) fn reply(&mut self, slot: u64, requests: &[RequestId]) {
        let mut per_conn: BTreeMap<u64, Vec<RequestId>> = BTreeMap::new();
        for id in requests {
            match self.owner.get(&id.client) {
                Some(conn) if self.client_conns.contains_key(conn) => {
                    per_conn.entry(*conn).or_default().push(*id);
                }
                // The HTTP ingress answers its own requests (`Forwarder`);
                // no client connection ever submits under its ids.
                _ if RequestId::ingress_node(id.client).is_some() => {}
                _ => self.unrouted.remember(*id, slot),
            }
        }
        for (conn, ids) in per_conn {
            if let Err(ids) = self.send_reply(conn, slot, ids) {
                for id in ids {
                    self.unrouted.remember(id, slot);
                }
            }
        }
    }

    /// A client's copy of `id` arrived on `conn`: if it was committed
    /// before any connection could be answered, answer now. True if it was.
    pub(super) fn answer_late(&mut self, conn: u64, id: RequestId) -> bool {
        let Some(slot) = self.unrouted.take(id) else {
            return false;
        };
        if self.send_reply(conn, slot, vec![id]).is_err() {
            self.unrouted.remember(id, slot);
        }
        true
    }

    /// Sends `ids` to `conn`; hands them back if its connection is gone
    /// (they wait for a copy on another), and counts them dropped if its
    /// reply queue is full.
    fn send_reply(
        &mut self,
        conn: u64,
        slot: u64,
        ids: Vec<RequestId>,
    ) -> Result<(), Vec<RequestId>> {
        let Some(tx) = self.client_conns.get(&conn) else {
            return Err(ids);
        };
        let count = ids.len() as u64;
        let reply = Reply {
            slot,
            requests: ids,
        };
        let Ok(body) = codec::encode(&reply, codec::DEFAULT_MAX_FRAME) else {
            return Ok(());
        };
        let bytes = codec::wire_len(body.len());
        match tx.try_send(body) {
            Ok(()) => {
                self.summary.client_messages += count;
                self.summary.client_bytes += bytes;
            }
            Err(mpsc::error::TrySendError::Full(_)) => self.summary.dropped_replies += count,
            // The client hung up (typically: it had f+1 replies and
            // finished); a copy on a new connection is answered then.
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(reply.requests),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(number: u64) -> RequestId {
        RequestId { client: 1, number }
    }

    #[test]
    fn unrouted_forgets_the_oldest_beyond_its_bound() {
        let mut u = Unrouted::default();
        for n in 0..(MAX_UNROUTED as u64 + 10) {
            u.remember(id(n), n);
        }
        assert_eq!(u.len(), MAX_UNROUTED);
        assert_eq!(u.take(id(9)), None, "among the ten oldest");
        assert_eq!(u.take(id(10)), Some(10));
        assert_eq!(u.take(id(10)), None, "taken once");
    }

    #[test]
    fn an_id_remembered_again_outlives_its_older_entry() {
        let mut u = Unrouted::default();
        u.remember(id(0), 5);
        assert_eq!(u.take(id(0)), Some(5));
        u.remember(id(0), 6);
        for n in 1..(MAX_UNROUTED as u64) {
            u.remember(id(n), n);
        }
        // The first entry of id 0 was pushed out; the second is kept.
        assert_eq!(u.take(id(0)), Some(6));
    }
}
