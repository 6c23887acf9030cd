//! The driver's side of the data directory: handing batches to the writer
//! thread, one write at a time (the batches handled during a write go into
//! the next: a group commit), releasing them as their writes finish, and
//! closing the store at the end.

use super::{Done, Driver};
use bft_core::{Output, Protocol};
use tokio::sync::mpsc;

impl<P: Protocol> Driver<P> {
    /// With a store: the batch just handled goes to the disk. With no write
    /// in progress, its durable state (if it changed) and the ledger
    /// entries since the last write are handed to the writer, and its
    /// outputs wait for that write. During a write, they wait for the next
    /// one ([`Driver::written`] starts it), unless the batch changed
    /// nothing durable and no batch waits before it: its outputs can then
    /// depend only on what the write in progress holds, and go out with
    /// it. A batch with nothing to write and no write in progress goes out
    /// at once.
    pub(super) fn flush(&mut self) {
        if self.writer.is_none() || self.store_failed.is_some() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        let to_write = self.dirty || !self.committed.is_empty();
        if let Some((_, outputs)) = self.in_flight.back_mut() {
            if to_write || !self.waiting.is_empty() {
                if to_write || !held.is_empty() {
                    self.batches_waiting += 1;
                }
                self.waiting.extend(held);
            } else {
                outputs.extend(held);
            }
        } else if to_write {
            self.submit(held);
        } else {
            for o in held {
                self.output(o);
            }
        }
    }

    /// Hands the writer the durable state (encoded now, once for every
    /// batch of events this write covers, with the request batches it
    /// names that no earlier write carried) and the ledger entries since the last
    /// write; `outputs` go out when it is done.
    fn submit(&mut self, outputs: Vec<Output<P::Timer>>) {
        let Some(writer) = self.writer.as_ref() else {
            return;
        };
        let state = if self.dirty {
            match self.node.durable_write() {
                Ok(write) => Some(write),
                Err(e) => {
                    self.store_failed = Some(crate::NetError::StoreWrite(Box::new(e)));
                    return;
                }
            }
        } else {
            None
        };
        self.next_write += 1;
        let committed = std::mem::take(&mut self.committed);
        if !writer.submit(self.next_write, state, committed) {
            self.store_failed = Some(crate::NetError::StoreWrite(self.why_the_writer_stopped()));
            return;
        }
        self.dirty = false;
        self.in_flight.push_back((self.next_write, outputs));
    }

    /// The writer stops only after a failed write: that failure, still
    /// waiting in the completions if the driver has not heard it yet.
    fn why_the_writer_stopped(&mut self) -> bft_core::StoreError {
        self.unheard_failure()
            .unwrap_or_else(|| "the store's writer stopped".into())
    }

    /// A failed write among the completions the driver has not handled
    /// (the event loop may have ended before it heard them).
    fn unheard_failure(&mut self) -> Option<bft_core::StoreError> {
        while let Some(Ok(d)) = self.done.as_mut().map(mpsc::UnboundedReceiver::try_recv) {
            if let Err(e) = d.result {
                return Some(e);
            }
        }
        None
    }

    /// Write `d.seq` (and every one before it) is done: release what waited
    /// for it, in order, then start the write the batches handled meanwhile
    /// wait for. A failed write releases nothing and stops the replica.
    pub(super) fn written(&mut self, d: Done) {
        if let Err(e) = d.result {
            tracing::error!(node = self.summary.id.0, "data directory: {e}; stopping");
            self.store_failed = Some(crate::NetError::StoreWrite(e));
            self.in_flight.clear();
            return;
        }
        self.summary.store_writes += 1;
        self.summary.store_s += d.took.as_secs_f64();
        while self.in_flight.front().is_some_and(|(seq, _)| *seq <= d.seq) {
            if let Some((_, outputs)) = self.in_flight.pop_front() {
                for o in outputs {
                    self.output(o);
                }
            }
        }
        if self.in_flight.is_empty() && self.batches_waiting > 0 {
            let waiting = std::mem::take(&mut self.waiting);
            self.batches_waiting = 0;
            if self.dirty || !self.committed.is_empty() {
                self.submit(waiting);
            } else {
                for o in waiting {
                    self.output(o);
                }
            }
        }
    }

    /// Writes what the batches still waiting changed (their outputs are
    /// dropped: the replica stops), lets the writes finish and records a
    /// clean stop in the store, unless a write failed (that failure is the
    /// replica's result). A replica stopped cleanly has written everything
    /// it committed.
    pub(super) fn close_store(&mut self) -> Result<(), crate::NetError> {
        if let Some(e) = self.unheard_failure() {
            self.store_failed = Some(crate::NetError::StoreWrite(e));
        }
        if self.store_failed.is_none() && (self.dirty || !self.committed.is_empty()) {
            self.batches_waiting = 0;
            let waiting = std::mem::take(&mut self.waiting);
            self.submit(waiting);
        }
        if let Some(e) = self.store_failed.take() {
            return Err(e);
        }
        match self.writer.take() {
            Some(writer) => writer.close().map_err(crate::NetError::StoreWrite),
            None => Ok(()),
        }
    }
}

/// The next finished write; never resolves without a store.
pub(super) async fn next_done(done: &mut Option<mpsc::UnboundedReceiver<Done>>) -> Option<Done> {
    match done {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
