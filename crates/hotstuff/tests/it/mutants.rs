#![cfg(feature = "mutants")]
//! Planted safety bugs (`--features mutants`, `[hotstuff] mutant = "..."`)
//! and full-protocol simulator scenarios that expose each: an oracle
//! violation, or for a mutant that can only hurt liveness, an honest replica
//! that commits nothing within `liveness_bound` after the network heals.
//! The same scenario with `mutant: None` is safe and live.
//!
//! Run: `cargo test -p bft-hotstuff --features mutants --test it mutants::`.

use bft_core::{Adversarial, LeaderSchedule, NodeId, Time};
use bft_hotstuff::{HotStuff, HotStuffConfig, HotStuffMutant};
use bft_sim::{Fault, LoadConfig, NetworkConfig, Partition, SimConfig, Simulation};
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

/// The scenario shapes of the controls below. The discriminants seed each
/// shape's random choices (`scenario`), so they stay fixed.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// 1–3 partitions of the 4 nodes into two non-empty groups, each
    /// starting in [0, 2 s) and lasting [200 ms, 1.5 s); no faulty node.
    Partitions = 0,
    /// Node 0 runs the seeded fork plan `fork(seed)` for the whole run and
    /// leads 4 views of every 7; no partition.
    ForkPlan = 6,
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
    let mut leaders = None;
    match shape {
        Shape::Partitions => {
            for _ in 0..1 + rng.below(3) {
                let start = rng.ms(0, 2000);
                let end = start + rng.ms(200, 1500);
                let groups = split(&mut rng, &ids)
                    .into_iter()
                    .map(|g| g.into_iter().map(NodeId).collect())
                    .collect();
                partitions.push(Partition { start, end, groups });
            }
        }
        Shape::ForkPlan => {
            faults.push(Fault::attack(
                NodeId(0),
                bft_core::Attack::Fork(seed),
                Duration::ZERO,
            ));
            leaders = Some(LeaderSchedule::favouring(4, NodeId(0), 4));
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

/// Runs in 1 ms steps until `done`, at most `limit` of virtual time.
fn step_until(
    sim: &mut Simulation<HotStuff>,
    limit: Duration,
    what: &str,
    done: impl Fn(&Simulation<HotStuff>) -> bool,
) {
    let end = sim.now().saturating_add(limit);
    while !done(sim) {
        assert!(sim.now() < end, "timed out waiting for {what}");
        let next = sim.now().saturating_add(Duration::from_millis(1));
        sim.run_until(next);
    }
}

/// Leaders of the indirect-chain scenario: views 0–16 pinned
/// (0,1,2,3,1,2,3,1, then node 0 for 8–12, then 1,2,1,2), round-robin after.
fn indirect_chain_leaders() -> LeaderSchedule {
    let prefix = [0u16, 1, 2, 3, 1, 2, 3, 1, 0, 0, 0, 0, 0, 1, 2, 1, 2];
    LeaderSchedule::round_robin(4).with_prefix(prefix.iter().map(|&i| NodeId(i)).collect())
}

/// The indirect-chain scenario. Node 0 is Byzantine (the one of f = 1) and
/// leads views 8–12 ([`indirect_chain_leaders`]). Up to b8 and from view 13
/// on it runs its honest core; in views 9–12 its outbound traffic is
/// dropped and the test speaks for it (`inject`), using only QCs its honest
/// core formed from the others' votes and its own vote key:
/// - view 9: c9 on QC(7), conflicting with b8 — everyone votes (lock b6);
/// - view 10: b10 on QC(b8) (views 8 → 10: a gap); everyone votes;
/// - view 11: b11 on QC(b10); everyone votes;
/// - view 12: b12 on QC(b11) to node 3 only — b11 → b10 → b8 are parent
///   links with a view gap, which the mutant commits (node 3 commits b8);
///   and d12 on QC(c9) to nodes 1 and 2, plus node 0's vote for it: QC(c9)
///   (view 9) is above their lock (b8, view 8), so they vote, and the honest
///   leaders after (1, 2, 1, with node 0's core voting: it never saw b10
///   or b11) extend d12 to a direct 3-chain: nodes 1 and 2 commit c9 at
///   b8's height. Node 3, having committed b8, cannot attach the fork.
///
/// With the real commit rule node 3 never commits b8 and the run is safe.
fn indirect_chain(seed: u64, mutant: Option<HotStuffMutant>) -> Outcome {
    use bft_hotstuff::{Block, Message, QuorumCert, VOTE_DOMAIN, Vote, vote_payload};
    let cfg = SimConfig {
        nodes: 4,
        seed,
        duration: Duration::from_secs(60),
        network: NetworkConfig::uniform(Duration::from_millis(1), Duration::from_millis(5)),
        load: LoadConfig::open(100.0, 1, 128),
        leaders: Some(indirect_chain_leaders()),
        ..SimConfig::default()
    };
    let proto = protocol(mutant);
    let bound = <HotStuff as Adversarial>::liveness_bound(&proto, 4);
    let mut sim = Simulation::<HotStuff>::new(cfg, proto).unwrap();
    let key = sim.crypto(NodeId(0));
    // Blocks node 0's core must never fetch (b10, b11): with them it would
    // propose in view 12 itself and (as a mutant) commit b8 too.
    let withheld: std::rc::Rc<std::cell::RefCell<Vec<bft_core::Digest>>> = Default::default();
    let withheld_in_filter = withheld.clone();
    sim.set_outbound_filter(NodeId(0), move |_, _, msg| {
        if let Message::BlockRequest { block, .. } = &msg
            && withheld_in_filter.borrow().contains(block)
        {
            return None;
        }
        let view = match &msg {
            Message::Proposal(b) => b.view.0,
            Message::Vote(v) => v.view.0,
            Message::NewView(nv) => nv.view.0,
            _ => 0,
        };
        (!(9..=12).contains(&view)).then_some(msg)
    });
    let limit = Duration::from_secs(5);
    let high = |sim: &Simulation<HotStuff>| sim.node(NodeId(0)).protocol().high_qc().clone();
    let block_of = |sim: &Simulation<HotStuff>, qc: &QuorumCert| {
        sim.node(NodeId(0)).protocol().block(&qc.block).cloned()
    };
    let send = |sim: &mut Simulation<HotStuff>, to: &[u16], block: &Block| {
        for &i in to {
            let now = sim.now();
            sim.inject(now, NodeId(0), NodeId(i), Message::Proposal(block.clone()));
        }
    };
    let child = |parent: &Block, parent_hash, view: u64, justify: QuorumCert| Block {
        parent: parent_hash,
        view: bft_core::View(view),
        height: parent.height.next(),
        batch: Vec::new(),
        justify,
    };

    step_until(&mut sim, limit, "QC(b8)", |s| high(s).view.0 >= 8);
    let qc8 = high(&sim);
    assert_eq!(qc8.view.0, 8, "node 0 formed QC(8) itself");
    let b8 = block_of(&sim, &qc8).unwrap();
    let qc7 = b8.justify.clone();
    let b7 = block_of(&sim, &qc7).unwrap();
    let c9 = child(&b7, qc7.block, 9, qc7.clone());
    send(&mut sim, &[1, 2, 3], &c9);

    step_until(&mut sim, limit, "QC(c9)", |s| high(s).view.0 >= 9);
    let qc9 = high(&sim);
    assert_eq!(qc9.block, c9.hash());
    let b10 = child(&b8, qc8.block, 10, qc8.clone());
    withheld.borrow_mut().push(b10.hash());
    send(&mut sim, &[1, 2, 3], &b10);

    step_until(&mut sim, limit, "QC(b10)", |s| high(s).view.0 >= 10);
    let qc10 = high(&sim);
    assert_eq!(qc10.block, b10.hash());
    let b11 = child(&b10, qc10.block, 11, qc10.clone());
    withheld.borrow_mut().push(b11.hash());
    send(&mut sim, &[1, 2, 3], &b11);

    step_until(&mut sim, limit, "QC(b11)", |s| high(s).view.0 >= 11);
    let qc11 = high(&sim);
    assert_eq!(qc11.block, b11.hash());
    let b12 = child(&b11, qc11.block, 12, qc11);
    send(&mut sim, &[3], &b12);
    let d12 = child(&c9, qc9.block, 12, qc9);
    send(&mut sim, &[1, 2], &d12);
    let d12_hash = d12.hash();
    let vote = Message::Vote(Vote {
        view: d12.view,
        block: d12_hash,
        signature: key.bls_sign(VOTE_DOMAIN, &vote_payload(d12.view, &d12_hash)),
    });
    let now = sim.now();
    sim.inject(now, NodeId(0), NodeId(1), vote);

    let heal = sim.now();
    let stuck = sim.check_liveness(heal, bound);
    sim.run_until(heal.saturating_add(bound));
    Outcome {
        violations: sim.report().violations,
        stuck,
    }
}

/// `commit-indirect-chain` in the scripted scenario above: node 3 commits
/// b8 and nodes 1 and 2 commit c9 at the same slot, an agreement violation
/// (100 of 100 seeds). With the real commit rule the run is safe and live
/// in 100 of 100 seeds (node 3 catches up with the fork branch by fetching
/// the first missing ancestor below its orphans).
#[test]
fn commit_indirect_chain_commits_conflicting_blocks() {
    for seed in 1..=10 {
        let m = indirect_chain(seed, Some(HotStuffMutant::CommitIndirectChain));
        assert!(
            m.violations.iter().any(|v| v.starts_with("agreement")),
            "seed {seed}: {m:?}"
        );
        let c = indirect_chain(seed, None);
        assert!(c.violations.is_empty(), "seed {seed}: {c:?}");
        assert!(c.stuck.is_empty(), "seed {seed}: {c:?}");
    }
}

/// The seeded `fork` behaviour (shape `ForkPlan`: node 0 runs plan `seed`
/// for the whole run and leads 4 views of every 7). With the real rules
/// every plan of 1..=100 leaves HotStuff safe and live; with
/// `commit-indirect-chain`, plans 18 and 77 fork the ledger — the plan
/// lines up the indirect chain of the scripted scenario above by itself.
/// (Measured once over plans 1..=1000: the mutant forks 13, the real
/// rules 0, and none is stuck.)
#[test]
fn fork_plan_breaks_only_the_indirect_chain_mutant() {
    for seed in 1..=100 {
        let control = run(scenario(Shape::ForkPlan, seed), None);
        assert!(
            control.violations.is_empty() && control.stuck.is_empty(),
            "plan {seed}: {control:?}"
        );
    }
    for seed in [18, 77] {
        let m = run(
            scenario(Shape::ForkPlan, seed),
            Some(HotStuffMutant::CommitIndirectChain),
        );
        assert!(
            m.violations.iter().any(|v| v.starts_with("agreement")),
            "plan {seed}: {m:?}"
        );
    }
}
