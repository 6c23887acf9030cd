//! The HotStuff test fixture both `replica` and `byzantine` drive: a
//! committee with real BLS keys and helpers that sign, vote and aggregate
//! for any of its members.

use bft_core::{
    BatchConfig, BlsSignature, Committee, Crypto, CryptoKind, Digest, GENESIS, Height, NodeContext,
    NodeId, Protocol, Request, RequestId, View,
};
use bft_crypto::CostModel;
use bft_hotstuff::{
    Block, HotStuff, HotStuffConfig, Message, QuorumCert, VOTE_DOMAIN, Vote, vote_payload,
};
use std::sync::Arc;

pub struct Fixture {
    pub committee: Arc<Committee>,
    pub cryptos: Vec<Arc<dyn Crypto>>,
}

impl Fixture {
    pub fn new(n: usize) -> Fixture {
        Fixture::with_cost(n, CostModel::zero())
    }

    /// Real crypto charging `cost` (read back with `take_cpu`).
    pub fn with_cost(n: usize, cost: CostModel) -> Fixture {
        let (committee, cryptos) = bft_crypto::cluster(n, 5, CryptoKind::Real, cost).unwrap();
        Fixture { committee, cryptos }
    }

    pub fn replica(&self, id: u16) -> HotStuff {
        HotStuff::new(
            NodeContext {
                id: NodeId(id),
                committee: self.committee.clone(),
                crypto: self.cryptos[usize::from(id)].clone(),
                batch: BatchConfig::default(),
            },
            &HotStuffConfig::default(),
        )
    }

    pub fn sign(&self, signer: u16, view: u64, block: Digest) -> BlsSignature {
        self.cryptos[usize::from(signer)].bls_sign(VOTE_DOMAIN, &vote_payload(View(view), &block))
    }

    pub fn vote(&self, signer: u16, view: u64, block: Digest) -> Message {
        Message::Vote(Vote {
            view: View(view),
            block,
            signature: self.sign(signer, view, block),
        })
    }

    /// A QC for (view, block) aggregated from `signers`' real votes.
    pub fn qc(&self, view: u64, block: Digest, signers: &[u16]) -> QuorumCert {
        let parts: Vec<_> = signers
            .iter()
            .map(|&i| (NodeId(i), self.sign(i, view, block)))
            .collect();
        QuorumCert {
            view: View(view),
            block,
            signature: self.cryptos[0].bls_aggregate(&parts).unwrap(),
        }
    }

    /// The first n−f node ids: a quorum of signers.
    pub fn quorum(&self) -> Vec<u16> {
        (0..self.committee.quorum_n_minus_f() as u16).collect()
    }
}

/// The genesis block (view 0, height 0, the genesis QC).
pub fn genesis() -> Block {
    Block {
        parent: GENESIS,
        view: View(0),
        height: Height(0),
        batch: vec![],
        justify: QuorumCert::genesis(),
    }
}

/// Request `number` of client 1, payload "tx".
pub fn request(number: u64) -> Request {
    Request {
        id: RequestId { client: 1, number },
        payload: bytes::Bytes::from_static(b"tx"),
    }
}
