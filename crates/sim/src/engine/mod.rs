//! The discrete-event engine. One binary heap ordered by (virtual time,
//! sequence number), one seeded RNG, and `Node<P>` from the core for every
//! replica, so the counts are the ones the QUIC runtime reports too.
//!
//! Virtual CPU: a replica handles one event at a time; an event that arrives
//! while it is busy waits. Handling costs the crypto the event charged plus
//! `cost.handling`, and what the replica sends leaves when it is done. On a
//! shared machine (`cfg.machine`, see [`crate::machine`]) it also waits for
//! a free core and pays for the frames it moves.
//!
//! The engine, file by file: this file holds `Simulation`, its
//! construction and the event loop (`run_until`, `dispatch`, `handle`,
//! `output`); `queue.rs` the event queue and trace hash; `routing.rs` what
//! happens to a sent frame; `load.rs` the clients; `faults.rs` crashes and
//! restarts; `timeline.rs` sequence-diagram recording; `cost.rs` frame
//! sizes and transport CPU; `report.rs` the report and the liveness check.

use crate::SimError;
use crate::clients::Clients;
use crate::config::{FaultKind, LoadMode, SimConfig};
use crate::machine::{CorePool, Generator, Waiter};
use crate::network::{Endpoint, transit};
use crate::oracle::Oracle;
use bft_core::codec::{self, DEFAULT_MAX_FRAME};
use bft_core::{
    Adversarial, Committee, Crypto, Decision, MsgStats, Node, NodeContext, NodeId, NodeInput,
    Output, Request, Time,
};
use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

mod cost;
mod faults;
mod load;
mod queue;
mod report;
mod routing;
mod timeline;

use cost::transport_cpu;
use queue::{Event, EventQueue, Trace};
pub use report::{NodeReport, SimReport};

/// Rewrites or drops what a Byzantine node sends, per recipient.
pub type OutboundFilter<M> = Box<dyn FnMut(Time, NodeId, M) -> Option<M>>;

/// A Byzantine replica's own earlier messages kept for stale replays.
const REPLAY_HISTORY: usize = 32;

struct Replica<P: Adversarial> {
    node: Node<P>,
    /// Counters of earlier incarnations (a restart starts a new `Node`);
    /// reports add them.
    retired: MsgStats,
    /// The model store: the durable state it had written when it crashed
    /// (every change is written in the step that made it, so that is its
    /// durable state at the crash), read back at restart; an error if it
    /// did not encode.
    stored: Option<Result<bft_core::StoredState, bft_core::CoreError>>,
    busy_until: Time,
    cpu: Duration,
    /// Pending timer generations by key: a fired timer whose generation is
    /// not the pending one was replaced or cancelled, and is dropped.
    timers: BTreeMap<P::Timer, u64>,
    /// Down until `Some(restart)` (or forever with `None`).
    crashed: Option<Option<Time>>,
    /// Indexes into `cfg.faults` of the faults this instance has.
    faults: Vec<usize>,
    /// Its own earlier messages, for `StaleReplay`.
    history: std::collections::VecDeque<Bytes>,
    /// What its honest core sent before (decoded, distinct, oldest first),
    /// for attacks that need an older certificate.
    sent: std::collections::VecDeque<P::Message>,
    /// Has a fault configured: excluded from liveness figures.
    faulty: bool,
    /// Controlled by a test or adversary: excluded from the oracle too.
    byzantine: bool,
    filter: Option<OutboundFilter<P::Message>>,
    ledger: Vec<Decision>,
    /// Events that arrived while the replica was busy, in arrival order; one
    /// `Wake` is scheduled for when it is free. (Re-scheduling each waiting
    /// event instead made queues quadratic under load.)
    inbox: std::collections::VecDeque<Event<P::Timer>>,
    wake_scheduled: bool,
}

pub struct Simulation<P: Adversarial> {
    cfg: SimConfig,
    proto: P::Config,
    /// Instances of each identity: `[id]`, plus its twin's instance.
    instances_of: Vec<Vec<NodeId>>,
    committee: Arc<Committee>,
    cryptos: Vec<Arc<dyn Crypto>>,
    replicas: Vec<Replica<P>>,
    queue: EventQueue<P::Timer>,
    seq: u64,
    now: Time,
    rng: ChaCha8Rng,
    oracle: Oracle,
    clients: Clients,
    /// Each client's signing key (derived from the seed); none when the
    /// run's requests are unsigned.
    signers: Vec<bft_crypto::ClientSigner>,
    payload: Bytes,
    trace: Trace,
    events: u64,
    next_timer_generation: u64,
    client_messages: u64,
    client_bytes: u64,
    scratch: Vec<Output<P::Timer>>,
    replacements: crate::replacements::Tracker,
    /// The shared cores, on a shared machine.
    pool: Option<CorePool>,
    /// The load generator's work queue, on a shared machine.
    generator: Generator,
    /// The message sequence of a window, when asked for.
    timeline: Option<crate::Timeline>,
}

impl<P: Adversarial> Simulation<P> {
    pub fn new(cfg: SimConfig, proto: P::Config) -> Result<Simulation<P>, SimError> {
        P::check_config(&proto).map_err(SimError::Protocol)?;
        let (committee, cryptos) = bft_crypto::cluster(cfg.nodes, cfg.seed, cfg.crypto, cfg.cost)?;
        let auditor = bft_crypto::cluster(cfg.nodes, cfg.seed, cfg.crypto, cfg.cost)?.1;
        let committee = match &cfg.leaders {
            None => committee,
            Some(schedule) => Arc::new(
                Committee::clone(&committee)
                    .with_leaders(schedule.clone())
                    .map_err(SimError::Leaders)?,
            ),
        };
        for f in &cfg.faults {
            if !committee.contains(f.node) {
                return Err(SimError::NoSuchNode {
                    node: f.node,
                    n: committee.n(),
                });
            }
            if let (FaultKind::Crash { amnesia: false }, Some(until)) = (&f.kind, f.end)
                && !cfg.storage.persist
            {
                return Err(SimError::RestartWithoutStore {
                    node: f.node,
                    until,
                });
            }
        }
        let n = committee.n();
        let twinned: Vec<NodeId> = match &cfg.twins {
            None => Vec::new(),
            Some(t) => {
                t.check(n).map_err(SimError::Twins)?;
                t.nodes.clone()
            }
        };
        if n + twinned.len() > usize::from(u16::MAX) {
            return Err(SimError::Twins("too many instances".into()));
        }
        let identities = (0..n)
            .map(|i| NodeId(i as u16))
            .chain(twinned.iter().copied());
        let replicas = identities
            .enumerate()
            .map(|(instance, id)| {
                let ctx = node_context(&committee, &cryptos, id, &cfg);
                let faults: Vec<usize> = (0..cfg.faults.len())
                    .filter(|&k| instance < n && cfg.faults[k].node == id)
                    .collect();
                let twin = twinned.contains(&id);
                Replica {
                    node: configured(Node::new(ctx, &proto), &cfg),
                    retired: MsgStats::default(),
                    stored: None,
                    busy_until: Time::ZERO,
                    cpu: Duration::ZERO,
                    timers: BTreeMap::new(),
                    crashed: None,
                    faulty: !faults.is_empty() || twin,
                    byzantine: twin || faults.iter().any(|&k| cfg.faults[k].kind.is_byzantine()),
                    faults,
                    history: std::collections::VecDeque::new(),
                    sent: std::collections::VecDeque::new(),
                    filter: None,
                    ledger: Vec::new(),
                    inbox: std::collections::VecDeque::new(),
                    wake_scheduled: false,
                }
            })
            .collect();
        let mut instances_of: Vec<Vec<NodeId>> = (0..n).map(|i| vec![NodeId(i as u16)]).collect();
        for (j, id) in twinned.iter().enumerate() {
            instances_of[id.index()].push(NodeId((n + j) as u16));
        }
        let mut sim = Simulation {
            proto,
            instances_of,
            clients: Clients::new(cfg.load.clone(), committee.weak_quorum()),
            signers: (0..cfg.load.clients)
                .filter(|_| cfg.load.signed)
                .map(|c| bft_crypto::ClientSigner::seeded(cfg.crypto, cfg.seed, c))
                .collect(),
            payload: Bytes::from(vec![0u8; cfg.load.tx_size]),
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            oracle: Oracle::new(committee.n())
                .checking_certificates(committee.clone(), auditor.into_iter().next()),
            committee,
            cryptos,
            replicas,
            queue: EventQueue::new(),
            seq: 0,
            now: Time::ZERO,
            trace: Trace::default(),
            events: 0,
            next_timer_generation: 0,
            client_messages: 0,
            client_bytes: 0,
            scratch: Vec::new(),
            pool: CorePool::of(&cfg.machine),
            generator: Generator::default(),
            timeline: None,
            replacements: crate::replacements::Tracker::default(),
            cfg,
        };
        sim.schedule_start();
        Ok(sim)
    }

    fn schedule_start(&mut self) {
        for i in 0..self.replicas.len() {
            self.push(Time::ZERO, Event::Start(NodeId(i as u16)));
        }
        for i in 0..self.cfg.faults.len() {
            let f = &self.cfg.faults[i];
            let (start, end) = (Time::from_duration(f.start), f.end.map(Time::from_duration));
            self.push(start, Event::FaultStarts(i));
            if let Some(end) = end {
                self.push(end, Event::FaultEnds(i));
            }
        }
        let clients = self.cfg.load.clients;
        match self.cfg.load.mode {
            LoadMode::Closed { outstanding } => {
                for client in 0..clients {
                    for _ in 0..outstanding {
                        self.push(Time::ZERO, Event::ClientIssue { client });
                    }
                }
            }
            LoadMode::Open { rate } => {
                // Client c starts c/rate seconds in, so the clients interleave
                // into one stream of `rate` requests per second.
                for client in 0..clients {
                    let offset = Duration::from_secs_f64(f64::from(client) / rate);
                    self.push(Time::from_duration(offset), Event::ClientIssue { client });
                }
            }
        }
    }

    pub fn committee(&self) -> Arc<Committee> {
        self.committee.clone()
    }

    pub fn crypto(&self, id: NodeId) -> Arc<dyn Crypto> {
        match self.cryptos.get(id.index()) {
            Some(c) => c.clone(),
            None => self.cryptos[0].clone(),
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    pub fn now(&self) -> Time {
        self.now
    }

    /// The replica `id`. Panics on an id outside the committee (a test bug).
    #[allow(clippy::panic)]
    pub fn node(&self, id: NodeId) -> &Node<P> {
        self.instance(id)
    }

    /// Instance `i` (`i < n`: node i; `n + j`: the twin of `twins.nodes[j]`).
    /// Panics outside `0..instances()` (a test bug).
    #[allow(clippy::panic)]
    pub fn instance(&self, id: NodeId) -> &Node<P> {
        match self.replicas.get(id.index()) {
            Some(r) => &r.node,
            None => panic!(
                "no replica {id:?} in a committee of {}",
                self.replicas.len()
            ),
        }
    }

    /// Replicas running, twins included.
    pub fn instances(&self) -> usize {
        self.replicas.len()
    }

    /// Decisions `id` committed (empty unless `keep_ledgers`).
    pub fn ledger(&self, id: NodeId) -> &[Decision] {
        self.replicas
            .get(id.index())
            .map(|r| r.ledger.as_slice())
            .unwrap_or(&[])
    }

    /// Rewrites or drops what `node` sends (called per recipient); marks it
    /// Byzantine.
    pub fn set_outbound_filter(
        &mut self,
        node: NodeId,
        f: impl FnMut(Time, NodeId, P::Message) -> Option<P::Message> + 'static,
    ) {
        if let Some(r) = self.replicas.get_mut(node.index()) {
            r.filter = Some(Box::new(f));
            r.byzantine = true;
        }
    }

    /// Delivers `msg` as if `from` sent it to `to` at `at`; marks `from`
    /// Byzantine.
    pub fn inject(&mut self, at: Time, from: NodeId, to: NodeId, msg: P::Message) {
        if let Some(r) = self.replicas.get_mut(from.index()) {
            r.byzantine = true;
        }
        let Ok(body) = codec::encode(&msg, DEFAULT_MAX_FRAME) else {
            return;
        };
        let at = at.max(self.now);
        if let Some(d) = transit(
            &self.cfg.network,
            &mut self.rng,
            at,
            Endpoint::Replica(from),
            Endpoint::Replica(to),
        ) {
            self.push(at.saturating_add(d), Event::Deliver { to, from, body });
        }
    }

    /// Submits `req` to every replica at `at`.
    pub fn submit(&mut self, at: Time, req: Request) {
        let at = at.max(self.now);
        self.clients.track_manual(req.id(), at);
        self.send_request(at, req);
    }

    /// Runs to `cfg.duration` or until no event is left.
    pub fn run(&mut self) -> SimReport {
        self.run_until(Time::from_duration(self.cfg.duration));
        self.report()
    }

    pub fn run_until(&mut self, limit: Time) {
        while let Some(at) = self.queue.peek_time() {
            if at > limit {
                self.now = limit;
                return;
            }
            if let Some((at, event)) = self.queue.pop() {
                self.now = at;
                self.dispatch(event);
            }
        }
    }

    fn push(&mut self, at: Time, event: Event<P::Timer>) {
        self.seq += 1;
        self.queue.push(at, self.seq, event);
    }

    fn dispatch(&mut self, event: Event<P::Timer>) {
        match event {
            Event::ClientIssue { client } => self.client_issue(client),
            Event::Replies { from, requests } => self.replies(from, &requests),
            Event::FaultStarts(i) => self.fault(i, true),
            Event::FaultEnds(i) => self.fault(i, false),
            Event::Wake(node) => self.wake(node),
            Event::ClientWake => self.client_wake(false),
            Event::CoreFree => self.core_free(),
            node_event => self.node_event(node_event),
        }
    }

    fn node_event(&mut self, event: Event<P::Timer>) {
        let node = match &event {
            Event::Start(n) => *n,
            Event::Deliver { to, .. } => *to,
            Event::Timer { node, .. } => *node,
            Event::RequestArrives { node, .. } => *node,
            _ => return,
        };
        if let Event::RequestArrives { req, .. } = &event
            && self.censors(node, req.id().client)
        {
            return;
        }
        let Some(replica) = self.replicas.get_mut(node.index()) else {
            return;
        };
        if replica.busy_until > self.now || !replica.inbox.is_empty() {
            replica.inbox.push_back(event);
            if !replica.wake_scheduled {
                replica.wake_scheduled = true;
                let at = replica.busy_until.max(self.now);
                self.push(at, Event::Wake(node));
            }
            return;
        }
        let now = self.now;
        if let Some(pool) = &mut self.pool
            && !pool.may_run(Waiter::Replica(node), now, false)
        {
            // Queued for a core; `core_free` wakes it.
            replica.inbox.push_back(event);
            replica.wake_scheduled = true;
            return;
        }
        self.handle(node, event);
    }

    /// A shared core is free: hand it to the longest waiter, and on while
    /// cores stay free (a waiter may not use one: its event was a stale
    /// timer, or its replica crashed).
    fn core_free(&mut self) {
        let now = self.now;
        while let Some(waiter) = self.pool.as_mut().and_then(|p| p.grant(now)) {
            match waiter {
                Waiter::Replica(node) => self.wake_granted(node, true),
                Waiter::Generator => self.client_wake(true),
            }
        }
    }

    /// Handles the next waiting event of `node`, and schedules the one after.
    fn wake(&mut self, node: NodeId) {
        self.wake_granted(node, false);
    }

    /// [`Self::wake`]; `granted`: a freed shared core was handed to it.
    fn wake_granted(&mut self, node: NodeId, granted: bool) {
        let now = self.now;
        if let Some(pool) = &mut self.pool
            && !pool.may_run(Waiter::Replica(node), now, granted)
        {
            return; // still marked wake_scheduled: `core_free` wakes it
        }
        let Some(replica) = self.replicas.get_mut(node.index()) else {
            return;
        };
        replica.wake_scheduled = false;
        let Some(event) = replica.inbox.pop_front() else {
            return;
        };
        self.handle(node, event);
        let Some(replica) = self.replicas.get_mut(node.index()) else {
            return;
        };
        if !replica.inbox.is_empty() && !replica.wake_scheduled {
            replica.wake_scheduled = true;
            let at = replica.busy_until.max(self.now);
            self.push(at, Event::Wake(node));
        }
    }

    /// Feeds one event to a free replica and routes what it outputs.
    fn handle(&mut self, node: NodeId, event: Event<P::Timer>) {
        let Some(replica) = self.replicas.get_mut(node.index()) else {
            return;
        };
        if let Some(restart) = replica.crashed {
            // A crashed replica loses messages; its timers wait for restart.
            if let (Event::Timer { .. }, Some(at)) = (&event, restart) {
                self.push(at, event);
            }
            return;
        }
        if let Event::Timer {
            timer, generation, ..
        } = &event
        {
            if replica.timers.get(timer) != Some(generation) {
                return; // replaced or cancelled
            }
            replica.timers.remove(timer);
        }
        if let Event::Timer { timer, .. } = &event
            && P::is_view_timeout(timer)
        {
            let honest = !replica.byzantine && node.index() < self.committee.n();
            let view = replica.node.status().view;
            if honest && !self.replacements.is_open() {
                let totals = self.totals();
                self.replacements.timeout(self.now, view, totals);
            }
            self.timeline_mark(self.now, node, crate::timeline::Event::Timeout { view });
        }
        self.events += 1;
        self.trace.event(self.now, node, &event);
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let input = match &event {
            Event::Start(_) => NodeInput::Start,
            Event::Deliver { from, body, .. } => NodeInput::Frame { from: *from, body },
            Event::Timer { timer, .. } => NodeInput::Timeout(*timer),
            Event::RequestArrives { req, .. } => NodeInput::Request(req.clone()),
            _ => return,
        };
        let Some(replica) = self.replicas.get_mut(node.index()) else {
            return;
        };
        let mut cpu = replica.node.step(self.now, input, &mut out) + self.cfg.cost.handling;
        // The store: a write (CPU) and, with fsync, a wait for the disk.
        let persisted = self.cfg.storage.persist && matches!(out.first(), Some(Output::Persist));
        let mut disk = Duration::ZERO;
        if persisted {
            cpu += self.cfg.cost.store_write;
            if self.cfg.storage.fsync == crate::Fsync::Always {
                disk = self.cfg.cost.store_fsync;
            }
        }
        if let Some(pool) = &mut self.pool {
            cpu += transport_cpu(
                &self.cfg.cost,
                &event,
                &out,
                node.index() < self.committee.n(),
            );
            let done = pool.occupy(self.now, cpu);
            self.push(done, Event::CoreFree);
        }
        let Some(replica) = self.replicas.get_mut(node.index()) else {
            return;
        };
        replica.cpu += cpu;
        replica.busy_until = self.now.saturating_add(cpu + disk);
        let depart = replica.busy_until;
        for o in out.drain(..) {
            self.output(node, depart, o);
        }
        self.scratch = out;
    }

    fn output(&mut self, node: NodeId, depart: Time, o: Output<P::Timer>) {
        match o {
            Output::Send { to, body, .. } => self.send(node, to, depart, body),
            Output::SetTimer { timer, after } => {
                self.next_timer_generation += 1;
                let generation = self.next_timer_generation;
                if let Some(r) = self.replicas.get_mut(node.index()) {
                    r.timers.insert(timer, generation);
                }
                self.push(
                    depart.saturating_add(after),
                    Event::Timer {
                        node,
                        timer,
                        generation,
                    },
                );
            }
            Output::CancelTimer(timer) => {
                if let Some(r) = self.replicas.get_mut(node.index()) {
                    r.timers.remove(&timer);
                }
            }
            Output::Commit(d) => self.commit(node, depart, d),
            Output::InstallSnapshot { slot, block } => self.install_snapshot(node, slot, block),
            // Written in `handle`, before the step's sends were released.
            Output::Persist => {}
        }
    }
}

/// `node`, with the durability audit on if asked.
/// A new node as the run wants it: with the durability audit if
/// `[storage] audit`, checking client signatures unless `[load] signed =
/// false`.
pub(super) fn configured<P: Adversarial>(node: Node<P>, cfg: &SimConfig) -> Node<P> {
    let mut node = if cfg.storage.audit {
        node.with_durability_audit()
    } else {
        node
    };
    node.check_client_signatures(cfg.load.signed);
    node
}

/// What an instance of `id` is told at boot (`id` is a member: checked in
/// `new`, and `cluster` gives one crypto per member).
fn node_context(
    committee: &Arc<Committee>,
    cryptos: &[Arc<dyn Crypto>],
    id: NodeId,
    cfg: &SimConfig,
) -> NodeContext {
    NodeContext {
        id,
        committee: committee.clone(),
        crypto: cryptos[id.index()].clone(),
        batch: cfg.batch,
    }
}
