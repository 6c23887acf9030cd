//! The state of one height's consensus instance (`Instance`) and the
//! buffer for messages of heights above ours (`FutureBuffer`), each
//! bounded per sender so memory is O(n) whatever a Byzantine validator
//! sends.

use super::PreparedCertificate;
use crate::error::QbftError;
use crate::messages::{Block, CommitPayload, PreparePayload, QbftMessage, RoundChange, Signed};
use bft_core::{Digest, NodeId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Blocks of the current height kept by (round, digest) — accepted
/// proposals, proposals that arrived after we left their round, the blocks of
/// validated round changes — so q COMMITs can finalize whichever one they
/// seal. At most [`MAX_BLOCKS_PER_ROUND`] per round (an equivocating proposer
/// fills only its own round's slots) and [`MAX_KNOWN_BLOCKS`] in all; when
/// full, the block fewest validators committed goes first (the oldest round
/// on a tie), so a block COMMITs point to is never crowded out by blocks
/// nobody honest committed (`Instance::remember_block`).
const MAX_KNOWN_BLOCKS: usize = 16;
const MAX_BLOCKS_PER_ROUND: usize = 2;
/// Rounds of COMMITs kept per sender within a height.
const MAX_COMMIT_ROUNDS_PER_SENDER: usize = 4;
/// Different digests COMMITted by one sender in one round that are kept (an
/// honest sender commits one; a Byzantine one gains nothing by being
/// counted towards two, quorum intersection is about honest votes).
pub(super) const MAX_COMMIT_DIGESTS_PER_ROUND: usize = 2;
/// COMMITs kept per sender within a height.
const MAX_COMMITS_PER_SENDER: usize = MAX_COMMIT_ROUNDS_PER_SENDER * MAX_COMMIT_DIGESTS_PER_ROUND;
/// A block of the current height (from a PROPOSAL or a ROUND-CHANGE's
/// prepared certificate), kept so q COMMIT seals can finalize it.
#[derive(Clone, Debug)]
pub(super) struct KnownBlock {
    pub(super) block: Block,
}

/// State of the consensus instance for one height. Per-validator maps keep
/// one entry per sender (its latest round), so memory is O(n) whatever a
/// Byzantine validator sends.
#[derive(Debug)]
pub(super) struct Instance {
    pub(super) height: u64,
    pub(super) round: u64,
    /// The proposal accepted in `round` (Dafny `proposalAcceptedForCurrentRound`).
    pub(super) accepted: Option<(Digest, Block)>,
    /// Whether our COMMIT for `round` has gone out.
    pub(super) sent_commit: bool,
    /// Latest prepared round/value of this height (survives round changes).
    pub(super) prepared: Option<PreparedCertificate>,
    pub(super) known_blocks: BTreeMap<(u64, Digest), KnownBlock>,
    pub(super) prepares: BTreeMap<NodeId, Signed<PreparePayload>>,
    /// COMMITs by (sender, round, digest): up to [`MAX_COMMITS_PER_SENDER`]
    /// per sender, its highest rounds kept, so a sender's later-round COMMIT
    /// does not hide the one that completed a quorum in an earlier round; up
    /// to [`MAX_COMMIT_DIGESTS_PER_ROUND`] digests per (sender, round), so a
    /// double-voting validator's conflicting COMMIT, arriving first, does not
    /// shut out its COMMIT for the block a quorum decided.
    pub(super) commits: BTreeMap<(NodeId, u64, Digest), Signed<CommitPayload>>,
    pub(super) round_changes: BTreeMap<NodeId, RoundChange>,
    /// The round (of this height) in which we learnt that q replicas have
    /// reached it (see [`Qbft::note_round_quorum`]).
    pub(super) round_quorum: Option<u64>,
}

impl Instance {
    pub(super) fn new(height: u64) -> Instance {
        Instance {
            height,
            round: 0,
            accepted: None,
            sent_commit: false,
            prepared: None,
            known_blocks: BTreeMap::new(),
            prepares: BTreeMap::new(),
            commits: BTreeMap::new(),
            round_changes: BTreeMap::new(),
            round_quorum: None,
        }
    }

    /// Keeps `block` under (round, digest), within the bounds above.
    ///
    /// Liveness rule: a full round or a full store does
    /// not refuse a block outright; it evicts the block least worth keeping
    /// (see [`Instance::keep_priority`]), the newcomer itself on a tie. A
    /// decided block has q ≥ f+1 distinct committers, more than any block
    /// only Byzantine validators committed, so once its COMMITs are in it
    /// displaces an equivocating proposer's made-up blocks instead of being
    /// dropped — otherwise a replica holding q COMMITs could never store the
    /// block they seal and would be stranded at this height. Memory stays
    /// bounded: the per-round and total caps are unchanged. Regression
    /// tests: `equivocating_proposer_filling_a_round_with_two_blocks_cannot_strand_a_replica`,
    /// `committed_block_is_kept_and_decided_despite_a_flood_of_later_round_blocks`.
    pub(super) fn remember_block(&mut self, round: u64, digest: Digest, block: &Block) {
        if self.known_blocks.contains_key(&(round, digest)) {
            return;
        }
        let known = KnownBlock {
            block: block.clone(),
        };
        self.known_blocks.insert((round, digest), known);
        self.bound_round(round, digest);
        self.bound_total();
    }

    /// Enforces [`MAX_BLOCKS_PER_ROUND`]: while `round` holds too many
    /// blocks, evicts the one with the lowest keep priority, the `newcomer`
    /// first on a tie (an equivocating proposer's third uncommitted block
    /// never displaces the first two).
    fn bound_round(&mut self, round: u64, newcomer: Digest) {
        loop {
            let in_round: Vec<Digest> = self
                .known_blocks
                .range((round, Digest::ZERO)..)
                .take_while(|((r, _), _)| *r == round)
                .map(|((_, d), _)| *d)
                .collect();
            if in_round.len() <= MAX_BLOCKS_PER_ROUND {
                return;
            }
            let victim = in_round
                .into_iter()
                .min_by_key(|d| (self.keep_priority(d), *d != newcomer));
            if let Some(d) = victim {
                self.known_blocks.remove(&(round, d));
            }
        }
    }

    /// Enforces [`MAX_KNOWN_BLOCKS`]: evicts the block with the lowest keep
    /// priority, the oldest round first on a tie (so Byzantine later-round
    /// blocks cannot evict a block that COMMITs point to).
    fn bound_total(&mut self) {
        while self.known_blocks.len() > MAX_KNOWN_BLOCKS {
            let victim = self
                .known_blocks
                .keys()
                .min_by_key(|(r, d)| (self.keep_priority(d), *r))
                .copied();
            if let Some(key) = victim {
                self.known_blocks.remove(&key);
            }
        }
    }

    /// How much a block is worth keeping: the accepted and the prepared
    /// block always stay (we voted for them); any other block ranks by the
    /// distinct validators with a verified COMMIT for its digest at this
    /// height (Byzantine ones alone reach at most f).
    fn keep_priority(&self, digest: &Digest) -> usize {
        let ours = self.accepted.as_ref().is_some_and(|(d, _)| d == digest)
            || self.prepared.as_ref().is_some_and(|p| p.digest == *digest);
        if ours {
            return usize::MAX;
        }
        self.commits
            .values()
            .filter(|c| c.payload.digest == *digest)
            .map(|c| c.author)
            .collect::<BTreeSet<_>>()
            .len()
    }

    fn known(&self, digest: &Digest) -> Option<&KnownBlock> {
        self.known_blocks
            .iter()
            .find(|((_, d), _)| d == digest)
            .map(|(_, k)| k)
    }

    /// The block decided in `round` with hash `digest`: the entry of that
    /// round, else the same block known from another round.
    pub(super) fn for_archive(&self, round: u64, digest: &Digest) -> Option<&KnownBlock> {
        self.known_blocks
            .get(&(round, *digest))
            .or_else(|| self.known(digest))
    }

    pub(super) fn block(&self, digest: &Digest) -> Option<&Block> {
        self.known(digest).map(|k| &k.block)
    }

    /// `sender`'s COMMITs, lowest round first.
    pub(super) fn commit_keys_of(&self, sender: NodeId) -> Vec<(NodeId, u64, Digest)> {
        self.commits
            .range((sender, 0, Digest::ZERO)..)
            .take_while(|((author, _, _), _)| *author == sender)
            .map(|(key, _)| *key)
            .collect()
    }

    /// Keeps at most [`MAX_COMMITS_PER_SENDER`] of `sender`'s COMMITs,
    /// dropping its lowest rounds.
    pub(super) fn bound_commits_of(&mut self, sender: NodeId) {
        let keys = self.commit_keys_of(sender);
        let excess = keys.len().saturating_sub(MAX_COMMITS_PER_SENDER);
        for key in keys.into_iter().take(excess) {
            self.commits.remove(&key);
        }
    }

    pub(super) fn retained(&self) -> usize {
        self.known_blocks.len()
            + self.prepares.len()
            + self.commits.len()
            + self.round_changes.len()
            + usize::from(self.prepared.is_some())
    }
}

/// Messages for heights above ours, per sender, bounded per sender: a
/// flooding peer only ever evicts its own messages.
#[derive(Debug)]
pub(super) struct FutureBuffer {
    pub(super) per_peer: BTreeMap<NodeId, VecDeque<QbftMessage>>,
    pub(super) cap_per_peer: usize,
}

impl FutureBuffer {
    pub(super) fn push(&mut self, from: NodeId, msg: QbftMessage) -> Result<(), QbftError> {
        let queue = self.per_peer.entry(from).or_default();
        if queue.len() >= self.cap_per_peer {
            return Err(QbftError::FutureBufferFull(from));
        }
        queue.push_back(msg);
        Ok(())
    }

    /// Removes messages below `height` and returns those at `height`, in
    /// sender order then arrival order.
    pub(super) fn take_height(&mut self, height: u64) -> Vec<(NodeId, QbftMessage)> {
        let mut ready = Vec::new();
        for (from, queue) in self.per_peer.iter_mut() {
            let mut keep = VecDeque::with_capacity(queue.len());
            for msg in queue.drain(..) {
                match msg.height().cmp(&height) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => ready.push((*from, msg)),
                    std::cmp::Ordering::Greater => keep.push_back(msg),
                }
            }
            *queue = keep;
        }
        self.per_peer.retain(|_, q| !q.is_empty());
        ready
    }

    pub(super) fn len(&self) -> usize {
        self.per_peer.values().map(VecDeque::len).sum()
    }
}
