//! The driver's side of the data directory: handing each batch to the
//! writer thread, releasing batches as their writes finish, and closing
//! the store at the end.

use super::{Done, Driver};
use bft_core::Protocol;
use tokio::sync::mpsc;

impl<P: Protocol> Driver<P> {
    /// With a store: hands the writer the durable state (if it changed) and
    /// the decisions committed since the last write, and parks the held
    /// outputs until that write is done. A batch with nothing to write
    /// waits behind the writes in flight (its outputs may depend on them),
    /// or goes out at once if there are none.
    pub(super) fn flush(&mut self) {
        let Some(writer) = self.writer.as_ref() else {
            return;
        };
        if self.store_failed.is_some() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        if self.dirty || !self.committed.is_empty() {
            let state = if self.dirty {
                match self.node.durable_state() {
                    Ok(bytes) => Some(bytes),
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
                self.store_failed = Some(crate::NetError::StoreWrite(
                    "the store's writer stopped".into(),
                ));
                return;
            }
            self.dirty = false;
            self.in_flight.push_back((self.next_write, held));
        } else if let Some((_, waiting)) = self.in_flight.back_mut() {
            waiting.extend(held);
        } else {
            for o in held {
                self.output(o);
            }
        }
    }

    /// Write `d.seq` (and every one before it) is done: release what waited
    /// for it, in order. A failed write releases nothing and stops the
    /// replica.
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
    }

    /// Lets the writes in flight finish and records a clean stop in the
    /// store, unless a write failed (that failure is the replica's result).
    pub(super) fn close_store(&mut self) -> Result<(), crate::NetError> {
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
