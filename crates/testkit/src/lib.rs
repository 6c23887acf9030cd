//! The harness every protocol's replica-level tests share, generic over
//! [`Protocol`]: keys for a committee, one input fed to a lone replica
//! ([`feed`]), and [`Net`], n replicas wired by FIFO queues with timers
//! fired on demand, an optional Byzantine replica whose messages pass
//! through the protocol's attack, and every send, rejection and commit
//! recorded. No randomness, no clock: a test drives every step.
//!
//! What stays in each protocol's tests is what only that protocol knows:
//! a `Signer` that builds its messages as any replica would sign them.
//! Whole-run tests (delays, faults, the oracle) use the simulator instead.

// Test support only (no runtime links it): a setup that cannot be built is a
// failed test, so it panics with what went wrong.
#![allow(clippy::panic)]

use bft_core::{
    Action, Adversarial, Attack, BatchConfig, Committee, Crypto, CryptoKind, Decision, Input,
    NodeContext, NodeId, Protocol, Rejection, Request, RequestId, TamperContext, Time, WireMessage,
};
use bft_crypto::CostModel;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// The seed every test committee's keys are drawn from.
pub const KEY_SEED: u64 = 7;

/// A committee of `n` and each member's keys (zero CPU cost charged).
pub fn keys(n: usize, kind: CryptoKind) -> (Arc<Committee>, Vec<Arc<dyn Crypto>>) {
    bft_crypto::cluster(n, KEY_SEED, kind, CostModel::zero())
        .unwrap_or_else(|e| panic!("test keys for n = {n}: {e}"))
}

/// Request `number` of `client`, with a 16-byte payload of the client's
/// id, signed by the client's key for committees from [`keys`] of `kind`.
pub fn signed_request(kind: CryptoKind, client: u32, number: u64) -> Request {
    let mut req = request(client, number);
    bft_crypto::ClientSigner::seeded(kind, KEY_SEED, client).sign(&mut req);
    req
}

/// Request `number` of `client`, with a 16-byte payload of the client's
/// id, unsigned: for tests that drive a protocol core directly (a `Node`
/// would reject it; see [`signed_request`]).
pub fn request(client: u32, number: u64) -> Request {
    Request::unsigned(
        RequestId { client, number },
        Bytes::from(vec![client as u8; 16]),
    )
}

/// Replica `id` of the committee, with its own keys.
pub fn replica<P: Protocol>(
    committee: &Arc<Committee>,
    cryptos: &[Arc<dyn Crypto>],
    id: u16,
    cfg: &P::Config,
    batch: BatchConfig,
) -> P {
    P::new(context(committee, cryptos, NodeId(id), batch), cfg)
}

/// What replica `id` of the committee is told at boot, with its own keys.
pub fn context(
    committee: &Arc<Committee>,
    cryptos: &[Arc<dyn Crypto>],
    id: NodeId,
    batch: BatchConfig,
) -> NodeContext {
    NodeContext {
        id,
        committee: Arc::clone(committee),
        crypto: Arc::clone(&cryptos[id.index()]),
        batch,
    }
}

/// What a replica did with one input: its actions, and its rejection if it
/// refused the input.
pub type Outcome<P> = (
    Vec<Action<<P as Protocol>::Message, <P as Protocol>::Timer>>,
    Result<(), <P as Protocol>::Error>,
);

/// Feeds one input to a lone replica at time `now`.
pub fn feed_at<P: Protocol>(
    replica: &mut P,
    now: Time,
    input: Input<P::Message, P::Timer>,
) -> Outcome<P> {
    let mut out = Vec::new();
    let result = replica.handle(now, input, &mut out);
    (out, result)
}

/// What a replica did with one input: its actions, and the reason of its
/// rejection if it refused the input.
pub type Fed<P> = (
    Vec<Action<<P as Protocol>::Message, <P as Protocol>::Timer>>,
    Option<&'static str>,
);

/// Feeds one input to a lone replica (at 1 ns).
pub fn feed<P: Protocol>(replica: &mut P, input: Input<P::Message, P::Timer>) -> Fed<P> {
    let (out, result) = feed_at(replica, Time(1), input);
    (out, result.err().map(|e| e.reason()))
}

/// A message from `from`, as an input.
pub fn msg<M, T>(from: u16, msg: M) -> Input<M, T> {
    Input::Message {
        from: NodeId(from),
        msg,
    }
}

/// The messages broadcast (or re-broadcast) in `out`.
pub fn broadcasts<M, T>(out: &[Action<M, T>]) -> Vec<&M> {
    out.iter()
        .filter_map(|a| match a {
            Action::Broadcast(m) | Action::Rebroadcast(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// The kinds of the messages first broadcast in `out`, in order
/// (re-broadcasts, which `Node` counts as retransmissions, left out).
pub fn broadcast_kinds<M: WireMessage, T>(out: &[Action<M, T>]) -> Vec<&'static str> {
    out.iter()
        .filter_map(|a| match a {
            Action::Broadcast(m) => Some(m.kind()),
            _ => None,
        })
        .collect()
}

/// Decides whether a message (from, to, msg) is dropped.
pub type DropFn<M> = Box<dyn FnMut(NodeId, NodeId, &M) -> bool>;

/// n replicas wired by FIFO queues, counting sends as `Node` does (a
/// broadcast is n − 1 sends). Time advances by 1 ns per delivered message.
pub struct Net<P: Adversarial> {
    pub n: usize,
    pub nodes: Vec<P>,
    pub queue: VecDeque<(NodeId, NodeId, P::Message)>,
    pub ledgers: Vec<Vec<Decision>>,
    /// Per replica, the snapshots it installed: (slot, block).
    pub snapshots: Vec<Vec<(u64, bft_core::Digest)>>,
    /// Messages sent, by kind.
    pub sent: BTreeMap<&'static str, u64>,
    /// Inputs refused, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Inputs refused, by the replica that refused them and reason.
    pub rejected_at: BTreeMap<(NodeId, &'static str), u64>,
    /// Armed timers.
    pub timers: BTreeSet<(NodeId, P::Timer)>,
    /// Nodes whose outgoing messages are dropped.
    pub silent: BTreeSet<NodeId>,
    /// Drops a message (from, to, msg) when it returns true.
    pub drop: Option<DropFn<P::Message>>,
    pub now: Time,
    /// A Byzantine replica: its honest core's messages pass, once per
    /// recipient, through the protocol's `Adversarial::tamper` with this
    /// attack.
    pub byzantine: Option<(NodeId, Attack)>,
    pub committee: Arc<Committee>,
    pub cryptos: Vec<Arc<dyn Crypto>>,
    entropy: u64,
}

impl<P: Adversarial> Net<P> {
    /// Every member of the committee as a replica with `cfg` and `batch`.
    pub fn new(
        committee: &Arc<Committee>,
        cryptos: &[Arc<dyn Crypto>],
        cfg: &P::Config,
        batch: BatchConfig,
    ) -> Net<P> {
        let n = committee.n();
        let nodes = (0..n)
            .map(|i| {
                let id = u16::try_from(i).unwrap_or_else(|_| panic!("{n} replicas"));
                replica::<P>(committee, cryptos, id, cfg, batch)
            })
            .collect();
        Net {
            n,
            nodes,
            queue: VecDeque::new(),
            ledgers: vec![Vec::new(); n],
            snapshots: vec![Vec::new(); n],
            sent: BTreeMap::new(),
            rejected: BTreeMap::new(),
            rejected_at: BTreeMap::new(),
            timers: BTreeSet::new(),
            silent: BTreeSet::new(),
            drop: None,
            now: Time(1),
            byzantine: None,
            committee: Arc::clone(committee),
            cryptos: cryptos.to_vec(),
            entropy: 0,
        }
    }

    /// Crashes replica `at` and restarts it at once from its durable state
    /// (encoded and decoded, as a store would) and the batches it names, with `cfg` and `batch`:
    /// messages queued for it and its timers are lost. Then `Start`.
    pub fn restart(&mut self, at: NodeId, cfg: &P::Config, batch: BatchConfig) {
        let i = at.index();
        let now = self.nodes[i].durable();
        // Each batch through the codec too, as a store keeps it.
        let batches = bft_core::durable::batches_of(&self.nodes[i], &now)
            .and_then(|batches| {
                batches
                    .into_iter()
                    .map(|(digest, batch)| {
                        let bytes = bft_core::codec::encode(&batch, usize::MAX)?;
                        Ok((digest, bft_core::codec::decode(&bytes, usize::MAX)?))
                    })
                    .collect::<Result<bft_core::DurableBatches, bft_core::CoreError>>()
            })
            .unwrap_or_else(|e| panic!("durable batches of {at}: {e}"));
        let state = bft_core::codec::encode(&now, usize::MAX)
            .unwrap_or_else(|e| panic!("durable state of {at} does not encode: {e}"));
        let durable = bft_core::codec::decode(&state, usize::MAX)
            .unwrap_or_else(|e| panic!("durable state of {at} does not decode: {e}"));
        let ctx = context(&self.committee, &self.cryptos, at, batch);
        self.nodes[i] = P::recover(ctx, cfg, durable, &batches);
        self.queue.retain(|(_, to, _)| *to != at);
        self.timers.retain(|(node, _)| *node != at);
        self.input(at, Input::Start);
    }

    fn ids(&self) -> impl Iterator<Item = NodeId> + use<P> {
        (0..self.n).filter_map(|i| u16::try_from(i).ok().map(NodeId))
    }

    /// Queues `m` from `from` to `to`, through the Byzantine replica's
    /// attack if `from` is it; counts what is actually sent.
    fn emit(&mut self, from: NodeId, to: NodeId, m: P::Message) {
        let attack = self.byzantine.filter(|(b, _)| *b == from).map(|(_, a)| a);
        let msgs = match attack {
            None => vec![m],
            Some(attack) => {
                self.entropy += 1;
                let ctx = TamperContext {
                    me: from,
                    to,
                    now: self.now,
                    committee: &self.committee,
                    crypto: self.cryptos[from.index()].as_ref(),
                    entropy: self.entropy,
                };
                P::tamper(attack, &m, &ctx).unwrap_or_else(|| vec![m])
            }
        };
        for m in msgs {
            *self.sent.entry(m.kind()).or_default() += 1;
            self.queue.push_back((from, to, m));
        }
    }

    /// Hands `input` to replica `at` and carries out its actions.
    pub fn input(&mut self, at: NodeId, input: Input<P::Message, P::Timer>) {
        let mut out = Vec::new();
        if let Err(e) = self.nodes[at.index()].handle(self.now, input, &mut out) {
            *self.rejected.entry(e.reason()).or_default() += 1;
            *self.rejected_at.entry((at, e.reason())).or_default() += 1;
        }
        for a in out {
            match a {
                Action::Broadcast(m) | Action::Rebroadcast(m) => {
                    if self.silent.contains(&at) {
                        continue;
                    }
                    for to in self.ids().filter(|&p| p != at) {
                        self.emit(at, to, m.clone());
                    }
                }
                Action::Send { to, msg } | Action::Resend { to, msg } => {
                    if !self.silent.contains(&at) {
                        self.emit(at, to, msg);
                    }
                }
                Action::SetTimer { timer, .. } => {
                    self.timers.insert((at, timer));
                }
                Action::CancelTimer(timer) => {
                    self.timers.remove(&(at, timer));
                }
                Action::Commit(d) => self.ledgers[at.index()].push(d),
                Action::InstallSnapshot { slot, block } => {
                    self.snapshots[at.index()].push((slot, block));
                }
                // The protocol's durable state is read at `restart`.
                Action::Persist => {}
            }
        }
    }

    /// Hands `req` to every replica.
    pub fn request_all(&mut self, req: &Request) {
        for id in self.ids() {
            self.input(id, Input::Request(req.clone()));
        }
    }

    /// Delivers queued messages until none are left.
    pub fn run(&mut self) {
        while let Some((from, to, m)) = self.queue.pop_front() {
            if let Some(drop) = self.drop.as_mut()
                && drop(from, to, &m)
            {
                continue;
            }
            self.now = Time(self.now.0 + 1);
            self.input(to, Input::Message { from, msg: m });
        }
    }

    /// Fires every armed timer `timer` at the given nodes, then runs.
    pub fn fire(&mut self, timer: P::Timer, at: &[NodeId]) {
        for &id in at {
            if self.timers.remove(&(id, timer)) {
                self.input(id, Input::Timeout(timer));
            }
        }
        self.run();
    }

    /// Messages of `kind` sent so far.
    pub fn sent(&self, kind: &str) -> u64 {
        self.sent.get(kind).copied().unwrap_or(0)
    }

    /// Every pair of ledgers agrees on their common prefix, each ledger is
    /// contiguous from slot 1 and hash-chained, and no request is executed
    /// twice at one replica.
    pub fn assert_safe(&self) {
        for (i, l) in self.ledgers.iter().enumerate() {
            let mut parent = bft_core::GENESIS;
            let mut seen = BTreeSet::new();
            for (k, d) in l.iter().enumerate() {
                assert_eq!(d.slot, k as u64 + 1, "replica {i}: slots contiguous");
                assert_eq!(
                    d.parent, parent,
                    "replica {i}: hash chain at slot {}",
                    d.slot
                );
                parent = d.block;
                for r in &d.requests {
                    assert!(seen.insert(*r), "replica {i}: {r:?} executed twice");
                }
            }
        }
        for a in &self.ledgers {
            for b in &self.ledgers {
                for (x, y) in a.iter().zip(b) {
                    assert_eq!(x.block, y.block, "agreement at slot {}", x.slot);
                }
            }
        }
    }
}
