//! Who leads view (or round, or height) k: the leader schedule every replica
//! of a committee agrees on.
//!
//! `leader(k)` is `prefix[k]` for the first views, then the rotation:
//! `rotation[(k − prefix.len()) mod rotation.len()]`. Round-robin is the
//! rotation `0..n` with no prefix. Leader placement (a fixed or a
//! latency-aware leader) favours a node by listing it several times in the
//! rotation; a Twins scenario pins the first views' leaders in the prefix.
//!
//! The rotation must name every member at least once, so a crashed or
//! Byzantine favourite cannot keep the leadership: the protocols' view
//! changes walk the rotation and reach every honest node.

use crate::CoreError;
use crate::ids::NodeId;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderSchedule {
    /// Leaders of views `0..prefix.len()`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<NodeId>,
    /// Leaders of every later view, in turn.
    pub rotation: Vec<NodeId>,
}

impl LeaderSchedule {
    /// `leader(k) = k mod n`.
    pub fn round_robin(n: usize) -> LeaderSchedule {
        LeaderSchedule {
            prefix: Vec::new(),
            rotation: (0..n)
                .map(|i| NodeId(u16::try_from(i).unwrap_or(u16::MAX)))
                .collect(),
        }
    }

    /// `favourite` leads `weight` views in a row, then every member leads
    /// one, in id order starting after the favourite; then it repeats.
    /// With `weight = 1` this is round-robin started at `favourite`.
    pub fn favouring(n: usize, favourite: NodeId, weight: usize) -> LeaderSchedule {
        let mut rotation = vec![favourite; weight.max(1)];
        let start = favourite.index() + 1;
        rotation.extend(
            (0..n.saturating_sub(1))
                .map(|k| NodeId(u16::try_from((start + k) % n.max(1)).unwrap_or(u16::MAX))),
        );
        LeaderSchedule {
            prefix: Vec::new(),
            rotation,
        }
    }

    /// The same schedule with `leaders` pinned for the first views.
    pub fn with_prefix(mut self, leaders: Vec<NodeId>) -> LeaderSchedule {
        self.prefix = leaders;
        self
    }

    /// The leader of view (round, height) `k`.
    pub fn leader(&self, k: u64) -> NodeId {
        if let Some(&l) = usize::try_from(k).ok().and_then(|i| self.prefix.get(i)) {
            return l;
        }
        let len = self.rotation.len().max(1) as u64;
        let i = k.saturating_sub(self.prefix.len() as u64) % len;
        self.rotation
            .get(usize::try_from(i).unwrap_or(0))
            .copied()
            .unwrap_or(NodeId(0))
    }

    /// The most consecutive views (in the prefix followed by the rotation,
    /// which repeats) whose leaders are all in `nodes`: how many views in a
    /// row those replicas lead.
    pub fn longest_run_of(&self, nodes: &[NodeId]) -> usize {
        let views = self
            .prefix
            .iter()
            .chain(self.rotation.iter().cycle().take(2 * self.rotation.len()));
        let (mut longest, mut run) = (0, 0);
        for leader in views {
            run = if nodes.contains(leader) { run + 1 } else { 0 };
            longest = longest.max(run);
        }
        longest
    }

    /// The most consecutive views (in the prefix followed by the rotation,
    /// which repeats) whose leaders are at most `f` distinct nodes: how many
    /// views in a row f faulty replicas can lead at worst. Round-robin gives
    /// f; a favourite of weight w gives w + f − 1.
    pub fn longest_faulty_run(&self, f: usize) -> usize {
        if f == 0 || self.rotation.is_empty() {
            return 0;
        }
        let views: Vec<NodeId> = self
            .prefix
            .iter()
            .chain(self.rotation.iter().cycle().take(2 * self.rotation.len()))
            .copied()
            .collect();
        let mut longest = 0;
        for start in 0..views.len() {
            let mut distinct: Vec<NodeId> = Vec::new();
            let mut len = 0;
            for &leader in &views[start..] {
                if !distinct.contains(&leader) {
                    if distinct.len() == f {
                        break;
                    }
                    distinct.push(leader);
                }
                len += 1;
            }
            longest = longest.max(len);
        }
        longest.min(views.len())
    }

    /// Every named leader is a member and the rotation names every member.
    pub fn check(&self, n: usize) -> Result<(), CoreError> {
        if let Some(&id) = self
            .prefix
            .iter()
            .chain(&self.rotation)
            .find(|id| id.index() >= n)
        {
            return Err(CoreError::LeaderSchedule(format!(
                "leader {id} is not in the committee of {n}"
            )));
        }
        let mut named = vec![false; n];
        for id in &self.rotation {
            named[id.index()] = true;
        }
        if let Some(missing) = named.iter().position(|&x| !x) {
            return Err(CoreError::LeaderSchedule(format!(
                "the rotation never names node {missing}; every member must lead in turn"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_run_of_given_leaders_wraps_around_the_rotation() {
        let rr = LeaderSchedule::round_robin(7);
        assert_eq!(rr.longest_run_of(&[NodeId(0)]), 1);
        assert_eq!(rr.longest_run_of(&[NodeId(6), NodeId(0)]), 2, "wraps");
        assert_eq!(rr.longest_run_of(&[NodeId(1), NodeId(3)]), 1);
        assert_eq!(rr.longest_run_of(&[]), 0);
        let fav = LeaderSchedule::favouring(4, NodeId(2), 3);
        assert_eq!(fav.longest_run_of(&[NodeId(2)]), 3);
    }

    #[test]
    fn round_robin_is_k_mod_n() {
        let s = LeaderSchedule::round_robin(4);
        let leaders: Vec<u16> = (0..9).map(|k| s.leader(k).0).collect();
        assert_eq!(leaders, [0, 1, 2, 3, 0, 1, 2, 3, 0]);
        s.check(4).unwrap();
    }

    #[test]
    fn favouring_repeats_the_favourite_then_visits_everyone() {
        let s = LeaderSchedule::favouring(4, NodeId(2), 3);
        let leaders: Vec<u16> = (0..8).map(|k| s.leader(k).0).collect();
        assert_eq!(leaders, [2, 2, 2, 3, 0, 1, 2, 2]);
        s.check(4).unwrap();
        let rr_from_2 = LeaderSchedule::favouring(4, NodeId(2), 1);
        assert_eq!(
            rr_from_2.rotation,
            [NodeId(2), NodeId(3), NodeId(0), NodeId(1)]
        );
    }

    #[test]
    fn longest_faulty_run_counts_views_f_nodes_can_lead_in_a_row() {
        assert_eq!(LeaderSchedule::round_robin(4).longest_faulty_run(1), 1);
        assert_eq!(LeaderSchedule::round_robin(7).longest_faulty_run(2), 2);
        let favour = LeaderSchedule::favouring(4, NodeId(1), 5);
        // [1,1,1,1,1,2,3,0]: the favourite's 5 views; with f = 2 the view
        // before or after joins them.
        assert_eq!(favour.longest_faulty_run(1), 5);
        assert_eq!(favour.longest_faulty_run(2), 6);
        assert_eq!(LeaderSchedule::round_robin(4).longest_faulty_run(0), 0);
    }

    #[test]
    fn prefix_pins_the_first_views() {
        let s = LeaderSchedule::round_robin(4).with_prefix(vec![NodeId(3), NodeId(3)]);
        let leaders: Vec<u16> = (0..5).map(|k| s.leader(k).0).collect();
        assert_eq!(leaders, [3, 3, 0, 1, 2]);
    }

    #[test]
    fn check_names_the_problem() {
        let outside = LeaderSchedule::round_robin(5);
        let e = outside.check(4).unwrap_err().to_string();
        assert!(e.contains("leader 4 is not in the committee of 4"), "{e}");
        let partial = LeaderSchedule {
            prefix: Vec::new(),
            rotation: vec![NodeId(0), NodeId(1), NodeId(0)],
        };
        let e = partial.check(3).unwrap_err().to_string();
        assert!(e.contains("never names node 2"), "{e}");
    }
}
