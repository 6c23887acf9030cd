//! The committee: who the replicas are, their public keys, and the three quorum
//! rules the protocols use. They agree when n = 3f+1 and differ otherwise
//! (n = 6: 2f+1 = 3, ⌈2n/3⌉ = 4, n−f = 5) — a 2f+1 quorum at such n is what
//! made IBFT 1.0 unsafe, so each protocol names the rule it uses.

use crate::CoreError;
use crate::crypto::{BlsPop, BlsPublicKey, Ed25519PublicKey};
use crate::ids::NodeId;
use crate::leaders::LeaderSchedule;
use serde::{Deserialize, Serialize};

/// One replica's public identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: NodeId,
    /// Signs PBFT/QBFT messages.
    pub ed25519: Ed25519PublicKey,
    /// Signs HotStuff votes (BLS12-381 min_sig: key in G2).
    pub bls: BlsPublicKey,
    /// Proof of possession of `bls`: checked before the key is ever used in an
    /// aggregate, which rules out rogue-key attacks.
    pub bls_pop: BlsPop,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committee {
    members: Vec<Member>,
    leaders: LeaderSchedule,
}

impl Committee {
    /// Members must be `0..n` in order; BFT with f ≥ 1 needs n ≥ 4.
    pub fn new(members: Vec<Member>) -> Result<Committee, CoreError> {
        let n = members.len();
        if n < 4 {
            return Err(CoreError::CommitteeTooSmall { n });
        }
        if n > usize::from(u16::MAX) {
            return Err(CoreError::CommitteeTooLarge { n });
        }
        for (i, m) in members.iter().enumerate() {
            if m.id.index() != i {
                return Err(CoreError::CommitteeOrder {
                    position: i,
                    id: m.id,
                });
            }
        }
        let leaders = LeaderSchedule::round_robin(n);
        Ok(Committee { members, leaders })
    }

    /// The same committee with another leader schedule (checked: every
    /// leader a member, every member in the rotation).
    pub fn with_leaders(mut self, leaders: LeaderSchedule) -> Result<Committee, CoreError> {
        leaders.check(self.n())?;
        self.leaders = leaders;
        Ok(self)
    }

    /// The leader schedule (round-robin unless set by `with_leaders`).
    pub fn leaders(&self) -> &LeaderSchedule {
        &self.leaders
    }

    /// The leader of view (round, height) `k` under the committee's schedule.
    pub fn leader(&self, k: u64) -> NodeId {
        self.leaders.leader(k)
    }

    pub fn n(&self) -> usize {
        self.members.len()
    }

    /// f = ⌊(n−1)/3⌋, the number of Byzantine replicas tolerated.
    pub fn f(&self) -> usize {
        max_faulty(self.n())
    }

    /// 2f + 1 (PBFT's quorum, Castro–Liskov). The three quorum sizes are
    /// named after their formula, not a protocol: they differ when n is not
    /// 3f + 1, and each protocol says which one it uses.
    pub fn quorum_2f1(&self) -> usize {
        quorum_2f1(self.n())
    }

    /// ⌈2n/3⌉ (QBFT's quorum, Dafny spec `quorum`).
    pub fn quorum_two_thirds(&self) -> usize {
        quorum_two_thirds(self.n())
    }

    /// n − f (HotStuff's quorum).
    pub fn quorum_n_minus_f(&self) -> usize {
        quorum_n_minus_f(self.n())
    }

    /// f+1: at least one honest replica among them.
    pub fn weak_quorum(&self) -> usize {
        self.f() + 1
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.get(id.index())
    }

    pub fn contains(&self, id: NodeId) -> bool {
        id.index() < self.n()
    }

    /// All ids in order.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().map(|m| m.id)
    }

    /// Round-robin: `ids[k mod n]`.
    pub fn round_robin(&self, k: u64) -> NodeId {
        let n = self.n() as u64;
        NodeId(u16::try_from(k % n).unwrap_or(0))
    }
}

/// f = ⌊(n−1)/3⌋.
pub fn max_faulty(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// 2f+1.
pub fn quorum_2f1(n: usize) -> usize {
    2 * max_faulty(n) + 1
}

/// ⌈2n/3⌉.
pub fn quorum_two_thirds(n: usize) -> usize {
    (2 * n).div_ceil(3)
}

/// n − f.
pub fn quorum_n_minus_f(n: usize) -> usize {
    n - max_faulty(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_rules_for_n_4_to_10() {
        // (n, f, 2f+1, ⌈2n/3⌉, n−f)
        let table = [
            (4, 1, 3, 3, 3),
            (5, 1, 3, 4, 4),
            (6, 1, 3, 4, 5),
            (7, 2, 5, 5, 5),
            (8, 2, 5, 6, 6),
            (9, 2, 5, 6, 7),
            (10, 3, 7, 7, 7),
        ];
        for (n, f, q2f1, q23, qnf) in table {
            assert_eq!(max_faulty(n), f, "f at n={n}");
            assert_eq!(quorum_2f1(n), q2f1, "2f+1 at n={n}");
            assert_eq!(quorum_two_thirds(n), q23, "ceil(2n/3) at n={n}");
            assert_eq!(quorum_n_minus_f(n), qnf, "n-f at n={n}");
        }
    }

    #[test]
    fn any_two_quorums_intersect_in_an_honest_replica() {
        // |Q1 ∩ Q2| ≥ 2q − n must exceed f for every rule the protocols use
        // (2f+1 only when n = 3f+1, which is why PBFT sizes n that way).
        for n in 4..=100 {
            let f = max_faulty(n);
            for q in [quorum_two_thirds(n), quorum_n_minus_f(n)] {
                assert!(2 * q > n + f, "n={n} q={q}");
                assert!(q <= n - f, "live: n={n} q={q}");
            }
            if n == 3 * f + 1 {
                assert!(2 * quorum_2f1(n) > n + f);
            }
        }
    }

    #[test]
    fn committee_rejects_small_or_misordered() {
        let m = |i: u16| Member {
            id: NodeId(i),
            ed25519: Ed25519PublicKey::ZERO,
            bls: BlsPublicKey::ZERO,
            bls_pop: BlsPop::ZERO,
        };
        assert!(matches!(
            Committee::new(vec![m(0), m(1), m(2)]),
            Err(CoreError::CommitteeTooSmall { n: 3 })
        ));
        assert!(matches!(
            Committee::new(vec![m(0), m(2), m(1), m(3)]),
            Err(CoreError::CommitteeOrder { position: 1, .. })
        ));
        let c = Committee::new((0..7).map(m).collect()).unwrap();
        assert_eq!((c.n(), c.f(), c.round_robin(9)), (7, 2, NodeId(2)));
    }
}
