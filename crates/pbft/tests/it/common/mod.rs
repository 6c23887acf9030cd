//! PBFT's test kit: a `Signer` that builds any replica's messages, on top of
//! the shared harness (`bft_testkit`: the hand-driven `Net`, `feed`, keys).
#![allow(dead_code)]

use bft_core::Action;
use bft_core::{BatchConfig, Committee, Crypto, CryptoKind, Digest, NodeId, Request, Signature};
use bft_pbft::{
    Checkpoint, Pbft, PbftConfig, PbftMessage, PbftTimer, PrePrepare, PreparedCert, ViewChange,
    Vote, domain,
};
pub use bft_testkit::{broadcasts, feed, keys, msg, request};
use std::sync::Arc;

/// Slot `seq`'s batch in the large-batch tests: 2000 requests of 512 bytes
/// from client 1, numbered from `seq` · 2000 (about 1.3 MB a batch, the
/// size `bench-configs/perf/quic-n4.toml` reaches under load).
pub fn large_batch(seq: u64) -> Vec<Request> {
    (0..2000u64)
        .map(|i| {
            let id = bft_core::RequestId {
                client: 1,
                number: seq * 2000 + i,
            };
            Request::unsigned(id, bytes::Bytes::from(vec![7u8; 512]))
        })
        .collect()
}

/// One request per batch, cut after 1 ms: every slot holds one request.
pub const ONE: BatchConfig = BatchConfig {
    max_size: 1,
    max_delay: std::time::Duration::from_millis(1),
};

/// The replica-level tests' config: a checkpoint every 4 slots, a window
/// of 8, so checkpoints and watermarks come into play within a few
/// requests.
pub fn cfg() -> PbftConfig {
    PbftConfig {
        checkpoint_interval: 4,
        window: 8,
        ..PbftConfig::default()
    }
}

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
        let primary = self.primary(view).index();
        PrePrepare::signed(self.cryptos[primary].as_ref(), view, seq, batch)
    }
    /// Replica `id` with `pbft` and batches of up to 2000 requests (for
    /// [`large_batch`]es).
    pub fn large_replica(&self, id: u16, pbft: &PbftConfig) -> Pbft {
        let batch = BatchConfig {
            max_size: 2000,
            ..ONE
        };
        self.replica(id, pbft, batch)
    }
    /// At backup 1 of view 0: the primary's PRE-PREPARE for `batch` at
    /// `seq` and replica 2's PREPARE, both accepted (the slot prepares).
    /// Returns the batch's digest.
    pub fn prepare_at(&self, r: &mut Pbft, seq: u64, batch: Vec<Request>) -> Digest {
        let pp = self.pre_prepare(0, seq, batch);
        let d = pp.digest;
        assert_eq!(feed(r, msg(0, PbftMessage::PrePrepare(pp))).1, None);
        let prepare = self.prepare(2, 0, seq, d);
        assert_eq!(feed(r, msg(2, PbftMessage::Prepare(prepare))).1, None);
        d
    }
    /// At backup 1 of view 0: COMMITs for (`seq`, `d`) from 0, 2 and 3;
    /// what the replica output.
    pub fn commit_at(
        &self,
        r: &mut Pbft,
        seq: u64,
        d: Digest,
    ) -> Vec<Action<PbftMessage, PbftTimer>> {
        let mut out = Vec::new();
        for by in [0, 2, 3] {
            out.extend(feed(r, msg(by, PbftMessage::Commit(self.commit(by, 0, seq, d)))).0);
        }
        out
    }
    /// A pre-prepare naming its batch by digest, as NEW-VIEW's O does.
    pub fn pre_prepare_by_digest(&self, view: u64, seq: u64, digest: Digest) -> PrePrepare {
        let primary = self.primary(view).index();
        PrePrepare::signed_by_digest(self.cryptos[primary].as_ref(), view, seq, digest)
    }
    fn vote(&self, dom: &'static str, by: u16, view: u64, seq: u64, digest: Digest) -> Vote {
        let vote = Vote {
            view,
            seq,
            digest,
            replica: NodeId(by),
            sig: Signature::default(),
        };
        vote.signed_by(self.cryptos[usize::from(by)].as_ref(), dom)
    }
    pub fn prepare(&self, by: u16, view: u64, seq: u64, digest: Digest) -> Vote {
        self.vote(domain::PREPARE, by, view, seq, digest)
    }
    pub fn commit(&self, by: u16, view: u64, seq: u64, digest: Digest) -> Vote {
        self.vote(domain::COMMIT, by, view, seq, digest)
    }
    pub fn checkpoint(&self, by: u16, seq: u64, state: Digest) -> Checkpoint {
        let cp = Checkpoint {
            seq,
            state,
            replica: NodeId(by),
            sig: Signature::default(),
        };
        cp.signed_by(self.cryptos[usize::from(by)].as_ref())
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
    /// VIEW-CHANGE(new_view) from `by` with P = `prepared`, by digest.
    pub fn view_change(&self, by: u16, new_view: u64, prepared: Vec<PreparedCert>) -> ViewChange {
        let vc = ViewChange {
            new_view,
            stable_seq: 0,
            stable_state: bft_core::GENESIS,
            checkpoint_proof: Vec::new(),
            prepared: prepared.iter().map(PreparedCert::by_digest).collect(),
            replica: NodeId(by),
            sig: Signature::default(),
        };
        vc.signed_by(self.cryptos[usize::from(by)].as_ref())
    }
}
