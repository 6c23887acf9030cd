//! QBFT's test kit: a `Signer` that builds any replica's messages with the
//! test committee's keys, for driving one replica directly through
//! `Protocol::handle`, on top of the shared harness (`bft_testkit`).

#![allow(dead_code)]

use bft_core::{
    Action, BatchConfig, Committee, Crypto, CryptoKind, Digest, GENESIS, NodeId, Request, Time,
};
use bft_qbft::messages::{
    Block, PreparePayload, Proposal, ProposalPayload, QbftMessage, RoundChange, RoundChangePayload,
    Signed, signed_commit,
};
use bft_qbft::{Qbft, QbftConfig, QbftError, QbftTimer};
pub use bft_testkit::broadcast_kinds;
use bft_testkit::keys;
use std::sync::Arc;

pub type Actions = Vec<Action<QbftMessage, QbftTimer>>;

/// Signs QBFT messages as any replica (tests play Byzantine replicas this
/// way), and builds the committee's replicas.
pub struct Signer {
    pub committee: Arc<Committee>,
    pub cryptos: Vec<Arc<dyn Crypto>>,
}

impl Signer {
    pub fn new(n: usize, kind: CryptoKind) -> Signer {
        let (committee, cryptos) = keys(n, kind);
        Signer { committee, cryptos }
    }

    pub fn crypto(&self, id: u16) -> &dyn Crypto {
        self.cryptos[usize::from(id)].as_ref()
    }

    pub fn replica(&self, id: u16) -> Qbft {
        self.replica_with(id, BatchConfig::default())
    }

    pub fn replica_with(&self, id: u16, batch: BatchConfig) -> Qbft {
        bft_testkit::replica(
            &self.committee,
            &self.cryptos,
            id,
            &QbftConfig::default(),
            batch,
        )
    }

    pub fn prepare(
        &self,
        signer: u16,
        height: u64,
        round: u64,
        digest: Digest,
    ) -> Signed<PreparePayload> {
        Signed::sign(
            self.crypto(signer),
            PreparePayload {
                height,
                round,
                digest,
            },
        )
    }

    pub fn prepares(
        &self,
        signers: &[u16],
        height: u64,
        round: u64,
        digest: Digest,
    ) -> Vec<Signed<PreparePayload>> {
        signers
            .iter()
            .map(|&s| self.prepare(s, height, round, digest))
            .collect()
    }

    pub fn commit(&self, signer: u16, height: u64, round: u64, digest: Digest) -> QbftMessage {
        QbftMessage::Commit(signed_commit(self.crypto(signer), height, round, digest))
    }

    pub fn rc_payload(
        &self,
        signer: u16,
        height: u64,
        round: u64,
        prepared: Option<(u64, Digest)>,
    ) -> Signed<RoundChangePayload> {
        Signed::sign(
            self.crypto(signer),
            RoundChangePayload {
                height,
                round,
                prepared_round: prepared.map(|p| p.0),
                prepared_value: prepared.map(|p| p.1),
            },
        )
    }

    /// A full ROUND-CHANGE; if `prepared` is given, it carries the block and
    /// PREPAREs from `prepare_signers` for (height, prepared round, hash).
    pub fn round_change(
        &self,
        signer: u16,
        height: u64,
        round: u64,
        prepared: Option<(u64, &Block)>,
        prepare_signers: &[u16],
    ) -> QbftMessage {
        let signed = self.rc_payload(signer, height, round, prepared.map(|(r, b)| (r, b.hash())));
        let (prepared_block, prepares) = match prepared {
            Some((r, b)) => (
                Some(b.clone()),
                self.prepares(prepare_signers, height, r, b.hash()),
            ),
            None => (None, Vec::new()),
        };
        QbftMessage::RoundChange(Box::new(RoundChange {
            signed,
            prepared_block,
            prepares,
        }))
    }

    pub fn proposal(
        &self,
        signer: u16,
        round: u64,
        block: &Block,
        round_changes: Vec<Signed<RoundChangePayload>>,
        prepares: Vec<Signed<PreparePayload>>,
    ) -> QbftMessage {
        let signed = Signed::sign(
            self.crypto(signer),
            ProposalPayload {
                height: block.height,
                round,
                digest: block.hash(),
            },
        );
        QbftMessage::Proposal(Box::new(Proposal {
            signed,
            block: block.clone(),
            round_changes,
            prepares,
        }))
    }
}

/// Request `number` of client 0.
pub fn request(number: u64) -> Request {
    bft_testkit::request(0, number)
}

/// A height-1 block on genesis built by `proposer` holding request `number`.
pub fn block1(proposer: u16, number: u64) -> Block {
    Block {
        height: 1,
        parent: GENESIS,
        proposer: NodeId(proposer),
        requests: vec![request(number)],
    }
}

/// Feeds `msg` from `from` to a lone replica (at 1 ms).
pub fn deliver(
    replica: &mut Qbft,
    from: u16,
    msg: QbftMessage,
) -> (Result<(), QbftError>, Actions) {
    let now = Time::from_duration(std::time::Duration::from_millis(1));
    let (out, result) = bft_testkit::feed_at(replica, now, bft_testkit::msg(from, msg));
    (result, out)
}

/// The PREPAREs a replica multicast in `out`.
pub fn broadcast_prepares(out: &Actions) -> Vec<PreparePayload> {
    out.iter()
        .filter_map(|a| match a {
            Action::Broadcast(QbftMessage::Prepare(p)) => Some(p.payload.clone()),
            _ => None,
        })
        .collect()
}
