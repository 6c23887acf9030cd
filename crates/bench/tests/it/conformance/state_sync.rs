//! State sync from any distance (`bft_core::snapshot`): a replica cut off
//! for 60 s of virtual time at 5 000 tx/s falls thousands of decisions
//! behind, far past every protocol's archive; after the heal it installs a
//! snapshot that f+1 peers agree on, catches up through the archive, and is
//! at the cluster's tip within the protocol's liveness bound. The oracle
//! checks the snapshot's slot against what the others committed there and
//! every decision before and after it.

use super::PROTOCOLS;
use bft_core::{BatchConfig, NodeId};
use bft_sim::{Fault, FaultKind, LoadConfig, NetworkConfig, Partition, Simulation};
use bftbench::protocols::BenchProtocol;
use bftbench::run::sim_config;
use bftbench::scenario::{LeadersTable, Placement, ProtocolName, Scenario};
use std::path::Path;
use std::time::Duration;

const CUT_OFF: u16 = 3;
const HEAL: Duration = Duration::from_secs(61);
const LOAD_ENDS: Duration = Duration::from_secs(66);
/// PBFT's and HotStuff's archives (QBFT's is 64 heights).
const LONGEST_ARCHIVE: u64 = 256;

/// n = 4, model crypto, 1–5 ms delays, batches of up to 1 000 cut every
/// 5 ms, node 0 the favoured leader (1 000 views in a row, then each member
/// one), 5 000 tx/s unsigned for 66 s, node
/// 3 alone from 1 s to 61 s.
fn partitioned(protocol: ProtocolName, seed: u64) -> Scenario {
    let text = format!(
        "protocol = \"{protocol}\"\nnodes = 4\nseed = {seed}\ncrypto = \"model\"\nduration = \"90s\"\n"
    );
    let mut s = Scenario::parse(&text, Path::new("state-sync.toml")).unwrap();
    s.load = LoadConfig::open(5_000.0, 16, 64)
        .unsigned()
        .with_total(5_000 * LOAD_ENDS.as_secs());
    s.batch = BatchConfig {
        max_size: 1_000,
        max_delay: Duration::from_millis(5),
    };
    // So that the three replicas left keep their pace and the cut-off one
    // falls far behind: with leaders in turn, one view in four waits out a
    // timeout, and HotStuff then commits about 240 heights in the 60 s,
    // within its 256-block archive.
    s.leaders = Some(LeadersTable {
        placement: Placement::Fixed,
        node: Some(NodeId(0)),
        weight: Some(1_000),
        prefix: Vec::new(),
    });
    s.network = NetworkConfig::uniform(Duration::from_millis(1), Duration::from_millis(5));
    s.network.partitions.push(Partition::between(
        Duration::from_secs(1),
        HEAL,
        &[&[CUT_OFF]],
    ));
    s
}

/// What the cut-off replica looks like: (its committed slot at the heal,
/// the others' lowest then, its slot one liveness bound after the heal,
/// the others' highest at the end, its own at the end, snapshots it
/// installed, violations).
struct Rejoin {
    at_heal: u64,
    others_at_heal: u64,
    after_bound: u64,
    others_at_end: u64,
    at_end: u64,
    snapshots: u64,
    violations: Vec<String>,
    committed: u64,
}

fn rejoin<P: BenchProtocol>(s: &Scenario) -> Rejoin {
    let mut sim = Simulation::<P>::new(sim_config(s), P::config(s)).unwrap();
    let me = NodeId(CUT_OFF);
    let others = || (0..CUT_OFF).map(NodeId);
    let slot = |sim: &Simulation<P>, id| sim.node(id).status().committed;
    sim.run_until(bft_core::Time::from_duration(HEAL));
    let at_heal = slot(&sim, me);
    let others_at_heal = others().map(|id| slot(&sim, id)).min().unwrap_or(0);
    let bound = P::liveness_bound(&P::config(s), s.nodes);
    sim.run_until(bft_core::Time::from_duration(HEAL + bound));
    let after_bound = slot(&sim, me);
    let report = sim.run();
    Rejoin {
        at_heal,
        others_at_heal,
        after_bound,
        others_at_end: others().map(|id| slot(&sim, id)).max().unwrap_or(0),
        at_end: slot(&sim, me),
        snapshots: sim.node(me).stats().snapshots_installed,
        violations: report.violations.clone(),
        committed: report.requests_committed,
    }
}

fn check(protocol: ProtocolName, s: &Scenario, what: &str) {
    let r = bftbench::with_protocol!(protocol, P => rejoin::<P>(s));
    assert!(r.violations.is_empty(), "{what}: {:?}", r.violations);
    assert_eq!(
        Some(r.committed),
        s.load.total,
        "{what}: every request committed"
    );
    assert!(
        r.others_at_heal > r.at_heal + LONGEST_ARCHIVE,
        "{what}: cut off, it fell behind past every archive ({} vs {})",
        r.at_heal,
        r.others_at_heal
    );
    assert!(r.snapshots >= 1, "{what}: it installed a snapshot");
    assert!(
        r.after_bound >= r.others_at_heal,
        "{what}: within the liveness bound it passed the tip of the heal ({} < {})",
        r.after_bound,
        r.others_at_heal
    );
    assert_eq!(r.at_end, r.others_at_end, "{what}: at the cluster's tip");
}

#[test]
fn a_replica_cut_off_for_60_s_at_5000_tx_s_rejoins_at_the_tip() {
    for protocol in PROTOCOLS {
        check(protocol, &partitioned(protocol, 11), &format!("{protocol}"));
    }
}

/// The same after losing its data directory: it restarts empty when the
/// partition heals (an amnesia restart, so outside the oracle's honest
/// set) and catches up from nothing the same way.
#[test]
fn a_replica_that_lost_its_data_directory_rejoins_at_the_tip() {
    for protocol in PROTOCOLS {
        let mut s = partitioned(protocol, 12);
        s.faults = vec![Fault {
            node: NodeId(CUT_OFF),
            kind: FaultKind::Crash { amnesia: true },
            start: HEAL - Duration::from_secs(1),
            end: Some(HEAL),
        }];
        check(protocol, &s, &format!("{protocol}, data directory lost"));
    }
}
