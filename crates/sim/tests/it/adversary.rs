//! The simulator's generic fault layer on the toy protocol: every
//! behaviour parses from a `[[faults]]` table, omission/delay/replay/
//! censorship/amnesia do what they say, Twins routes by partition, and the
//! liveness check names a stuck replica.

use crate::common::toy::{Toy, ToyConfig};
use bft_core::{NodeId, Time};
use bft_sim::{Fault, FaultKind, LoadConfig, SimConfig, Simulation, Twins};
use std::time::Duration;

fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

fn config(faults: Vec<Fault>) -> SimConfig {
    SimConfig {
        nodes: 4,
        load: LoadConfig::open(200.0, 2, 64),
        duration: Duration::from_secs(2),
        faults,
        ..SimConfig::default()
    }
}

fn run(cfg: SimConfig) -> bft_sim::SimReport {
    Simulation::<Toy>::new(cfg, ToyConfig::default())
        .unwrap()
        .run()
}

#[derive(serde::Serialize)]
struct FaultsFile {
    faults: Vec<Fault>,
}

fn to_toml(fault: Fault) -> String {
    toml::to_string(&FaultsFile {
        faults: vec![fault],
    })
    .unwrap()
}

fn parse(toml_text: &str) -> Result<Fault, String> {
    #[derive(serde::Deserialize)]
    struct File {
        faults: Vec<Fault>,
    }
    toml::from_str::<File>(toml_text)
        .map(|f| f.faults[0].clone())
        .map_err(|e| e.to_string())
}

#[test]
fn every_behaviour_parses_and_round_trips() {
    let tables = [
        r#"behaviour = "crash""#,
        r#"behaviour = "crash"
until = "2s"
amnesia = true"#,
        r#"behaviour = "silent""#,
        r#"behaviour = "omission"
peers = [2, 3]"#,
        r#"behaviour = "delay"
delay = "300ms""#,
        r#"behaviour = "stale-replay""#,
        r#"behaviour = "censor"
clients = [0]"#,
        r#"behaviour = "equivocate""#,
        r#"behaviour = "double-vote""#,
        r#"behaviour = "forge"
forgery = "duplicate-signers""#,
        r#"behaviour = "inflate-view"
by = 1000"#,
        r#"behaviour = "mutate"
mutation = "round-plus-one""#,
        r#"behaviour = "bad-signature""#,
        r#"behaviour = "swap-payload""#,
        r#"behaviour = "fork"
plan = 9007199254740993"#,
    ];
    assert_eq!(tables.len(), bft_sim::BEHAVIOURS.len() + 1);
    for t in tables {
        let text = format!("[[faults]]\nnode = 1\nat = \"1s\"\n{t}\n");
        let fault = parse(&text).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(fault.node, NodeId(1));
        assert_eq!(fault.start, Duration::from_secs(1));
        let back = to_toml(fault.clone());
        assert_eq!(parse(&back).unwrap(), fault, "{back}");
    }
}

#[test]
fn bad_fault_tables_name_the_problem() {
    let cases = [
        (r#"behaviour = "omission""#, "needs `peers`"),
        (r#"behaviour = "delay""#, "needs `delay`"),
        (r#"behaviour = "forge""#, "needs `forgery`"),
        (r#"behaviour = "fork""#, "needs `plan`"),
        (
            r#"behaviour = "crash"
amnesia = true"#,
            "amnesia = true needs `until`",
        ),
        (
            r#"behaviour = "silent"
amnesia = true"#,
            "amnesia applies to crash only",
        ),
        (r#"behaviour = "teleport""#, "expected one of crash, silent"),
        (
            r#"behaviour = "forge"
forgery = "perfect""#,
            "perfect",
        ),
        (
            r#"behaviour = "crash"
at = "2s"
until = "1s""#,
            "is before at",
        ),
    ];
    for (t, want) in cases {
        let text = format!("[[faults]]\nnode = 1\n{t}\n");
        let e = parse(&text).unwrap_err();
        assert!(e.contains(want), "{t}: {e}");
    }
}

#[test]
fn omission_drops_only_what_goes_to_the_named_peers() {
    // Node 1 never sends to the leader, node 0: the toy still commits on the
    // acks of nodes 2 and 3, and the leader receives 2 acks per slot, not 3.
    let honest = run(config(vec![]));
    let faulty = run(config(vec![Fault::new(
        NodeId(1),
        FaultKind::Omission {
            peers: vec![NodeId(0)],
        },
        Duration::ZERO,
    )]));
    let acks = |r: &bft_sim::SimReport| r.stats.received.get("ack").map_or(0, |k| k.count);
    assert!(acks(&honest) > 0);
    let node1_sent = faulty.nodes[1].sent.count;
    assert!(node1_sent > 0, "the core still emits; the fault drops");
    assert_eq!(faulty.decisions, honest.decisions);
    assert_eq!(
        acks(&faulty) * 3,
        acks(&honest) * 2,
        "the leader hears acks from nodes 2 and 3 only"
    );
    assert!(faulty.violations.is_empty());
    assert!(!faulty.nodes[1].byzantine, "omission is a benign fault");
}

#[test]
fn delay_fault_shifts_what_the_node_sends() {
    // The leader's messages leave 50 ms late: every commit waits for them.
    // One request at a time, so no queue builds up behind them.
    let one_at_a_time = |faults| SimConfig {
        load: LoadConfig::closed(1, 1, 64),
        ..config(faults)
    };
    let base = run(one_at_a_time(vec![]));
    let slow = run(one_at_a_time(vec![Fault::new(
        NodeId(0),
        FaultKind::Delay { by: ms(50) },
        Duration::ZERO,
    )]));
    let shift = slow.latency.p50.saturating_sub(base.latency.p50);
    assert!(
        shift >= ms(100) && shift <= ms(110),
        "propose and decide both leave 50 ms late: {shift:?}"
    );
}

#[test]
fn stale_replay_resends_old_messages_and_is_rejected_or_ignored() {
    let honest = run(config(vec![]));
    let replay = run(config(vec![Fault::new(
        NodeId(0),
        FaultKind::StaleReplay,
        ms(100),
    )]));
    assert!(replay.nodes[0].byzantine);
    let props = |r: &bft_sim::SimReport| r.stats.received.get("propose").map_or(0, |k| k.count);
    assert!(props(&replay) > props(&honest), "replays arrive");
    assert!(replay.violations.is_empty(), "{:?}", replay.violations);
}

#[test]
fn censoring_leader_never_proposes_a_clients_requests() {
    let report = run(config(vec![Fault::new(
        NodeId(0),
        FaultKind::Censor { clients: vec![1] },
        Duration::ZERO,
    )]));
    // Client 1's requests never reach the toy's fixed leader, so only
    // client 0's are committed: about half the load.
    assert!(report.requests_committed > 0);
    assert!(report.requests_committed * 2 <= report.requests_issued + 2);
}

#[test]
fn crash_with_amnesia_restarts_a_fresh_core_and_keeps_old_counts() {
    let kept = run(config(vec![
        Fault::crash(NodeId(2), ms(500)).until(ms(600)),
    ]));
    let amnesia = run(config(vec![
        Fault::new(NodeId(2), FaultKind::Crash { amnesia: true }, ms(500)).until(ms(600)),
    ]));
    assert!(!kept.nodes[2].byzantine);
    assert!(
        amnesia.nodes[2].byzantine,
        "amnesia is Byzantine-equivalent"
    );
    // The fresh core forgot the slots it had committed.
    assert!(amnesia.nodes[2].status.committed < kept.nodes[2].status.committed);
    // The first incarnation's traffic is still in the totals.
    assert!(amnesia.stats.total_sent().count >= kept.stats.total_sent().count * 9 / 10);
}

#[test]
fn twins_route_by_round_partition_then_heal() {
    // Node 0 (the toy's leader) has a twin, instance 4. Round 0: {0,1,2} and
    // {4,3}; from 300 ms the network heals.
    let twins = Twins {
        nodes: vec![NodeId(0)],
        round: ms(300),
        partitions: vec![vec![vec![0, 1, 2], vec![4, 3]]],
    };
    let cfg = SimConfig {
        twins: Some(twins),
        ..config(vec![])
    };
    let mut sim = Simulation::<Toy>::new(cfg, ToyConfig::default()).unwrap();
    assert_eq!(sim.instances(), 5);
    sim.run_until(Time::from_duration(ms(290)));
    // In round 0, node 3 hears only the twin; the twin's side has 2 of the
    // n−f = 3 acks it needs, so node 3 has committed nothing.
    assert_eq!(sim.node(NodeId(3)).status().committed, 0);
    assert!(sim.node(NodeId(1)).status().committed > 0);
    let report = sim.run();
    assert!(report.nodes[0].byzantine && report.nodes[4].byzantine);
    assert_eq!(report.nodes[4].id, NodeId(0), "the twin runs as node 0");
}

#[test]
fn twins_config_is_checked() {
    let bad = |t: Twins| {
        let cfg = SimConfig {
            twins: Some(t),
            ..config(vec![])
        };
        match Simulation::<Toy>::new(cfg, ToyConfig::default()) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    };
    let e = bad(Twins {
        nodes: vec![NodeId(7)],
        round: ms(100),
        partitions: vec![],
    });
    assert!(e.contains("node 7 is not in the committee of 4"), "{e}");
    let e = bad(Twins {
        nodes: vec![NodeId(1)],
        round: ms(100),
        partitions: vec![vec![vec![0, 9]]],
    });
    assert!(e.contains("instance 9, but there are 5"), "{e}");
}

#[test]
fn liveness_check_names_a_stuck_replica_and_passes_a_healthy_run() {
    let mut ok = Simulation::<Toy>::new(config(vec![]), ToyConfig::default()).unwrap();
    assert!(
        ok.check_liveness(Time::from_duration(ms(500)), ms(500))
            .is_empty()
    );
    // The toy has no view change: with its leader crashed for good nobody
    // commits again. Node 0 is faulty (excluded); nodes 1–3 are named.
    let mut stuck = Simulation::<Toy>::new(
        config(vec![Fault::crash(NodeId(0), ms(200))]),
        ToyConfig::default(),
    )
    .unwrap();
    let heal = stuck.heal_time().max(Time::from_duration(ms(300)));
    let found = stuck.check_liveness(heal, ms(500));
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found[0].starts_with("liveness: node 1 committed nothing"),
        "{}",
        found[0]
    );
}
