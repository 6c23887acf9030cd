//! What a QBFT replica persists, and how it restarts from it.
//!
//! The durable state ([`QbftDurable`]) is written before any message of the
//! step that changed it leaves (`Action::Persist`):
//!
//! - the committed tip (height, hash, round-0 slot of the next height) and
//!   the request ids executed so far, so a restarted replica neither
//!   re-decides a height nor executes a request twice;
//! - the round of the height being decided and the proposal accepted in it
//!   (its block's batch named by digest and written once apart from the
//!   state, `Protocol::durable_batches`: the state is rewritten at every
//!   change of round, vote or certificate),
//!   so it never PREPAREs a second block in a round it already voted in
//!   (safety rules 2 and 3) and, as proposer, never proposes twice;
//! - whether its COMMIT for that round went out;
//! - its latest prepared round and value with the block (written once when
//!   it is the accepted block) and the q PREPAREs,
//!   which its ROUND-CHANGEs must carry: a replica that forgot it could let
//!   a round change re-propose a different block after a decision.
//!
//! Everything else — the pool, the messages of the height, the buffer of
//! later heights, the archive served to lagging peers — is rebuilt by
//! catching up, like any replica that fell behind.

use super::{ChainTip, PreparedCertificate, Qbft, state::Instance};
use crate::config::QbftConfig;
use crate::messages::{Block, PreparePayload, Signed};
use bft_core::{Digest, DurableBatches, Executed, NodeContext, Request, RequestPool, batch_digest};
use serde::{Deserialize, Serialize};

/// See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QbftDurable {
    tip_height: u64,
    tip_hash: Digest,
    next_round0_slot: u64,
    executed: Executed,
    round: u64,
    accepted: Option<(Digest, DurableBlock)>,
    sent_commit: bool,
    prepared: Option<DurablePrepared>,
}

/// A block whose batch is named by its digest: the store holds the batch
/// once, apart from the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DurableBlock {
    height: u64,
    parent: Digest,
    proposer: bft_core::NodeId,
    batch: Digest,
}

impl DurableBlock {
    fn of(b: &Block) -> DurableBlock {
        DurableBlock {
            height: b.height,
            parent: b.parent,
            proposer: b.proposer,
            batch: batch_digest(&b.requests),
        }
    }

    /// The block with its batch again; None if `batches` lacks it (a state
    /// `Node::recover` never hands over: it checks that every batch named
    /// is there and hashes to its digest).
    fn restore(&self, batches: &DurableBatches) -> Option<Block> {
        Some(Block {
            height: self.height,
            parent: self.parent,
            proposer: self.proposer,
            requests: batches.get(&self.batch)?.clone(),
        })
    }
}

impl QbftDurable {
    /// The batches it names: the accepted block's and the prepared one's.
    pub(crate) fn batches(&self) -> Vec<Digest> {
        let accepted = self.accepted.as_ref().map(|(_, b)| b.batch);
        let prepared = self.prepared.as_ref().and_then(|p| p.block.as_ref());
        accepted
            .into_iter()
            .chain(prepared.map(|b| b.batch))
            .collect()
    }
}

/// The prepared certificate without a second copy of its block: usually it
/// prepared the block accepted in the current round (`block` None here),
/// and a block is written once, not twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DurablePrepared {
    round: u64,
    digest: Digest,
    /// The prepared block if it is not the accepted one.
    block: Option<DurableBlock>,
    prepares: Vec<Signed<PreparePayload>>,
}

impl DurablePrepared {
    fn of(p: &PreparedCertificate, accepted: Option<&(Digest, Block)>) -> DurablePrepared {
        let same = accepted.is_some_and(|(d, _)| *d == p.digest);
        DurablePrepared {
            round: p.round,
            digest: p.digest,
            block: (!same).then(|| DurableBlock::of(&p.block)),
            prepares: p.prepares.clone(),
        }
    }

    /// The certificate again; None if it named the accepted block and none
    /// was accepted (a state no replica writes).
    fn restore(
        self,
        accepted: Option<&(Digest, Block)>,
        batches: &DurableBatches,
    ) -> Option<PreparedCertificate> {
        let block = match self.block {
            Some(b) => b.restore(batches)?,
            None => accepted.filter(|(d, _)| *d == self.digest)?.1.clone(),
        };
        Some(PreparedCertificate {
            round: self.round,
            digest: self.digest,
            block,
            prepares: self.prepares,
        })
    }
}

/// What identifies a change of the durable state, cheaply: the fields above
/// that change in a step, by value or digest (the executed ids change only
/// with the tip; a prepared certificate is taken once per round).
pub(super) type DurableKey = (u64, u64, Option<Digest>, bool, Option<(u64, Digest)>);

impl Qbft {
    pub(super) fn durable_key(&self) -> DurableKey {
        (
            self.tip.height,
            self.inst.round,
            self.inst.accepted.as_ref().map(|(d, _)| *d),
            self.inst.sent_commit,
            self.prepared(),
        )
    }

    pub fn durable(&self) -> QbftDurable {
        QbftDurable {
            tip_height: self.tip.height,
            tip_hash: self.tip.hash,
            next_round0_slot: self.tip.next_round0_slot,
            executed: self.pool.executed().clone(),
            round: self.inst.round,
            accepted: self
                .inst
                .accepted
                .as_ref()
                .map(|(d, b)| (*d, DurableBlock::of(b))),
            sent_commit: self.inst.sent_commit,
            prepared: self
                .inst
                .prepared
                .as_ref()
                .map(|p| DurablePrepared::of(p, self.inst.accepted.as_ref())),
        }
    }

    /// The batch `digest` of the accepted or the prepared block.
    pub(crate) fn durable_batch(&self, digest: &Digest) -> Option<&[Request]> {
        let accepted = self.inst.accepted.as_ref().map(|(_, b)| b);
        let prepared = self.inst.prepared.as_ref().map(|p| &p.block);
        let blocks = [accepted, prepared].into_iter().flatten();
        bft_core::durable::batch_named(blocks.map(|b| b.requests.as_slice()), digest)
    }

    /// A replica restarted from `d` and the batches it names (see the
    /// module documentation).
    pub fn recover(
        ctx: NodeContext,
        cfg: &QbftConfig,
        d: QbftDurable,
        batches: &DurableBatches,
    ) -> Qbft {
        let mut q = Qbft::new(ctx, cfg);
        q.tip = ChainTip {
            height: d.tip_height,
            hash: d.tip_hash,
            next_round0_slot: d.next_round0_slot,
            committed_at: None,
        };
        q.pool = RequestPool::with_executed(cfg.pool_capacity, d.executed);
        let mut inst = Instance::new(d.tip_height + 1);
        inst.round = d.round;
        let accepted = d
            .accepted
            .and_then(|(digest, b)| Some((digest, b.restore(batches)?)));
        if let Some((digest, block)) = &accepted {
            inst.remember_block(d.round, *digest, block);
        }
        let prepared = d
            .prepared
            .and_then(|p| p.restore(accepted.as_ref(), batches));
        if let Some(p) = &prepared {
            inst.remember_block(p.round, p.digest, &p.block);
        }
        inst.accepted = accepted;
        inst.sent_commit = d.sent_commit;
        inst.prepared = prepared;
        q.inst = inst;
        q.replayed_height = q.inst.height;
        q.restarted_at = Some(q.inst.height);
        q
    }
}
