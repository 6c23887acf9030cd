//! The simulated clients: issuing requests, sending them to replicas,
//! and the replies and commits that complete them.

use super::Simulation;
use super::cost::{REPLY_BYTES, reply_frame, request_body_len};
use super::queue::Event;
use crate::config::LoadMode;
use crate::machine::{ClientWork, Waiter};
use crate::network::{Endpoint, transit};
use bft_core::codec;
use bft_core::{Adversarial, Decision, NodeId, Request, RequestId, Time};
use bft_load::Issue;
use std::time::Duration;

impl<P: Adversarial> Simulation<P> {
    /// Client `client`'s signing key in this run (derived from the seed,
    /// like the load generator's): for tests that submit requests, or
    /// forge them as a colluding client would.
    pub fn client_signer(&self, client: u32) -> bft_crypto::ClientSigner {
        bft_crypto::ClientSigner::seeded(self.cfg.crypto, self.cfg.seed, client)
    }

    /// Mutant `skip-client-signatures`: every replica, as now constituted,
    /// accepts requests and proposals without checking client signatures
    /// (a replica restarted later checks again). For the oracle's validity
    /// control.
    #[cfg(feature = "mutants")]
    pub fn skip_client_signatures(&mut self) {
        for r in &mut self.replicas {
            r.node.check_client_signatures(false);
        }
    }

    /// `node` installed a snapshot: an honest one's ledger resumes at
    /// (`slot`, `block`), which the oracle checks against what the others
    /// committed there.
    pub(super) fn install_snapshot(&mut self, node: NodeId, slot: u64, block: bft_core::Digest) {
        if self
            .replicas
            .get(node.index())
            .is_some_and(|r| !r.byzantine)
        {
            self.oracle.install_snapshot(node, slot, block);
        }
    }

    pub(super) fn commit(&mut self, node: NodeId, depart: Time, d: Decision) {
        let Some(honest) = self.replicas.get(node.index()).map(|r| !r.byzantine) else {
            return;
        };
        self.timeline_mark(
            depart,
            node,
            crate::timeline::Event::Commit {
                slot: d.slot,
                view: d.view,
                requests: d.requests.len(),
            },
        );
        if honest {
            self.oracle.commit(node, &d);
            self.oracle.certificate::<P>(node, &d);
            if self.replacements.is_open() {
                let totals = self.totals();
                self.replacements.decided(depart, d.view, totals);
            }
        }
        let Some(r) = self.replicas.get_mut(node.index()) else {
            return;
        };
        let requests = if self.cfg.keep_ledgers {
            let requests = d.requests.clone();
            r.ledger.push(d);
            requests
        } else {
            d.requests
        };
        // A twin is a second instance of an identity that already replies.
        if requests.is_empty() || node.index() >= self.committee.n() {
            return;
        }
        self.client_messages += requests.len() as u64;
        self.client_bytes += requests.len() as u64 * REPLY_BYTES;
        let link = (Endpoint::Replica(node), Endpoint::Clients);
        if let Some(delay) = transit(&self.cfg.network, &mut self.rng, depart, link.0, link.1) {
            self.push(
                depart.saturating_add(delay),
                Event::Replies {
                    from: node,
                    requests,
                },
            );
        }
    }

    pub(super) fn replies(&mut self, from: NodeId, requests: &[RequestId]) {
        if self.pool.is_some() {
            let cpu = self.cfg.cost.frame(reply_frame(requests.len())) / 2;
            self.generator.push(ClientWork::Receive(cpu));
            self.schedule_client_wake();
        }
        for &id in requests {
            if let Some(client) = self.clients.reply(id, from, self.now) {
                self.client_issue(client);
            }
        }
    }

    /// Issues one generated request from `client`; an open-loop client also
    /// schedules its next one, whatever happened to this one.
    pub(super) fn client_issue(&mut self, client: u32) {
        match self.clients.issue(client, self.now) {
            Issue::Send(id) => self.client_send(id),
            Issue::Refused => {}
            Issue::Done => return,
        }
        if let LoadMode::Open { rate } = self.cfg.load.mode {
            let interval = Duration::from_secs_f64(f64::from(self.cfg.load.clients) / rate);
            let next = self.now.saturating_add(interval);
            if self.clients.may_issue() && next <= Time::from_duration(self.cfg.duration) {
                self.push(next, Event::ClientIssue { client });
            }
        }
    }

    /// Signs request `id` and sends it to every replica (through the
    /// generator's CPU on a shared machine).
    fn client_send(&mut self, id: RequestId) {
        let mut req = Request::unsigned(id, self.payload.clone());
        if let Some(signer) = self.signers.get(id.client as usize) {
            signer.sign(&mut req);
        }
        if self.pool.is_some() {
            // On a shared machine the request leaves when the generator has
            // done its work and sent it to every replica.
            let cost = &self.cfg.cost;
            let frame = cost.frame(codec::wire_len(request_body_len(&req))) / 2;
            let copies = u32::try_from(self.committee.n()).unwrap_or(u32::MAX);
            let sign = if self.cfg.load.signed {
                cost.sign
            } else {
                Duration::ZERO
            };
            let cpu = cost.client_per_request + sign + frame * copies;
            self.generator.push(ClientWork::Send(req, cpu));
            self.schedule_client_wake();
        } else {
            self.send_request(self.now, req);
        }
    }

    pub(super) fn schedule_client_wake(&mut self) {
        if self.generator.wake_scheduled || self.generator.is_idle() {
            return;
        }
        self.generator.wake_scheduled = true;
        let at = self.generator.busy_until().max(self.now);
        self.push(at, Event::ClientWake);
    }

    /// The load generator's next piece of work, once it is free and holds a
    /// core (`granted`: a freed core was handed to it).
    pub(super) fn client_wake(&mut self, granted: bool) {
        let now = self.now;
        let Some(pool) = &mut self.pool else { return };
        if self.generator.busy_until() > now {
            self.generator.wake_scheduled = false;
            self.schedule_client_wake();
            return;
        }
        if !pool.may_run(Waiter::Generator, now, granted) {
            return; // still marked wake_scheduled: `core_free` wakes it
        }
        self.generator.wake_scheduled = false;
        if let Some((done, req)) = self.generator.work(pool, now) {
            self.push(done, Event::CoreFree);
            if let Some(req) = req {
                self.send_request(done, req);
            }
        }
        self.schedule_client_wake();
    }

    pub(super) fn send_request(&mut self, at: Time, req: Request) {
        self.oracle.submitted(req.id(), req.digest());
        let wire = codec::wire_len(request_body_len(&req));
        for i in 0..self.replicas.len() {
            let to = NodeId(i as u16);
            let id = self.identity(to);
            if i < self.committee.n() {
                self.client_messages += 1;
                self.client_bytes += wire;
            }
            if let Some(d) = transit(
                &self.cfg.network,
                &mut self.rng,
                at,
                Endpoint::Clients,
                Endpoint::Replica(id),
            ) {
                self.push(
                    at.saturating_add(d),
                    Event::RequestArrives {
                        node: to,
                        req: req.clone(),
                    },
                );
            }
        }
    }
}
