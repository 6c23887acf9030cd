//! Regressions from `bftbench fuzz` findings, each the shrunk scenario.

use super::*;

/// Regression (fuzzer finding, `bftbench fuzz --protocol pbft --seed 1` case
/// 51): the view-0 primary omits everything to backups 1 and 2 from 267 ms,
/// and {0, 1, 3} | {2} are partitioned from 478 ms to 1188 ms. Replicas 0
/// and 3 collect VIEW-CHANGE(1) from {0, 1, 3}, time out and move on to view
/// 2; 1 and 2 (which never see 0's VIEW-CHANGEs) stay changing to view 1.
/// Replica 1, primary of view 1, had 3's VIEW-CHANGE(1) — but keeping only
/// each sender's newest, 3's VIEW-CHANGE(2) replaced it, so after the heal 1
/// held two VIEW-CHANGE(1)s (no NEW-VIEW) and one VIEW-CHANGE(2) (short of
/// the f+1 join rule): no replica ever completed a view change. Castro–Liskov
/// keep every valid VIEW-CHANGE (TOCS 2002 §4.4): 1 sends NEW-VIEW(1), 1 and
/// 2 time out in view 1 and join 0 and 3 in view 2, whose primary 2 gets all
/// the VIEW-CHANGEs it needs from 1, 2 and 3.
#[test]
fn omitting_primary_and_partition_do_not_split_the_view_change() {
    let (sim, report) = FuzzCase {
        nodes: 4,
        seed: 1_213_656_871_855_349_618,
        duration: ms(28_288),
        max_delay: ms(21),
        partitions: vec![Partition::between(ms(478), ms(1188), &[&[0, 1, 3]])],
        batch_size: 1,
        faults: vec![Fault::new(
            NodeId(0),
            FaultKind::Omission {
                peers: vec![NodeId(1), NodeId(2)],
            },
            ms(267),
        )],
        leaders: None,
        heal: ms(1188),
    }
    .replay();
    assert!(report.view_changes >= 1, "a view change completed");
    // Replicas 1, 2 and 3 keep committing under the new primary.
    for i in 1..4u16 {
        assert!(
            sim.node(NodeId(i)).status().committed > 100,
            "replica {i}: {:?}",
            sim.node(NodeId(i)).status()
        );
    }
    assert_ledgers_agree(&sim, &[1, 2, 3]);
}

/// Regression (fuzzer finding, `bftbench fuzz --protocol pbft --seed 1` case
/// 76): backup 1 omits everything to backup 2 from 2 ms, and 2 is cut off
/// from 345 ms to 1067 ms. Alone, 2's request timer moves it to view 1,
/// while 0, 1 and 3 go on committing in view 0. After the heal 2 stays
/// changing to view 1 (one VIEW-CHANGE, no NEW-VIEW; views never go back)
/// and could only catch up by state transfer — but it learned it was behind
/// only from q = 3 matching CHECKPOINTs, and it hears just 0's and 3's (1
/// omits, and 2 has no checkpoint of its own), so it never committed again.
/// f+1 matching CHECKPOINTs (a weak certificate, one signer correct) now
/// start the fetch; the transferred state is still checked against a q-proof.
#[test]
fn replica_alone_in_a_higher_view_catches_up_by_state_transfer() {
    let (sim, _) = FuzzCase {
        nodes: 4,
        seed: 2_253_024_251_820_114_659,
        duration: ms(28_167),
        max_delay: ms(17),
        partitions: vec![Partition::between(ms(345), ms(1067), &[&[2]])],
        batch_size: 4,
        faults: vec![Fault::new(
            NodeId(1),
            FaultKind::Omission {
                peers: vec![NodeId(2)],
            },
            ms(2),
        )],
        leaders: None,
        heal: ms(1067),
    }
    .replay();
    let st = sim.node(NodeId(2)).status();
    assert!(
        st.committed >= 128,
        "replica 2 fetched a checkpoint: {st:?}"
    );
    assert_ledgers_agree(&sim, &[0, 2, 3]);
}

/// Regression (fuzzer finding, `bftbench fuzz --protocol pbft --seed 1` case
/// 783): primary 0 is cut off from 172 ms to 735 ms and replica 3 goes
/// silent at 524 ms. 1, 2 and 3 enter view 1 without 0; then 2's request
/// timer (3 silent, so nothing prepares) sends it on to view 2. After the
/// heal 0 is still the active primary of view 0 (it missed NEW-VIEW(1)), 1
/// the active primary of view 1, and 2 waits in view 2 with one
/// VIEW-CHANGE: primaries run no request timer and nobody sees f+1 messages
/// of a higher view, so no honest timer ran again. A replica now answers a
/// normal-case message of an older view with its NEW-VIEW (as primary) or
/// its VIEW-CHANGE for the current view, once per timeout per replica
/// (retransmission, TOCS 2002 §4.4–4.5): 0 enters view 1 and its request
/// timer moves everyone on.
#[test]
fn stale_primary_missing_new_view_is_told_by_retransmission() {
    let (sim, _) = FuzzCase {
        nodes: 4,
        seed: 1_657_499_220_756_789_676,
        duration: ms(27_835),
        max_delay: ms(21),
        partitions: vec![Partition::between(ms(172), ms(735), &[&[0]])],
        batch_size: 2,
        faults: vec![Fault::silent(NodeId(3), ms(524))],
        leaders: None,
        heal: ms(735),
    }
    .replay();
    for id in [0, 1, 2] {
        let st = sim.node(NodeId(id)).status();
        assert!(st.view >= 2, "replica {id} left views 0 and 1: {st:?}");
        assert!(st.committed > 8, "replica {id} committed again: {st:?}");
    }
    assert_ledgers_agree(&sim, &[0, 1, 2]);
}

/// Regression (fuzzer finding, `bftbench fuzz --protocol pbft --seed 1` case
/// 3664): replica 2 leads views 0–3 and omits to 0 and 1 from 331 ms; two
/// partitions before that. 3 entered view 2 by accepting NEW-VIEW(2)
/// without ever sending VIEW-CHANGE(2) (0, 1 and 2 sent theirs), then its
/// request timer moved it on to view 3. 0 and 1, still changing to view 2
/// (2 omits the NEW-VIEW to them), held two VIEW-CHANGE(2)s (short of q, so
/// no new-view timer) and one VIEW-CHANGE(3) (short of f+1): stuck. 3 now
/// relays the NEW-VIEW(2) it accepted to a replica still changing to view 2
/// (it is self-certifying, signed by primary(2); retransmission, TOCS 2002
/// §4.5), and backups accept a relayed NEW-VIEW.
#[test]
fn accepted_new_view_is_relayed_to_a_replica_still_changing_to_it() {
    let (sim, _) = FuzzCase {
        nodes: 4,
        seed: 590_635_119_095_050_530,
        duration: ms(27_431),
        max_delay: ms(13),
        partitions: vec![
            Partition::between(ms(12), ms(122), &[&[1, 2]]),
            Partition::between(ms(100), ms(325), &[&[2, 3]]),
        ],
        batch_size: 2,
        faults: vec![Fault::new(
            NodeId(2),
            FaultKind::Omission {
                peers: vec![NodeId(0), NodeId(1)],
            },
            ms(331),
        )],
        leaders: Some(bft_core::LeaderSchedule::favouring(4, NodeId(2), 4)),
        heal: ms(331),
    }
    .replay();
    for id in [0, 1, 3] {
        let st = sim.node(NodeId(id)).status();
        assert!(st.committed > 0, "replica {id} committed: {st:?}");
    }
    assert_ledgers_agree(&sim, &[0, 1, 3]);
}

/// Regression (fresh-seed campaign, `bftbench fuzz --protocol pbft --seed
/// 151622106161200` case 396555, shrunk): {0} cut off 88–517 ms and again
/// 551–745 ms, replica 2 silent from 587 ms. Replica 0 changed to view 1
/// during the second cut; primary 1 answered its VIEW-CHANGE(1) with the
/// NEW-VIEW into the partition, where it was lost, and re-sent it at most
/// once per replica per view, so after the heal 0 re-sent VIEW-CHANGE(1)
/// for good and never entered view 1; 3 waited in view 2 for the silent
/// primary 2, short of the VIEW-CHANGEs that start its timer. Nobody
/// committed again (stuck at 2 and 18 decisions). Now the NEW-VIEW is
/// re-sent at most once per timeout per replica.
#[test]
fn lost_new_view_resend_is_resent_after_the_heal() {
    let (_, report) = FuzzCase {
        nodes: 4,
        seed: 8_669_260_247_687_337_960,
        duration: ms(27_845),
        max_delay: ms(25),
        partitions: vec![
            Partition::between(ms(88), ms(517), &[&[0], &[1, 2, 3]]),
            Partition::between(ms(551), ms(745), &[&[1, 2, 3], &[0]]),
        ],
        batch_size: 4,
        faults: vec![Fault::new(NodeId(2), FaultKind::Silent, ms(587))],
        leaders: None,
        heal: ms(745),
    }
    .replay();
    assert!(report.decisions > 18, "{}", report.decisions);
}

/// Regression (fresh-seed campaign, `bftbench fuzz --protocol pbft --seed
/// 151622106161200` case 435655, shrunk): the same shape with replica 3
/// corrupting every signature from 488 ms and {0} cut off 76–353 ms and
/// 372–933 ms: stuck at 3 and 16 decisions until the NEW-VIEW re-send was
/// rate-limited by time instead of once per view.
#[test]
fn lost_new_view_resend_with_a_corrupting_replica() {
    let (_, report) = FuzzCase {
        nodes: 4,
        seed: 4_629_706_775_649_873_571,
        duration: ms(28_033),
        max_delay: ms(9),
        partitions: vec![
            Partition::between(ms(372), ms(933), &[&[1, 2, 3], &[0]]),
            Partition::between(ms(76), ms(353), &[&[1, 2, 3], &[0]]),
        ],
        batch_size: 4,
        faults: vec![Fault::attack(
            NodeId(3),
            bft_core::Attack::BadSignature,
            ms(488),
        )],
        leaders: None,
        heal: ms(933),
    }
    .replay();
    assert!(report.decisions > 16, "{}", report.decisions);
}

/// Regression (fresh-seed campaign, `bftbench fuzz --protocol pbft --nodes
/// 7 --seed 172045626261112` case 1447, shrunk): n = 7, {5, 6} cut off
/// 361 ms–1.039 s, replica 4 (favoured primary of views 0–2) relabelling
/// its messages a view lower from 411 ms, replica 5 replaying stale
/// messages. Replica 6 fell behind at slot 18; with 4's CHECKPOINTs
/// malformed and 6 behind, no checkpoint became stable at the others until
/// view 3, but f+1 matching CHECKPOINTs made 6 fetch at once: it asked each
/// signer once, none could serve yet, and it gave up. When view 3 brought
/// the stable checkpoint 256 the others could serve, 6 asked nobody again,
/// and by the next proof (384) the batches it lacked were past the
/// transfer depth: stuck at 18 decisions for the 41.6 s bound. Now the
/// fetch goes round the signers, one per timeout, until it is served.
#[test]
fn a_fetch_nobody_could_serve_yet_is_asked_again_until_served() {
    use bft_core::{Attack, Mutation};
    let (sim, _) = FuzzCase {
        nodes: 7,
        seed: 5_556_343_017_806_469_896,
        duration: ms(42_739),
        max_delay: ms(6),
        partitions: vec![Partition::between(ms(361), ms(1039), &[&[5, 6]])],
        batch_size: 3,
        faults: vec![
            Fault::attack(NodeId(4), Attack::Mutate(Mutation::RoundMinusOne), ms(411)),
            Fault::new(NodeId(5), FaultKind::StaleReplay, ms(143)),
        ],
        leaders: Some(bft_core::LeaderSchedule::favouring(7, NodeId(4), 3)),
        heal: ms(1039),
    }
    .replay();
    assert!(sim.node(NodeId(6)).status().committed > 18);
}
