//! The runner with a store: outputs held until written, a failed write
//! stops the replica.

use super::*;
use bft_core::{BatchConfig, CryptoKind, LedgerEntry, StoreError, codec};
use std::sync::Mutex;

type Writes = Arc<Mutex<Vec<(bool, Vec<u64>)>>>;

/// A store that records the writes it took (whether a state came, the
/// slots committed); each write waits for a permit from the test, and fails
/// while `failing` is set.
struct TestStore {
    writes: Writes,
    failing: Arc<std::sync::atomic::AtomicBool>,
    permits: std::sync::mpsc::Receiver<()>,
    /// Told when a write starts (before it waits for its permit).
    entered: std::sync::mpsc::Sender<()>,
    /// Set when the store is closed (a clean stop recorded).
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl Store for TestStore {
    fn load_state(&self) -> Result<Option<bft_core::StoredState>, StoreError> {
        Ok(None)
    }
    fn committed_tip(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    fn write(
        &mut self,
        state: Option<&bft_core::StateWrite>,
        committed: &[LedgerEntry],
    ) -> Result<(), StoreError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err("disk full".into());
        }
        let _ = self.entered.send(());
        self.permits.recv().map_err(|_| "no more permits")?;
        let mut writes = self.writes.lock().map_err(|_| "poisoned")?;
        writes.push((
            state.is_some(),
            committed.iter().map(LedgerEntry::slot).collect(),
        ));
        Ok(())
    }
    fn close(&mut self) -> Result<(), StoreError> {
        self.closed.store(true, Ordering::Relaxed);
        Ok(())
    }
}

type Links = Vec<Option<crate::queue::QueueRx>>;

struct Harness {
    d: Driver<bft_pbft::Pbft>,
    rx: Links,
    writes: Writes,
    failing: Arc<std::sync::atomic::AtomicBool>,
    permits: std::sync::mpsc::Sender<()>,
    entered: std::sync::mpsc::Receiver<()>,
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl Harness {
    /// PBFT's replica 0 (the first primary) of four, its links to the
    /// other three as receivers, and a test store behind the writer.
    fn primary() -> Harness {
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
            let (tx, r) = crate::queue::bounded(64, crate::queue::LINK_QUEUE_BYTES);
            links.push(Some(tx));
            rx.push(Some(r));
        }
        let writes = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (permits, permits_rx) = std::sync::mpsc::channel();
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let forwarder = Forwarder::new(node.id(), Vec::new());
        let mut d = Driver::new(node, links, forwarder, Arc::new(LinkLosses::default()));
        let (writer, done) = Writer::start(Box::new(TestStore {
            writes: writes.clone(),
            failing: failing.clone(),
            permits: permits_rx,
            entered: entered_tx,
            closed: closed.clone(),
        }));
        d.writer = Some(writer);
        d.done = Some(done);
        Harness {
            d,
            rx,
            writes,
            failing,
            permits,
            entered,
            closed,
        }
    }

    /// [`Harness::primary`] after its start, with what the start wrote and
    /// sent out of the way.
    fn started() -> Harness {
        let mut h = Harness::primary();
        h.d.step(NodeInput::Start);
        h.d.flush();
        if !h.d.in_flight.is_empty() {
            h.complete_one();
        }
        let _ = h.sent();
        h
    }

    /// [`Harness::started`], then request 1's write in progress (waiting
    /// for its permit) and request 2's batch waiting behind it; with the
    /// number of writes done before them.
    fn one_writing_one_waiting() -> (Harness, usize) {
        let mut h = Harness::started();
        while h.entered.try_recv().is_ok() {}
        let before = h.writes.lock().unwrap().len();
        h.request(1);
        h.entered.recv().expect("write 1 started");
        h.request(2);
        (h, before)
    }

    /// Client 1's request `number` handled as one batch, then flushed.
    fn request(&mut self, number: u64) {
        self.d.step(NodeInput::Request(bft_testkit::signed_request(
            CryptoKind::Model,
            1,
            number,
        )));
        self.d.flush();
    }

    fn sent(&mut self) -> usize {
        self.rx
            .iter_mut()
            .flatten()
            .map(|r| std::iter::from_fn(|| r.try_recv()).count())
            .sum()
    }

    /// Lets one write through and waits until the driver has heard it is
    /// done (or failed).
    fn complete_one(&mut self) {
        let _ = self.permits.send(());
        let done = self.d.done.as_mut().and_then(|rx| rx.blocking_recv());
        if let Some(done) = done {
            self.d.written(done);
        }
    }
}

#[test]
fn a_batch_sends_nothing_until_its_state_is_written() {
    let mut h = Harness::started();
    let before = h.writes.lock().unwrap().len();
    h.d.step(NodeInput::Request(bft_testkit::signed_request(
        CryptoKind::Model,
        1,
        1,
    )));
    assert!(
        h.d.dirty,
        "accepting its own pre-prepare changed the durable state"
    );
    h.d.flush();
    assert_eq!(h.sent(), 0, "the PRE-PREPAREs wait for the write");
    assert_eq!(h.d.in_flight.len(), 1);
    h.complete_one();
    assert_eq!(
        h.writes.lock().unwrap().len(),
        before + 1,
        "one write for the batch"
    );
    assert_eq!(h.writes.lock().unwrap().last(), Some(&(true, vec![])));
    assert_eq!(h.sent(), 3, "then the PRE-PREPARE goes to each backup");
}

/// Batches go out in the order of their writes, and the batches handled
/// while a write is in progress go together into the next write.
#[test]
fn batches_are_released_in_write_order_and_those_handled_during_a_write_share_the_next() {
    let mut h = Harness::started();
    while h.entered.try_recv().is_ok() {}
    let before = h.writes.lock().unwrap().len();
    h.request(1);
    h.entered.recv().expect("write 1 started");
    for number in 2..=3 {
        h.request(number);
    }
    assert_eq!(
        (h.d.in_flight.len(), h.d.batches_waiting),
        (1, 2),
        "one write in progress, two batches wait for the next"
    );
    assert_eq!(h.sent(), 0);
    h.complete_one();
    assert_eq!(h.sent(), 3, "the first batch's PRE-PREPAREs only");
    h.complete_one();
    assert_eq!(h.sent(), 6, "then the other two, written as one");
    assert!(h.d.in_flight.is_empty());
    assert_eq!(h.writes.lock().unwrap().len(), before + 2);
}

#[test]
fn a_failed_write_releases_nothing_and_stops_the_replica() {
    let mut h = Harness::started();
    h.failing.store(true, Ordering::Relaxed);
    h.request(1);
    h.complete_one();
    assert_eq!(h.sent(), 0, "nothing of the failed batch leaves");
    assert!(h.d.store_failed.is_some());
    h.request(2);
    assert_eq!(h.sent(), 0, "a stopped replica handles nothing more");
    let e =
        h.d.close_store()
            .expect_err("the failure is the replica's result");
    assert!(e.to_string().contains("disk full"), "{e}");
}

/// A replica stopped cleanly writes what the batches still waiting for the
/// next write changed, so that it resumes at everything it committed.
#[test]
fn a_clean_stop_writes_the_batches_still_waiting() {
    let (mut h, before) = Harness::one_writing_one_waiting();
    assert_eq!(h.d.batches_waiting, 1, "the second batch waits");
    for _ in 0..2 {
        h.permits.send(()).unwrap();
    }
    h.d.close_store().unwrap();
    let writes = h.writes.lock().unwrap();
    assert_eq!(
        writes.len(),
        before + 2,
        "its state was written at the stop"
    );
    assert_eq!(writes.last(), Some(&(true, vec![])));
}

/// The writer thread keeps writing when nobody hears its completions any
/// more (the event loop ended while a write was in flight): the stop that
/// follows still writes what the replica committed and closes the store.
#[test]
fn the_store_closes_after_its_completions_went_unheard() {
    let (mut h, before) = Harness::one_writing_one_waiting();
    drop(h.d.done.take());
    h.permits.send(()).unwrap();
    // The thread has finished write 1 once it takes the next job or
    // exits; give it the time to do either before the stop.
    let thread_ended = || {
        h.d.writer
            .as_ref()
            .and_then(|w| w.thread.as_ref())
            .is_none_or(std::thread::JoinHandle::is_finished)
    };
    let deadline = std::time::Instant::now() + Duration::from_millis(500);
    while h.writes.lock().unwrap().len() == before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    while !thread_ended() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!thread_ended(), "the writer outlives its listener");
    h.permits.send(()).unwrap();
    h.d.close_store().expect("the stop writes and closes");
    assert_eq!(h.writes.lock().unwrap().len(), before + 2);
}

/// The last write, submitted by the stop itself, fails: the stop returns
/// that failure and the store is not marked as cleanly closed (a replica
/// restarted on it must not trust a clean stop it did not make).
#[test]
fn a_write_failing_at_the_stop_is_the_result_and_the_store_stays_unclean() {
    let (mut h, _) = Harness::one_writing_one_waiting();
    h.failing.store(true, Ordering::Relaxed);
    h.permits.send(()).unwrap();
    let e =
        h.d.close_store()
            .expect_err("the failed write is the result");
    assert!(e.to_string().contains("disk full"), "{e}");
    assert!(!h.closed.load(Ordering::Relaxed), "no clean stop recorded");
}

/// A replica that commits a request before its client's own copy arrives
/// (the primary had it first) answers that copy when it comes: the core
/// would drop it as executed, and a client waiting for f + 1 replies would
/// wait for ever.
#[test]
fn a_request_committed_before_its_copy_arrived_is_answered_when_it_does() {
    let mut h = Harness::started();
    let req = bft_testkit::signed_request(CryptoKind::Model, 1, 1);
    let id = req.id();
    h.d.reply(7, &[id]);
    let mut rx = connect(&mut h, 3);
    h.d.client_event(ClientEvent::Request { conn: 3, req });
    assert_eq!(reply_in(&mut rx, "answered at once"), (7, vec![id]));
    assert_eq!(h.d.summary.client_messages, 1);
    assert_eq!(h.sent(), 0, "not handed to the core: nothing proposed");
    // A second copy is the core's again (answered once).
    let again = bft_testkit::signed_request(CryptoKind::Model, 1, 1);
    h.d.client_event(ClientEvent::Request {
        conn: 3,
        req: again,
    });
    assert!(rx.try_recv().is_err());
}

/// A decision whose client's connection has closed is kept for the copy
/// the client sends on a new one.
#[test]
fn a_reply_to_a_closed_connection_waits_for_a_copy_on_a_new_one() {
    let mut h = Harness::started();
    let req = bft_testkit::signed_request(CryptoKind::Model, 1, 1);
    let id = req.id();
    let (gone, rx) = mpsc::channel(8);
    drop(rx);
    h.d.client_event(ClientEvent::Connected {
        conn: 3,
        replies: gone,
    });
    h.d.owner.insert(id.client, 3);
    h.d.reply(7, &[id]);
    let mut rx = connect(&mut h, 4);
    h.d.client_event(ClientEvent::Request { conn: 4, req });
    assert_eq!(
        reply_in(&mut rx, "answered on the new connection"),
        (7, vec![id])
    );
}

/// A client connection `conn`, and the receiver of its replies.
fn connect(h: &mut Harness, conn: u64) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(8);
    h.d.client_event(ClientEvent::Connected { conn, replies: tx });
    rx
}

/// The next reply `rx` holds: its slot and request ids.
fn reply_in(rx: &mut mpsc::Receiver<Bytes>, what: &str) -> (u64, Vec<bft_core::RequestId>) {
    let body = rx.try_recv().expect(what);
    let reply: crate::wire::Reply = codec::decode(&body, codec::DEFAULT_MAX_FRAME).unwrap();
    (reply.slot, reply.requests)
}
