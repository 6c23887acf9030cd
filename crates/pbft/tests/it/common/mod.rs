//! PBFT's test kit: a `Signer` that builds any replica's messages, on top of
//! the shared harness (`bft_testkit`: the hand-driven `Net`, `feed`, keys).
#![allow(dead_code)]

use bft_core::{BatchConfig, Committee, Crypto, CryptoKind, Digest, NodeId, Request, batch_digest};
use bft_pbft::{
    Checkpoint, Pbft, PbftConfig, PrePrepare, PreparedCert, ViewChange, Vote, checkpoint_payload,
    domain, pre_prepare_payload, view_change_payload, vote_payload,
};
pub use bft_testkit::{broadcasts, feed, keys, msg, request};
use std::sync::Arc;

/// PBFT's replicas on the shared hand-driven network.
pub type Net = bft_testkit::Net<Pbft>;

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
    /// Replica `id` of this committee, with its own keys.
    pub fn replica(&self, id: u16, cfg: &PbftConfig, batch: BatchConfig) -> Pbft {
        bft_testkit::replica(&self.committee, &self.cryptos, id, cfg, batch)
    }
    /// The whole committee on a hand-driven network.
    pub fn net(&self, cfg: &PbftConfig, batch: BatchConfig) -> Net {
        Net::new(&self.committee, &self.cryptos, cfg, batch)
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
