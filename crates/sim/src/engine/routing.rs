//! Routing a sent frame: the test filter, Byzantine tampering and stale
//! replays, Twins partitions, censorship, then the network model.

use super::queue::Event;
use super::{REPLAY_HISTORY, Simulation};
use crate::config::FaultKind;
use crate::network::{Endpoint, transit};
use bft_core::codec;
use bft_core::codec::DEFAULT_MAX_FRAME;
use bft_core::{Adversarial, NodeId, TamperContext, Time};
use bytes::Bytes;
use rand::{Rng, RngCore};

impl<P: Adversarial> Simulation<P> {
    /// Sends what instance `from`'s core addressed to identity `to`: through
    /// the test filter and the faults active now, then to every instance of
    /// `to` its sender can reach (Twins partitions, then the network model).
    pub(super) fn send(&mut self, from: NodeId, to: NodeId, depart: Time, body: Bytes) {
        let plain = self
            .replicas
            .get(from.index())
            .is_some_and(|r| r.filter.is_none() && r.faults.is_empty());
        if plain {
            // The common case, without the per-message vectors below.
            self.deliver(from, to, depart, &body);
            return;
        }
        let Some(mut bodies) = self.filtered(from, to, body) else {
            return;
        };
        let mut depart = depart;
        let faults = self
            .replicas
            .get(from.index())
            .map(|r| r.faults.clone())
            .unwrap_or_default();
        for k in faults {
            let Some(f) = self.cfg.faults.get(k) else {
                continue;
            };
            if !f.active_at(self.now.as_duration()) {
                continue;
            }
            match &f.kind {
                FaultKind::Crash { .. } | FaultKind::Censor { .. } => {}
                FaultKind::Silent => return,
                FaultKind::Omission { peers } if peers.contains(&to) => return,
                FaultKind::Omission { .. } => {}
                FaultKind::Delay { by } => depart = depart.saturating_add(*by),
                FaultKind::StaleReplay => bodies = self.with_replay(from, bodies),
                FaultKind::Attack(attack) => bodies = self.tampered(*attack, from, to, bodies),
            }
        }
        for body in &bodies {
            self.deliver(from, to, depart, body);
        }
    }

    /// Schedules `body` from instance `from` to every instance of identity
    /// `to` it can reach now, each after the network model's transit time.
    pub(super) fn deliver(&mut self, from: NodeId, to: NodeId, depart: Time, body: &Bytes) {
        let sender = self.identity(from);
        let instances = self.instances_of.get(to.index()).map_or(0, Vec::len);
        for k in 0..instances {
            let Some(&target) = self.instances_of.get(to.index()).and_then(|v| v.get(k)) else {
                continue;
            };
            if !self.twins_connected(from, target) {
                continue;
            }
            let link = (Endpoint::Replica(sender), Endpoint::Replica(to));
            let transit = transit(&self.cfg.network, &mut self.rng, depart, link.0, link.1);
            let arrives = transit.map(|d| depart.saturating_add(d));
            self.timeline_arrow((sender, to), depart, arrives, body);
            if let Some(d) = transit {
                self.push(
                    depart.saturating_add(d),
                    Event::Deliver {
                        to: target,
                        from: sender,
                        body: body.clone(),
                    },
                );
            }
        }
    }

    /// The test API's outbound filter, if one is set.
    pub(super) fn filtered(&mut self, from: NodeId, to: NodeId, body: Bytes) -> Option<Vec<Bytes>> {
        let r = self.replicas.get_mut(from.index())?;
        let Some(filter) = r.filter.as_mut() else {
            return Some(vec![body]);
        };
        let msg = codec::decode::<P::Message>(&body, DEFAULT_MAX_FRAME).ok()?;
        let msg = filter(self.now, to, msg)?;
        codec::encode(&msg, DEFAULT_MAX_FRAME).ok().map(|b| vec![b])
    }

    /// Each body, plus (when it has one) a random earlier message of the
    /// same sender; the body joins the sender's history.
    pub(super) fn with_replay(&mut self, from: NodeId, mut bodies: Vec<Bytes>) -> Vec<Bytes> {
        let Some(r) = self.replicas.get_mut(from.index()) else {
            return bodies;
        };
        let replay = (!r.history.is_empty())
            .then(|| self.rng.gen_range(0..r.history.len()))
            .and_then(|i| r.history.get(i).cloned());
        for b in &bodies {
            if r.history.len() == REPLAY_HISTORY {
                r.history.pop_front();
            }
            r.history.push_back(b.clone());
        }
        bodies.extend(replay);
        bodies
    }

    /// The protocol's attack on each body (`None` from `tamper`: unchanged).
    /// The replica's memory — its honest core's state, and what the core
    /// sent before — is passed along, and this body joins the latter (once
    /// per broadcast, not per recipient).
    pub(super) fn tampered(
        &mut self,
        attack: bft_core::Attack,
        from: NodeId,
        to: NodeId,
        bodies: Vec<Bytes>,
    ) -> Vec<Bytes> {
        let me = self.identity(from);
        let crypto = self.crypto(me);
        let mut sent = self
            .replicas
            .get_mut(from.index())
            .map(|r| std::mem::take(&mut r.sent))
            .unwrap_or_default();
        let mut out = Vec::with_capacity(bodies.len());
        for body in bodies {
            let Ok(msg) = codec::decode::<P::Message>(&body, DEFAULT_MAX_FRAME) else {
                continue;
            };
            let entropy = self.rng.next_u64();
            let Some(core) = self.replicas.get(from.index()).map(|r| r.node.protocol()) else {
                continue;
            };
            let ctx = TamperContext {
                me,
                to,
                now: self.now,
                committee: &self.committee,
                crypto: crypto.as_ref(),
                entropy,
            };
            match core.tamper_with_memory(attack, &msg, sent.make_contiguous(), &ctx) {
                None => out.push(body.clone()),
                Some(msgs) => out.extend(
                    msgs.iter()
                        .filter_map(|m| codec::encode(m, DEFAULT_MAX_FRAME).ok()),
                ),
            }
            let seen = sent
                .back()
                .and_then(|last| codec::encode(last, DEFAULT_MAX_FRAME).ok())
                .is_some_and(|last| last == body);
            if !seen {
                if sent.len() == bft_core::TAMPER_HISTORY {
                    sent.pop_front();
                }
                sent.push_back(msg);
            }
        }
        if let Some(r) = self.replicas.get_mut(from.index()) {
            r.sent = sent;
        }
        out
    }

    /// The identity (node id) instance `i` runs as.
    pub(super) fn identity(&self, instance: NodeId) -> NodeId {
        self.replicas
            .get(instance.index())
            .map_or(instance, |r| r.node.id())
    }

    /// Twins: may instance `a` reach instance `b` now?
    pub(super) fn twins_connected(&self, a: NodeId, b: NodeId) -> bool {
        self.cfg
            .twins
            .as_ref()
            .is_none_or(|t| t.connected(self.now.as_duration(), a.0, b.0))
    }

    /// Is instance `node` censoring `client` now?
    pub(super) fn censors(&self, node: NodeId, client: u32) -> bool {
        let Some(r) = self.replicas.get(node.index()) else {
            return false;
        };
        r.faults
            .iter()
            .filter_map(|&k| self.cfg.faults.get(k))
            .any(|f| {
                matches!(&f.kind, FaultKind::Censor { clients } if clients.contains(&client))
                    && f.active_at(self.now.as_duration())
            })
    }
}
