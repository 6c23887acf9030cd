//! HotStuff's test kit, which both `replica` and `byzantine` drive: a
//! `Signer` for a committee with real BLS keys that signs, votes and
//! aggregates for any of its members, on top of the shared harness
//! (`bft_testkit`).

use bft_core::{
    BatchConfig, BlsSignature, Committee, Crypto, CryptoKind, Digest, GENESIS, Height, NodeId,
    Request, View,
};
use bft_crypto::CostModel;
use bft_hotstuff::{
    Block, HotStuff, HotStuffConfig, Message, QuorumCert, VOTE_DOMAIN, Vote, vote_payload,
};
use std::sync::Arc;

/// Signs, votes and aggregates as any replica of a committee with real BLS
/// keys (tests play Byzantine replicas this way), and builds its replicas.
pub struct Signer {
    pub committee: Arc<Committee>,
    pub cryptos: Vec<Arc<dyn Crypto>>,
}

impl Signer {
    pub fn new(n: usize) -> Signer {
        let (committee, cryptos) = bft_testkit::keys(n, CryptoKind::Real);
        Signer { committee, cryptos }
    }

    /// Real crypto charging `cost` (read back with `take_cpu`).
    pub fn with_cost(n: usize, cost: CostModel) -> Signer {
        let (committee, cryptos) =
            bft_crypto::cluster(n, bft_testkit::KEY_SEED, CryptoKind::Real, cost).unwrap();
        Signer { committee, cryptos }
    }

    pub fn replica(&self, id: u16) -> HotStuff {
        bft_testkit::replica(
            &self.committee,
            &self.cryptos,
            id,
            &HotStuffConfig::default(),
            BatchConfig::default(),
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

/// Request `number` of client 1.
pub fn request(number: u64) -> Request {
    bft_testkit::request(1, number)
}
