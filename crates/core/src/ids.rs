//! Identifiers and virtual/real time. Newtypes so a view is never mistaken for a
//! sequence number.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A replica's index in the committee: `0..n`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct NodeId(pub u16);

impl NodeId {
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! counter_newtype {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
        pub struct $name(pub u64);

        impl $name {
            pub const ZERO: Self = Self(0);
            pub fn next(self) -> Self {
                Self(self.0.saturating_add(1))
            }
            pub fn prev(self) -> Self {
                Self(self.0.saturating_sub(1))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

counter_newtype!(
    /// A view (PBFT, HotStuff) or round (QBFT).
    View,
    "v"
);
counter_newtype!(
    /// A PBFT sequence number.
    Seq,
    "s"
);
counter_newtype!(
    /// A QBFT/HotStuff block height.
    Height,
    "h"
);

/// A point in time in nanoseconds since the start of a run. Virtual in the
/// simulator, wall-clock in the QUIC runtime. Protocols only ever receive it as
/// an argument (sans-IO).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Time(pub u64);

impl Time {
    pub const ZERO: Time = Time(0);

    pub fn from_duration(d: Duration) -> Time {
        Time(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }
    pub fn saturating_add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(Time::from_duration(d).0))
    }
    /// `self - earlier`, or zero if `earlier` is later.
    pub fn since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}s", self.as_secs_f64())
    }
}

/// A client's request id: unique per (client, number).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct RequestId {
    pub client: u32,
    pub number: u64,
}

/// Client ids at and above this one belong to replicas' HTTP ingresses
/// (`bftbench node --http`), never to a load generator's logical clients,
/// which count up from 0.
///
/// Layout: `INGRESS_CLIENT_BASE | node << 16 | epoch`. Each start of a
/// replica's ingress takes a new `epoch` and numbers its requests from 0
/// again, so a restarted ingress is a new client whose numbers no replica
/// has executed yet (every replica remembers executed numbers per client).
/// Its requests are signed with the node's own Ed25519 key.
pub const INGRESS_CLIENT_BASE: u32 = 1 << 31;

/// Nodes an ingress client id can name (15 bits).
pub const MAX_INGRESS_NODES: usize = 1 << 15;

impl RequestId {
    /// The client id of node `node`'s ingress in its start `epoch`; None
    /// for a node index that does not fit the layout.
    pub fn ingress_client(node: NodeId, epoch: u16) -> Option<u32> {
        (node.index() < MAX_INGRESS_NODES)
            .then(|| INGRESS_CLIENT_BASE | (u32::from(node.0) << 16) | u32::from(epoch))
    }

    /// The node whose ingress issues client `client`'s requests; None for
    /// a load generator's client.
    pub fn ingress_node(client: u32) -> Option<NodeId> {
        (client >= INGRESS_CLIENT_BASE)
            .then_some(NodeId(((client & !INGRESS_CLIENT_BASE) >> 16) as u16))
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}#{}", self.client, self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ingress_client_names_its_node_and_a_load_client_none() {
        let c = RequestId::ingress_client(NodeId(3), 0xbeef).unwrap();
        assert!(c >= INGRESS_CLIENT_BASE);
        assert_eq!(RequestId::ingress_node(c), Some(NodeId(3)));
        let top = RequestId::ingress_client(NodeId(0x7fff), u16::MAX).unwrap();
        assert_eq!(RequestId::ingress_node(top), Some(NodeId(0x7fff)));
        assert_eq!(RequestId::ingress_client(NodeId(0x8000), 0), None);
        assert_eq!(RequestId::ingress_node(INGRESS_CLIENT_BASE - 1), None);
        assert_eq!(RequestId::ingress_node(0), None);
    }
}
