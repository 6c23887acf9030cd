#![cfg(feature = "mutants")]
//! Planted safety bugs (`--features mutants`, `[hotstuff] mutant = "..."`)
//! and full-protocol simulator scenarios that expose each: an oracle
//! violation, or for a mutant that can only hurt liveness, an honest replica
//! that commits nothing within `liveness_bound` after the network heals.
//! The same scenario with `mutant: None` is safe and live.
//!
//! Run: `cargo test -p bft-hotstuff --features mutants --test mutants`.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use bft_core::{Adversarial, LeaderSchedule, NodeId, Time};
use bft_hotstuff::{HotStuff, HotStuffConfig, HotStuffMutant};
use bft_sim::{Fault, LoadConfig, NetworkConfig, Partition, SimConfig, Simulation, Twins};
use std::time::Duration;

/// Small timers so a run with several failed views stays short:
/// liveness bound = (2·4 + 5) · 800 ms = 10.4 s at n = 4.
fn protocol(mutant: Option<HotStuffMutant>) -> HotStuffConfig {
    HotStuffConfig {
        view_timeout: Duration::from_millis(100),
        backoff: 2.0,
        max_view_timeout: Duration::from_millis(800),
        mutant,
        ..HotStuffConfig::default()
    }
}

/// A deterministic stream for the scenario generator (splitmix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, k: u64) -> u64 {
        self.next() % k
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo))
    }
}

/// The scenario shapes searched.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// 1–3 partitions of the 4 nodes into two non-empty groups, each
    /// starting in [0, 2 s) and lasting [200 ms, 1.5 s); no faulty node.
    Partitions,
    /// The same, plus one node crashed for good at a time in [0, 4 s).
    PartitionsCrash,
    /// Node 0 twinned (the one Byzantine identity): 10 rounds of 200 ms,
    /// each a random split of the 5 instances into two groups.
    Twins,
    /// Node 0 twinned; 12 rounds of 300 ms, each splitting the twins
    /// between two groups: one twin with two honest nodes (a quorum with
    /// the twin), the other twin with the third honest node.
    TwinsQuorum,
    /// `TwinsQuorum` with 150 ms rounds and node 0 (the twinned one)
    /// favoured by the leader schedule: it leads 3 views of every 6.
    TwinsFavoured,
}

fn split(rng: &mut Rng, items: &[u16]) -> Vec<Vec<u16>> {
    loop {
        let mask = rng.below(1 << items.len());
        let a: Vec<u16> = (0..items.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| items[i])
            .collect();
        let b: Vec<u16> = (0..items.len())
            .filter(|i| mask & (1 << i) == 0)
            .map(|i| items[i])
            .collect();
        if !a.is_empty() && !b.is_empty() {
            return vec![a, b];
        }
    }
}

fn scenario(shape: Shape, seed: u64) -> SimConfig {
    let mut rng = Rng(seed.wrapping_mul(0x1000_0001) ^ shape as u64);
    let ids = [0u16, 1, 2, 3];
    let mut partitions = Vec::new();
    let mut faults = Vec::new();
    let mut twins = None;
    let mut leaders = None;
    match shape {
        Shape::Partitions | Shape::PartitionsCrash => {
            for _ in 0..1 + rng.below(3) {
                let start = rng.ms(0, 2000);
                let end = start + rng.ms(200, 1500);
                let groups = split(&mut rng, &ids)
                    .into_iter()
                    .map(|g| g.into_iter().map(NodeId).collect())
                    .collect();
                partitions.push(Partition { start, end, groups });
            }
            if let Shape::PartitionsCrash = shape {
                let node = NodeId(rng.below(4) as u16);
                faults.push(Fault::crash(node, rng.ms(0, 4000)));
            }
        }
        Shape::Twins => {
            let instances = [0u16, 1, 2, 3, 4];
            let rounds = (0..10).map(|_| split(&mut rng, &instances)).collect();
            twins = Some(Twins {
                nodes: vec![NodeId(0)],
                round: Duration::from_millis(200),
                partitions: rounds,
            });
        }
        Shape::TwinsQuorum | Shape::TwinsFavoured => {
            let rounds = (0..12)
                .map(|_| {
                    let lone = 1 + rng.below(3) as u16;
                    let pair: Vec<u16> = (1..4u16).filter(|&x| x != lone).collect();
                    let (big, small) = if rng.below(2) == 0 { (0, 4) } else { (4, 0) };
                    vec![vec![big, pair[0], pair[1]], vec![small, lone]]
                })
                .collect();
            twins = Some(Twins {
                nodes: vec![NodeId(0)],
                round: Duration::from_millis(match shape {
                    Shape::TwinsFavoured => 150,
                    _ => 300,
                }),
                partitions: rounds,
            });
            if let Shape::TwinsFavoured = shape {
                leaders = Some(LeaderSchedule::favouring(4, NodeId(0), 3));
            }
        }
    }
    SimConfig {
        nodes: 4,
        seed,
        duration: Duration::from_secs(40),
        network: NetworkConfig {
            partitions,
            ..NetworkConfig::uniform(Duration::from_millis(1), Duration::from_millis(20))
        },
        load: LoadConfig::open(100.0, 1, 128),
        faults,
        twins,
        leaders,
        ..SimConfig::default()
    }
}

/// What one run found: oracle violations, and liveness failures after the
/// heal within the protocol's bound.
#[derive(Debug)]
struct Outcome {
    violations: Vec<String>,
    stuck: Vec<String>,
}

fn run(cfg: SimConfig, mutant: Option<HotStuffMutant>) -> Outcome {
    let proto = protocol(mutant);
    let bound = <HotStuff as Adversarial>::liveness_bound(&proto, cfg.nodes);
    let mut sim = Simulation::<HotStuff>::new(cfg, proto).unwrap();
    let heal = sim.heal_time();
    let stuck = sim.check_liveness(heal, bound);
    sim.run_until(Time::from_duration(heal.as_duration() + bound));
    Outcome {
        violations: sim.report().violations,
        stuck,
    }
}

/// Search over seeds: how often each mutant is caught per shape, and that
/// the controls never are. `cargo test ... -- --ignored --nocapture search`.
#[test]
#[ignore]
fn search() {
    let seeds: u64 = std::env::var("MUTANT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let shapes = match std::env::var("MUTANT_SHAPE").as_deref() {
        Ok("twins-quorum") => vec![Shape::TwinsQuorum],
        Ok("twins-favoured") => vec![Shape::TwinsFavoured],
        _ => vec![
            Shape::Partitions,
            Shape::PartitionsCrash,
            Shape::Twins,
            Shape::TwinsQuorum,
        ],
    };
    for shape in shapes {
        for mutant in [
            None,
            Some(HotStuffMutant::VoteRuleAnd),
            Some(HotStuffMutant::VoteRuleOr),
            Some(HotStuffMutant::CommitIndirectChain),
        ] {
            let (mut unsafe_runs, mut stuck_runs) = (Vec::new(), Vec::new());
            for seed in 1..=seeds {
                let o = run(scenario(shape, seed), mutant);
                if !o.violations.is_empty() {
                    unsafe_runs.push(seed);
                }
                if !o.stuck.is_empty() {
                    stuck_runs.push(seed);
                }
            }
            println!(
                "{shape:?} {mutant:?}: violations {}/{seeds} {:?}; stuck {}/{seeds} {:?}",
                unsafe_runs.len(),
                &unsafe_runs[..unsafe_runs.len().min(12)],
                stuck_runs.len(),
                &stuck_runs[..stuck_runs.len().min(12)],
            );
        }
    }
}

/// `mutant = "vote-rule-and"` selects the mutant from the `[hotstuff]`
/// table; absent, it is `None` and not written back.
#[test]
fn mutant_is_selected_by_the_scenario_table() {
    let cfg: HotStuffConfig = toml::from_str("mutant = \"vote-rule-and\"").unwrap();
    assert_eq!(cfg.mutant, Some(HotStuffMutant::VoteRuleAnd));
    let cfg: HotStuffConfig = toml::from_str("mutant = \"commit-indirect-chain\"").unwrap();
    assert_eq!(cfg.mutant, Some(HotStuffMutant::CommitIndirectChain));
    let plain: HotStuffConfig = toml::from_str("").unwrap();
    assert_eq!(plain.mutant, None);
    assert!(!toml::to_string(&plain).unwrap().contains("mutant"));
    assert!(toml::from_str::<HotStuffConfig>("mutant = \"vote-rule-xor\"").is_err());
}

/// `vote-rule-and` (inner OR → AND) can only hurt liveness, and it does at
/// once: the first block extends the genesis lock but its QC (genesis, view
/// 0) is not above the lock's view 0, so no replica ever votes. Scenario:
/// n = 4, shape `Partitions`, seeds 1..=5 (1–3 two-group partitions in the
/// first 2 s, uniform 1–20 ms delays, 100 tx/s): every honest replica
/// commits nothing within the bound after the heal; the control commits
/// and is safe. (The search found it stuck in 50/50 seeds of every shape.)
#[test]
fn vote_rule_and_loses_liveness_after_the_heal() {
    for seed in 1..=5 {
        let mutant = run(
            scenario(Shape::Partitions, seed),
            Some(HotStuffMutant::VoteRuleAnd),
        );
        assert!(
            mutant.violations.is_empty(),
            "seed {seed}: {:?}",
            mutant.violations
        );
        assert_eq!(mutant.stuck.len(), 4, "seed {seed}: {:?}", mutant.stuck);
        let control = run(scenario(Shape::Partitions, seed), None);
        assert!(
            control.violations.is_empty(),
            "seed {seed}: {:?}",
            control.violations
        );
        assert!(control.stuck.is_empty(), "seed {seed}: {:?}", control.stuck);
    }
}

/// Node 0 (Byzantine, the one of f = 1) leads views 7–10 (schedule
/// `favouring(4, 0, 4)`: rotation 0,0,0,0,1,2,3). In view 10 it sends the
/// honest block b10 (QC(9): node 3 commits b7) to node 3 only, and to nodes
/// 1 and 2 a fork f10 on QC(6) — below their lock (b8) and conflicting with
/// b7 — and votes for f10 itself. The real vote rule refuses f10 (older QC,
/// does not extend the lock): view 10 fails and is recovered. A vote rule
/// that ignores the lock votes: QC(f10), the next leaders extend it (a
/// higher QC), and nodes 1 and 2 commit f10 at the height where node 3
/// committed b7.
fn fork_below_the_lock(seed: u64, mutant: Option<HotStuffMutant>) -> Outcome {
    use bft_hotstuff::{Block, Message, QuorumCert, VOTE_DOMAIN, Vote, vote_payload};
    use std::collections::BTreeMap;
    let cfg = SimConfig {
        nodes: 4,
        seed,
        duration: Duration::from_secs(20),
        network: NetworkConfig::uniform(Duration::from_millis(1), Duration::from_millis(5)),
        load: LoadConfig::open(100.0, 1, 128),
        leaders: Some(LeaderSchedule::favouring(4, NodeId(0), 4)),
        ..SimConfig::default()
    };
    let mut sim = Simulation::<HotStuff>::new(cfg, protocol(mutant)).unwrap();
    let crypto = sim.crypto(NodeId(0));
    let mut justified: BTreeMap<u64, (QuorumCert, bft_core::Height)> = BTreeMap::new();
    let mut fork: Option<Block> = None;
    sim.set_outbound_filter(NodeId(0), move |_, to, msg| match msg {
        Message::Proposal(block) => {
            justified.insert(block.view.0, (block.justify.clone(), block.height));
            if block.view.0 != 10 || to == NodeId(3) {
                return Some(Message::Proposal(block));
            }
            let (qc, height) = justified.get(&7)?.clone();
            let f = fork.get_or_insert_with(|| Block {
                parent: qc.block,
                view: block.view,
                height,
                batch: Vec::new(),
                justify: qc,
            });
            Some(Message::Proposal(f.clone()))
        }
        Message::Vote(vote) if vote.view.0 == 10 => {
            let f = fork.as_ref()?.hash();
            Some(Message::Vote(Vote {
                view: vote.view,
                block: f,
                signature: crypto.bls_sign(VOTE_DOMAIN, &vote_payload(vote.view, &f)),
            }))
        }
        other => Some(other),
    });
    // The attack is over by view 11 (≈ 0.1 s); the bound is measured from 1 s.
    let proto = protocol(mutant);
    let bound = <HotStuff as Adversarial>::liveness_bound(&proto, 4);
    let heal = Time::from_duration(Duration::from_secs(1));
    let stuck = sim.check_liveness(heal, bound);
    Outcome {
        violations: sim.report().violations,
        stuck,
    }
}

/// `vote-rule-or` (outer AND → OR; in the replica, where each view's
/// proposal is considered once, that is "ignore the lock") in the fork
/// scenario above, seeds 1..=10: nodes 1 and 2 vote for the fork f10 and
/// certify it, node 3 and the Byzantine core (both committed b7 above f10's
/// parent) cannot attach it, so the fork has two honest voters and the
/// main chain one: no quorum anywhere, and no honest replica commits again
/// (a liveness failure, not an agreement violation: the fork never reaches
/// a 3-chain). The real vote rule refuses f10, view 10 times out, and the
/// run is safe and live.
#[test]
fn vote_rule_or_follows_a_fork_below_the_lock_and_stalls() {
    for seed in 1..=10 {
        let mutant = fork_below_the_lock(seed, Some(HotStuffMutant::VoteRuleOr));
        assert!(
            mutant.violations.is_empty(),
            "seed {seed}: {:?}",
            mutant.violations
        );
        assert_eq!(mutant.stuck.len(), 3, "seed {seed}: {:?}", mutant.stuck);
        let control = fork_below_the_lock(seed, None);
        assert!(
            control.violations.is_empty(),
            "seed {seed}: {:?}",
            control.violations
        );
        assert!(control.stuck.is_empty(), "seed {seed}: {:?}", control.stuck);
    }
}
