//! The discrete-event engine. One binary heap ordered by (virtual time,
//! sequence number), one seeded RNG, and `Node<P>` from the core for every
//! replica, so the counts are the ones the QUIC runtime reports too.
//!
//! Virtual CPU: a replica handles one event at a time; an event that arrives
//! while it is busy waits. Handling costs the crypto the event charged plus
//! `cost.handling`, and what the replica sends leaves when it is done. On a
//! shared machine (`cfg.machine`, see [`crate::machine`]) it also waits for
//! a free core and pays for the frames it moves.

use crate::SimError;
use crate::clients::{Clients, LatencySummary};
use crate::config::{Fault, FaultKind, LoadMode, SimConfig};
use crate::machine::{ClientWork, CorePool, Generator, Waiter};
use crate::network::{Endpoint, transit};
use crate::oracle::Oracle;
use bft_core::codec::{self, DEFAULT_MAX_FRAME};
use bft_core::mix::{mix64, tail_word};
use bft_core::{
    Adversarial, Committee, Crypto, Decision, Digest, KindCount, MsgStats, Node, NodeContext,
    NodeId, NodeInput, Output, Request, RequestId, Status, TamperContext, Time,
};
use bytes::Bytes;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::Duration;

/// Rewrites or drops what a Byzantine node sends, per recipient.
pub type OutboundFilter<M> = Box<dyn FnMut(Time, NodeId, M) -> Option<M>>;

/// Events name replicas by *instance*: instance i < n is node i, and with
/// Twins instance n + j is the twin of `twins.nodes[j]` (same id and keys,
/// its own state).
enum Event<T> {
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
struct EventQueue<T> {
    keys: BinaryHeap<Key>,
    slots: Vec<Option<Event<T>>>,
    free: Vec<u32>,
}

struct Key {
    at: Time,
    seq: u64,
    slot: u32,
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
    fn new() -> EventQueue<T> {
        EventQueue {
            keys: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    fn push(&mut self, at: Time, seq: u64, event: Event<T>) {
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
    fn peek_time(&self) -> Option<Time> {
        self.keys.peek().map(|k| k.at)
    }

    fn pop(&mut self) -> Option<(Time, Event<T>)> {
        let key = self.keys.pop()?;
        let event = self.slots.get_mut(key.slot as usize)?.take()?;
        self.free.push(key.slot);
        Some((key.at, event))
    }
}

/// A Byzantine replica's own earlier messages kept for stale replays.
const REPLAY_HISTORY: usize = 32;

struct Replica<P: Adversarial> {
    node: Node<P>,
    /// Counters of earlier incarnations (a crash with amnesia starts a new
    /// `Node`); reports add them.
    retired: MsgStats,
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

/// Per-replica figures in a report.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    pub id: NodeId,
    pub status: Status,
    pub sent: KindCount,
    /// Decisions it committed that ordered no request.
    pub empty_decisions: u64,
    pub rejected: u64,
    /// Virtual CPU the replica spent (crypto model + handling).
    pub cpu: Duration,
    pub faulty: bool,
    pub byzantine: bool,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct SimReport {
    pub seed: u64,
    /// Oracle findings; empty means the run was safe.
    pub violations: Vec<String>,
    /// Committed slots, minimum over honest replicas without faults.
    pub decisions: u64,
    /// Committed slots, maximum over honest replicas.
    pub max_decisions: u64,
    pub requests_issued: u64,
    /// Requests clients learned committed (f+1 replicas reported them).
    pub requests_committed: u64,
    /// Of those, the ones intended after the warm-up.
    pub requests_measured: u64,
    /// Protocol traffic summed over all replicas (core counting convention).
    pub stats: MsgStats,
    /// Client traffic, apart: requests (to every replica) and replies.
    pub client_messages: u64,
    pub client_bytes: u64,
    /// The protocol's own view-change counter (`Status::view_changes`), the
    /// most any honest replica reached: its meaning differs per protocol.
    pub view_changes: u64,
    /// Completed leader replacements and their cost, one definition for
    /// every protocol ([`crate::replacements`]).
    pub replacements: crate::Replacements,
    pub latency: LatencySummary,
    pub trace_hash: Digest,
    pub end_time: Time,
    pub events: u64,
    pub nodes: Vec<NodeReport>,
}

impl SimReport {
    /// Requests per second over the measured window.
    pub fn throughput(&self, warmup: Duration) -> f64 {
        let window = self
            .end_time
            .as_duration()
            .saturating_sub(warmup)
            .as_secs_f64();
        if window > 0.0 {
            self.requests_measured as f64 / window
        } else {
            0.0
        }
    }
}

/// Postcard size of a request: varint client and number, varint length,
/// payload. Computed, not encoded, because every request goes to n replicas.
fn request_body_len(req: &Request) -> usize {
    fn varint(mut x: u64) -> usize {
        let mut n = 1;
        while x >= 0x80 {
            x >>= 7;
            n += 1;
        }
        n
    }
    let len = req.payload.len();
    varint(u64::from(req.id.client)) + varint(req.id.number) + varint(len as u64) + len
}

/// Wire bytes of a reply: (request id, slot, block digest) with a header.
const REPLY_BYTES: u64 = 4 + 16 + 8 + 32;

/// Wire bytes of one reply frame naming `requests` requests.
fn reply_frame(requests: usize) -> u64 {
    codec::wire_len(usize::try_from(requests as u64 * REPLY_BYTES).unwrap_or(usize::MAX))
}

/// On a shared machine, what moving an event's frames costs the replica:
/// half of the frame it received, half of each frame it sends, and half of
/// each reply frame it sends clients (`replies`: this instance answers
/// clients, which a twin does not).
fn transport_cpu<T>(
    cost: &bft_crypto::CostModel,
    event: &Event<T>,
    out: &[Output<T>],
    replies: bool,
) -> Duration {
    let received = match event {
        Event::Deliver { body, .. } => cost.frame(codec::wire_len(body.len())),
        Event::RequestArrives { req, .. } => cost.frame(codec::wire_len(request_body_len(req))),
        _ => Duration::ZERO,
    };
    let sent: Duration = out
        .iter()
        .map(|o| match o {
            Output::Send { body, .. } => cost.frame(codec::wire_len(body.len())),
            Output::Commit(d) if replies && !d.requests.is_empty() => {
                cost.frame(reply_frame(d.requests.len()))
            }
            _ => Duration::ZERO,
        })
        .sum();
    (received + sent) / 2
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
                    node: Node::new(ctx, &proto),
                    retired: MsgStats::default(),
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
            payload: Bytes::from(vec![0u8; cfg.load.tx_size]),
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            oracle: Oracle::new(committee.n()),
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
        self.clients.track_manual(req.id, at);
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
        if let Event::RequestArrives { req, .. } = &event {
            if self.censors(node, req.id.client) {
                return;
            }
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
        if let Some(pool) = &mut self.pool {
            if !pool.may_run(Waiter::Replica(node), now, false) {
                // Queued for a core; `core_free` wakes it.
                replica.inbox.push_back(event);
                replica.wake_scheduled = true;
                return;
            }
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
        if let Some(pool) = &mut self.pool {
            if !pool.may_run(Waiter::Replica(node), now, granted) {
                return; // still marked wake_scheduled: `core_free` wakes it
            }
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
        if let Event::Timer { timer, .. } = &event {
            if P::is_view_timeout(timer) {
                let honest = !replica.byzantine && node.index() < self.committee.n();
                let view = replica.node.status().view;
                if honest && !self.replacements.is_open() {
                    let totals = self.totals();
                    self.replacements.timeout(self.now, view, totals);
                }
                self.timeline_mark(self.now, node, crate::timeline::Event::Timeout { view });
            }
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
        replica.busy_until = self.now.saturating_add(cpu);
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
        }
    }

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

    fn timeline_mark(&mut self, at: Time, node: NodeId, event: crate::timeline::Event) {
        let honest = node.index() < self.committee.n()
            && self
                .replicas
                .get(node.index())
                .is_some_and(|r| !r.byzantine);
        if let Some(t) = &mut self.timeline {
            t.mark(at, node, honest, event);
        }
    }

    fn timeline_arrow(
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

    /// Sends what instance `from`'s core addressed to identity `to`: through
    /// the test filter and the faults active now, then to every instance of
    /// `to` its sender can reach (Twins partitions, then the network model).
    fn send(&mut self, from: NodeId, to: NodeId, depart: Time, body: Bytes) {
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
    fn deliver(&mut self, from: NodeId, to: NodeId, depart: Time, body: &Bytes) {
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
    fn filtered(&mut self, from: NodeId, to: NodeId, body: Bytes) -> Option<Vec<Bytes>> {
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
    fn with_replay(&mut self, from: NodeId, mut bodies: Vec<Bytes>) -> Vec<Bytes> {
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
    fn tampered(
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
    fn identity(&self, instance: NodeId) -> NodeId {
        self.replicas
            .get(instance.index())
            .map_or(instance, |r| r.node.id())
    }

    /// Twins: may instance `a` reach instance `b` now?
    fn twins_connected(&self, a: NodeId, b: NodeId) -> bool {
        self.cfg
            .twins
            .as_ref()
            .is_none_or(|t| t.connected(self.now.as_duration(), a.0, b.0))
    }

    /// Is instance `node` censoring `client` now?
    fn censors(&self, node: NodeId, client: u32) -> bool {
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

    fn commit(&mut self, node: NodeId, depart: Time, d: Decision) {
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

    /// Everything every replica (every incarnation) sent so far, and the
    /// retransmitted part.
    fn totals(&self) -> crate::replacements::Totals {
        let mut t = crate::replacements::Totals::default();
        for r in &self.replicas {
            for stats in [r.node.stats(), &r.retired] {
                let (sent, resent) = (stats.total_sent(), stats.total_resent());
                t.sent.count += sent.count;
                t.sent.bytes += sent.bytes;
                t.resent.count += resent.count;
                t.resent.bytes += resent.bytes;
            }
        }
        t
    }

    fn replies(&mut self, from: NodeId, requests: &[RequestId]) {
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
    fn client_issue(&mut self, client: u32) {
        let Some(id) = self.clients.issue(client, self.now) else {
            return;
        };
        let req = Request {
            id,
            payload: self.payload.clone(),
        };
        if self.pool.is_some() {
            // On a shared machine the request leaves when the generator has
            // done its work and sent it to every replica.
            let cost = &self.cfg.cost;
            let frame = cost.frame(codec::wire_len(request_body_len(&req))) / 2;
            let copies = u32::try_from(self.committee.n()).unwrap_or(u32::MAX);
            let cpu = cost.client_per_request + frame * copies;
            self.generator.push(ClientWork::Send(req, cpu));
            self.schedule_client_wake();
        } else {
            self.send_request(self.now, req);
        }
        if let LoadMode::Open { rate } = self.cfg.load.mode {
            let interval = Duration::from_secs_f64(f64::from(self.cfg.load.clients) / rate);
            let next = self.now.saturating_add(interval);
            if self.clients.may_issue() && next <= Time::from_duration(self.cfg.duration) {
                self.push(next, Event::ClientIssue { client });
            }
        }
    }

    fn schedule_client_wake(&mut self) {
        if self.generator.wake_scheduled || self.generator.is_idle() {
            return;
        }
        self.generator.wake_scheduled = true;
        let at = self.generator.busy_until().max(self.now);
        self.push(at, Event::ClientWake);
    }

    /// The load generator's next piece of work, once it is free and holds a
    /// core (`granted`: a freed core was handed to it).
    fn client_wake(&mut self, granted: bool) {
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

    fn send_request(&mut self, at: Time, req: Request) {
        self.oracle.submitted(req.id);
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

    /// A crash starts or ends; other faults are checked when they act.
    fn fault(&mut self, index: usize, starts: bool) {
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
    fn reincarnate(&mut self, f: &Fault) {
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

    /// When the network is stable again: the end of the last partition, Twins
    /// round and bounded fault, or the start of the last fault that never
    /// ends (from then on the faulty set is fixed, at most f, and the honest
    /// replicas must make progress without the faulty ones).
    pub fn heal_time(&self) -> Time {
        Time::from_duration(self.cfg.heal_time())
    }

    /// Liveness after the network heals: runs to `heal`, then until every
    /// replica that must be live — honest, not a twin, no fault active at or
    /// after `heal` — has committed something new, or `bound` has passed.
    /// Returns one line per replica that committed nothing in time (empty:
    /// live). It stops early (in steps of virtual time) once all have, so the
    /// simulation's clock is then somewhere in `[heal, heal + bound]`.
    /// Requests must keep arriving (open-loop load) for this to be fair.
    pub fn check_liveness(&mut self, heal: Time, bound: Duration) -> Vec<String> {
        self.run_until(heal);
        let must_be_live = self.must_be_live(heal);
        let before: Vec<u64> = must_be_live
            .iter()
            .map(|&i| self.replicas[i].node.status().committed)
            .collect();
        let progressed = |sim: &Self| {
            must_be_live
                .iter()
                .zip(&before)
                .all(|(&i, &b)| sim.replicas[i].node.status().committed > b)
        };
        let end = heal.saturating_add(bound);
        // Fine steps, so the stop (and `now()` after it) measures recovery
        // to within 5 ms of virtual time.
        let step = Duration::from_millis(5)
            .min(bound)
            .max(Duration::from_millis(1));
        let mut t = heal;
        while t < end && !progressed(self) {
            t = t.saturating_add(step).min(end);
            self.run_until(t);
        }
        let mut stuck = Vec::new();
        for (&i, &b) in must_be_live.iter().zip(&before) {
            let after = self.replicas[i].node.status().committed;
            if after <= b {
                stuck.push(format!(
                    "liveness: node {i} committed nothing between the heal at {:?} and {:?} (bound {bound:?}; stuck at {after} decisions)",
                    heal.as_duration(),
                    end.as_duration()
                ));
            }
        }
        stuck
    }

    /// Replicas that must make progress after `heal`: honest, not twins, not
    /// under a test filter, and with no fault still active at `heal`.
    fn must_be_live(&self, heal: Time) -> Vec<usize> {
        let heal = heal.as_duration();
        (0..self.committee.n())
            .filter(|&i| {
                let r = &self.replicas[i];
                let still_faulty = r
                    .faults
                    .iter()
                    .filter_map(|&k| self.cfg.faults.get(k))
                    .any(|f| f.end.is_none_or(|e| e > heal) || f.kind.is_byzantine());
                !r.byzantine && !still_faulty && r.filter.is_none()
            })
            .collect()
    }

    /// The completed leader replacements so far
    /// ([`crate::replacements`]).
    pub fn replacements(&self) -> crate::Replacements {
        self.replacements.completed()
    }

    pub fn report(&self) -> SimReport {
        let mut stats = MsgStats::default();
        let mut nodes = Vec::with_capacity(self.replicas.len());
        for r in &self.replicas {
            stats.merge(r.node.stats());
            stats.merge(&r.retired);
            nodes.push(NodeReport {
                id: r.node.id(),
                status: r.node.status(),
                sent: r.node.stats().total_sent(),
                empty_decisions: r.node.stats().empty_decisions,
                rejected: r.node.stats().total_rejected(),
                cpu: r.cpu,
                faulty: r.faulty,
                byzantine: r.byzantine,
            });
        }
        let heads: Vec<u64> = self.oracle.heads().collect();
        let honest = |i: &usize| self.replicas.get(*i).is_some_and(|r| !r.byzantine);
        let live = |i: &usize| {
            self.replicas
                .get(*i)
                .is_some_and(|r| !r.byzantine && !r.faulty)
        };
        let decisions = (0..heads.len())
            .filter(live)
            .map(|i| heads[i])
            .min()
            .unwrap_or(0);
        let max_decisions = (0..heads.len())
            .filter(honest)
            .map(|i| heads[i])
            .max()
            .unwrap_or(0);
        let view_changes = nodes
            .iter()
            .filter(|n| !n.byzantine)
            .map(|n| n.status.view_changes)
            .max();
        SimReport {
            seed: self.cfg.seed,
            violations: self.oracle.violations().to_vec(),
            decisions,
            max_decisions,
            requests_issued: self.clients.issued(),
            requests_committed: self.clients.committed(),
            requests_measured: self.clients.committed_measured(),
            stats,
            client_messages: self.client_messages,
            client_bytes: self.client_bytes,
            view_changes: view_changes.unwrap_or(0),
            replacements: self.replacements.completed(),
            latency: self.clients.latency(),
            trace_hash: self.trace.digest(),
            end_time: self.now,
            events: self.events,
            nodes,
        }
    }

    /// The latency histogram of measured requests (for CDF plots).
    pub fn latency_histogram(&self) -> &hdrhistogram::Histogram<u64> {
        self.clients.histogram()
    }
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

/// A running hash of every handled event: two runs with equal hashes handled
/// the same events at the same virtual times with the same bytes. Two 64-bit
/// lanes of multiply-xorshift mixing: order-sensitive and far cheaper than a
/// cryptographic hash per message (the simulator handles millions).
#[derive(Default)]
struct Trace {
    a: u64,
    b: u64,
}

impl Trace {
    fn word(&mut self, w: u64) {
        self.a = mix64(self.a ^ w);
        self.b = mix64(self.b.rotate_left(17) ^ w.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }

    /// A message body: folded a word at a time with one multiply (every
    /// delivered byte passes here), then mixed into both lanes as one word.
    fn bytes(&mut self, bytes: &[u8]) {
        let mut h = (bytes.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h ^ w).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(31);
        }
        h = (h ^ tail_word(chunks.remainder())).wrapping_mul(0xff51_afd7_ed55_8ccd);
        self.word(h);
    }

    fn event<T: std::hash::Hash>(&mut self, now: Time, node: NodeId, e: &Event<T>) {
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
                self.word(4 | u64::from(req.id.client) << 8);
                self.word(req.id.number);
            }
            _ => {}
        }
    }

    fn digest(&self) -> Digest {
        Digest::of(
            "bftbench/sim/trace/v1",
            &[&self.a.to_le_bytes(), &self.b.to_le_bytes()],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bft_core::codec::{DEFAULT_MAX_FRAME, encode};

    #[test]
    fn computed_request_size_matches_the_codec() {
        for (client, number, len) in [
            (0u32, 0u64, 0usize),
            (300, 1 << 20, 127),
            (7, u64::MAX, 20_000),
        ] {
            let req = Request {
                id: RequestId { client, number },
                payload: Bytes::from(vec![1u8; len]),
            };
            assert_eq!(
                request_body_len(&req),
                encode(&req, DEFAULT_MAX_FRAME).unwrap().len()
            );
        }
    }
}
