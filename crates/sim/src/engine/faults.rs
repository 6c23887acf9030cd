//! Crash faults starting and ending, and a crashed replica coming back
//! (with its state, or as a fresh core with `amnesia`).

use super::queue::Event;
use super::{Simulation, node_context};
use crate::config::{Fault, FaultKind};
use bft_core::{Adversarial, Node, Time};

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
            return;
        }
        r.crashed = None;
        if amnesia {
            self.reincarnate(&f);
        }
    }

    /// Restart with amnesia: a fresh core that remembers nothing (no last
    /// voted view, lock or prepared certificate, no pool), booted now.
    pub(super) fn reincarnate(&mut self, f: &Fault) {
        let ctx = node_context(&self.committee, &self.cryptos, f.node, &self.cfg);
        let Some(r) = self.replicas.get_mut(f.node.index()) else {
            return;
        };
        let old = std::mem::replace(&mut r.node, Node::new(ctx, &self.proto));
        r.retired.merge(old.stats());
        r.timers.clear();
        r.inbox.clear();
        self.push(self.now, Event::Start(f.node));
    }
}
