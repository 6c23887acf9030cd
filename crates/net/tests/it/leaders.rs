//! The scenario's leader schedule reaches the replicas over QUIC exactly as
//! in the simulator: a favoured QBFT proposer is the only one to propose,
//! and a schedule that leaves a member out is refused.

use bft_core::{BatchConfig, LeaderSchedule, NodeId};
use bft_load::LoadConfig;
use bft_net::{LocalCluster, LocalClusterConfig, NetError};
use bft_qbft::{Qbft, QbftConfig};
use std::time::Duration;

fn cfg(leaders: Option<LeaderSchedule>) -> LocalClusterConfig {
    LocalClusterConfig {
        nodes: 4,
        seed: 1,
        load: LoadConfig::closed(1, 1, 64).with_total(10),
        batch: BatchConfig {
            max_size: 1,
            max_delay: Duration::from_millis(1),
        },
        duration: Duration::from_secs(20),
        leaders,
        ..LocalClusterConfig::default()
    }
}

fn patient() -> QbftConfig {
    QbftConfig {
        round_timeout: Duration::from_secs(10),
        ..QbftConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_favoured_proposer_proposes_every_height() {
    // Node 2 leads the first 1000 heights: only it may send PROPOSALs.
    let schedule = LeaderSchedule::favouring(4, NodeId(2), 1000);
    let cluster = LocalCluster::<Qbft>::start(cfg(Some(schedule.clone())), patient())
        .await
        .unwrap();
    assert_eq!(cluster.committee().leaders(), &schedule);
    let clients = cluster
        .run_clients(
            LoadConfig::closed(1, 1, 64).with_total(10),
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(clients.requests_committed, 10);
    let nodes = cluster.stop().await.unwrap();
    let proposals: Vec<u64> = nodes
        .iter()
        .map(|n| n.stats.sent.get("proposal").map_or(0, |k| k.count))
        .collect();
    assert!(proposals[2] > 0, "{proposals:?}");
    assert_eq!(
        proposals
            .iter()
            .enumerate()
            .filter(|(i, c)| *i != 2 && **c > 0)
            .count(),
        0,
        "only the favourite proposes: {proposals:?}"
    );
}

#[tokio::test]
async fn a_schedule_that_skips_a_member_is_refused() {
    let bad = LeaderSchedule {
        prefix: Vec::new(),
        rotation: vec![NodeId(0), NodeId(1), NodeId(2)],
    };
    let Err(e) = LocalCluster::<Qbft>::start(cfg(Some(bad)), patient()).await else {
        panic!("a rotation without node 3 was accepted")
    };
    assert!(
        matches!(e, NetError::Invalid { ref key, .. } if key == "leaders"),
        "{e}"
    );
    assert!(e.to_string().contains("never names node 3"), "{e}");
}
