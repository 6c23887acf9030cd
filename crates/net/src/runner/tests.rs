//! The runner with a store: outputs held until written, a failed write
//! stops the replica.

use super::*;
use bft_core::{BatchConfig, CryptoKind, StoreError};
use std::sync::Mutex;

type Writes = Arc<Mutex<Vec<(bool, Vec<u64>)>>>;

/// A store that records the writes it took (whether a state came, the
/// slots committed), and fails them while `failing` is set.
struct TestStore {
    writes: Writes,
    failing: Arc<std::sync::atomic::AtomicBool>,
}

impl Store for TestStore {
    fn load_state(&self) -> Result<Option<Bytes>, StoreError> {
        Ok(None)
    }
    fn committed_tip(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    fn write(&mut self, state: Option<&[u8]>, committed: &[Decision]) -> Result<(), StoreError> {
        let mut writes = self.writes.lock().map_err(|_| "poisoned")?;
        if self.failing.load(Ordering::Relaxed) {
            return Err("disk full".into());
        }
        writes.push((state.is_some(), committed.iter().map(|d| d.slot).collect()));
        Ok(())
    }
    fn close(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

type Links = Vec<Option<mpsc::Receiver<Bytes>>>;

/// PBFT's replica 0 (the first primary) of four, its links to the
/// other three as receivers, and the log of its store's writes.
fn primary() -> (
    Driver<bft_pbft::Pbft>,
    Links,
    Writes,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let (committee, cryptos) = bft_testkit::keys(4, CryptoKind::Model);
    let batch = BatchConfig {
        max_size: 1,
        ..BatchConfig::default()
    };
    let ctx = bft_testkit::context(&committee, &cryptos, NodeId(0), batch);
    let node = Node::<bft_pbft::Pbft>::new(ctx, &bft_pbft::PbftConfig::default());
    let (mut links, mut rx) = (Vec::new(), Vec::new());
    for j in 0..4 {
        if j == 0 {
            links.push(None);
            rx.push(None);
            continue;
        }
        let (tx, r) = mpsc::channel(64);
        links.push(Some(tx));
        rx.push(Some(r));
    }
    let writes = Arc::new(Mutex::new(Vec::new()));
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut driver = Driver::new(node, links, Arc::new(LinkLosses::default()));
    driver.store = Some(Box::new(TestStore {
        writes: writes.clone(),
        failing: failing.clone(),
    }));
    (driver, rx, writes, failing)
}

fn sent(rx: &mut Links) -> usize {
    rx.iter_mut()
        .flatten()
        .map(|r| std::iter::from_fn(|| r.try_recv().ok()).count())
        .sum()
}

#[test]
fn a_batch_sends_nothing_until_its_state_is_written() {
    let (mut d, mut rx, writes, _) = primary();
    d.step(NodeInput::Start);
    d.flush();
    let _ = sent(&mut rx);
    d.step(NodeInput::Request(bft_testkit::request(1, 1)));
    assert_eq!(sent(&mut rx), 0, "the PRE-PREPAREs are held");
    assert!(
        d.dirty,
        "accepting its own pre-prepare changed the durable state"
    );
    let before = writes.lock().unwrap().len();
    d.flush();
    assert_eq!(
        writes.lock().unwrap().len(),
        before + 1,
        "one write for the batch"
    );
    assert_eq!(writes.lock().unwrap().last(), Some(&(true, vec![])));
    assert_eq!(sent(&mut rx), 3, "then the PRE-PREPARE goes to each backup");
}

#[test]
fn a_failed_write_releases_nothing_and_stops_the_replica() {
    let (mut d, mut rx, _, failing) = primary();
    d.step(NodeInput::Start);
    d.flush();
    let _ = sent(&mut rx);
    failing.store(true, Ordering::Relaxed);
    d.step(NodeInput::Request(bft_testkit::request(1, 1)));
    d.flush();
    assert_eq!(sent(&mut rx), 0, "nothing of the failed batch leaves");
    assert!(d.store_failed.is_some());
    d.step(NodeInput::Request(bft_testkit::request(1, 2)));
    d.flush();
    assert_eq!(sent(&mut rx), 0, "a stopped replica handles nothing more");
    let e = d
        .close_store()
        .expect_err("the failure is the replica's result");
    assert!(e.to_string().contains("disk full"), "{e}");
}
