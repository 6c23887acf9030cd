//! Checks on a ledger read offline: the hash chain of one replica's ledger
//! and how several replicas' ledgers compare.

use bft_core::{Decision, Digest, GENESIS};
use std::collections::{BTreeMap, BTreeSet};

/// A snapshot the replica installed: its ledger resumed after `block` at
/// the mark's slot, having reached slot `after` before (so the decisions up
/// to `after` must all be there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotMark {
    pub after: u64,
    pub block: Digest,
}

/// What is wrong with a ledger's hash chain, if anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainFault {
    /// The first stored decision is not slot 1 (and no snapshot precedes it).
    DoesNotStartAtOne { first: u64 },
    /// Slot `after + 1` is missing.
    Gap { after: u64, next: u64 },
    /// Slot `slot`'s parent is not slot `slot - 1`'s block (or genesis, or
    /// the block of the snapshot before it).
    Broken { slot: u64 },
    /// A snapshot at `slot` was installed after slot `after`, but the
    /// ledger before it ends at `tip`.
    SnapshotMisplaced { slot: u64, after: u64, tip: u64 },
}

impl std::fmt::Display for ChainFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainFault::DoesNotStartAtOne { first } => {
                write!(f, "the ledger starts at slot {first}, not 1")
            }
            ChainFault::Gap { after, next } => {
                write!(f, "slots {}..{} are missing", after + 1, next)
            }
            ChainFault::Broken { slot } => write!(
                f,
                "slot {slot}'s parent is not slot {}'s block: the hash chain is broken",
                slot - 1
            ),
            ChainFault::SnapshotMisplaced { slot, after, tip } => write!(
                f,
                "a snapshot at slot {slot} was installed after slot {after}, but the ledger before it ends at slot {tip}"
            ),
        }
    }
}

/// Checks that `decisions` (in slot order) are slots 1, 2, 3, … and that
/// each one's parent is the previous one's block, the first's genesis —
/// except that the ledger resumes after each installed snapshot (`snapshots`
/// by slot): the ledger before it must end exactly at the mark's `after`,
/// the next decision is the snapshot's slot + 1, its parent the snapshot's
/// block. Returns the ledger's tip (slot, block).
pub fn check_chain(
    decisions: &[Decision],
    snapshots: &BTreeMap<u64, SnapshotMark>,
) -> Result<(u64, Digest), ChainFault> {
    let mut prev: (u64, Digest) = (0, GENESIS);
    let mut marks = snapshots.iter().peekable();
    let resume = |prev: &mut (u64, Digest), slot: u64, mark: &SnapshotMark| {
        if mark.after != prev.0 || slot <= prev.0 {
            return Err(ChainFault::SnapshotMisplaced {
                slot,
                after: mark.after,
                tip: prev.0,
            });
        }
        *prev = (slot, mark.block);
        Ok(())
    };
    for d in decisions {
        while let Some((&slot, mark)) = marks.next_if(|(slot, _)| **slot < d.slot) {
            resume(&mut prev, slot, mark)?;
        }
        if prev.0 == 0 && d.slot != 1 {
            return Err(ChainFault::DoesNotStartAtOne { first: d.slot });
        }
        if d.slot != prev.0 + 1 {
            return Err(ChainFault::Gap {
                after: prev.0,
                next: d.slot,
            });
        }
        if d.parent != prev.1 {
            return Err(ChainFault::Broken { slot: d.slot });
        }
        prev = (d.slot, d.block);
    }
    for (&slot, mark) in marks {
        resume(&mut prev, slot, mark)?;
    }
    Ok(prev)
}

/// How several ledgers compare (`bftbench ledger diff`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LedgerReport {
    /// Each ledger's last slot, in the order given.
    pub tips: Vec<u64>,
    /// The slots 1..=common every ledger has reached without holding a
    /// different block from another's.
    pub common: u64,
    /// The first slot that two ledgers both hold with different blocks, and
    /// the index of each block's holders; None when every ledger is a prefix
    /// of the longest (some are only behind).
    pub fork: Option<Fork>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Fork {
    pub slot: u64,
    /// Ledger indices grouped by the block they hold at `slot`.
    pub groups: Vec<Vec<usize>>,
}

impl LedgerReport {
    /// Compares `ledgers`, each the blocks a ledger holds by slot (its
    /// decisions and the snapshots it installed; check each with
    /// [`check_chain`] first). A slot a ledger skipped by a snapshot is no
    /// disagreement; the common prefix ends at the lowest tip, or before
    /// the first slot two ledgers hold with different blocks.
    pub fn compare(ledgers: &[BTreeMap<u64, Digest>]) -> LedgerReport {
        let tips: Vec<u64> = ledgers
            .iter()
            .map(|l| l.last_key_value().map_or(0, |(&s, _)| s))
            .collect();
        let lowest = tips.iter().copied().min().unwrap_or(0);
        let slots: BTreeSet<u64> = ledgers.iter().flat_map(|l| l.keys().copied()).collect();
        let mut fork = None;
        for slot in slots {
            let mut groups: Vec<(Digest, Vec<usize>)> = Vec::new();
            for (k, l) in ledgers.iter().enumerate() {
                let Some(block) = l.get(&slot) else {
                    continue;
                };
                match groups.iter_mut().find(|(b, _)| b == block) {
                    Some((_, holders)) => holders.push(k),
                    None => groups.push((*block, vec![k])),
                }
            }
            if groups.len() > 1 {
                fork = Some(Fork {
                    slot,
                    groups: groups.into_iter().map(|(_, h)| h).collect(),
                });
                break;
            }
        }
        let common = fork
            .as_ref()
            .map_or(lowest, |f| lowest.min(f.slot.saturating_sub(1)));
        LedgerReport { tips, common, fork }
    }
}
