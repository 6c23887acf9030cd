//! The safety rules of chained HotStuff (Yin et al., arXiv 1803.05069,
//! Algorithm 4), as small pure functions the replica calls. All of HotStuff's
//! safety is on this screen:
//!
//! 1. **Vote rule** ([`safe_to_vote`]): vote for a block iff its view is above
//!    the last voted view AND (it extends the locked block OR its QC is from a
//!    view above the locked block's view).
//! 2. **Lock rule** ([`lock_after`]): on a block b*, with b'' = b*.justify.block
//!    and b' = b''.justify.block, lock b' if its view is above the locked
//!    block's view (the head of the two-chain).
//! 3. **Commit rule** ([`commit_rule`]): with b = b'.justify.block, commit b
//!    (and its uncommitted ancestors) only if b'' → b' → b are direct parents
//!    in consecutive views: a three-chain with no gap.
//! 4. **QC rule** ([`verify_qc`]): a QC is used (highQC, lock, commit, view
//!    change) only after one aggregate check over exactly (view, block) and a
//!    count of ≥ n−f distinct signers.
//! 5. **Block validity** (what a proposal or fetched block must be before it
//!    is stored or voted on): from its view's leader ([`check_proposer`]),
//!    the first proposal of its view ([`check_first_proposal`]), within the
//!    view horizon ([`check_horizon`]), its parent the block its QC
//!    certifies from an earlier view ([`check_justify`]), one height above
//!    that parent in the QC's view ([`check_parent_link`]), at most
//!    `max_size` requests ([`check_batch_size`]), and, while its parent is
//!    unknown, reachable from the committed block ([`check_orphan`]).
//!
//! The last voted view and the lock are the state a replica must never lose
//! ([`SafetyState`]); a restart that forgets them can equivocate.

use crate::error::HotStuffError;
use crate::types::{Block, QuorumCert, VOTE_DOMAIN, vote_payload};
use bft_core::{Committee, Crypto, Digest, GENESIS, Height, NodeId, View};
use serde::{Deserialize, Serialize};

/// A block named by hash and view (what the rules compare).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    pub hash: Digest,
    pub view: View,
}

impl BlockRef {
    pub const GENESIS: BlockRef = BlockRef {
        hash: GENESIS,
        view: View::ZERO,
    };
}

/// The state the vote rule depends on: `vheight` and `b_lock` of Algorithm 4
/// (in views rather than heights, as the issue and LibraBFT state them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyState {
    /// Highest view this replica has voted in.
    pub last_voted_view: View,
    /// The locked block b_lock.
    pub locked: BlockRef,
}

impl Default for SafetyState {
    fn default() -> Self {
        SafetyState {
            last_voted_view: View::ZERO,
            locked: BlockRef::GENESIS,
        }
    }
}

/// What the vote rule needs to know about a proposed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub view: View,
    /// View of the QC the block carries (b*.justify.view).
    pub justify_view: View,
    /// Whether the block has the locked block among its ancestors.
    pub extends_locked: bool,
}

/// **Vote rule** (Algorithm 4 `safeNode` with the `vheight` check of
/// `onReceiveProposal`): vote iff
/// `view > last_voted_view` AND (`extends_locked` OR `justify_view > locked.view`).
///
/// - The first conjunct makes a replica vote at most once per view (no
///   double vote, hence at most one QC per view).
/// - The disjunction is the heart of HotStuff: *safety* comes from
///   `extends_locked`; *liveness* comes from `justify_view > locked.view`,
///   which lets a replica locked on a block that never reached a three-chain
///   follow a leader holding a newer QC. AND instead of OR loses liveness
///   after a view change; dropping the first conjunct (or OR for the outer
///   AND) allows double votes; `>=` instead of `>` lets a QC from the
///   locked view unlock a replica onto a conflicting branch.
pub fn safe_to_vote(state: &SafetyState, block: &Candidate) -> bool {
    block.view > state.last_voted_view
        && (block.extends_locked || block.justify_view > state.locked.view)
}

/// **Lock rule** (Algorithm 4 `update`: `if b'.height > b_lock.height then
/// b_lock ← b'`): given the two-chain head b' = b*.justify.block.justify.block,
/// returns the new lock. Locks only move up.
pub fn lock_after(locked: BlockRef, two_chain_head: BlockRef) -> BlockRef {
    if two_chain_head.view > locked.view {
        two_chain_head
    } else {
        locked
    }
}

/// A block on a QC chain: its hash, view and parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainLink {
    pub hash: Digest,
    pub view: View,
    pub parent: Digest,
}

/// **Commit rule** (Algorithm 4 `update`: `if (b''.parent = b') ∧ (b'.parent =
/// b) then onCommit(b)`): b'' = b*.justify.block, b' = b''.justify.block,
/// b = b'.justify.block. b is committed iff b'' → b' → b are *direct*
/// parents. In the paper heights equal views (failed views leave dummy
/// blocks), so "direct parent" means both parent links hold AND the views are
/// consecutive. Parent links alone are not enough: with a view gap between b
/// and b', a conflicting block may have gathered a QC in the gap view and
/// locked other replicas elsewhere (the "indirect chain" bug).
pub fn commit_rule(b2: &ChainLink, b1: &ChainLink, b0: &ChainLink) -> bool {
    b2.parent == b1.hash
        && b1.parent == b0.hash
        && b2.view == b1.view.next()
        && b1.view == b0.view.next()
}

/// The vote rule the replica runs: [`safe_to_vote`], or the planted mutant
/// `[hotstuff] mutant` selects (feature `mutants`).
#[cfg(feature = "mutants")]
pub fn safe_to_vote_as(
    mutant: Option<crate::config::HotStuffMutant>,
    state: &SafetyState,
    block: &Candidate,
) -> bool {
    use crate::config::HotStuffMutant;
    match mutant {
        // MUTANT(vote-rule-and): the inner OR of the vote rule is AND.
        Some(HotStuffMutant::VoteRuleAnd) => {
            block.view > state.last_voted_view
                && (block.extends_locked && block.justify_view > state.locked.view)
        }
        // MUTANT(vote-rule-or): the outer AND of the vote rule is OR.
        Some(HotStuffMutant::VoteRuleOr) => {
            block.view > state.last_voted_view
                || (block.extends_locked || block.justify_view > state.locked.view)
        }
        _ => safe_to_vote(state, block),
    }
}

/// The commit rule the replica runs: [`commit_rule`], or the planted mutant
/// (feature `mutants`).
#[cfg(feature = "mutants")]
pub fn commit_rule_as(
    mutant: Option<crate::config::HotStuffMutant>,
    b2: &ChainLink,
    b1: &ChainLink,
    b0: &ChainLink,
) -> bool {
    match mutant {
        // MUTANT(commit-indirect-chain): parent links only, views may gap.
        Some(crate::config::HotStuffMutant::CommitIndirectChain) => {
            b2.parent == b1.hash && b1.parent == b0.hash
        }
        _ => commit_rule(b2, b1, b0),
    }
}

/// **QC rule**: a QC is accepted iff it is the genesis QC, or
/// - its signer bitmap fits the committee (no bit beyond n−1),
/// - it names at least n−f distinct signers (a bitmap cannot name one twice),
/// - its aggregate signature verifies, with one pairing check whatever n is,
///   over exactly `vote_payload(view, block)` under [`VOTE_DOMAIN`], against
///   keys whose proofs of possession were checked when the committee's
///   crypto was built (`bft_crypto::VerifiedKeys`), which rules out rogue
///   keys.
///
/// A wrong view or block changes the signed bytes, so the aggregate fails.
pub fn verify_qc(
    committee: &Committee,
    crypto: &dyn Crypto,
    qc: &QuorumCert,
) -> Result<(), HotStuffError> {
    if qc.view == View::ZERO {
        return if qc.is_genesis() {
            Ok(())
        } else {
            Err(HotStuffError::QcBadGenesis)
        };
    }
    if !qc.signature.signers.fits(committee.n()) {
        return Err(HotStuffError::QcBadBitmap);
    }
    let signers = qc.signature.signers.count();
    let quorum = committee.quorum_n_minus_f();
    if signers < quorum {
        return Err(HotStuffError::QcTooFewSigners { signers, quorum });
    }
    crypto
        .bls_verify_aggregate(
            VOTE_DOMAIN,
            &vote_payload(qc.view, &qc.block),
            &qc.signature,
        )
        .map_err(|_| HotStuffError::QcBadSignature)
}

// ----------------------------------------------------------------------
// Block validity
// ----------------------------------------------------------------------

/// **Proposer rule**: a proposal for view v comes from leader(v)
/// (`wrong-proposer`). HotStuff messages carry no author: the sender is the
/// authenticated transport sender.
pub fn check_proposer(view: View, from: NodeId, leader: NodeId) -> Result<(), HotStuffError> {
    if from != leader {
        return Err(HotStuffError::WrongProposer { view, from, leader });
    }
    Ok(())
}

/// **View horizon**: a proposal more than `future_views` ahead of the
/// current view (`horizon`) is refused (`view-too-far`), so a Byzantine
/// leader of a far view moves no one and nothing is buffered for it.
pub fn check_horizon(view: View, horizon: View, current: View) -> Result<(), HotStuffError> {
    if view > horizon {
        return Err(HotStuffError::ViewTooFar { view, current });
    }
    Ok(())
}

/// **One proposal per view**: only the first block proposed for a view is
/// considered (`seen`: its hash, if one was). The same block again is a
/// `duplicate-block`; another one is an `equivocating-proposal`.
pub fn check_first_proposal(
    view: View,
    seen: Option<&Digest>,
    hash: &Digest,
) -> Result<(), HotStuffError> {
    match seen {
        None => Ok(()),
        Some(seen) if seen == hash => Err(HotStuffError::DuplicateBlock),
        Some(_) => Err(HotStuffError::EquivocatingProposal { view }),
    }
}

/// **Justify rule** (Algorithm 4 `createLeaf(qc_high.node)`): a block's
/// parent is the block its QC certifies, and the QC is from an earlier view
/// than the block (`justify-mismatch`).
pub fn check_justify(block: &Block) -> Result<(), HotStuffError> {
    if block.parent != block.justify.block || block.justify.view >= block.view {
        return Err(HotStuffError::JustifyMismatch);
    }
    Ok(())
}

/// **Parent link**: a block is one height above its parent, and its QC
/// (view `qc_view`) is from the parent's view (`bad-height`). With
/// [`check_justify`] this makes the tree a hash chain of certified blocks.
pub fn check_parent_link(
    block: &Block,
    qc_view: View,
    parent_height: Height,
    parent_view: View,
) -> Result<(), HotStuffError> {
    if block.height != parent_height.next() || qc_view != parent_view {
        return Err(HotStuffError::BadHeight {
            height: block.height,
        });
    }
    Ok(())
}

/// **Batch size**: a block carries at most `max_size` requests (the most an
/// honest leader cuts), so a Byzantine leader cannot make everyone vote on,
/// store and serve an arbitrarily large block (`oversized-block`).
pub fn check_batch_size(block: &Block, max_size: usize) -> Result<(), HotStuffError> {
    let max = max_size.max(1);
    if block.batch.len() > max {
        return Err(HotStuffError::OversizedBlock {
            len: block.batch.len(),
            max,
        });
    }
    Ok(())
}

/// **Orphan rule**, for a block whose parent is unknown, checked before its
/// QC costs a pairing and before it takes an orphan or fetch slot:
/// - its QC is not older than the committed block (view `committed_view`):
///   a QC that old certifies a committed block already pruned or a fork
///   below the committed block, whose parent can never be adopted
///   (`parent-below-commit`);
/// - its height is reachable from the committed block: heights grow by one
///   per block and views by at least one, so a descendant at view v is at
///   most `v − committed view` blocks above the committed height
///   (`bad-height`).
pub fn check_orphan(
    block: &Block,
    committed_view: View,
    committed_height: Height,
) -> Result<(), HotStuffError> {
    if block.justify.view < committed_view {
        return Err(HotStuffError::ParentBelowCommit {
            qc_view: block.justify.view,
            committed: committed_view,
        });
    }
    let reach = block.view.0.saturating_sub(committed_view.0);
    if block.height.0 > committed_height.0.saturating_add(reach) {
        return Err(HotStuffError::BadHeight {
            height: block.height,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(i: u8) -> Digest {
        Digest([i; 32])
    }

    fn state(last_voted: u64, locked_view: u64) -> SafetyState {
        SafetyState {
            last_voted_view: View(last_voted),
            locked: BlockRef {
                hash: digest(9),
                view: View(locked_view),
            },
        }
    }

    fn candidate(view: u64, justify_view: u64, extends_locked: bool) -> Candidate {
        Candidate {
            view: View(view),
            justify_view: View(justify_view),
            extends_locked,
        }
    }

    /// Locked at view 5 on a branch; a new leader after a view change holds a
    /// QC from view 6 on another branch. The correct rule votes (liveness
    /// disjunct). A rule with AND inside safeNode refuses here.
    #[test]
    fn vote_rule_follows_a_newer_qc_on_another_branch_and_is_not_and() {
        let s = state(7, 5);
        let unlocked_by_newer_qc = candidate(8, 6, false);
        assert!(safe_to_vote(&s, &unlocked_by_newer_qc));
        let and_rule = |s: &SafetyState, b: &Candidate| {
            b.view > s.last_voted_view && b.extends_locked && b.justify_view > s.locked.view
        };
        assert!(
            !and_rule(&s, &unlocked_by_newer_qc),
            "scenario distinguishes the rules"
        );
    }

    /// Locked at view 5; a proposal conflicting with the lock whose QC is from
    /// view 4 (older than the lock). Voting for it could finish a QC on a
    /// branch conflicting with a block another replica may already commit.
    /// The correct rule refuses; a rule that drops the AND with the view
    /// check (OR everywhere) or uses `>=` accepts.
    #[test]
    fn vote_rule_refuses_a_conflicting_block_with_an_older_or_equal_qc() {
        let s = state(7, 5);
        for justify_view in [4, 5] {
            let conflicting = candidate(8, justify_view, false);
            assert!(!safe_to_vote(&s, &conflicting), "justify {justify_view}");
        }
        let ge_rule = |s: &SafetyState, b: &Candidate| {
            b.view > s.last_voted_view && (b.extends_locked || b.justify_view >= s.locked.view)
        };
        assert!(
            ge_rule(&s, &candidate(8, 5, false)),
            "scenario distinguishes"
        );
    }

    /// A replica that already voted in view 8 refuses any second block of view
    /// 8 (or lower), even one extending its lock: the outer AND is what stops
    /// double votes. Weakening the outer AND to OR accepts.
    #[test]
    fn vote_rule_votes_once_per_view_outer_and_is_not_or() {
        let s = state(8, 5);
        let second_in_same_view = candidate(8, 7, true);
        assert!(!safe_to_vote(&s, &second_in_same_view));
        assert!(!safe_to_vote(&s, &candidate(6, 5, true)));
        assert!(safe_to_vote(&s, &candidate(9, 8, true)));
        let or_rule = |s: &SafetyState, b: &Candidate| {
            b.view > s.last_voted_view || b.extends_locked || b.justify_view > s.locked.view
        };
        assert!(or_rule(&s, &second_in_same_view), "scenario distinguishes");
    }

    #[test]
    fn lock_only_moves_up() {
        let a = BlockRef {
            hash: digest(1),
            view: View(4),
        };
        let b = BlockRef {
            hash: digest(2),
            view: View(6),
        };
        assert_eq!(lock_after(a, b), b);
        assert_eq!(lock_after(b, a), b);
        assert_eq!(lock_after(b, b), b);
    }

    fn link(hash: u8, view: u64, parent: u8) -> ChainLink {
        ChainLink {
            hash: digest(hash),
            view: View(view),
            parent: digest(parent),
        }
    }

    #[test]
    fn commit_rule_needs_a_direct_three_chain() {
        let b = link(1, 5, 0);
        let b1 = link(2, 6, 1);
        let b2 = link(3, 7, 2);
        assert!(commit_rule(&b2, &b1, &b));
    }

    /// b ← b' ← b'' linked by parent hashes, but view 6 failed between b (5)
    /// and b' (7). The correct rule refuses; a rule that checks only parent
    /// links (the "indirect chain" bug) accepts.
    #[test]
    fn commit_rule_refuses_an_indirect_chain_with_a_view_gap() {
        let b = link(1, 5, 0);
        let b1 = link(2, 7, 1);
        let b2 = link(3, 8, 2);
        assert!(!commit_rule(&b2, &b1, &b));
        let gap_after = (link(1, 5, 0), link(2, 6, 1), link(3, 8, 2));
        assert!(!commit_rule(&gap_after.2, &gap_after.1, &gap_after.0));
        let links_only = |b2: &ChainLink, b1: &ChainLink, b0: &ChainLink| {
            b2.parent == b1.hash && b1.parent == b0.hash
        };
        assert!(links_only(&b2, &b1, &b), "scenario distinguishes");
    }

    #[test]
    fn commit_rule_refuses_a_broken_parent_link() {
        let b = link(1, 5, 0);
        let b1 = link(2, 6, 4);
        let b2 = link(3, 7, 2);
        assert!(!commit_rule(&b2, &b1, &b));
    }
}
