//! Fault-free message counts in the simulator: the headline figures.
//!
//! What is asserted, exactly: with one client, one request outstanding and
//! batches of one, every request costs four blocks (its own and three empty
//! ones that carry the three-chain to its commit), every committed block is
//! one decision, and after the last request exactly three blocks are
//! proposed and voted on but never committed. So with D decisions:
//! `proposal` sends = `vote` sends = (n−1)(D+3), D = 4k−3 for k requests,
//! and no other message kind is sent. Per decision that is 2(n−1) plus the
//! 3-view pipeline at the end of the run.

use bft_core::NodeId;
use bft_hotstuff::{HotStuff, HotStuffConfig};
use bft_sim::{LoadConfig, SimConfig, SimReport, Simulation};

fn fault_free(n: usize, requests: u64) -> (SimReport, Simulation<HotStuff>) {
    let cfg = SimConfig {
        nodes: n,
        seed: 7,
        duration: std::time::Duration::from_secs(600),
        load: LoadConfig::closed(1, 1, 128).with_total(requests),
        ..SimConfig::default()
    };
    let mut sim = Simulation::<HotStuff>::new(cfg, HotStuffConfig::default()).unwrap();
    let report = sim.run();
    (report, sim)
}

fn sent(report: &SimReport, kind: &str) -> (u64, u64) {
    report
        .stats
        .sent
        .get(kind)
        .map_or((0, 0), |c| (c.count, c.bytes))
}

const REQUESTS: u64 = 25;

#[test]
fn steady_state_sends_n_minus_1_proposals_and_votes_per_block() {
    let mut vote_bytes_per_msg = None;
    let mut proposal_bytes_n4 = None;
    for n in [4usize, 7, 10, 16, 31, 64] {
        let (report, sim) = fault_free(n, REQUESTS);
        assert!(
            report.violations.is_empty(),
            "n={n}: {:?}",
            report.violations
        );
        assert_eq!(report.requests_committed, REQUESTS, "n={n}");
        let decisions = 4 * REQUESTS - 3;
        assert_eq!(report.decisions, decisions, "n={n}: every replica");
        assert_eq!(report.max_decisions, decisions, "n={n}");
        let peers = n as u64 - 1;
        let blocks = decisions + 3;
        let (proposals, proposal_bytes) = sent(&report, "proposal");
        let (votes, vote_bytes) = sent(&report, "vote");
        assert_eq!(proposals, peers * blocks, "n={n}: proposals");
        assert_eq!(votes, peers * blocks, "n={n}: votes");
        let kinds: Vec<&str> = report.stats.sent.iter().map(|(k, _)| k).collect();
        assert_eq!(kinds.len(), 2, "n={n}: only proposals and votes: {kinds:?}");
        assert_eq!(report.stats.total_rejected(), 0, "n={n}");
        assert_eq!(report.view_changes, 0, "n={n}");
        for i in 0..n {
            let status = sim.node(NodeId(i as u16)).status();
            assert_eq!(status.committed, decisions, "n={n} node {i}");
            assert_eq!(status.view_changes, 0);
        }

        // A vote's size does not depend on n at all.
        assert_eq!(vote_bytes % votes, 0, "n={n}: all votes the same size");
        let per_vote = vote_bytes / votes;
        assert_eq!(
            *vote_bytes_per_msg.get_or_insert(per_vote),
            per_vote,
            "n={n}"
        );

        // A proposal grows with n only through the QC's signer bitmap:
        // ⌈n/8⌉ bytes instead of 1 at n = 4, in every block but the first
        // (which carries the unsigned genesis QC).
        let per_block_sum = proposal_bytes / peers;
        let base = *proposal_bytes_n4.get_or_insert(per_block_sum);
        let bitmap_growth = (n.div_ceil(8) - 1) as u64;
        assert_eq!(
            per_block_sum - base,
            (blocks - 1) * bitmap_growth,
            "n={n}: proposal bytes differ from n=4 only by the bitmap"
        );
    }
}

#[test]
fn memory_stays_flat_over_a_long_run() {
    let retained = |k: u64| {
        let (report, sim) = fault_free(4, k);
        assert!(report.violations.is_empty());
        assert_eq!(report.requests_committed, k);
        (0..4u16)
            .map(|i| {
                let node = sim.node(NodeId(i));
                (node.status().retained, node.protocol().tree_len())
            })
            .max()
            .unwrap()
    };
    // 397 and 1597 decisions: both past the 256-block fetch archive.
    let short = retained(100);
    let long = retained(400);
    // The tree holds the committed tip and the three uncommitted blocks.
    assert_eq!(long.1, 4, "tree pruned below the committed block");
    assert_eq!(short, long, "retained entries do not grow with the run");
    assert!(long.0 < 256 + 32, "archive of 256 committed blocks + a few");
}

/// The same exact counts with real Ed25519/BLS crypto (small run).
#[test]
fn steady_state_counts_hold_with_real_crypto() {
    let cfg = SimConfig {
        nodes: 4,
        seed: 3,
        crypto: bft_core::CryptoKind::Real,
        load: LoadConfig::closed(1, 1, 128).with_total(5),
        ..SimConfig::default()
    };
    let mut sim = Simulation::<HotStuff>::new(cfg, HotStuffConfig::default()).unwrap();
    let report = sim.run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.requests_committed, 5);
    assert_eq!(report.decisions, 17);
    assert_eq!(sent(&report, "proposal").0, 3 * 20);
    assert_eq!(sent(&report, "vote").0, 3 * 20);
    assert_eq!(report.stats.total_rejected(), 0);
}

/// Many seeds with messages reordered (uniform 0.2–3 ms delays) and several
/// clients with several requests outstanding and batches of up to 8: safe,
/// every request committed, nothing rejected, no view change.
#[test]
fn reordering_network_many_seeds_is_safe_and_live() {
    for seed in 1..=24u64 {
        let n = [4usize, 5, 6, 7][seed as usize % 4];
        let cfg = SimConfig {
            nodes: n,
            seed,
            network: bft_sim::NetworkConfig::uniform(
                std::time::Duration::from_micros(200),
                std::time::Duration::from_millis(3),
            ),
            load: LoadConfig::closed(3, 4, 64).with_total(150),
            batch: bft_core::BatchConfig {
                max_size: 8,
                max_delay: std::time::Duration::from_millis(2),
            },
            ..SimConfig::default()
        };
        let mut sim = Simulation::<HotStuff>::new(cfg, HotStuffConfig::default()).unwrap();
        let report = sim.run();
        assert!(
            report.violations.is_empty(),
            "seed {seed}: {:?}",
            report.violations
        );
        assert_eq!(report.requests_committed, 150, "seed {seed} n={n}");
        assert_eq!(report.view_changes, 0, "seed {seed} n={n}");
        assert_eq!(
            report.stats.rejected.iter().collect::<Vec<_>>(),
            vec![],
            "seed {seed} n={n}"
        );
    }
}
