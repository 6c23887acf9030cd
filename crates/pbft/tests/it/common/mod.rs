//! A hand-driven network for replica-level tests: FIFO delivery, timers fired
//! on demand, every action recorded. No randomness, no clock.
#![allow(dead_code)]

use bft_core::{
    Action, Adversarial, Attack, BatchConfig, Committee, Crypto, CryptoKind, Decision, Digest,
    Input, NodeContext, NodeId, Protocol, Rejection, Request, RequestId, TamperContext, Time,
    WireMessage, batch_digest,
};
use bft_crypto::CostModel;
use bft_pbft::{
    Checkpoint, Pbft, PbftConfig, PbftMessage, PbftTimer, PrePrepare, PreparedCert, ViewChange,
    Vote, checkpoint_payload, domain, pre_prepare_payload, view_change_payload, vote_payload,
};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

pub fn keys(n: usize, kind: CryptoKind) -> (Arc<Committee>, Vec<Arc<dyn Crypto>>) {
    bft_crypto::cluster(n, 7, kind, CostModel::zero()).unwrap()
}

pub fn request(client: u32, number: u64) -> Request {
    Request {
        id: RequestId { client, number },
        payload: Bytes::from(vec![client as u8; 16]),
    }
}

/// Signs messages as any replica (tests play Byzantine replicas this way).
pub struct Signer {
    pub committee: Arc<Committee>,
    pub cryptos: Vec<Arc<dyn Crypto>>,
}

impl Signer {
    pub fn new(n: usize, kind: CryptoKind) -> Signer {
        let (committee, cryptos) = keys(n, kind);
        Signer { committee, cryptos }
    }
    pub fn f(&self) -> usize {
        self.committee.f()
    }
    pub fn primary(&self, view: u64) -> NodeId {
        self.committee.leader(view)
    }
    pub fn pre_prepare(&self, view: u64, seq: u64, batch: Vec<Request>) -> PrePrepare {
        let digest = batch_digest(&batch);
        let signer = self.primary(view);
        let sig = self.cryptos[signer.index()].sign(
            domain::PRE_PREPARE,
            &pre_prepare_payload(view, seq, &digest),
        );
        PrePrepare {
            view,
            seq,
            digest,
            batch,
            sig,
        }
    }
    fn vote(&self, dom: &'static str, by: u16, view: u64, seq: u64, digest: Digest) -> Vote {
        let replica = NodeId(by);
        let sig =
            self.cryptos[usize::from(by)].sign(dom, &vote_payload(view, seq, &digest, replica));
        Vote {
            view,
            seq,
            digest,
            replica,
            sig,
        }
    }
    pub fn prepare(&self, by: u16, view: u64, seq: u64, digest: Digest) -> Vote {
        self.vote(domain::PREPARE, by, view, seq, digest)
    }
    pub fn commit(&self, by: u16, view: u64, seq: u64, digest: Digest) -> Vote {
        self.vote(domain::COMMIT, by, view, seq, digest)
    }
    pub fn checkpoint(&self, by: u16, seq: u64, state: Digest) -> Checkpoint {
        let replica = NodeId(by);
        let sig = self.cryptos[usize::from(by)].sign(
            domain::CHECKPOINT,
            &checkpoint_payload(seq, &state, replica),
        );
        Checkpoint {
            seq,
            state,
            replica,
            sig,
        }
    }
    /// A prepared certificate for (view, seq, batch): the primary's
    /// pre-prepare and PREPAREs from the first 2f backups of that view.
    pub fn cert(&self, view: u64, seq: u64, batch: Vec<Request>) -> PreparedCert {
        let pp = self.pre_prepare(view, seq, batch);
        let primary = self.primary(view);
        let prepares = (0..self.committee.n() as u16)
            .filter(|&i| NodeId(i) != primary)
            .take(bft_pbft::quorum(&self.committee) - 1)
            .map(|i| self.prepare(i, view, seq, pp.digest))
            .collect();
        PreparedCert {
            pre_prepare: pp,
            prepares,
        }
    }
    pub fn view_change(&self, by: u16, new_view: u64, prepared: Vec<PreparedCert>) -> ViewChange {
        let replica = NodeId(by);
        let state = bft_core::GENESIS;
        let sig = self.cryptos[usize::from(by)].sign(
            domain::VIEW_CHANGE,
            &view_change_payload(new_view, 0, &state, &prepared, replica),
        );
        ViewChange {
            new_view,
            stable_seq: 0,
            stable_state: state,
            checkpoint_proof: Vec::new(),
            prepared,
            replica,
            sig,
        }
    }
}

pub fn replica(signer: &Signer, id: u16, cfg: &PbftConfig, batch: BatchConfig) -> Pbft {
    Pbft::new(
        NodeContext {
            id: NodeId(id),
            committee: Arc::clone(&signer.committee),
            crypto: Arc::clone(&signer.cryptos[usize::from(id)]),
            batch,
        },
        cfg,
    )
}

/// Feeds one input to a lone replica; returns its actions and the rejection
/// reason if any.
pub fn feed(
    r: &mut Pbft,
    input: Input<PbftMessage, PbftTimer>,
) -> (Vec<Action<PbftMessage, PbftTimer>>, Option<&'static str>) {
    let mut out = Vec::new();
    let err = r.handle(Time(1), input, &mut out).err().map(|e| e.reason());
    (out, err)
}

pub fn msg(from: u16, m: PbftMessage) -> Input<PbftMessage, PbftTimer> {
    Input::Message {
        from: NodeId(from),
        msg: m,
    }
}

pub fn broadcasts(out: &[Action<PbftMessage, PbftTimer>]) -> Vec<&PbftMessage> {
    out.iter()
        .filter_map(|a| match a {
            Action::Broadcast(m) | Action::Rebroadcast(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// Decides whether a message (from, to, msg) is dropped.
pub type DropFn = Box<dyn FnMut(NodeId, NodeId, &PbftMessage) -> bool>;

/// n replicas wired by FIFO queues, counting sends like `Node` does
/// (a broadcast is n−1 sends).
pub struct Net {
    pub n: usize,
    pub nodes: Vec<Pbft>,
    pub queue: VecDeque<(NodeId, NodeId, PbftMessage)>,
    pub ledgers: Vec<Vec<Decision>>,
    pub sent: BTreeMap<&'static str, u64>,
    pub rejected: BTreeMap<&'static str, u64>,
    pub timers: BTreeSet<(NodeId, PbftTimer)>,
    /// Nodes whose outgoing messages are dropped.
    pub silent: BTreeSet<NodeId>,
    /// Drops a message (from, to, msg) when it returns true.
    pub drop: Option<DropFn>,
    pub now: Time,
    /// A Byzantine replica: its honest core's messages pass, once per
    /// recipient, through `<Pbft as Adversarial>::tamper` with this attack.
    pub byzantine: Option<(NodeId, Attack)>,
    pub committee: Arc<Committee>,
    pub cryptos: Vec<Arc<dyn Crypto>>,
    entropy: u64,
}

impl Net {
    pub fn new(signer: &Signer, cfg: &PbftConfig, batch: BatchConfig) -> Net {
        let n = signer.committee.n();
        Net {
            n,
            nodes: (0..n as u16)
                .map(|i| replica(signer, i, cfg, batch))
                .collect(),
            queue: VecDeque::new(),
            ledgers: vec![Vec::new(); n],
            sent: BTreeMap::new(),
            rejected: BTreeMap::new(),
            timers: BTreeSet::new(),
            silent: BTreeSet::new(),
            drop: None,
            now: Time(1),
            byzantine: None,
            committee: Arc::clone(&signer.committee),
            cryptos: signer.cryptos.clone(),
            entropy: 0,
        }
    }

    /// Queues `m` from `from` to `to`, through the Byzantine replica's
    /// attack if `from` is it; counts what is actually sent.
    fn emit(&mut self, from: NodeId, to: NodeId, m: PbftMessage) {
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
                <Pbft as Adversarial>::tamper(attack, &m, &ctx).unwrap_or_else(|| vec![m])
            }
        };
        for m in msgs {
            *self.sent.entry(m.kind()).or_default() += 1;
            self.queue.push_back((from, to, m));
        }
    }

    pub fn input(&mut self, at: NodeId, input: Input<PbftMessage, PbftTimer>) {
        let mut out = Vec::new();
        if let Err(e) = self.nodes[at.index()].handle(self.now, input, &mut out) {
            *self.rejected.entry(e.reason()).or_default() += 1;
        }
        for a in out {
            match a {
                Action::Broadcast(m) | Action::Rebroadcast(m) => {
                    if self.silent.contains(&at) {
                        continue;
                    }
                    for to in (0..self.n as u16).map(NodeId).filter(|&p| p != at) {
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
            }
        }
    }

    pub fn request_all(&mut self, req: &Request) {
        for i in 0..self.n as u16 {
            self.input(NodeId(i), Input::Request(req.clone()));
        }
    }

    /// Delivers queued messages until none are left.
    pub fn run(&mut self) {
        while let Some((from, to, m)) = self.queue.pop_front() {
            if let Some(drop) = self.drop.as_mut() {
                if drop(from, to, &m) {
                    continue;
                }
            }
            self.now = Time(self.now.0 + 1);
            self.input(to, Input::Message { from, msg: m });
        }
    }

    /// Fires every armed timer of `kind` (at the given nodes), then runs.
    pub fn fire(&mut self, kind: PbftTimer, at: &[NodeId]) {
        for &id in at {
            if self.timers.remove(&(id, kind)) {
                self.input(id, Input::Timeout(kind));
            }
        }
        self.run();
    }

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
