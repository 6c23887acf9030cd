//! The data directory's writes, off the replica's event loop.
//!
//! A thread owns the store and takes write jobs in order. Jobs that queued
//! up behind a write in progress are merged into one (the newest durable
//! state, each batch as the latest job left it, every decision in order): the write and its fsync overlap with the
//! replica handling its next events, and under load one sync covers many
//! batches. Each job is reported done (or failed) in order; the runner
//! releases a batch's outputs only when its job is done.

use bft_core::{LedgerEntry, StateWrite, Store, StoreError};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One batch's write: numbered in submission order.
struct Job {
    seq: u64,
    state: Option<StateWrite>,
    committed: Vec<LedgerEntry>,
}

/// Jobs up to `seq` are written (or the write failed).
pub(super) struct Done {
    pub seq: u64,
    pub result: Result<(), StoreError>,
    /// Wall time of the write, fsync included.
    pub took: Duration,
}

/// What the writer thread hands back: the store, and the write that
/// failed if one did (then the store is not closed as clean).
type Stopped = (Box<dyn Store>, Option<StoreError>);

pub(super) struct Writer {
    jobs: Option<std_mpsc::Sender<Job>>,
    pub(super) thread: Option<std::thread::JoinHandle<Stopped>>,
}

impl Writer {
    /// Starts the writer thread; completions arrive on the receiver.
    pub(super) fn start(mut store: Box<dyn Store>) -> (Writer, mpsc::UnboundedReceiver<Done>) {
        let (jobs_tx, jobs_rx) = std_mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("bftbench-store".into())
            .spawn(move || {
                while let Ok(mut job) = jobs_rx.recv() {
                    while let Ok(next) = jobs_rx.try_recv() {
                        job.seq = next.seq;
                        match (&mut job.state, next.state) {
                            (Some(state), Some(newer)) => state.merge(newer),
                            (state, newer @ Some(_)) => *state = newer,
                            (_, None) => {}
                        }
                        job.committed.extend(next.committed);
                    }
                    let t0 = Instant::now();
                    let result = store.write(job.state.as_ref(), &job.committed);
                    let took = t0.elapsed();
                    // Nobody listening (the event loop ended) is no reason
                    // to stop: the runner still closes the store through
                    // this thread, after the writes it queued.
                    match result {
                        Ok(()) => {
                            let _ = done_tx.send(Done {
                                seq: job.seq,
                                result: Ok(()),
                                took,
                            });
                        }
                        Err(e) => {
                            let _ = done_tx.send(Done {
                                seq: job.seq,
                                result: Err(e.to_string().into()),
                                took,
                            });
                            return (store, Some(e));
                        }
                    }
                }
                (store, None)
            })
            .ok();
        let writer = Writer {
            jobs: Some(jobs_tx),
            thread,
        };
        (writer, done_rx)
    }

    /// Queues a write; false if the writer has stopped (after a failure).
    pub(super) fn submit(
        &self,
        seq: u64,
        state: Option<StateWrite>,
        committed: Vec<LedgerEntry>,
    ) -> bool {
        let job = Job {
            seq,
            state,
            committed,
        };
        self.jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok())
    }

    /// Lets the queued writes finish, then records a clean stop in the
    /// store, unless a write failed: that failure is returned and the
    /// store is left as it is (not marked clean).
    pub(super) fn close(mut self) -> Result<(), StoreError> {
        self.jobs = None;
        let (mut store, failed) = self
            .thread
            .take()
            .ok_or("the store's writer thread did not start")?
            .join()
            .map_err(|_| "the store's writer thread panicked")?;
        match failed {
            Some(e) => Err(e),
            None => store.close(),
        }
    }
}
