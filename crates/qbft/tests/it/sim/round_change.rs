//! Round changes in the simulator: replaced proposers, re-proposed
//! values, f and f+1 replicas announcing far rounds.

use super::*;

#[test]
fn silent_proposer_is_replaced_by_round_change_and_next_proposers_block_commits() {
    let cfg = SimConfig {
        faults: vec![Fault::silent(NodeId(0), Duration::ZERO)],
        ..config(4, 1)
    };
    let mut sim = simulation(cfg);
    let report = sim.run();
    assert_safe(&report);
    assert_eq!(report.requests_committed, 1);
    assert!(report.view_changes >= 1);
    assert!(
        sent(&report, "round-change") >= 3,
        "honest replicas announced round 1"
    );
    for id in [1, 2, 3].map(NodeId) {
        let decided = &sim.ledger(id)[0];
        assert_eq!(decided.view, 1, "decided in round 1");
        let cert = sim.node(id).protocol().last_certificate().unwrap();
        assert_eq!(
            cert.block.proposer,
            NodeId(1),
            "proposer(1, 1) built the block"
        );
        assert_eq!(cert.digest, decided.block);
    }
}

#[test]
fn value_prepared_in_round_0_is_reproposed_in_round_1_with_the_same_hash() {
    // Node 0, proposer of (1, 0), shows its proposal and PREPARE to nodes 1
    // and 2 only and never lets a COMMIT out: 0, 1 and 2 prepare its block,
    // but only 2 < q commits reach anyone else, so round 0 times out. (Node
    // 0 itself holds q and decides; the DECIDED it could relay is dropped
    // too, or the others would take its round-0 decision.)
    let mut sim = simulation(config(4, 1));
    let proposed: Rc<RefCell<Option<Digest>>> = Rc::default();
    let seen = proposed.clone();
    sim.set_outbound_filter(NodeId(0), move |_, to, msg| match &msg {
        QbftMessage::Proposal(p) if p.signed.payload.round == 0 => {
            *seen.borrow_mut() = Some(p.signed.payload.digest);
            (to == NodeId(1) || to == NodeId(2)).then_some(msg)
        }
        QbftMessage::Prepare(p) if p.payload.round == 0 => {
            (to == NodeId(1) || to == NodeId(2)).then_some(msg)
        }
        QbftMessage::Commit(_) | QbftMessage::Decided(_) => None,
        _ => Some(msg),
    });
    let report = sim.run();
    assert_safe(&report);
    assert_eq!(report.requests_committed, 1);
    let original = proposed.borrow().expect("node 0 proposed");
    for id in [1, 2, 3].map(NodeId) {
        let decided = &sim.ledger(id)[0];
        assert_eq!(decided.view, 1, "decided after one round change");
        assert_eq!(decided.block, original, "the round-0 block, same hash");
        let cert = sim.node(id).protocol().last_certificate().unwrap();
        assert_eq!(
            cert.block.proposer,
            NodeId(0),
            "not the round-1 leader's own block"
        );
    }
}

#[test]
fn f_byzantine_round_changes_for_round_5_do_not_move_honest_nodes() {
    let mut sim = simulation(config(4, 5));
    let msg = far_round_change(&sim, NodeId(3), 5);
    for to in [0, 1, 2].map(NodeId) {
        sim.inject(Time::ZERO, NodeId(3), to, msg.clone());
    }
    let report = sim.run();
    assert_safe(&report);
    assert_exact_counts(&report, 4, 5);
    for id in [0, 1, 2].map(NodeId) {
        assert_eq!(sim.node(id).status().view_changes, 0);
        assert!(sim.ledger(id).iter().all(|d| d.view == 0));
    }
}

#[test]
fn f_plus_1_round_changes_for_round_5_move_honest_nodes_to_round_5() {
    let cfg = SimConfig {
        load: LoadConfig::none(),
        duration: Duration::from_secs(5),
        ..config(4, 0)
    };
    let mut sim = simulation(cfg);
    for from in [2, 3].map(NodeId) {
        let msg = far_round_change(&sim, from, 5);
        for to in [0, 1].map(NodeId) {
            sim.inject(Time::ZERO, from, to, msg.clone());
        }
    }
    let report = sim.run();
    assert_safe(&report);
    for id in [0, 1].map(NodeId) {
        assert_eq!(
            sim.node(id).status().view_changes,
            1,
            "one jump, straight to 5"
        );
        // proposer(1, 5) = node 1 gathered q round changes for round 5 and
        // proposed (an empty block: no request was pending).
        let decided = &sim.ledger(id)[0];
        assert_eq!((decided.slot, decided.view), (1, 5));
        assert!(decided.requests.is_empty());
    }
}
