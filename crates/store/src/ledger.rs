//! Checks on a ledger read offline: the hash chain of one replica's ledger
//! and how several replicas' ledgers compare.

use bft_core::{Decision, Digest, GENESIS};

/// What is wrong with a ledger's hash chain, if anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainFault {
    /// The first stored decision is not slot 1.
    DoesNotStartAtOne { first: u64 },
    /// Slot `after + 1` is missing.
    Gap { after: u64, next: u64 },
    /// Slot `slot`'s parent is not slot `slot - 1`'s block (or genesis).
    Broken { slot: u64 },
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
        }
    }
}

/// Checks that `decisions` (in slot order) are slots 1, 2, 3, … and that
/// each one's parent is the previous one's block, the first's genesis.
pub fn check_chain(decisions: &[Decision]) -> Result<(), ChainFault> {
    let mut prev: (u64, Digest) = (0, GENESIS);
    for d in decisions {
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
    Ok(())
}

/// How several ledgers compare (`bftbench ledger diff`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LedgerReport {
    /// Each ledger's last slot, in the order given.
    pub tips: Vec<u64>,
    /// The slots 1..=common on which every ledger holds the same block.
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
    /// Compares `ledgers`, each in slot order from slot 1 (check each with
    /// [`check_chain`] first).
    pub fn compare(ledgers: &[&[Decision]]) -> LedgerReport {
        let tips: Vec<u64> = ledgers
            .iter()
            .map(|l| l.last().map_or(0, |d| d.slot))
            .collect();
        let longest = tips.iter().copied().max().unwrap_or(0);
        let mut common = None;
        let mut fork = None;
        for slot in 1..=longest {
            let i = (slot - 1) as usize;
            let mut groups: Vec<(Digest, Vec<usize>)> = Vec::new();
            let mut missing = false;
            for (k, l) in ledgers.iter().enumerate() {
                let Some(d) = l.get(i) else {
                    missing = true;
                    continue;
                };
                match groups.iter_mut().find(|(b, _)| *b == d.block) {
                    Some((_, holders)) => holders.push(k),
                    None => groups.push((d.block, vec![k])),
                }
            }
            if missing && common.is_none() {
                common = Some(slot - 1);
            }
            if groups.len() > 1 {
                common.get_or_insert(slot - 1);
                fork = Some(Fork {
                    slot,
                    groups: groups.into_iter().map(|(_, h)| h).collect(),
                });
                break;
            }
        }
        LedgerReport {
            tips,
            common: common.unwrap_or(longest),
            fork,
        }
    }
}
