//! The one place in bftbench that knows the protocol list. A scenario names
//! its protocol ([`ProtocolName`](crate::scenario::ProtocolName)); [`with_protocol!`](crate::with_protocol)
//! turns the name into the protocol's type, and [`BenchProtocol`] says what
//! the scenario's keys mean to each. Code that runs a protocol is generic
//! over `P: BenchProtocol` and reaches it only through the macro.
//!
//! Adding a protocol: a `ProtocolName` variant, an arm in `with_protocol!`
//! and an `impl BenchProtocol`.

use crate::scenario::Scenario;
use bft_core::Adversarial;
use std::time::Duration;

/// What bftbench needs to know about a protocol beyond its core traits
/// (`Protocol`, `Adversarial`).
pub trait BenchProtocol: Adversarial {
    /// Its table in the scenario: `[pbft]`, `[qbft]` or `[hotstuff]`.
    fn config(s: &Scenario) -> Self::Config;

    /// Its base view or round timeout (PBFT `view_change_timeout`, QBFT
    /// `round_timeout`, HotStuff `view_timeout`), before any back-off.
    fn base_timeout(cfg: &Self::Config) -> Duration;

    /// The votes that make a certificate at `n` replicas.
    fn quorum(n: usize) -> usize;

    /// Views in a row a favoured leader leads when `[leaders] weight` is not
    /// set (see `LeadersTable::weight`).
    fn default_leader_weight(n: usize) -> usize;

    /// The first view a leader leads, as an index into the leader schedule.
    fn first_view() -> usize;

    /// How long the fuzzer lets a `fork` plan run (its fault window).
    fn fork_window() -> Duration;
}

/// A `fork` plan's window for PBFT and QBFT: 5 s gives a plan hundreds of
/// choices at the fuzzer's load, and their cases cost the most per
/// simulated second.
const FORK_WINDOW: Duration = Duration::from_secs(5);

/// Evaluates `$body` with the type alias `$P` set to the protocol that
/// `$name` (a `ProtocolName`) names: the one name-to-type dispatch of
/// bftbench.
///
/// ```ignore
/// with_protocol!(s.protocol, P => run_sim::<P>(s, P::config(s), progress))
/// ```
#[macro_export]
macro_rules! with_protocol {
    ($name:expr, $P:ident => $body:expr) => {
        match $name {
            $crate::scenario::ProtocolName::Pbft => {
                type $P = bft_pbft::Pbft;
                $body
            }
            $crate::scenario::ProtocolName::Qbft => {
                type $P = bft_qbft::Qbft;
                $body
            }
            $crate::scenario::ProtocolName::Hotstuff => {
                type $P = bft_hotstuff::HotStuff;
                $body
            }
        }
    };
}

impl BenchProtocol for bft_pbft::Pbft {
    fn config(s: &Scenario) -> bft_pbft::PbftConfig {
        s.pbft.clone()
    }
    fn base_timeout(cfg: &bft_pbft::PbftConfig) -> Duration {
        cfg.view_change_timeout
    }
    /// ⌈(n+f+1)/2⌉ (`bft_pbft::quorum`).
    fn quorum(n: usize) -> usize {
        (n + bft_core::committee::max_faulty(n) + 1).div_ceil(2)
    }
    /// 1: a PBFT primary keeps its view until a view change anyway.
    fn default_leader_weight(_n: usize) -> usize {
        1
    }
    /// View 0.
    fn first_view() -> usize {
        0
    }
    fn fork_window() -> Duration {
        FORK_WINDOW
    }
}

impl BenchProtocol for bft_qbft::Qbft {
    fn config(s: &Scenario) -> bft_qbft::QbftConfig {
        s.qbft.clone()
    }
    fn base_timeout(cfg: &bft_qbft::QbftConfig) -> Duration {
        cfg.round_timeout
    }
    /// ⌈2n/3⌉.
    fn quorum(n: usize) -> usize {
        bft_core::committee::quorum_two_thirds(n)
    }
    /// 3n: QBFT's proposer rotates every height.
    fn default_leader_weight(n: usize) -> usize {
        3 * n
    }
    /// Slot 0: height 1, round 0.
    fn first_view() -> usize {
        0
    }
    fn fork_window() -> Duration {
        FORK_WINDOW
    }
}

impl BenchProtocol for bft_hotstuff::HotStuff {
    fn config(s: &Scenario) -> bft_hotstuff::HotStuffConfig {
        s.hotstuff.clone()
    }
    fn base_timeout(cfg: &bft_hotstuff::HotStuffConfig) -> Duration {
        cfg.view_timeout
    }
    /// n − f.
    fn quorum(n: usize) -> usize {
        bft_core::committee::quorum_n_minus_f(n)
    }
    /// 3n: HotStuff's leader rotates every view.
    fn default_leader_weight(n: usize) -> usize {
        3 * n
    }
    /// View 1: view 0 is the genesis block's.
    fn first_view() -> usize {
        1
    }
    /// 20 s: the fork that breaks HotStuff's commit rule needs four views in
    /// a row with one particular choice in each (about one run of four in a
    /// thousand), and every run that goes wrong costs view timeouts. (At 5 s
    /// the `commit-indirect-chain` mutant was found once in 30 000
    /// scenarios, at 20 s four times.)
    fn fork_window() -> Duration {
        Duration::from_secs(20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ProtocolName;

    /// The dispatch names each protocol's own type.
    #[test]
    fn with_protocol_maps_every_name_to_the_type_of_that_name() {
        for name in ProtocolName::ALL {
            let named = with_protocol!(name, P => <P as bft_core::Protocol>::NAME);
            assert_eq!(named, name.as_str());
        }
    }

    /// Hand-computed: PBFT ⌈(n+f+1)/2⌉, QBFT ⌈2n/3⌉, HotStuff n − f; they
    /// agree at n = 3f+1 and differ between.
    #[test]
    fn quorums_are_the_protocols_own() {
        let table = [
            (4, [3, 3, 3]),
            (5, [4, 4, 4]),
            (6, [4, 4, 5]),
            (7, [5, 5, 5]),
            (8, [6, 6, 6]),
            (10, [7, 7, 7]),
            (16, [11, 11, 11]),
        ];
        for (n, [pbft, qbft, hotstuff]) in table {
            assert_eq!(
                <bft_pbft::Pbft as BenchProtocol>::quorum(n),
                pbft,
                "n = {n}"
            );
            assert_eq!(
                <bft_qbft::Qbft as BenchProtocol>::quorum(n),
                qbft,
                "n = {n}"
            );
            assert_eq!(
                <bft_hotstuff::HotStuff as BenchProtocol>::quorum(n),
                hotstuff,
                "n = {n}"
            );
        }
    }
}
