//! `Node<P>`: the one place that encodes, expands broadcasts and counts.
//!
//! Counting convention: at the sender, point-to-point; a broadcast is n−1
//! sends; delivery to oneself is free; bytes are wire bytes (header + body).
//! Client traffic is counted by the runtimes, apart from this.

use crate::CoreError;
use crate::bytes_array::Digest;
use crate::client_auth::ClientAuth;
use crate::codec::{self, DEFAULT_MAX_FRAME};
use crate::crypto::Crypto;
use crate::durable;
use crate::ids::{NodeId, Time};
use crate::protocol::{
    Action, Decision, Input, NodeContext, Protocol, Rejection, Request, Status, WireMessage,
};
use crate::store::{StateWrite, StoredState};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Messages and wire bytes of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCount {
    pub count: u64,
    pub bytes: u64,
}

impl KindCount {
    fn add(&mut self, count: u64, bytes: u64) {
        self.count += count;
        self.bytes += bytes;
    }
}

/// Per-label tallies kept in a small vector: a handful of kinds, looked up on
/// every message, so a linear scan beats hashing. Iteration is in first-seen
/// order; exports sort by label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally<V> {
    entries: Vec<(&'static str, V)>,
}

impl<V: Default> Tally<V> {
    pub fn entry(&mut self, label: &'static str) -> &mut V {
        // Labels are static strings, usually the very same one each time:
        // compare addresses first, contents only if they differ.
        let same = |l: &&str| std::ptr::eq(*l, label) || *l == label;
        let pos = match self.entries.iter().position(|(l, _)| same(l)) {
            Some(p) => p,
            None => {
                self.entries.push((label, V::default()));
                self.entries.len() - 1
            }
        };
        &mut self.entries[pos].1
    }
    pub fn get(&self, label: &str) -> Option<&V> {
        self.entries
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, v)| v)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &V)> {
        self.entries.iter().map(|(l, v)| (*l, v))
    }
}

impl<V: Default + Clone> Tally<V> {
    pub fn to_sorted(&self) -> BTreeMap<String, V> {
        self.entries
            .iter()
            .map(|(l, v)| (l.to_string(), v.clone()))
            .collect()
    }
}

/// Everything a node counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MsgStats {
    /// Every protocol message sent, retransmissions included.
    pub sent: Tally<KindCount>,
    /// The part of `sent` that were retransmissions or catch-up traffic
    /// ([`Action::Resend`], [`Action::Rebroadcast`]).
    pub resent: Tally<KindCount>,
    pub received: Tally<KindCount>,
    /// Rejected inputs by reason (malformed frames, bad signatures, …).
    pub rejected: Tally<u64>,
    /// Crypto CPU charged by the cost model.
    pub crypto_cpu: Duration,
    /// Decisions this replica committed, and of those the ones that ordered
    /// no request (HotStuff's empty blocks, PBFT's null requests after a view
    /// change). Summed over replicas by [`MsgStats::merge`].
    pub decisions: u64,
    pub empty_decisions: u64,
    /// Snapshots this replica installed in place of history it missed
    /// ([`Action::InstallSnapshot`]).
    pub snapshots_installed: u64,
}

impl MsgStats {
    pub fn total_sent(&self) -> KindCount {
        let mut t = KindCount::default();
        for (_, c) in self.sent.iter() {
            t.add(c.count, c.bytes);
        }
        t
    }
    /// The part of [`MsgStats::total_sent`] that were retransmissions.
    pub fn total_resent(&self) -> KindCount {
        let mut t = KindCount::default();
        for (_, c) in self.resent.iter() {
            t.add(c.count, c.bytes);
        }
        t
    }
    pub fn total_rejected(&self) -> u64 {
        self.rejected.iter().map(|(_, v)| *v).sum()
    }
    /// Adds `other` into `self` (to total a cluster).
    pub fn merge(&mut self, other: &MsgStats) {
        for (l, c) in other.sent.iter() {
            self.sent.entry(l).add(c.count, c.bytes);
        }
        for (l, c) in other.resent.iter() {
            self.resent.entry(l).add(c.count, c.bytes);
        }
        for (l, c) in other.received.iter() {
            self.received.entry(l).add(c.count, c.bytes);
        }
        for (l, v) in other.rejected.iter() {
            *self.rejected.entry(l) += v;
        }
        self.crypto_cpu += other.crypto_cpu;
        self.decisions += other.decisions;
        self.empty_decisions += other.empty_decisions;
        self.snapshots_installed += other.snapshots_installed;
    }
}

/// What a runtime feeds a node. Frames arrive as bodies (the transport has
/// stripped the length header).
#[derive(Debug)]
pub enum NodeInput<'a, T> {
    Start,
    Frame { from: NodeId, body: &'a [u8] },
    Timeout(T),
    Request(Request),
}

/// What a node asks its runtime to do.
#[derive(Clone, Debug)]
pub enum Output<T> {
    /// One encoded body to one peer; a broadcast is n−1 of these sharing one
    /// buffer.
    Send {
        to: NodeId,
        kind: &'static str,
        body: Bytes,
    },
    SetTimer {
        timer: T,
        after: Duration,
    },
    CancelTimer(T),
    Commit(Decision),
    /// See [`Action::InstallSnapshot`]: the runtime records that the
    /// replica's ledger resumes after `block` at `slot`.
    InstallSnapshot {
        slot: u64,
        block: Digest,
    },
    /// The protocol's durable state ([`Protocol::Durable`]) changed in this
    /// step. It comes before every other output of the step: a runtime
    /// writes [`Node::durable_write`] (and the step's commits) before it lets
    /// any send leave. (The state is not attached, so that a runtime that
    /// writes it only when it must, like the simulator at a crash, does not
    /// pay for encoding it at every change.)
    Persist,
}

/// Reason labels the node itself rejects under.
pub mod reasons {
    pub const MALFORMED: &str = "malformed-frame";
    pub const OVERSIZED: &str = "oversized-frame";
    pub const UNKNOWN_SENDER: &str = "unknown-sender";
    pub const FROM_SELF: &str = "spoofed-self";
    pub const OUTBOUND_TOO_LARGE: &str = "outbound-too-large";
}

/// An input named for the durability audit's message.
fn describe<T: std::fmt::Debug>(input: &NodeInput<'_, T>) -> String {
    match input {
        NodeInput::Start => "start".into(),
        NodeInput::Frame { from, body } => format!("a frame of {} bytes from {from}", body.len()),
        NodeInput::Timeout(t) => format!("timeout {t:?}"),
        NodeInput::Request(r) => format!("request {:?}", r.id()),
    }
}

pub struct Node<P: Protocol> {
    id: NodeId,
    n: usize,
    protocol: P,
    crypto: Arc<dyn Crypto>,
    stats: MsgStats,
    max_frame: usize,
    actions: Vec<Action<P::Message, P::Timer>>,
    local: VecDeque<P::Message>,
    /// The protocol emitted [`Action::Persist`] in the current step.
    persist: bool,
    /// With the audit on: the durable state last handed out, checked after
    /// every step against what the protocol says now.
    audit: Option<P::Durable>,
    /// Client signatures already checked (see [`crate::client_auth`]).
    client_auth: ClientAuth,
    /// The batches the runtime's store holds, as of the last
    /// [`Node::durable_write`] (see [`crate::durable`]).
    stored_batches: BTreeSet<Digest>,
}

impl<P: Protocol> Node<P> {
    pub fn new(ctx: NodeContext, cfg: &P::Config) -> Node<P> {
        let (id, n, crypto) = (ctx.id, ctx.committee.n(), ctx.crypto.clone());
        Node::around(P::new(ctx, cfg), id, n, crypto)
    }

    /// A replica restarted from `stored`, what its runtime's store held of
    /// the last [`Output::Persist`] (see [`Protocol::recover`]). A state that
    /// does not decode, or names a batch the store lacks or holds damaged,
    /// is an error, never a fresh start.
    pub fn recover(
        ctx: NodeContext,
        cfg: &P::Config,
        stored: &StoredState,
    ) -> Result<Node<P>, CoreError> {
        let (id, n, crypto) = (ctx.id, ctx.committee.n(), ctx.crypto.clone());
        let (protocol, held) = durable::restore(ctx, cfg, stored)?;
        let mut node = Node::around(protocol, id, n, crypto);
        node.stored_batches = held;
        Ok(node)
    }

    fn around(protocol: P, id: NodeId, n: usize, crypto: Arc<dyn Crypto>) -> Node<P> {
        Node {
            id,
            n,
            protocol,
            crypto,
            stats: MsgStats::default(),
            max_frame: DEFAULT_MAX_FRAME,
            actions: Vec::new(),
            local: VecDeque::new(),
            persist: false,
            audit: None,
            client_auth: ClientAuth::default(),
            stored_batches: BTreeSet::new(),
        }
    }

    /// Whether this node checks client signatures (the default). Off for
    /// runs whose clients do not sign (`[load] signed = false`), and as the
    /// mutant `skip-client-signatures` the oracle's validity check must
    /// catch.
    pub fn check_client_signatures(&mut self, check: bool) {
        self.client_auth = if check {
            ClientAuth::default()
        } else {
            ClientAuth::unchecked()
        };
    }

    /// Checks after every step that [`Protocol::durable`] changed only in a
    /// step that emitted [`Action::Persist`], and panics naming the step's
    /// input if not: a protocol that forgot to persist would lose that state
    /// in a crash. For tests and fuzzing (it computes the durable state after
    /// every step).
    pub fn with_durability_audit(mut self) -> Self {
        self.audit = Some(self.protocol.durable());
        self
    }

    pub fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame;
        self
    }

    pub fn id(&self) -> NodeId {
        self.id
    }
    pub fn stats(&self) -> &MsgStats {
        &self.stats
    }
    pub fn status(&self) -> Status {
        self.protocol.status()
    }
    pub fn protocol(&self) -> &P {
        &self.protocol
    }
    /// For adversaries that wrap an honest core.
    pub fn protocol_mut(&mut self) -> &mut P {
        &mut self.protocol
    }

    /// Runs one input to completion (including messages the node sends to
    /// itself) and returns the crypto CPU time it charged.
    pub fn step(
        &mut self,
        now: Time,
        input: NodeInput<'_, P::Timer>,
        out: &mut Vec<Output<P::Timer>>,
    ) -> Duration {
        let first = out.len();
        let what = self.audit.is_some().then(|| describe(&input));
        let input = match input {
            NodeInput::Start => Some(Input::Start),
            NodeInput::Timeout(t) => Some(Input::Timeout(t)),
            NodeInput::Request(r) => self.check_request(r),
            NodeInput::Frame { from, body } => self.decode_frame(from, body),
        };
        if let Some(input) = input {
            self.run(now, input, out);
        }
        while let Some(msg) = self.local.pop_front() {
            self.run(now, Input::Message { from: self.id, msg }, out);
        }
        self.persist_step(first, what, out);
        let cpu = self.crypto.take_cpu();
        self.stats.crypto_cpu += cpu;
        cpu
    }

    /// Puts the step's durable state, if it changed, ahead of the step's
    /// outputs (which start at `first`), and runs the audit.
    fn persist_step(
        &mut self,
        first: usize,
        input: Option<String>,
        out: &mut Vec<Output<P::Timer>>,
    ) {
        let persist = std::mem::take(&mut self.persist);
        if let Some(before) = &self.audit {
            let now = self.protocol.durable();
            assert!(
                persist || now == *before,
                "{}: replica {} changed its durable state without Action::Persist on {}",
                P::NAME,
                self.id,
                input.unwrap_or_default()
            );
            self.audit = Some(now);
        }
        if persist {
            out.insert(first.min(out.len()), Output::Persist);
        }
    }

    /// What a runtime writes on [`Output::Persist`]: the protocol's durable
    /// state, encoded, and the change to the batches it names since the
    /// last call (each batch is handed out once, while the state names it).
    /// The runtime must write it, or stop the replica: the node counts the
    /// batches as stored from this call on, so a write dropped or retried
    /// without them would leave a store whose state names batches it lacks
    /// (a restart from it fails with [`CoreError::MissingBatch`]).
    pub fn durable_write(&mut self) -> Result<StateWrite, CoreError> {
        durable::write(&self.protocol, &mut self.stored_batches)
    }

    /// The durable state with every batch it names: what a store holds
    /// after the last write (for a model store that captures it at a crash),
    /// and what [`Node::recover`] takes.
    pub fn durable_image(&self) -> Result<StoredState, CoreError> {
        durable::image(&self.protocol)
    }

    /// Counts an input the runtime refused before it reached the node (for
    /// example a frame whose header declared too many bytes).
    pub fn count_rejected(&mut self, reason: &'static str) {
        *self.stats.rejected.entry(reason) += 1;
    }

    /// A client's request, if its signature holds (else rejected, counted).
    fn check_request(&mut self, req: Request) -> Option<Input<P::Message, P::Timer>> {
        match self.client_auth.check(self.crypto.as_ref(), &req) {
            Ok(()) => Some(Input::Request(req)),
            Err(reason) => {
                self.count_rejected(reason);
                None
            }
        }
    }

    fn decode_frame(&mut self, from: NodeId, body: &[u8]) -> Option<Input<P::Message, P::Timer>> {
        if from.index() >= self.n {
            self.count_rejected(reasons::UNKNOWN_SENDER);
            return None;
        }
        if from == self.id {
            self.count_rejected(reasons::FROM_SELF);
            return None;
        }
        match codec::decode::<P::Message>(body, self.max_frame) {
            Ok(msg) => {
                self.stats
                    .received
                    .entry(msg.kind())
                    .add(1, codec::wire_len(body.len()));
                let carried = P::client_requests(&msg);
                if let Err(reason) = self.client_auth.check_all(self.crypto.as_ref(), carried) {
                    self.count_rejected(reason);
                    return None;
                }
                Some(Input::Message { from, msg })
            }
            Err(crate::CoreError::FrameTooLarge { .. }) => {
                self.count_rejected(reasons::OVERSIZED);
                None
            }
            Err(_) => {
                self.count_rejected(reasons::MALFORMED);
                None
            }
        }
    }

    fn run(
        &mut self,
        now: Time,
        input: Input<P::Message, P::Timer>,
        out: &mut Vec<Output<P::Timer>>,
    ) {
        let mut actions = std::mem::take(&mut self.actions);
        if let Err(e) = self.protocol.handle(now, input, &mut actions) {
            *self.stats.rejected.entry(e.reason()) += 1;
        }
        for action in actions.drain(..) {
            self.emit(action, out);
        }
        self.actions = actions;
    }

    fn emit(&mut self, action: Action<P::Message, P::Timer>, out: &mut Vec<Output<P::Timer>>) {
        match action {
            Action::Send { to, msg } => self.send_one(to, msg, false, out),
            Action::Resend { to, msg } => self.send_one(to, msg, true, out),
            Action::Broadcast(msg) => self.send_all(msg, false, out),
            Action::Rebroadcast(msg) => self.send_all(msg, true, out),
            Action::SetTimer { timer, after } => out.push(Output::SetTimer { timer, after }),
            Action::CancelTimer(t) => out.push(Output::CancelTimer(t)),
            Action::Commit(d) => {
                self.stats.decisions += 1;
                self.stats.empty_decisions += u64::from(d.requests.is_empty());
                out.push(Output::Commit(d));
            }
            Action::InstallSnapshot { slot, block } => {
                self.stats.snapshots_installed += 1;
                out.push(Output::InstallSnapshot { slot, block });
            }
            Action::Persist => self.persist = true,
        }
    }

    /// Counts `count` sends of `kind` of `wire` bytes each, under `resent`
    /// too if they are retransmissions.
    fn count_sent(&mut self, kind: &'static str, count: u64, wire: u64, resend: bool) {
        self.stats.sent.entry(kind).add(count, count * wire);
        if resend {
            self.stats.resent.entry(kind).add(count, count * wire);
        }
    }

    fn send_one(
        &mut self,
        to: NodeId,
        msg: P::Message,
        resend: bool,
        out: &mut Vec<Output<P::Timer>>,
    ) {
        if to == self.id {
            self.local.push_back(msg);
            return;
        }
        if let Some(body) = self.encode(&msg) {
            let kind = msg.kind();
            self.count_sent(kind, 1, codec::wire_len(body.len()), resend);
            out.push(Output::Send { to, kind, body });
        }
    }

    fn send_all(&mut self, msg: P::Message, resend: bool, out: &mut Vec<Output<P::Timer>>) {
        let Some(body) = self.encode(&msg) else {
            return;
        };
        let kind = msg.kind();
        let peers = (self.n - 1) as u64;
        self.count_sent(kind, peers, codec::wire_len(body.len()), resend);
        for to in (0..self.n)
            .map(|i| NodeId(i as u16))
            .filter(|&p| p != self.id)
        {
            out.push(Output::Send {
                to,
                kind,
                body: body.clone(),
            });
        }
    }

    fn encode(&mut self, msg: &P::Message) -> Option<Bytes> {
        match codec::encode(msg, self.max_frame) {
            Ok(b) => Some(b),
            Err(_) => {
                self.count_rejected(reasons::OUTBOUND_TOO_LARGE);
                None
            }
        }
    }
}
