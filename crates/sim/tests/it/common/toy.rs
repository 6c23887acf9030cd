//! A deliberately simple, test-only protocol used to prove the core and the
//! simulator before (and independently of) the real protocols. Not a product
//! protocol: it trusts its fixed leader, so an equivocating leader forks it,
//! which is exactly what the oracle tests need.
//!
//! Leader n0 broadcasts PROPOSE(slot, batch); every replica ACKs it to the
//! leader; on n−f ACKs the leader broadcasts DECIDE(slot) and everyone
//! commits the batch it holds for the slot. Per decision: 3(n−1) messages.
//! The leader re-broadcasts an undecided proposal every `resend`.

use bft_core::{
    Action, Decision, Digest, Input, NodeContext, NodeId, Protocol, Rejection, Request,
    RequestPool, Signature, Status, Time, WireMessage, batch_digest,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

const PROPOSE_DOMAIN: &str = "bftbench/toy/propose/v1";
const ACK_DOMAIN: &str = "bftbench/toy/ack/v1";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ToyMsg {
    Propose {
        slot: u64,
        batch: Vec<Request>,
        sig: Signature,
    },
    Ack {
        slot: u64,
        digest: Digest,
        sig: Signature,
    },
    Decide {
        slot: u64,
    },
}

impl WireMessage for ToyMsg {
    fn kind(&self) -> &'static str {
        match self {
            ToyMsg::Propose { .. } => "propose",
            ToyMsg::Ack { .. } => "ack",
            ToyMsg::Decide { .. } => "decide",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ToyTimer {
    Batch,
    Resend,
}

#[derive(Debug, thiserror::Error)]
pub enum ToyError {
    #[error("bad signature")]
    BadSignature,
    #[error("not from the leader")]
    NotLeader,
    #[error("stale slot")]
    Stale,
}

impl Rejection for ToyError {
    fn reason(&self) -> &'static str {
        match self {
            ToyError::BadSignature => "bad-signature",
            ToyError::NotLeader => "not-leader",
            ToyError::Stale => "stale",
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ToyConfig {
    #[serde(with = "humantime_serde")]
    pub resend: Duration,
}

pub struct Toy {
    ctx: NodeContext,
    cfg: ToyConfig,
    pool: RequestPool,
    /// Slot being decided, its batch (leader: the one proposed) and the
    /// batch's digest, computed once.
    proposals: BTreeMap<u64, (Vec<Request>, Digest)>,
    acks: BTreeMap<NodeId, ()>,
    in_flight: Option<u64>,
    last_slot: u64,
    last_block: Digest,
}

const LEADER: NodeId = NodeId(0);

impl Toy {
    fn is_leader(&self) -> bool {
        self.ctx.id == LEADER
    }

    fn propose_bytes(slot: u64, digest: &Digest) -> [u8; 40] {
        let mut m = [0u8; 40];
        m[..8].copy_from_slice(&slot.to_le_bytes());
        m[8..].copy_from_slice(digest.as_bytes());
        m
    }

    fn try_propose(&mut self, now: Time, out: &mut Vec<Action<ToyMsg, ToyTimer>>) {
        if !self.is_leader() || self.in_flight.is_some() || self.pool.is_empty() {
            return;
        }
        let full = self.pool.len() >= self.ctx.batch.max_size;
        let waited = self
            .pool
            .oldest_arrival()
            .is_some_and(|t| now.since(t) >= self.ctx.batch.max_delay);
        if !full && !waited {
            out.push(Action::SetTimer {
                timer: ToyTimer::Batch,
                after: self.ctx.batch.max_delay,
            });
            return;
        }
        let slot = self.last_slot + 1;
        let batch = self.pool.take_batch(self.ctx.batch.max_size);
        let digest = batch_digest(&batch);
        self.proposals.insert(slot, (batch.clone(), digest));
        self.in_flight = Some(slot);
        self.acks.clear();
        self.broadcast_proposal(slot, batch, &digest, out);
        let sig = self
            .ctx
            .crypto
            .sign(ACK_DOMAIN, &Self::ack_bytes(slot, &digest));
        out.push(Action::Send {
            to: LEADER,
            msg: ToyMsg::Ack { slot, digest, sig },
        });
    }

    fn broadcast_proposal(
        &self,
        slot: u64,
        batch: Vec<Request>,
        digest: &Digest,
        out: &mut Vec<Action<ToyMsg, ToyTimer>>,
    ) {
        let sig = self
            .ctx
            .crypto
            .sign(PROPOSE_DOMAIN, &Self::propose_bytes(slot, digest));
        out.push(Action::Broadcast(ToyMsg::Propose { slot, batch, sig }));
        if self.cfg.resend > Duration::ZERO {
            out.push(Action::SetTimer {
                timer: ToyTimer::Resend,
                after: self.cfg.resend,
            });
        }
    }

    fn ack_bytes(slot: u64, digest: &Digest) -> [u8; 40] {
        Self::propose_bytes(slot, digest)
    }

    fn commit(&mut self, slot: u64, out: &mut Vec<Action<ToyMsg, ToyTimer>>) {
        if slot != self.last_slot + 1 {
            return;
        }
        let Some((batch, digest)) = self.proposals.remove(&slot) else {
            return;
        };
        let block = Digest::of(
            "toy/block",
            &[
                self.last_block.as_bytes(),
                &slot.to_le_bytes(),
                digest.as_bytes(),
            ],
        );
        let fresh = self.pool.execute(&batch);
        out.push(Action::Commit(Decision::executing(
            slot,
            0,
            block,
            self.last_block,
            &fresh,
            bytes::Bytes::new(),
        )));
        self.last_slot = slot;
        self.last_block = block;
        out.push(Action::Persist);
    }
}

impl Protocol for Toy {
    const NAME: &'static str = "toy";
    type Message = ToyMsg;
    type Timer = ToyTimer;
    type Config = ToyConfig;
    type Error = ToyError;
    /// The committed tip: enough for a toy that does not vote.
    type Durable = (u64, bft_core::Digest);

    fn durable(&self) -> (u64, bft_core::Digest) {
        (self.last_slot, self.last_block)
    }

    /// The toy commits on its leader's word: its decisions carry no
    /// certificate.
    fn check_certificate(
        _: &Decision,
        _: &bft_core::Committee,
        _: &dyn bft_core::Crypto,
    ) -> Result<bft_core::Certified, ToyError> {
        Ok(bft_core::Certified::ByChain)
    }

    fn client_requests(msg: &ToyMsg) -> &[Request] {
        match msg {
            ToyMsg::Propose { batch, .. } => batch,
            _ => &[],
        }
    }

    fn recover(
        ctx: NodeContext,
        cfg: &ToyConfig,
        (slot, block): (u64, bft_core::Digest),
        _batches: &bft_core::DurableBatches,
    ) -> Toy {
        let mut toy = Toy::new(ctx, cfg);
        toy.last_slot = slot;
        toy.last_block = block;
        toy
    }

    fn new(ctx: NodeContext, cfg: &ToyConfig) -> Toy {
        Toy {
            ctx,
            cfg: cfg.clone(),
            pool: RequestPool::new(100_000),
            proposals: BTreeMap::new(),
            acks: BTreeMap::new(),
            in_flight: None,
            last_slot: 0,
            last_block: bft_core::GENESIS,
        }
    }

    fn handle(
        &mut self,
        now: Time,
        input: Input<ToyMsg, ToyTimer>,
        out: &mut Vec<Action<ToyMsg, ToyTimer>>,
    ) -> Result<(), ToyError> {
        match input {
            Input::Start => {}
            Input::Request(r) => {
                self.pool.add(now, r);
                self.try_propose(now, out);
            }
            Input::Timeout(ToyTimer::Batch) => self.try_propose(now, out),
            Input::Timeout(ToyTimer::Resend) => {
                if let Some((slot, (batch, digest))) = self
                    .in_flight
                    .and_then(|slot| Some((slot, self.proposals.get(&slot)?.clone())))
                {
                    self.broadcast_proposal(slot, batch, &digest, out);
                }
            }
            Input::Message {
                from,
                msg: ToyMsg::Propose { slot, batch, sig },
            } => {
                if from != LEADER {
                    return Err(ToyError::NotLeader);
                }
                if slot <= self.last_slot {
                    return Err(ToyError::Stale);
                }
                let digest = batch_digest(&batch);
                self.ctx
                    .crypto
                    .verify(
                        from,
                        PROPOSE_DOMAIN,
                        &Self::propose_bytes(slot, &digest),
                        &sig,
                    )
                    .map_err(|_| ToyError::BadSignature)?;
                self.proposals.insert(slot, (batch, digest));
                let sig = self
                    .ctx
                    .crypto
                    .sign(ACK_DOMAIN, &Self::ack_bytes(slot, &digest));
                out.push(Action::Send {
                    to: LEADER,
                    msg: ToyMsg::Ack { slot, digest, sig },
                });
            }
            Input::Message {
                from,
                msg: ToyMsg::Ack { slot, digest, sig },
            } => {
                if self.in_flight != Some(slot) {
                    return Err(ToyError::Stale);
                }
                self.ctx
                    .crypto
                    .verify(from, ACK_DOMAIN, &Self::ack_bytes(slot, &digest), &sig)
                    .map_err(|_| ToyError::BadSignature)?;
                self.acks.insert(from, ());
                if self.acks.len() == self.ctx.committee.quorum_n_minus_f() {
                    out.push(Action::Broadcast(ToyMsg::Decide { slot }));
                    out.push(Action::CancelTimer(ToyTimer::Resend));
                    self.in_flight = None;
                    self.commit(slot, out);
                    self.try_propose(now, out);
                }
            }
            Input::Message {
                from,
                msg: ToyMsg::Decide { slot },
            } => {
                if from != LEADER {
                    return Err(ToyError::NotLeader);
                }
                self.commit(slot, out);
            }
        }
        Ok(())
    }

    fn status(&self) -> Status {
        Status {
            view: 0,
            committed: self.last_slot,
            view_changes: 0,
            retained: self.proposals.len() + self.pool.retained(),
        }
    }

    fn is_view_timeout(_: &ToyTimer) -> bool {
        false
    }
}

/// The toy has no attacks of its own; the simulator's generic faults
/// (crash, silence, omission, delay, replay, censorship) still apply.
impl bft_core::Adversarial for Toy {
    fn liveness_bound(cfg: &ToyConfig, _n: usize) -> Duration {
        cfg.resend * 4 + Duration::from_secs(1)
    }
}
