//! What a HotStuff replica persists, and how it restarts from it.
//!
//! The durable state ([`HotStuffDurable`]) is written before any message of
//! the step that changed it leaves (`Action::Persist`):
//!
//! - the safety state: the last voted view and the lock, so a restarted
//!   replica never votes twice in a view nor for a block that does not
//!   extend its lock (`rules::safe_to_vote`);
//! - the last view it proposed in, so as leader it never proposes a second
//!   block in a view;
//! - its view, the view it last timed out of and its last vote, so it
//!   resumes the pacemaker where it was and can still re-send that vote;
//! - the highest QC and the blocks from the committed tip up to the highQC's
//!   block and to the locked block (those it holds), so the vote rule can
//!   tell what extends the lock and the leader can extend highQC; each
//!   block's batch named by digest and written once apart from the state
//!   (`Protocol::durable_batches`: the state is rewritten at every vote);
//! - the committed tip and the request ids executed so far, so it neither
//!   re-commits a block nor executes a request twice.
//!
//! Everything else — the pool, votes and NEW-VIEWs being collected,
//! orphans, fetches, the archive — is rebuilt by catching up, like any
//! replica that fell behind.

use super::{CommittedTip, HotStuff};
use crate::config::HotStuffConfig;
use crate::rules::SafetyState;
use crate::types::{Block, QuorumCert, Vote};
use bft_core::{
    Digest, DurableBatches, Executed, Height, NodeContext, Request, RequestPool, View, batch_digest,
};
use serde::{Deserialize, Serialize};

/// See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotStuffDurable {
    safety: SafetyState,
    proposed_in: View,
    view: View,
    timed_out: View,
    last_vote: Option<Vote>,
    high_qc: QuorumCert,
    committed: (Digest, View, u64),
    executed: Executed,
    /// The committed tip's block and the uncommitted blocks above it that
    /// lead to the highQC's block or the locked block, by hash.
    blocks: Vec<(Digest, DurableBlock)>,
}

/// A block whose batch is named by its digest: the store holds the batch
/// once, apart from the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DurableBlock {
    parent: Digest,
    view: View,
    height: Height,
    batch: Digest,
    justify: QuorumCert,
}

impl DurableBlock {
    fn of(b: &Block) -> DurableBlock {
        DurableBlock {
            parent: b.parent,
            view: b.view,
            height: b.height,
            batch: batch_digest(&b.batch),
            justify: b.justify.clone(),
        }
    }

    /// The block with its batch again; None if `batches` lacks it (a state
    /// `Node::recover` never hands over: it checks that every batch named
    /// is there and hashes to its digest).
    fn restore(self, batches: &DurableBatches) -> Option<Block> {
        Some(Block {
            parent: self.parent,
            view: self.view,
            height: self.height,
            batch: batches.get(&self.batch)?.clone(),
            justify: self.justify,
        })
    }
}

impl HotStuffDurable {
    /// The batches its blocks name.
    pub(crate) fn batches(&self) -> Vec<Digest> {
        self.blocks.iter().map(|(_, b)| b.batch).collect()
    }
}

/// What identifies a change of the durable state, cheaply: every field
/// above but the block contents (named by hash) and the executed ids (which
/// change only with the committed tip).
pub(super) type DurableKey = (
    SafetyState,
    View,
    View,
    View,
    (View, Digest),
    Digest,
    Vec<Digest>,
);

impl HotStuff {
    pub(super) fn durable_key(&self) -> DurableKey {
        (
            self.safety,
            self.proposed_in,
            self.view,
            self.timed_out,
            (self.high_qc.view, self.high_qc.block),
            self.committed.hash,
            self.durable_chain(),
        )
    }

    /// The committed tip and the blocks above it on the way to the highQC's
    /// block and the locked block, as far as the tree holds them; sorted.
    fn durable_chain(&self) -> Vec<Digest> {
        let mut chain = vec![self.committed.hash];
        for head in [self.high_qc.block, self.safety.locked.hash] {
            let mut cursor = head;
            while let Some(b) = self.blocks.get(&cursor) {
                if b.height <= self.committed.height || chain.contains(&cursor) {
                    break;
                }
                chain.push(cursor);
                cursor = b.parent;
            }
        }
        chain.sort();
        chain
    }

    pub fn durable(&self) -> HotStuffDurable {
        HotStuffDurable {
            safety: self.safety,
            proposed_in: self.proposed_in,
            view: self.view,
            timed_out: self.timed_out,
            last_vote: self.last_vote.clone(),
            high_qc: self.high_qc.clone(),
            committed: (
                self.committed.hash,
                self.committed.view,
                self.committed.height.0,
            ),
            executed: self.pool.executed().clone(),
            blocks: self
                .durable_chain()
                .into_iter()
                .filter_map(|h| self.blocks.get(&h).map(|b| (h, DurableBlock::of(b))))
                .collect(),
        }
    }

    /// The batch `digest` of a block the durable state holds.
    pub(crate) fn durable_batch(&self, digest: &Digest) -> Option<&[Request]> {
        let chain = self.durable_chain();
        let blocks = chain.iter().filter_map(|h| self.blocks.get(h));
        bft_core::durable::batch_named(blocks.map(|b| b.batch.as_slice()), digest)
    }

    /// A replica restarted from `d` and the batches it names (see the
    /// module documentation).
    pub fn recover(
        ctx: NodeContext,
        cfg: &HotStuffConfig,
        d: HotStuffDurable,
        batches: &DurableBatches,
    ) -> HotStuff {
        let mut h = <HotStuff as bft_core::Protocol>::new(ctx, cfg);
        let (hash, view, height) = d.committed;
        h.committed = CommittedTip {
            hash,
            view,
            height: bft_core::Height(height),
        };
        h.blocks = d
            .blocks
            .into_iter()
            .filter_map(|(hash, b)| Some((hash, b.restore(batches)?)))
            .collect();
        h.safety = d.safety;
        h.proposed_in = d.proposed_in;
        h.view = d.view;
        h.timed_out = d.timed_out;
        h.last_vote = d.last_vote;
        // The vote rule refuses every view up to the last voted one anyway
        // (`rules::safe_to_vote`); nothing below it needs considering.
        h.considered_view = d.safety.last_voted_view;
        h.late_considered = d.safety.last_voted_view;
        h.cache_qc(&d.high_qc);
        h.high_qc = d.high_qc;
        h.pool = RequestPool::with_executed(cfg.pool_capacity, d.executed);
        h
    }
}
