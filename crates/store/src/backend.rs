//! The file under redb, with the fsync policy applied: redb calls
//! `sync_data` at every durable commit; under [`Fsync::Never`] that call
//! does nothing, so commits reach the operating system but are not forced
//! to the disk. Everything else is the plain file backend.

use crate::Fsync;
use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub(crate) struct PolicyBackend {
    file: FileBackend,
    fsync: Fsync,
    /// The syncs that reached the disk (`DataDir::syncs`).
    syncs: Arc<AtomicU64>,
}

impl PolicyBackend {
    pub(crate) fn new(file: std::fs::File, fsync: Fsync, syncs: Arc<AtomicU64>) -> PolicyBackend {
        PolicyBackend {
            file: FileBackend::new(file),
            fsync,
            syncs,
        }
    }
}

impl StorageBackend for PolicyBackend {
    fn len(&self) -> Result<u64, BackendError> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), BackendError> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), BackendError> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> Result<(), BackendError> {
        match self.fsync {
            Fsync::Always => {
                self.syncs.fetch_add(1, Ordering::Relaxed);
                self.file.sync_data()
            }
            Fsync::Never => Ok(()),
        }
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        self.file.write(offset, data)
    }

    fn close(&self) -> Result<(), BackendError> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}
