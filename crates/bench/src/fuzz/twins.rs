//! Exhaustive Twins: every split of the instances into at most two groups
//! and every leader, per round, for a bounded number of rounds; case `k`
//! is the `k`-th scenario of that enumeration.

use super::FuzzOptions;
use super::generate::{duration_for, fuzz_setting, ms};
use crate::BenchError;
use crate::protocols::BenchProtocol;
use crate::scenario::{LeadersTable, ProtocolName, Scenario};
use bft_core::{BatchConfig, NodeId};
use bft_sim::{NetworkConfig, Twins};
use std::time::Duration;

/// Most instances an exhaustive enumeration takes: 2^(instances − 1) splits
/// per round must fit a `u64` many times over, and no one runs more.
pub(super) const MAX_TWINS_INSTANCES: usize = 24;
/// Message delays of an enumerated case: uniform in 1 ms..this. The
/// adversary is the partition and leader schedule; the delays are seeded by
/// the case seed, as in sampled cases.
pub(super) const TWINS_MAX_DELAY: u64 = 10;

/// The bound of an exhaustive Twins enumeration (Bano et al., 2022, §4:
/// "exhaustive enumeration for small bounds"): `nodes` replicas, the first
/// `twins` of them (nodes `0..twins`, the canonical choice: every leader and
/// every split is enumerated anyway, so which identities are twinned only
/// relabels nodes) run as two instances, for `rounds` rounds.
///
/// Each round picks one of the [`TwinsBound::splits`] unordered partitions of
/// the `nodes + twins` instances into at most two groups (a split and its
/// complement are the same split, and "everyone together" is one of them),
/// and the leader of that round's view (`nodes` choices). Scenario `k` in
/// `0..count()` is `k` written in base `splits · nodes`, round 0 the most
/// significant digit (so the enumeration varies the last round fastest);
/// each digit `d` is split `d / nodes` and leader `d mod nodes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TwinsBound {
    pub nodes: usize,
    pub twins: usize,
    pub rounds: usize,
}

/// One round of an enumerated scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TwinsRound {
    /// Which instances are apart: see [`split_groups`].
    pub split: u64,
    /// The leader of the round's view.
    pub leader: NodeId,
}

impl TwinsBound {
    /// A bound an enumeration can count: at least one replica and round, at
    /// most `nodes` twins, and at most 2^64 − 1 scenarios.
    pub fn new(nodes: usize, twins: usize, rounds: usize) -> Result<TwinsBound, BenchError> {
        let bound = TwinsBound {
            nodes,
            twins,
            rounds,
        };
        if nodes == 0 || rounds == 0 {
            return Err(BenchError::Unsupported(
                "exhaustive Twins needs at least one node and one round".into(),
            ));
        }
        if twins > nodes || nodes + twins > MAX_TWINS_INSTANCES {
            return Err(BenchError::Unsupported(format!(
                "exhaustive Twins: {twins} twins of {nodes} nodes (at most n twins and {MAX_TWINS_INSTANCES} instances)"
            )));
        }
        bound.count()?;
        Ok(bound)
    }

    /// Instances: the nodes and their twins.
    pub fn instances(&self) -> usize {
        self.nodes + self.twins
    }

    /// Unordered splits of the instances into at most two groups:
    /// 2^(instances − 1).
    pub fn splits(&self) -> u64 {
        1u64 << self.instances().saturating_sub(1).min(63)
    }

    /// Choices per round: splits × leaders.
    pub fn per_round(&self) -> u64 {
        self.splits().saturating_mul(self.nodes as u64)
    }

    /// Scenarios in the enumeration: `per_round^rounds`.
    pub fn count(&self) -> Result<u64, BenchError> {
        u32::try_from(self.rounds)
            .ok()
            .and_then(|r| self.per_round().checked_pow(r))
            .ok_or_else(|| {
                BenchError::Unsupported(format!(
                    "exhaustive Twins: {}^{} scenarios do not fit in 64 bits; sample instead (no --exhaustive)",
                    self.per_round(),
                    self.rounds
                ))
            })
    }

    /// Scenario `k`'s rounds, or `None` past the end.
    pub fn decode(&self, k: u64) -> Option<Vec<TwinsRound>> {
        if k >= self.count().ok()? {
            return None;
        }
        let base = self.per_round();
        let n = self.nodes as u64;
        let mut digits: Vec<TwinsRound> = (0..self.rounds)
            .scan(k, |rest, _| {
                let d = *rest % base;
                *rest /= base;
                Some(TwinsRound {
                    split: d / n,
                    leader: NodeId(u16::try_from(d % n).ok()?),
                })
            })
            .collect();
        digits.reverse();
        Some(digits)
    }

    /// The number of a scenario: the inverse of [`TwinsBound::decode`].
    pub fn encode(&self, rounds: &[TwinsRound]) -> Option<u64> {
        if rounds.len() != self.rounds {
            return None;
        }
        let n = self.nodes as u64;
        rounds.iter().try_fold(0u64, |k, r| {
            let leader = r.leader.index() as u64;
            if r.split >= self.splits() || leader >= n {
                return None;
            }
            k.checked_mul(self.per_round())?
                .checked_add(r.split * n + leader)
        })
    }
}

/// The groups of split `split` of `instances` instances: instance `i <
/// instances − 1` is apart (in the second group) iff bit `i` of `split` is
/// set; the last instance always stays in the first group, which is what
/// makes each unordered split appear once. Split 0 is everyone together.
pub fn split_groups(instances: usize, split: u64) -> Vec<Vec<u16>> {
    let (apart, together): (Vec<u16>, Vec<u16>) = (0..instances)
        .filter_map(|i| u16::try_from(i).ok())
        .partition(|&i| i < 63 && usize::from(i) + 1 < instances && (split >> i) & 1 == 1);
    if apart.is_empty() {
        vec![together]
    } else {
        vec![together, apart]
    }
}

/// The length of one Twins round: the protocol's base view timeout
/// (`[pbft] view_change_timeout`, `[qbft] round_timeout`, `[hotstuff]
/// view_timeout`: 200, 200 and 500 ms by default), so that one round is
/// about one view.
///
/// Bano et al. (2022) advance Twins rounds with the protocol's rounds; the
/// simulator's rounds are spans of virtual time (`bft_sim::Twins`). A round
/// whose split leaves no side with a quorum makes no progress, so its view
/// lasts one view timeout, and every replica's timer moves it to the next
/// view — the one the next round's pinned leader leads (PBFT, QBFT). In
/// HotStuff a replica leaves a view only on a QC or n−f NEW-VIEWs, so with
/// no side holding n−f the view lasts until the heal and later rounds'
/// pinned leaders are reached only by the views a quorum side completes.
/// That is the case the enumeration is after (views that fail or fork).
/// Two approximations,
/// both in the adversary's favour of variety rather than against safety:
/// back-off makes later failed views longer than a round (PBFT doubles from
/// the second view change, HotStuff after each failed view), so a later
/// round may fall inside one view; and where a side holds a quorum, a
/// HotStuff or QBFT leader that makes progress ends its view within a few
/// network delays, so that round covers many views, led past the pinned
/// prefix by the round-robin rotation.
pub fn twins_round(s: &Scenario) -> Duration {
    crate::with_protocol!(s.protocol, P => P::base_timeout(&P::config(s)))
}

/// The first view a leader leads ([`BenchProtocol::first_view`]).
pub(super) fn first_view(protocol: ProtocolName) -> usize {
    crate::with_protocol!(protocol, P => P::first_view())
}

/// The leader prefix pinning round r's leader on view `first_view + r`;
/// views before the first (HotStuff's genesis view 0) get round 0's leader,
/// so the prefix names no leader the scenario did not choose.
pub(super) fn twins_prefix(protocol: ProtocolName, rounds: &[TwinsRound]) -> Vec<NodeId> {
    let first = rounds.first().map(|r| r.leader);
    first
        .into_iter()
        .cycle()
        .take(first_view(protocol))
        .chain(rounds.iter().map(|r| r.leader))
        .collect()
}

/// The Twins table of an enumerated scenario: nodes `0..twins` twinned,
/// one partition per round, rounds of [`twins_round`].
pub(super) fn twins_table(bound: &TwinsBound, round: Duration, rounds: &[TwinsRound]) -> Twins {
    Twins {
        nodes: (0..bound.twins)
            .filter_map(|i| u16::try_from(i).ok())
            .map(NodeId)
            .collect(),
        round,
        partitions: rounds
            .iter()
            .map(|r| split_groups(bound.instances(), r.split))
            .collect(),
    }
}

/// Scenario `k` of the enumeration `bound` on `base` (its protocol, knobs
/// and mutant), simulated with `seed`: the same load and liveness run
/// length as a sampled case, no faults or partitions besides the Twins
/// rounds, after which the network heals and the liveness check runs.
pub fn twins_case(
    base: &Scenario,
    bound: &TwinsBound,
    seed: u64,
    k: u64,
) -> Result<Scenario, BenchError> {
    let rounds = bound.decode(k).ok_or_else(|| {
        BenchError::Unsupported(format!(
            "exhaustive Twins: case {k}, but the bound has {} cases",
            bound.count().unwrap_or(u64::MAX)
        ))
    })?;
    let mut s = fuzz_setting(base, seed);
    s.nodes = bound.nodes;
    s.batch = BatchConfig {
        max_size: 2,
        max_delay: Duration::from_millis(2),
    };
    s.network = NetworkConfig::uniform(ms(1), ms(TWINS_MAX_DELAY));
    s.faults = Vec::new();
    s.twins = Some(twins_table(bound, twins_round(base), &rounds));
    s.leaders = Some(LeadersTable {
        prefix: twins_prefix(s.protocol, &rounds),
        ..LeadersTable::default()
    });
    s.duration = duration_for(&s);
    Ok(s)
}

/// The enumeration `opts` asks for, if exhaustive: `faulty` twins (default
/// f) of `base.nodes`.
pub fn exhaustive_bound(opts: &FuzzOptions) -> Result<Option<TwinsBound>, BenchError> {
    let n = opts.base.nodes;
    let twins = opts.faulty.unwrap_or(bft_core::committee::max_faulty(n));
    opts.exhaustive
        .map(|rounds| TwinsBound::new(n, twins, rounds))
        .transpose()
}
