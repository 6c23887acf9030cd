//! Recording a message sequence diagram of a window of virtual time (see
//! `crate::timeline`).

use super::Simulation;
use bft_core::codec;
use bft_core::codec::DEFAULT_MAX_FRAME;
use bft_core::{Adversarial, NodeId, Time};
use bytes::Bytes;
use std::time::Duration;

impl<P: Adversarial> Simulation<P> {
    /// Records every message sent between `from` and `to` (virtual time)
    /// and the replicas' commits, view timeouts and crashes, for a message
    /// sequence diagram; see [`crate::timeline`]. Call before running.
    pub fn record_timeline(&mut self, from: Duration, to: Duration) {
        self.timeline = Some(crate::Timeline::new(
            Time::from_duration(from),
            Time::from_duration(to),
        ));
    }

    /// What [`Simulation::record_timeline`] recorded so far.
    pub fn timeline(&self) -> Option<&crate::Timeline> {
        self.timeline.as_ref()
    }

    pub(super) fn timeline_mark(&mut self, at: Time, node: NodeId, event: crate::timeline::Event) {
        let honest = node.index() < self.committee.n()
            && self
                .replicas
                .get(node.index())
                .is_some_and(|r| !r.byzantine);
        if let Some(t) = &mut self.timeline {
            t.mark(at, node, honest, event);
        }
    }

    pub(super) fn timeline_arrow(
        &mut self,
        (from, to): (NodeId, NodeId),
        sent: Time,
        arrives: Option<Time>,
        body: &Bytes,
    ) {
        let Some(t) = &mut self.timeline else { return };
        if !t.covers(sent) {
            return;
        }
        let kind = codec::decode::<P::Message>(body, DEFAULT_MAX_FRAME)
            .map_or("undecodable", |m| bft_core::WireMessage::kind(&m));
        t.arrow(crate::timeline::Arrow {
            from,
            to,
            sent,
            arrives,
            kind,
            bytes: body.len(),
        });
    }
}
