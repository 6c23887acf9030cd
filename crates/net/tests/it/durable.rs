//! Data directories over real QUIC, in process: a replica killed and
//! restarted on its directory resumes at the slot it had written, commits
//! again, and the four ledgers it leaves are one chain; restarted after the
//! others went past what they keep for lagging peers, it installs a
//! snapshot and reaches the tip. Each protocol.

use bft_core::{BatchConfig, Fsync, NodeId, Protocol};
use bft_load::LoadConfig;
use bft_net::client::run_load;
use bft_net::durable::StoreConfig;
use bft_net::{LocalCluster, LocalClusterConfig};
use bft_store::{Ledger, LedgerReport};
use std::time::{Duration, Instant};

fn committed<P: Protocol>(c: &LocalCluster<P>, i: usize) -> u64 {
    c.snapshots()[i].map_or(0, |s| s.status.committed)
}

/// Waits (at most 10 s) until node `i` has committed more than `above`.
async fn wait_for<P: Protocol>(c: &LocalCluster<P>, i: usize, above: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    while committed(c, i) <= above && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    committed(c, i)
}

async fn restart_resumes<P: Protocol>(proto: P::Config) {
    let dir = std::env::temp_dir().join(format!("net-durable-{}-{}", P::NAME, std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = LocalClusterConfig {
        nodes: 4,
        seed: 3,
        batch: BatchConfig {
            max_size: 50,
            max_delay: Duration::from_millis(5),
        },
        store: Some(StoreConfig {
            dir: dir.clone(),
            fsync: Fsync::Always,
        }),
        ..LocalClusterConfig::default()
    };
    let mut cluster = LocalCluster::<P>::start(cfg, proto).await.unwrap();
    let load = cluster
        .client_setup(LoadConfig::open(200.0, 2, 64), Duration::from_secs(8))
        .unwrap();
    let clients = tokio::spawn(run_load(load, std::future::pending()));

    assert!(wait_for(&cluster, 3, 20).await > 20, "{}: commits", P::NAME);
    let killed = cluster.kill(NodeId(3)).await.unwrap();
    assert!(killed.store_writes > 0, "{}: it wrote", P::NAME);
    assert_eq!(killed.resumed_at, None, "{}: it started fresh", P::NAME);
    let at_kill = committed(&cluster, 0);
    assert!(wait_for(&cluster, 0, at_kill + 10).await > at_kill + 10);

    cluster.restart(NodeId(3)).await.unwrap();
    let tip = committed(&cluster, 0);
    assert!(
        wait_for(&cluster, 3, tip).await > tip,
        "{}: the restarted replica catches up past the tip it came back to",
        P::NAME
    );
    clients.await.unwrap().unwrap();
    let nodes = cluster.stop().await.unwrap();
    let restarted = nodes.iter().find(|n| n.id == NodeId(3)).unwrap();
    assert_eq!(
        restarted.resumed_at,
        Some(killed.status.committed),
        "{}: it resumed where its directory ended, not fresh",
        P::NAME
    );

    let ledgers: Vec<Ledger> = (0..4)
        .map(|i| Ledger::read(&dir.join(format!("node-{i}"))).unwrap())
        .collect();
    let slices: Vec<_> = ledgers.iter().map(bft_store::Ledger::blocks).collect();
    let report = LedgerReport::compare(&slices);
    assert_eq!(report.fork, None, "{}: {report:?}", P::NAME);
    assert!(
        report.common > killed.status.committed,
        "{}: {report:?}",
        P::NAME
    );
    for l in &ledgers {
        assert!(l.meta.clean, "{}: stopped cleanly", P::NAME);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbft_replica_restarted_on_its_data_directory_resumes() {
    restart_resumes::<bft_pbft::Pbft>(bft_pbft::PbftConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qbft_replica_restarted_on_its_data_directory_resumes() {
    restart_resumes::<bft_qbft::Qbft>(bft_qbft::QbftConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hotstuff_replica_restarted_on_its_data_directory_resumes() {
    restart_resumes::<bft_hotstuff::HotStuff>(bft_hotstuff::HotStuffConfig::default()).await;
}

/// Frames a link queues in [`restart_past_the_archives`] (the load
/// client's links too): at 400 slots a second and one or two frames a slot
/// on a link, 0.3 to 0.6 s of its traffic.
const KILLED_QUEUE: usize = 256;

/// Waits (at most `limit`) until node `i` has committed more than `above`.
async fn wait_longer<P: Protocol>(
    c: &LocalCluster<P>,
    i: usize,
    above: u64,
    limit: Duration,
) -> u64 {
    let deadline = Instant::now() + limit;
    while committed(c, i) <= above && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    committed(c, i)
}

/// Beyond the archives over QUIC: a replica killed while the others commit
/// `gap` more slots than any of them keeps for lagging peers (PBFT 256
/// batches below its stable checkpoint, which itself trails the tip by up
/// to two checkpoint intervals of 128; QBFT 64 heights, HotStuff 256
/// blocks) restarts on its directory, installs a snapshot f+1 peers offer
/// alike, and commits past the tip it came back to; its ledger skips the
/// slots before the snapshot and agrees with the others on every slot it
/// holds. Node 0 leads (weight 1000, as in the simulator's state-sync
/// test), so that the killed replica's turns as leader do not slow the
/// others down.
/// A killed in-process replica closes its connections, so its peers' link
/// writers keep what they send it queued (up to `send_queue` frames) and
/// replay it once it is back, which a crashed process's peers cannot
/// count on. The queue here holds `KILLED_QUEUE` frames, at least one a
/// slot, and `gap` exceeds that plus the archive: the queued frames cannot
/// carry the replica across the gap on their own.
/// Also: every data directory holds only the request batches its durable
/// state names (at most `max_batches`, far fewer than the slots committed:
/// batches are dropped from the store once nothing names them).
async fn restart_past_the_archives<P: Protocol>(proto: P::Config, gap: u64, max_batches: u64) {
    let dir = std::env::temp_dir().join(format!("net-archives-{}-{}", P::NAME, std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = LocalClusterConfig {
        nodes: 4,
        seed: 5,
        batch: BatchConfig {
            max_size: 1,
            max_delay: Duration::from_millis(1),
        },
        store: Some(StoreConfig {
            dir: dir.clone(),
            fsync: Fsync::Never,
        }),
        leaders: Some(bft_core::LeaderSchedule::favouring(4, NodeId(0), 1000)),
        send_queue: KILLED_QUEUE,
        ..LocalClusterConfig::default()
    };
    let mut cluster = LocalCluster::<P>::start(cfg, proto).await.unwrap();
    let load = cluster
        .client_setup(LoadConfig::open(400.0, 4, 64), Duration::from_secs(30))
        .unwrap();
    let clients = tokio::spawn(run_load(load, std::future::pending()));

    assert!(wait_for(&cluster, 3, 5).await > 5, "{}: commits", P::NAME);
    let killed = cluster.kill(NodeId(3)).await.unwrap();
    let at_kill = killed.status.committed;
    let far = at_kill + gap;
    // Every one of the others: one that lags keeps older slots, and could
    // serve them without a snapshot.
    for i in 0..3 {
        assert!(
            wait_longer(&cluster, i, far, Duration::from_secs(20)).await > far,
            "{}: node {i} commits {gap} more slots",
            P::NAME
        );
    }
    cluster.restart(NodeId(3)).await.unwrap();
    let tip = committed(&cluster, 0);
    assert!(
        wait_longer(&cluster, 3, tip, Duration::from_secs(20)).await > tip,
        "{}: the restarted replica commits past the tip it came back to ({tip})",
        P::NAME
    );
    clients.abort();
    let nodes = cluster.stop().await.unwrap();
    let restarted = nodes.iter().find(|n| n.id == NodeId(3)).unwrap();
    assert_eq!(restarted.resumed_at, Some(at_kill), "{}", P::NAME);
    assert!(
        restarted.stats.snapshots_installed >= 1,
        "{}: it caught up through a snapshot (resumed at {:?}, killed at {at_kill}, stats {:?})",
        P::NAME,
        restarted.resumed_at,
        restarted.stats
    );

    let ledgers: Vec<Ledger> = (0..4)
        .map(|i| Ledger::read(&dir.join(format!("node-{i}"))).unwrap())
        .collect();
    assert!(
        !ledgers[3].snapshots.is_empty(),
        "{}: the snapshot is in its ledger",
        P::NAME
    );
    let slices: Vec<_> = ledgers.iter().map(bft_store::Ledger::blocks).collect();
    let report = LedgerReport::compare(&slices);
    assert_eq!(report.fork, None, "{}: {report:?}", P::NAME);
    assert!(ledgers[3].tip() > tip, "{}", P::NAME);
    for (i, l) in ledgers.iter().enumerate() {
        assert!(
            l.meta.batches <= max_batches && max_batches < l.tip(),
            "{}: node {i} holds {} batches at tip {}",
            P::NAME,
            l.meta.batches,
            l.tip()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbft_replica_restarted_past_the_archives_installs_a_snapshot() {
    // Its log names at most a window's pre-prepares and as many prepared
    // certificates of other pre-prepares.
    let cfg = bft_pbft::PbftConfig::default();
    let max_batches = 2 * cfg.window;
    restart_past_the_archives::<bft_pbft::Pbft>(cfg, 900, max_batches).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qbft_replica_restarted_past_the_archives_installs_a_snapshot() {
    // The accepted and the prepared block.
    restart_past_the_archives::<bft_qbft::Qbft>(bft_qbft::QbftConfig::default(), 400, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hotstuff_replica_restarted_past_the_archives_installs_a_snapshot() {
    // The committed tip and the uncommitted blocks up to the highQC's and
    // the locked block: a handful in a cluster that commits.
    restart_past_the_archives::<bft_hotstuff::HotStuff>(
        bft_hotstuff::HotStuffConfig::default(),
        600,
        16,
    )
    .await;
}
