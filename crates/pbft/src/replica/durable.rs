//! What a PBFT replica persists, and how it restarts from it.
//!
//! The durable state ([`PbftDurable`]) is written before any message of the
//! step that changed it leaves (`Action::Persist`):
//!
//! - its view and whether it is changing view, with its own VIEW-CHANGE and
//!   the NEW-VIEW it sent or accepted, so it never goes back a view and
//!   re-sends what it sent;
//! - as primary, the next sequence number to assign, so it never assigns a
//!   sequence number twice in a view (safety rule 1 at the backups);
//! - for every sequence number in its log: the pre-prepare it accepted in
//!   the current view (it never PREPAREs a second digest for (v, n)), its
//!   batch named by digest and written once apart from the state
//!   (`Protocol::durable_batches`: the state is rewritten at every change,
//!   and a log of up to K batches of hundreds of requests in it cost each
//!   write megabytes),
//!   whether it prepared and committed it, and its prepared certificate
//!   from the highest view, which its VIEW-CHANGEs must carry (safety rule
//!   6: a replica that forgot one could let a NEW-VIEW drop a committed
//!   request);
//! - the last stable checkpoint with its proof, its own state digests at
//!   later checkpoints, the executed sequence number, the head of its hash
//!   chain and the request ids executed so far;
//! - for a slot committed but not yet executed, the COMMITs that committed
//!   it: its ledger certificate once it executes.
//!
//! Other replicas' PREPAREs and COMMITs are not kept otherwise: a slot a restarted
//! replica can no longer complete is brought in by state transfer once the
//! others make a checkpoint of it stable. Everything else — the pool,
//! CHECKPOINTs and VIEW-CHANGEs of others, the batches kept for lagging
//! replicas — is rebuilt by catching up, like any replica that fell behind.

use super::{Pbft, Slot};
use crate::config::PbftConfig;
use crate::messages::{Checkpoint, NewView, PrePrepare, PreparedCert, ViewChange, Vote};
use bft_core::{Digest, DurableBatches, Executed, NodeContext, Protocol, RequestPool};
use serde::{Deserialize, Serialize};

/// See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PbftDurable {
    view: u64,
    active: bool,
    own_view_change: Option<ViewChange>,
    last_new_view: Option<NewView>,
    next_seq: u64,
    log: Vec<DurableSlot>,
    low: u64,
    stable_state: Digest,
    stable_proof: Vec<Checkpoint>,
    own_states: Vec<(u64, Digest)>,
    last_executed: u64,
    head: Digest,
    executed: Executed,
}

/// The durable part of one log slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DurableSlot {
    seq: u64,
    pre_prepare: Option<DurablePrePrepare>,
    prepared: bool,
    committed: bool,
    cert: Option<DurableCert>,
    /// For a slot committed but not yet executed: the COMMITs that made it
    /// committed-local, which become its ledger certificate when it
    /// executes (a committed slot takes no more COMMITs). Empty otherwise.
    commits: Vec<Vote>,
}

/// A pre-prepare whose batch is named by its digest: the store holds the
/// batch once, apart from the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DurablePrePrepare {
    view: u64,
    seq: u64,
    digest: Digest,
    sig: bft_core::Signature,
    /// The replica held the batch ([`PrePrepare::has_batch`]): one a
    /// NEW-VIEW re-proposed by digest may still be on its way, and is
    /// then neither named nor restored.
    held: bool,
}

impl DurablePrePrepare {
    fn of(pp: &PrePrepare) -> DurablePrePrepare {
        DurablePrePrepare {
            view: pp.view,
            seq: pp.seq,
            digest: pp.digest,
            sig: pp.sig,
            held: pp.has_batch(),
        }
    }

    /// The pre-prepare with its batch again; None if `batches` lacks it (a
    /// state `Node::recover` never hands over: it checks that every batch
    /// named is there and hashes to its digest).
    fn restore(self, batches: &DurableBatches) -> Option<PrePrepare> {
        let batch = match self.held {
            true => batches.get(&self.digest)?.clone(),
            false => Vec::new(),
        };
        Some(PrePrepare {
            view: self.view,
            seq: self.seq,
            digest: self.digest,
            batch,
            sig: self.sig,
        })
    }

    /// The batch it names, if it held one.
    fn named(&self) -> Option<Digest> {
        self.held.then_some(self.digest)
    }
}

/// A slot's prepared certificate without a second copy of its pre-prepare:
/// in the common case the certificate's pre-prepare is the one the slot
/// holds (`None` here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DurableCert {
    /// The certificate's pre-prepare if it is not the slot's.
    pre_prepare: Option<DurablePrePrepare>,
    prepares: Vec<Vote>,
}

impl DurableCert {
    /// Compares the two pre-prepares by what identifies them (view,
    /// sequence number, digest, signature, whether the batch is held), not
    /// request by request: equal digests mean equal batches.
    fn of(cert: &PreparedCert, slot: Option<&PrePrepare>) -> DurableCert {
        let own = DurablePrePrepare::of(&cert.pre_prepare);
        DurableCert {
            pre_prepare: (slot.map(DurablePrePrepare::of).as_ref() != Some(&own)).then_some(own),
            prepares: cert.prepares.clone(),
        }
    }

    /// The certificate again; None if it named the slot's pre-prepare and
    /// the slot has none (a state no replica writes).
    fn restore(self, slot: Option<&PrePrepare>, batches: &DurableBatches) -> Option<PreparedCert> {
        Some(PreparedCert {
            pre_prepare: match self.pre_prepare {
                Some(pp) => pp.restore(batches)?,
                None => slot?.clone(),
            },
            prepares: self.prepares,
        })
    }
}

impl PbftDurable {
    /// The batches the log names: each slot's pre-prepare's and each
    /// prepared certificate's of another pre-prepare.
    pub(super) fn batches(&self) -> Vec<Digest> {
        let mut digests = Vec::new();
        for slot in &self.log {
            digests.extend(slot.pre_prepare.as_ref().and_then(DurablePrePrepare::named));
            let cert = slot.cert.as_ref().and_then(|c| c.pre_prepare.as_ref());
            digests.extend(cert.and_then(DurablePrePrepare::named));
        }
        digests
    }
}

/// What identifies a change of the durable state, cheaply: view and
/// activity, the counters, and `log_epoch`, which every change to a slot's
/// durable part bumps (the VIEW-CHANGE and NEW-VIEW change only with the
/// view or activity, own states and the executed ids with `last_executed`,
/// the stable proof with `low`).
pub(super) type DurableKey = (u64, bool, u64, u64, u64, u64);

impl Pbft {
    pub(super) fn durable_key(&self) -> DurableKey {
        (
            self.view,
            self.active,
            self.next_seq,
            self.low,
            self.last_executed,
            self.log_epoch,
        )
    }

    pub fn durable(&self) -> PbftDurable {
        PbftDurable {
            view: self.view,
            active: self.active,
            own_view_change: self.vc_log.newest(self.id).cloned(),
            last_new_view: self.last_new_view.clone(),
            next_seq: self.next_seq,
            log: self
                .log
                .iter()
                .filter(|(_, s)| s.pre_prepare.is_some() || s.cert.is_some())
                .map(|(&seq, s)| DurableSlot {
                    seq,
                    pre_prepare: s.pre_prepare.as_ref().map(DurablePrePrepare::of),
                    prepared: s.prepared,
                    committed: s.committed,
                    cert: s
                        .cert
                        .as_ref()
                        .map(|c| DurableCert::of(c, s.pre_prepare.as_ref())),
                    commits: if s.committed && seq > self.last_executed {
                        s.commits.values().cloned().collect()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
            low: self.low,
            stable_state: self.stable_state,
            stable_proof: self.stable_proof.clone(),
            own_states: self.own_states.iter().map(|(&s, &d)| (s, d)).collect(),
            last_executed: self.last_executed,
            head: self.head,
            executed: self.pool.executed().clone(),
        }
    }

    /// The batch `digest` of a pre-prepare its log holds (in a slot or in a
    /// prepared certificate).
    pub(super) fn durable_batch(&self, digest: &Digest) -> Option<&[bft_core::Request]> {
        self.log.values().find_map(|s| {
            let certified = s.cert.as_ref().map(|c| &c.pre_prepare);
            [s.pre_prepare.as_ref(), certified]
                .into_iter()
                .flatten()
                .find(|pp| pp.digest == *digest && pp.has_batch())
                .map(|pp| pp.batch.as_slice())
        })
    }

    /// A replica restarted from `d` and the batches it names (see the
    /// module documentation).
    pub fn recover(
        ctx: NodeContext,
        cfg: &PbftConfig,
        d: PbftDurable,
        batches: &DurableBatches,
    ) -> Pbft {
        let mut p = <Pbft as Protocol>::new(ctx, cfg);
        p.view = d.view;
        p.active = d.active;
        if let Some(vc) = d.own_view_change {
            p.vc_log.insert(p.id, vc);
        }
        p.last_new_view = d.last_new_view;
        p.next_seq = d.next_seq;
        p.log = d
            .log
            .into_iter()
            .map(|s| {
                let pre_prepare = s.pre_prepare.and_then(|pp| pp.restore(batches));
                let cert = s
                    .cert
                    .and_then(|c| c.restore(pre_prepare.as_ref(), batches));
                let slot = Slot {
                    pre_prepare,
                    prepared: s.prepared,
                    committed: s.committed,
                    cert,
                    commits: s.commits.into_iter().map(|c| (c.replica, c)).collect(),
                    ..Slot::default()
                };
                (s.seq, slot)
            })
            .collect();
        p.low = d.low;
        p.stable_state = d.stable_state;
        p.stable_proof = d.stable_proof;
        p.own_states = d.own_states.into_iter().collect();
        p.last_executed = d.last_executed;
        p.head = d.head;
        p.pool = RequestPool::with_executed(cfg.pool_capacity.max(1), d.executed);
        p.rejoining = true;
        p
    }
}
