//! Crash faults starting and ending, and a crashed replica coming back
//! (from what it had written to its store, or as a fresh core with
//! `amnesia`).

use super::queue::Event;
use super::{Simulation, node_context};
use crate::config::{Fault, FaultKind};
use bft_core::{Adversarial, Node, Time};

/// The reason a restart whose stored state did not decode is counted under.
pub const UNREADABLE_STORE: &str = "unreadable-store";

impl<P: Adversarial> Simulation<P> {
    /// A crash starts or ends; other faults are checked when they act.
    pub(super) fn fault(&mut self, index: usize, starts: bool) {
        let Some(f) = self.cfg.faults.get(index).cloned() else {
            return;
        };
        let FaultKind::Crash { amnesia } = f.kind else {
            return;
        };
        let event = if starts {
            crate::timeline::Event::Crash
        } else {
            crate::timeline::Event::Restart
        };
        self.timeline_mark(self.now, f.node, event);
        let Some(r) = self.replicas.get_mut(f.node.index()) else {
            return;
        };
        if starts {
            r.crashed = Some(f.end.map(Time::from_duration));
            // What it had written survives the crash: its durable state,
            // since every change was written in the step that made it.
            r.stored = Some(r.node.durable_image());
            return;
        }
        r.crashed = None;
        self.reincarnate(&f, !amnesia);
    }

    /// A restart, booted now: from what the replica had written to its
    /// store (`from_disk`), or with amnesia as a fresh core that remembers
    /// nothing (no last voted view, lock or prepared certificate). Either
    /// way nothing else survives: no pool, no timers, no messages in flight
    /// to it. A state that did not encode or does not read back is counted
    /// as `unreadable-store` and the replica starts fresh.
    pub(super) fn reincarnate(&mut self, f: &Fault, from_disk: bool) {
        let ctx = node_context(&self.committee, &self.cryptos, f.node, &self.cfg);
        let fresh_node = |node| super::configured(node, &self.cfg);
        let Some(r) = self.replicas.get_mut(f.node.index()) else {
            return;
        };
        let stored = if from_disk { r.stored.take() } else { None };
        let recovered = stored.map(|s| s.and_then(|s| Node::recover(ctx.clone(), &self.proto, &s)));
        let fresh = match recovered {
            None => Node::new(ctx, &self.proto),
            Some(Ok(node)) => node,
            Some(Err(_)) => {
                let mut node = Node::new(ctx, &self.proto);
                node.count_rejected(UNREADABLE_STORE);
                node
            }
        };
        let old = std::mem::replace(&mut r.node, fresh_node(fresh));
        r.retired.merge(old.stats());
        r.timers.clear();
        r.inbox.clear();
        self.push(self.now, Event::Start(f.node));
    }
}
