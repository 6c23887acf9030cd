//! Pending requests and exactly-once execution, shared by every protocol.
//!
//! `RequestPool` is the FIFO a leader cuts batches from; `Executed` remembers
//! which requests a replica has already executed so a request included twice
//! (say, by two primaries around a view change) runs once. Both are bounded.

use crate::ids::{RequestId, Time};
use crate::protocol::Request;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher, RandomState};

/// Request ids already executed, per client: everything at or below
/// `floor` plus a sparse set above it, compacted as the gap fills. Clients
/// number requests 0, 1, 2, …, so this stays small; `max_sparse` bounds it
/// when a client skips numbers (then the oldest entries raise the floor).
/// Part of every protocol's durable state: a replica restarted without it
/// would execute a request again.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executed {
    /// Few clients: an ordered map is as fast as hashing here.
    clients: BTreeMap<u32, ClientWindow>,
    max_sparse: usize,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ClientWindow {
    /// Numbers `< next` are all executed.
    next: u64,
    above: BTreeSet<u64>,
}

impl Executed {
    pub fn new() -> Executed {
        Executed {
            clients: BTreeMap::new(),
            max_sparse: 1 << 16,
        }
    }

    pub fn contains(&self, id: RequestId) -> bool {
        self.clients
            .get(&id.client)
            .is_some_and(|w| id.number < w.next || w.above.contains(&id.number))
    }

    /// Records `id`; returns false if it was executed before.
    pub fn insert(&mut self, id: RequestId) -> bool {
        let max_sparse = self.max_sparse;
        let w = self.clients.entry(id.client).or_default();
        if id.number == w.next && w.above.is_empty() {
            // In-order execution, the common case: no set node to allocate.
            w.next += 1;
            return true;
        }
        if id.number < w.next || !w.above.insert(id.number) {
            return false;
        }
        while w.above.first() == Some(&w.next) {
            w.above.pop_first();
            w.next += 1;
        }
        while w.above.len() > max_sparse {
            if let Some(lowest) = w.above.pop_first() {
                w.next = lowest + 1;
            }
        }
        true
    }

    /// Entries held (for memory bounds).
    pub fn retained(&self) -> usize {
        self.clients.values().map(|w| 1 + w.above.len()).sum()
    }
}

/// Requests waiting to be ordered, in arrival order, without duplicates.
#[derive(Debug)]
pub struct RequestPool {
    queue: VecDeque<(Time, Request)>,
    queued: HashSet<RequestId, IdHashing>,
    executed: Executed,
    /// Reused by `execute` for the ids it takes off the queue.
    dequeued: Vec<RequestId>,
    capacity: usize,
    dropped: u64,
}

impl RequestPool {
    /// `capacity` bounds memory: requests beyond it are dropped and counted.
    pub fn new(capacity: usize) -> RequestPool {
        RequestPool {
            queue: VecDeque::new(),
            queued: HashSet::with_hasher(IdHashing::new()),
            executed: Executed::new(),
            dequeued: Vec::new(),
            capacity,
            dropped: 0,
        }
    }

    /// Adds a request unless it is queued, executed, or the pool is full.
    /// Returns true if it was added.
    pub fn add(&mut self, now: Time, req: Request) -> bool {
        if self.executed.contains(req.id()) {
            return false;
        }
        if self.queue.len() >= self.capacity {
            if !self.queued.contains(&req.id()) {
                self.dropped += 1;
            }
            return false;
        }
        if !self.queued.insert(req.id()) {
            return false; // already queued
        }
        self.queue.push_back((now, req));
        true
    }

    /// Removes and returns up to `max` requests, oldest first.
    pub fn take_batch(&mut self, max: usize) -> Vec<Request> {
        let mut batch = Vec::with_capacity(max.min(self.queue.len()));
        while batch.len() < max {
            let Some((_, r)) = self.queue.pop_front() else {
                break;
            };
            self.queued.remove(&r.id());
            if !self.executed.contains(r.id()) {
                batch.push(r);
            }
        }
        batch
    }

    /// Looks at up to `max` queued requests without removing them (a leader
    /// that keeps requests until they commit, e.g. HotStuff).
    pub fn peek(&self, max: usize) -> impl Iterator<Item = &Request> {
        self.queue.iter().take(max).map(|(_, r)| r)
    }

    /// Marks requests executed and drops them from the queue. Returns the
    /// requests that had not been executed before, in the given order: the
    /// ones this decision actually executes.
    pub fn execute<'a>(&mut self, reqs: impl IntoIterator<Item = &'a Request>) -> Vec<&'a Request> {
        let mut fresh = Vec::new();
        let mut dequeued = std::mem::take(&mut self.dequeued);
        dequeued.clear();
        for req in reqs {
            let id = req.id();
            if self.executed.insert(id) {
                fresh.push(req);
            }
            if self.queued.remove(&id) {
                dequeued.push(id);
            }
        }
        if !dequeued.is_empty() {
            // A sorted list of the few ids removed, not a hash lookup per
            // queued request: this runs at every replica on every commit.
            // Committed requests are usually the oldest, so pop those off
            // the front first and scan the rest only if some are elsewhere.
            dequeued.sort_unstable();
            let mut left = dequeued.len();
            while left > 0
                && self
                    .queue
                    .front()
                    .is_some_and(|(_, r)| dequeued.binary_search(&r.id()).is_ok())
            {
                self.queue.pop_front();
                left -= 1;
            }
            if left > 0 {
                self.queue
                    .retain(|(_, r)| dequeued.binary_search(&r.id()).is_err());
            }
        }
        self.dequeued = dequeued;
        fresh
    }

    /// The requests executed so far (durable state: see [`Executed`]).
    pub fn executed(&self) -> &Executed {
        &self.executed
    }

    /// An empty pool that knows `executed` (a replica restarted from its
    /// durable state).
    pub fn with_executed(capacity: usize, executed: Executed) -> RequestPool {
        RequestPool {
            executed,
            ..RequestPool::new(capacity)
        }
    }

    /// Takes `executed` from an installed snapshot (see
    /// [`crate::snapshot`]) in place of what this replica executed, and
    /// drops the queued requests it names.
    pub fn install_executed(&mut self, executed: Executed) {
        self.executed = executed;
        let executed = &self.executed;
        let queued = &mut self.queued;
        self.queue.retain(|(_, r)| {
            let keep = !executed.contains(r.id());
            if !keep {
                queued.remove(&r.id());
            }
            keep
        });
    }

    pub fn is_executed(&self, id: RequestId) -> bool {
        self.executed.contains(id)
    }
    pub fn contains(&self, id: RequestId) -> bool {
        self.queued.contains(&id)
    }
    pub fn len(&self) -> usize {
        self.queue.len()
    }
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
    /// Arrival time of the oldest waiting request (for `max_delay`).
    pub fn oldest_arrival(&self) -> Option<Time> {
        self.queue.front().map(|(t, _)| *t)
    }
    /// Requests refused because the pool was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
    /// Entries held: queue plus dedup state.
    pub fn retained(&self) -> usize {
        self.queue.len() + self.executed.retained()
    }
}

/// The pool's hashing of request ids: a 128-bit folded multiply per word
/// under a random per-pool key (from std's `RandomState`), like foldhash.
/// Ids come from clients, so the key must stay secret (no one can aim ids at
/// one bucket), but SipHash was a tenth of the pool's cost at every replica
/// for every request.
#[derive(Clone, Debug)]
struct IdHashing {
    keys: [u64; 3],
}

impl IdHashing {
    fn new() -> IdHashing {
        let random = RandomState::new();
        let key = |i: u64| random.hash_one(i) | 1;
        IdHashing {
            keys: [key(0), key(1), key(2)],
        }
    }
}

impl BuildHasher for IdHashing {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            state: self.keys[0],
            keys: [self.keys[1], self.keys[2]],
        }
    }
}

struct IdHasher {
    state: u64,
    keys: [u64; 2],
}

fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p >> 64) as u64 ^ p as u64
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }
    fn write_u64(&mut self, x: u64) {
        self.state = fold_mul(self.state ^ x, self.keys[0]);
    }
    fn finish(&self) -> u64 {
        fold_mul(self.state, self.keys[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn req(client: u32, number: u64) -> Request {
        Request::unsigned(RequestId { client, number }, Bytes::new())
    }

    #[test]
    fn executed_compacts_and_dedups() {
        let mut e = Executed::new();
        for n in [2, 0, 1, 5] {
            assert!(e.insert(RequestId {
                client: 1,
                number: n
            }));
        }
        assert!(!e.insert(RequestId {
            client: 1,
            number: 1
        }));
        assert!(e.contains(RequestId {
            client: 1,
            number: 5
        }));
        assert!(!e.contains(RequestId {
            client: 1,
            number: 4
        }));
        assert_eq!(e.retained(), 2, "0..=2 compacted into the floor, 5 sparse");
    }

    #[test]
    fn pool_batches_in_order_and_executes_once() {
        let mut p = RequestPool::new(3);
        assert!(p.add(Time(1), req(1, 0)));
        assert!(!p.add(Time(2), req(1, 0)), "duplicate");
        assert!(p.add(Time(3), req(1, 1)));
        assert!(p.add(Time(4), req(2, 0)));
        assert!(!p.add(Time(5), req(2, 1)), "full");
        assert_eq!(p.dropped(), 1);
        assert_eq!(p.oldest_arrival(), Some(Time(1)));
        let executing = [req(1, 1)];
        assert_eq!(p.execute(&executing).len(), 1);
        assert!(!p.add(Time(6), req(1, 1)), "executed");
        let b = p.take_batch(10);
        assert_eq!(
            b.iter().map(|r| r.id()).collect::<Vec<_>>(),
            vec![
                RequestId {
                    client: 1,
                    number: 0
                },
                RequestId {
                    client: 2,
                    number: 0
                }
            ]
        );
        assert!(p.execute(&[req(1, 1)]).is_empty(), "twice");
    }
}
