//! What a replica reports: when it stops ([`NodeSummary`]) and while it
//! runs ([`Snapshot`]).

use bft_core::{MsgStats, NodeId, Status};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// What a replica reports when it stops.
#[derive(Clone, Debug, Default)]
pub struct NodeSummary {
    pub id: NodeId,
    /// The core's counters: protocol messages/bytes by kind, rejections by
    /// reason.
    pub stats: MsgStats,
    pub status: Status,
    /// CPU seconds of the node task's thread while it handled events
    /// (decode, protocol, real crypto, encode); transport tasks excluded.
    pub cpu_s: f64,
    /// Frames dropped because a peer's send queue was full.
    pub dropped_overload: u64,
    /// Frames lost in a write to a connection that broke.
    pub dropped_link: u64,
    /// Replies dropped because a client's reply queue was full.
    pub dropped_replies: u64,
    /// Reply frames sent to clients: one logical reply per request id.
    pub client_messages: u64,
    pub client_bytes: u64,
    pub wall: Duration,
    /// Writes to the data directory (one per batch of events that changed
    /// the durable state or committed), and the wall time they took.
    pub store_writes: u64,
    pub store_s: f64,
    /// The committed slot this replica resumed at from its data directory;
    /// None: it started fresh.
    pub resumed_at: Option<u64>,
    /// Seconds from this replica's start to the first decision it
    /// committed (for a restarted one: restart to first commit); None if it
    /// committed nothing.
    pub first_commit_s: Option<f64>,
    /// Copies of this replica's ingress requests handed to other replicas,
    /// and copies dropped because a peer's queue was full.
    pub forwarded_requests: u64,
    pub dropped_forwards: u64,
    /// What the HTTP ingress answered, by outcome; None without one.
    pub ingress: Option<Arc<crate::ingress::IngressStats>>,
}

/// What a running replica publishes for its supervisor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub status: Status,
    /// Protocol messages sent so far.
    pub sent: u64,
    /// Protocol messages received (decoded) so far.
    pub received: u64,
    /// Inputs rejected so far, all reasons.
    pub rejected: u64,
}
