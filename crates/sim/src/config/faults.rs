//! The `[[faults]]` tables and Twins: what a faulty replica does and when,
//! and the fault vocabulary the fuzzer draws from (`BEHAVIOURS`).

use bft_core::{Attack, Forgery, Mutation, NodeId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a faulty replica does while its fault is active (`at` ≤ t < `until`).
///
/// Benign faults (crash without amnesia, silence, omission, delay) leave the
/// replica honest: its commits still pass the oracle. Everything else makes
/// it Byzantine: excluded from the oracle and from liveness, and counted
/// against f.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Stops handling anything at `start`. With `end` it restarts then:
    /// from what it had written to its store (its durable state and the
    /// batches it names; no pool, no timers, no messages in flight to it),
    /// or, with `amnesia`, as a fresh replica that forgot its last voted
    /// view, lock and prepared certificates (Byzantine-equivalent).
    Crash { amnesia: bool },
    /// Keeps receiving but sends nothing.
    Silent,
    /// Sends nothing to these peers (omission to a subset).
    Omission { peers: Vec<NodeId> },
    /// Everything it sends leaves this much later.
    Delay { by: Duration },
    /// Besides each message, re-sends one of its own earlier messages
    /// (a stale replay) to the same recipient.
    StaleReplay,
    /// Ignores the requests of these clients (as leader it never proposes
    /// them).
    Censor { clients: Vec<u32> },
    /// A protocol-specific attack, built by `Adversarial::tamper`.
    Attack(Attack),
}

impl FaultKind {
    /// Does this fault make the replica Byzantine (outside the oracle)?
    pub fn is_byzantine(&self) -> bool {
        match self {
            FaultKind::Crash { amnesia } => *amnesia,
            FaultKind::Silent | FaultKind::Omission { .. } | FaultKind::Delay { .. } => false,
            FaultKind::StaleReplay | FaultKind::Censor { .. } | FaultKind::Attack(_) => true,
        }
    }

    /// The `behaviour` name in a scenario file.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Crash { .. } => "crash",
            FaultKind::Silent => "silent",
            FaultKind::Omission { .. } => "omission",
            FaultKind::Delay { .. } => "delay",
            FaultKind::StaleReplay => "stale-replay",
            FaultKind::Censor { .. } => "censor",
            FaultKind::Attack(a) => match a {
                Attack::Equivocate => "equivocate",
                Attack::DoubleVote => "double-vote",
                Attack::Forge(_) => "forge",
                Attack::InflateView(_) => "inflate-view",
                Attack::Mutate(_) => "mutate",
                Attack::BadSignature => "bad-signature",
                Attack::SwapPayload => "swap-payload",
                Attack::Fork(_) => "fork",
            },
        }
    }
}

/// Every `behaviour` a `[[faults]]` table may name.
pub const BEHAVIOURS: [&str; 14] = [
    "crash",
    "silent",
    "omission",
    "delay",
    "stale-replay",
    "censor",
    "equivocate",
    "double-vote",
    "forge",
    "inflate-view",
    "mutate",
    "bad-signature",
    "swap-payload",
    "fork",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FaultTable", into = "FaultTable")]
pub struct Fault {
    pub node: NodeId,
    pub kind: FaultKind,
    pub start: Duration,
    pub end: Option<Duration>,
}

/// A `[[faults]]` table as written: the behaviour and its parameters side by
/// side, checked into a [`Fault`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultTable {
    pub node: NodeId,
    pub behaviour: String,
    #[serde(default, with = "humantime_serde")]
    pub at: Duration,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<Duration>,
    /// crash: restart with no memory (needs `until`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub amnesia: bool,
    /// omission: the peers it never sends to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<NodeId>,
    /// delay: how late everything it sends leaves.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay: Option<Duration>,
    /// censor: the clients whose requests it ignores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<u32>,
    /// forge: below-quorum, duplicate-signers, wrong-round or wrong-digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forgery: Option<Forgery>,
    /// inflate-view: how far ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<u64>,
    /// mutate: round-plus-one, round-minus-one, stale-digest or swap-sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutation: Option<Mutation>,
    /// fork: the seed of the per-view plan (`bft_core::ForkChoice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<u64>,
}

impl TryFrom<FaultTable> for Fault {
    type Error = String;
    fn try_from(t: FaultTable) -> Result<Fault, String> {
        let b = t.behaviour.as_str();
        let needs = |what: &str| format!("behaviour = \"{b}\" needs `{what}`");
        let kind = match b {
            "crash" => {
                if t.amnesia && t.until.is_none() {
                    return Err("amnesia = true needs `until` (the restart time)".into());
                }
                FaultKind::Crash { amnesia: t.amnesia }
            }
            "silent" => FaultKind::Silent,
            "omission" => {
                if t.peers.is_empty() {
                    return Err(needs("peers"));
                }
                FaultKind::Omission {
                    peers: t.peers.clone(),
                }
            }
            "delay" => FaultKind::Delay {
                by: t.delay.ok_or_else(|| needs("delay"))?,
            },
            "stale-replay" => FaultKind::StaleReplay,
            "censor" => {
                if t.clients.is_empty() {
                    return Err(needs("clients"));
                }
                FaultKind::Censor {
                    clients: t.clients.clone(),
                }
            }
            "equivocate" => FaultKind::Attack(Attack::Equivocate),
            "double-vote" => FaultKind::Attack(Attack::DoubleVote),
            "forge" => FaultKind::Attack(Attack::Forge(t.forgery.ok_or_else(|| needs("forgery"))?)),
            "inflate-view" => {
                FaultKind::Attack(Attack::InflateView(t.by.ok_or_else(|| needs("by"))?))
            }
            "mutate" => {
                FaultKind::Attack(Attack::Mutate(t.mutation.ok_or_else(|| needs("mutation"))?))
            }
            "bad-signature" => FaultKind::Attack(Attack::BadSignature),
            "swap-payload" => FaultKind::Attack(Attack::SwapPayload),
            "fork" => FaultKind::Attack(Attack::Fork(t.plan.ok_or_else(|| needs("plan"))?)),
            other => {
                return Err(format!(
                    "behaviour = \"{other}\": expected one of {}",
                    BEHAVIOURS.join(", ")
                ));
            }
        };
        if t.amnesia && !matches!(kind, FaultKind::Crash { .. }) {
            return Err(format!("amnesia applies to crash only, not \"{b}\""));
        }
        if let Some(end) = t.until
            && end < t.at
        {
            return Err(format!("until = {end:?} is before at = {:?}", t.at));
        }
        Ok(Fault {
            node: t.node,
            kind,
            start: t.at,
            end: t.until,
        })
    }
}

impl From<Fault> for FaultTable {
    fn from(f: Fault) -> FaultTable {
        let mut t = FaultTable {
            node: f.node,
            behaviour: f.kind.name().to_string(),
            at: f.start,
            until: f.end,
            ..Default::default()
        };
        match f.kind {
            FaultKind::Crash { amnesia } => t.amnesia = amnesia,
            FaultKind::Omission { peers } => t.peers = peers,
            FaultKind::Delay { by } => t.delay = Some(by),
            FaultKind::Censor { clients } => t.clients = clients,
            FaultKind::Attack(Attack::Forge(g)) => t.forgery = Some(g),
            FaultKind::Attack(Attack::InflateView(by)) => t.by = Some(by),
            FaultKind::Attack(Attack::Mutate(m)) => t.mutation = Some(m),
            FaultKind::Attack(Attack::Fork(plan)) => t.plan = Some(plan),
            FaultKind::Silent | FaultKind::StaleReplay | FaultKind::Attack(_) => {}
        }
        t
    }
}

impl Fault {
    pub fn new(node: NodeId, kind: FaultKind, start: Duration) -> Fault {
        Fault {
            node,
            kind,
            start,
            end: None,
        }
    }
    pub fn crash(node: NodeId, at: Duration) -> Fault {
        Fault::new(node, FaultKind::Crash { amnesia: false }, at)
    }
    pub fn silent(node: NodeId, from: Duration) -> Fault {
        Fault::new(node, FaultKind::Silent, from)
    }
    pub fn attack(node: NodeId, attack: Attack, from: Duration) -> Fault {
        Fault::new(node, FaultKind::Attack(attack), from)
    }
    pub fn until(mut self, end: Duration) -> Fault {
        self.end = Some(end);
        self
    }
    /// Active at `t`?
    pub fn active_at(&self, t: Duration) -> bool {
        t >= self.start && self.end.is_none_or(|e| t < e)
    }
}

/// Twins (Bano et al., 2022): up to f identities run as two instances that
/// share a key but not state, under a partition schedule of the instances
/// per round; afterwards the network heals.
///
/// Instance `i < n` is node i; instance `n + j` is the twin of `nodes[j]`.
/// Round r covers virtual time `[r·round, (r+1)·round)`; a message sent in
/// round r reaches only the instances in its sender's group of
/// `partitions[r]` (instances a round's groups leave out are isolated).
/// After the last round every instance reaches every other. The leader of
/// each round's view comes from the leader schedule's prefix
/// (`SimConfig::leaders`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Twins {
    pub nodes: Vec<NodeId>,
    #[serde(with = "humantime_serde")]
    pub round: Duration,
    #[serde(default)]
    pub partitions: Vec<Vec<Vec<u16>>>,
}

impl Twins {
    /// When the last round ends and the network heals.
    pub fn heal(&self) -> Duration {
        self.round
            .saturating_mul(u32::try_from(self.partitions.len()).unwrap_or(u32::MAX))
    }

    /// The round containing `t`, or None once healed.
    pub fn round_at(&self, t: Duration) -> Option<&[Vec<u16>]> {
        if self.round.is_zero() {
            return None;
        }
        let r = t.as_nanos() / self.round.as_nanos();
        self.partitions
            .get(usize::try_from(r).ok()?)
            .map(Vec::as_slice)
    }

    /// May instance `a`'s message reach instance `b` when sent at `t`?
    pub fn connected(&self, t: Duration, a: u16, b: u16) -> bool {
        let Some(groups) = self.round_at(t) else {
            return true;
        };
        groups.iter().any(|g| g.contains(&a) && g.contains(&b))
    }

    /// Checks ids against a committee of `n`.
    pub fn check(&self, n: usize) -> Result<(), String> {
        let instances = n + self.nodes.len();
        if let Some(id) = self.nodes.iter().find(|id| id.index() >= n) {
            return Err(format!(
                "twins.nodes: node {id} is not in the committee of {n}"
            ));
        }
        let mut seen = self.nodes.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != self.nodes.len() {
            return Err("twins.nodes: a node is named twice".into());
        }
        if self.round.is_zero() && !self.partitions.is_empty() {
            return Err("twins.round = 0s: a round needs a length".into());
        }
        for (r, groups) in self.partitions.iter().enumerate() {
            for g in groups {
                if let Some(i) = g.iter().find(|&&i| usize::from(i) >= instances) {
                    return Err(format!(
                        "twins.partitions[{r}]: instance {i}, but there are {instances} (0..{n} are the nodes, {n}.. their twins)"
                    ));
                }
            }
        }
        Ok(())
    }
}
