//! A record of who sent what to whom, and when, inside a time window: the
//! data of a message sequence (Lamport) diagram (`bftbench timeline`).
//!
//! Recording is off unless [`crate::Simulation::record_timeline`] asks for
//! it, and it changes nothing the simulation does: it draws no randomness,
//! schedules no event and is not part of the trace hash. Memory is bounded:
//! past [`MAX_ARROWS`] arrows (or [`MAX_MARKS`] marks) the rest are counted,
//! not kept.

use bft_core::{NodeId, Time};
use serde::Serialize;

/// Arrows kept per recording.
pub const MAX_ARROWS: usize = 200_000;
/// Marks kept per recording.
pub const MAX_MARKS: usize = 50_000;

/// One protocol message on one link.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Arrow {
    /// Sender's identity.
    pub from: NodeId,
    /// Receiving identity.
    pub to: NodeId,
    /// When it left the sender (after the sender's CPU time).
    pub sent: Time,
    /// When it reaches the receiver; None: the network dropped it.
    pub arrives: Option<Time>,
    /// The message's counting label (`WireMessage::kind`).
    pub kind: &'static str,
    /// Payload bytes.
    pub bytes: usize,
}

/// Something that happened at one replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Event {
    /// The replica committed `slot`, decided in `view`.
    Commit {
        slot: u64,
        view: u64,
        requests: usize,
    },
    /// A view timeout ([`bft_core::Protocol::is_view_timeout`]) fired while
    /// the replica was in `view`.
    Timeout { view: u64 },
    /// The replica crashed.
    Crash,
    /// The replica came back.
    Restart,
}

/// An event at one replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mark {
    pub at: Time,
    pub node: NodeId,
    /// Not a Byzantine replica or a twin (what the records' leader
    /// replacements count).
    pub honest: bool,
    pub event: Event,
}

/// The recording of one window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timeline {
    pub from: Time,
    pub to: Time,
    pub arrows: Vec<Arrow>,
    pub marks: Vec<Mark>,
    /// Arrows and marks in the window beyond the caps, not kept.
    pub dropped: u64,
}

impl Timeline {
    pub fn new(from: Time, to: Time) -> Timeline {
        Timeline {
            from,
            to,
            arrows: Vec::new(),
            marks: Vec::new(),
            dropped: 0,
        }
    }

    /// Is `at` inside the window?
    pub fn covers(&self, at: Time) -> bool {
        at >= self.from && at <= self.to
    }

    pub fn arrow(&mut self, a: Arrow) {
        if self.arrows.len() < MAX_ARROWS {
            self.arrows.push(a);
        } else {
            self.dropped += 1;
        }
    }

    pub fn mark(&mut self, at: Time, node: NodeId, honest: bool, event: Event) {
        if !self.covers(at) {
            return;
        }
        if self.marks.len() < MAX_MARKS {
            self.marks.push(Mark {
                at,
                node,
                honest,
                event,
            });
        } else {
            self.dropped += 1;
        }
    }
}
