//! The leader schedule comes from the committee (`Committee::leader`), not a
//! hard-wired round-robin: a schedule favouring node 2 makes it lead the
//! views the schedule names, and the run stays safe and live.

use bft_core::{LeaderSchedule, NodeId};
use bft_hotstuff::{HotStuff, HotStuffConfig};
use bft_sim::{LoadConfig, SimConfig, Simulation};
use std::time::Duration;

const REQUESTS: u64 = 20;

/// `favouring(4, 2, 3)`: views 0,1,2 → node 2, then 3, 0, 1, then again.
/// Fault-free, one request per block: every request costs four blocks, so
/// views 1..=4k each have exactly one proposal, broadcast to n−1 peers by
/// that view's scheduled leader, and no view changes happen.
#[test]
fn favoured_node_leads_the_views_its_schedule_names() {
    let n = 4;
    let schedule = LeaderSchedule::favouring(n, NodeId(2), 3);
    let cfg = SimConfig {
        nodes: n,
        seed: 3,
        duration: Duration::from_secs(60),
        load: LoadConfig::closed(1, 1, 128).with_total(REQUESTS),
        leaders: Some(schedule.clone()),
        ..SimConfig::default()
    };
    let mut sim = Simulation::<HotStuff>::new(cfg, HotStuffConfig::default()).unwrap();
    let report = sim.run();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.requests_committed, REQUESTS);
    assert_eq!(report.decisions, 4 * REQUESTS - 3);
    assert_eq!(report.view_changes, 0);

    let views = 4 * REQUESTS;
    for id in 0..n as u16 {
        let led = (1..=views)
            .filter(|&v| schedule.leader(v) == NodeId(id))
            .count() as u64;
        let proposals = sim
            .node(NodeId(id))
            .stats()
            .sent
            .get("proposal")
            .map_or(0, |c| c.count);
        assert_eq!(proposals, (n as u64 - 1) * led, "node {id}");
    }
    // Node 2 leads 3 of every 6 views: 41 of views 1..=80 (the others 13).
    let led_by_2 = (1..=views)
        .filter(|&v| schedule.leader(v) == NodeId(2))
        .count();
    assert_eq!(led_by_2, 41);
}
