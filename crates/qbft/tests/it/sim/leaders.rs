//! The leader schedule.

use super::*;

#[test]
fn favouring_schedule_makes_node_2_propose_three_heights_in_a_row_then_rotates() {
    use bft_core::LeaderSchedule;
    // Rotation [2, 2, 2, 3, 0, 1]: fault-free every height decides in round
    // 0, so heights 1..=12 are proposed by 2, 2, 2, 3, 0, 1, 2, 2, 2, 3, 0, 1.
    let schedule = LeaderSchedule::favouring(4, NodeId(2), 3);
    let cfg = SimConfig {
        leaders: Some(schedule.clone()),
        ..config(4, 12)
    };
    let mut sim = simulation(cfg);
    let report = sim.run();
    assert_safe(&report);
    assert_exact_counts(&report, 4, 12);
    assert_eq!(proposals_by(&sim, NodeId(2)), 6 * 3, "node 2 led 6 heights");
    for id in [0, 1, 3].map(NodeId) {
        assert_eq!(proposals_by(&sim, id), 2 * 3, "node {id} led 2 heights");
    }
    // The pure schedule function agrees, height by height.
    let committee = sim.committee();
    let mut slot = 0;
    let mut leaders = Vec::new();
    for _ in 0..12 {
        let leader = bft_qbft::proposer(&committee, slot, 0);
        leaders.push(leader.0);
        slot = bft_qbft::next_round0_slot(&committee, slot, leader);
    }
    assert_eq!(leaders, [2, 2, 2, 3, 0, 1, 2, 2, 2, 3, 0, 1]);

    // The favourite crashed: rounds walk the rotation past its three slots
    // (rounds 0, 1, 2 of height 1) to node 3, and the run stays safe and live.
    let cfg = SimConfig {
        leaders: Some(schedule),
        faults: vec![Fault::crash(NodeId(2), Duration::ZERO)],
        duration: Duration::from_secs(30),
        ..config(4, 4)
    };
    let mut sim = simulation(cfg);
    let report = sim.run();
    assert_safe(&report);
    assert_eq!(report.requests_committed, 4);
    assert_eq!(
        sim.ledger(NodeId(0))[0].view,
        3,
        "height 1 decided in round 3"
    );
    assert_eq!(proposals_by(&sim, NodeId(2)), 0);
}
