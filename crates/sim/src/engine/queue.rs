//! The event queue (a binary heap ordered by virtual time, then sequence
//! number) and the trace hash over every handled event.

use bft_core::mix::{mix64, tail_word};
use bft_core::{Digest, NodeId, Request, RequestId, Time};
use bytes::Bytes;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Events name replicas by *instance*: instance i < n is node i, and with
/// Twins instance n + j is the twin of `twins.nodes[j]` (same id and keys,
/// its own state).
pub(super) enum Event<T> {
    Start(NodeId),
    Deliver {
        /// Receiving instance.
        to: NodeId,
        /// Sender's identity (what the receiving core sees).
        from: NodeId,
        body: Bytes,
    },
    Timer {
        node: NodeId,
        timer: T,
        generation: u64,
    },
    RequestArrives {
        node: NodeId,
        req: Request,
    },
    Replies {
        /// The replica reporting them.
        from: NodeId,
        /// The decision's own vector, moved here unless the ledger keeps it.
        requests: Vec<RequestId>,
    },
    ClientIssue {
        client: u32,
    },
    FaultStarts(usize),
    FaultEnds(usize),
    /// The replica has finished its previous event: take the next from its
    /// inbox.
    Wake(NodeId),
    /// On a shared machine: the load generator may do its next piece of work.
    ClientWake,
    /// On a shared machine: a core is free again; the longest waiter gets it.
    CoreFree,
}

/// The event queue: a binary heap of small (time, sequence, slot) keys over
/// a slab of events, so sifting moves 24 bytes rather than whole events
/// (a heap of events was a tenth of the simulator's instructions).
pub(super) struct EventQueue<T> {
    pub(super) keys: BinaryHeap<Key>,
    pub(super) slots: Vec<Option<Event<T>>>,
    pub(super) free: Vec<u32>,
}

pub(super) struct Key {
    pub(super) at: Time,
    pub(super) seq: u64,
    pub(super) slot: u32,
}

/// Keys are ordered (and equal) by (time, sequence number) alone: sequence
/// numbers are unique, so the slot never decides and is not compared.
impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    /// Reversed: the heap pops the earliest (time, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<T> EventQueue<T> {
    pub(super) fn new() -> EventQueue<T> {
        EventQueue {
            keys: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, at: Time, seq: u64, event: Event<T>) {
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(s) = self.slots.get_mut(slot as usize) {
                    *s = Some(event);
                }
                slot
            }
            None => {
                self.slots.push(Some(event));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.keys.push(Key { at, seq, slot });
    }

    /// Time of the earliest event.
    pub(super) fn peek_time(&self) -> Option<Time> {
        self.keys.peek().map(|k| k.at)
    }

    pub(super) fn pop(&mut self) -> Option<(Time, Event<T>)> {
        let key = self.keys.pop()?;
        let event = self.slots.get_mut(key.slot as usize)?.take()?;
        self.free.push(key.slot);
        Some((key.at, event))
    }
}

/// A running hash of every handled event: two runs with equal hashes handled
/// the same events at the same virtual times with the same bytes. Two 64-bit
/// lanes of multiply-xorshift mixing: order-sensitive and far cheaper than a
/// cryptographic hash per message (the simulator handles millions).
#[derive(Default)]
pub(super) struct Trace {
    pub(super) a: u64,
    pub(super) b: u64,
}

impl Trace {
    pub(super) fn word(&mut self, w: u64) {
        self.a = mix64(self.a ^ w);
        self.b = mix64(self.b.rotate_left(17) ^ w.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }

    /// A message body: folded a word at a time with one multiply (every
    /// delivered byte passes here), then mixed into both lanes as one word.
    pub(super) fn bytes(&mut self, bytes: &[u8]) {
        let mut h = (bytes.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h ^ w).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(31);
        }
        h = (h ^ tail_word(chunks.remainder())).wrapping_mul(0xff51_afd7_ed55_8ccd);
        self.word(h);
    }

    pub(super) fn event<T: std::hash::Hash>(&mut self, now: Time, node: NodeId, e: &Event<T>) {
        use std::hash::Hasher;
        self.word(now.0);
        self.word(u64::from(node.0));
        match e {
            Event::Start(_) => self.word(1),
            Event::Deliver { from, body, .. } => {
                self.word(2 | u64::from(from.0) << 8);
                self.bytes(body);
            }
            Event::Timer { timer, .. } => {
                // Fx: a fixed, seedless hash, so equal runs give equal words
                // (and no string is formatted per timer).
                let mut h = rustc_hash::FxHasher::default();
                timer.hash(&mut h);
                self.word(3);
                self.word(h.finish());
            }
            Event::RequestArrives { req, .. } => {
                self.word(4 | u64::from(req.id().client) << 8);
                self.word(req.id().number);
            }
            _ => {}
        }
    }

    pub(super) fn digest(&self) -> Digest {
        Digest::of(
            "bftbench/sim/trace/v1",
            &[&self.a.to_le_bytes(), &self.b.to_le_bytes()],
        )
    }
}
