//! bft-store: a replica's data directory.
//!
//! One redb file, `DIR/replica.redb`, with these tables:
//! - `meta`: one record ([`Meta`]): the format, the protocol and the replica
//!   id the directory belongs to, the fsync policy it was written under,
//!   whether the last process to write it shut down cleanly, whether a state
//!   was ever written and the ledger's tip;
//! - `state`: the replica's durable state (`Node::durable_write`), replaced
//!   whole at every write;
//! - `batches`: by digest, each batch of requests the state names
//!   (`Protocol::durable_batches`), written once while it is named and
//!   removed in the write after which nothing names it;
//! - `ledger`: the committed decisions by slot, a hash chain from genesis,
//!   each with its commit certificate (`Decision::certificate`, checked by
//!   `bftbench ledger verify --cluster`);
//! - `snapshots`: by slot, the block of each snapshot the replica installed
//!   (state sync from beyond its peers' archives): the chain resumes there.
//!
//! Every value carries a BLAKE3 checksum over its table, key and bytes, so a
//! flipped bit is an error naming the table and key, never a silently
//! different state; the meta record says what must be there, so a damaged
//! index that loses a key is an error too, never a fresh start. redb is copy-on-write with atomic commits: after a crash
//! the file holds the last committed write whole, never half of one.
//!
//! Why redb: a maintained, pure-Rust embedded store with atomic, crash-safe
//! commits, one file, no background threads and no compaction debt from
//! replacing the state whole at every write (an LSM such as fjall would keep
//! every replaced copy until it compacts). Every commit is a durable redb
//! commit; the fsync policy is carried out below redb, in the storage
//! backend: under [`Fsync::Never`] its `sync_data` does nothing, so a commit
//! reaches the operating system (a killed process loses nothing) but is not
//! forced to the disk, the meaning the simulator's model store gives
//! `never`. (redb's own `Durability::None` would lose commits to a process
//! crash, a different thing.)

mod backend;
mod error;
mod ledger;
mod read;

pub use error::StoreError;
pub use ledger::{ChainFault, Fork, LedgerReport, SnapshotMark, check_chain};
pub use read::Ledger;

pub use bft_core::Fsync;

use bft_core::{Digest, GENESIS, LedgerEntry, StateWrite, StoredState};
use read::{Reader, guarded, open_db, put};
use redb::{Database, Durability, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file inside a data directory.
pub const FILE_NAME: &str = "replica.redb";
/// [`Meta::format`]; a directory of another format is refused.
pub const FORMAT: &str = "bftbench-store/4";

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const LEDGER: TableDefinition<u64, &[u8]> = TableDefinition::new("ledger");
const SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshots");
const BATCHES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("batches");
const META_KEY: &str = "meta";
const STATE_KEY: &str = "durable";

/// Who a data directory belongs to; checked at every open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// `Protocol::NAME`.
    pub protocol: String,
    pub node: u16,
}

/// The meta record: who the directory belongs to and what it must hold.
/// Rewritten in every write's transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub format: String,
    pub protocol: String,
    pub node: u16,
    /// The policy of the last process that wrote it.
    pub fsync: Fsync,
    /// That process shut down cleanly (`Store::close`).
    pub clean: bool,
    /// A durable state was written at some time: one that is not found now
    /// is damage, not a new replica.
    pub state_written: bool,
    /// The ledger's last slot and block (a decision's or a snapshot's).
    pub tip: u64,
    pub tip_block: Digest,
    /// Snapshots installed so far (entries of the `snapshots` table).
    pub snapshots: u64,
    /// Batches held (entries of the `batches` table): after every write,
    /// those the state names.
    pub batches: u64,
}

/// What a data directory held when it was opened.
#[derive(Clone, Debug, Default)]
pub struct Opened {
    /// The durable state with its batches, None for a new directory.
    pub state: Option<StoredState>,
    /// The highest committed slot in the ledger.
    pub committed_tip: u64,
}

/// An open data directory (it holds redb's lock on the file: one process at
/// a time).
pub struct DataDir {
    db: Database,
    file: PathBuf,
    meta: Meta,
    syncs: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl DataDir {
    /// Opens (creating if need be) `dir` for `owner`, writing under `fsync`.
    /// Refuses a directory of another format, protocol or replica, and one
    /// that does not hold what its meta record says (a value that fails its
    /// checksum, a key gone missing, a broken hash chain). A file that
    /// exists is never taken for a new directory.
    pub fn open(dir: &Path, owner: &Owner, fsync: Fsync) -> Result<(DataDir, Opened), StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            file: dir.to_path_buf(),
            source,
        })?;
        let file = dir.join(FILE_NAME);
        let existed = file.exists();
        let syncs = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let db = open_db(&file, false, fsync, syncs.clone())?;
        let (stored, state) = if existed {
            let read = guarded(&file, || Reader::new(&db, &file)?.checked(Some(owner)))?;
            (Some(read.meta), read.state)
        } else {
            (None, None)
        };
        let meta = Meta {
            format: FORMAT.into(),
            protocol: owner.protocol.clone(),
            node: owner.node,
            fsync,
            clean: false,
            state_written: stored.as_ref().is_some_and(|m| m.state_written),
            tip: stored.as_ref().map_or(0, |m| m.tip),
            tip_block: stored.as_ref().map_or(GENESIS, |m| m.tip_block),
            snapshots: stored.as_ref().map_or(0, |m| m.snapshots),
            batches: stored.as_ref().map_or(0, |m| m.batches),
        };
        let mut me = DataDir {
            db,
            file,
            meta,
            syncs,
        };
        // Claim the directory durably before anything is sent: from now on
        // a crash leaves `clean = false`.
        me.commit_meta()?;
        let opened = Opened {
            state,
            committed_tip: me.meta.tip,
        };
        Ok((me, opened))
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The syncs forced to the disk since the directory was opened.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn commit_meta(&mut self) -> Result<(), StoreError> {
        guarded(&self.file, || {
            let tx = self.begin(Durability::Immediate)?;
            {
                let mut table = tx.open_table(META).map_err(|e| self.engine(e))?;
                self.put_meta(&mut table)?;
            }
            tx.commit().map_err(|e| self.engine(e))
        })?;
        Ok(())
    }

    fn put_meta(&self, table: &mut redb::Table<&str, &[u8]>) -> Result<(), StoreError> {
        let body = self.encode(&self.meta)?;
        put(table, "meta", META_KEY, &body).map_err(|e| self.engine(e))
    }

    fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, StoreError> {
        postcard::to_stdvec(value).map_err(|e| StoreError::Encode {
            file: self.file.clone(),
            reason: e.to_string(),
        })
    }

    fn begin(&self, durability: Durability) -> Result<redb::WriteTransaction, StoreError> {
        let mut tx = self.db.begin_write().map_err(|e| self.engine(e))?;
        tx.set_durability(durability).map_err(|e| self.engine(e))?;
        Ok(tx)
    }

    fn engine(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Engine {
            file: self.file.clone(),
            source: Box::new(e.into()),
        }
    }

    /// Checks that `entries` extend the ledger (a decision for a slot
    /// already stored must be the same decision; a decision must continue
    /// the tip; a snapshot must be above it), and returns the new ones,
    /// each with the tip it came after.
    fn new_entries<'a>(
        &self,
        entries: &'a [LedgerEntry],
    ) -> Result<Vec<(u64, &'a LedgerEntry)>, StoreError> {
        let mut tip = (self.meta.tip, self.meta.tip_block);
        let mut fresh = Vec::new();
        let mut reader = None;
        for entry in entries {
            let before = tip.0;
            match entry {
                LedgerEntry::Commit(d) if d.slot <= tip.0 => {
                    let read = match reader.as_mut() {
                        Some(read) => read,
                        None => reader.insert(Reader::new(&self.db, &self.file)?),
                    };
                    let stored = read.decision(d.slot)?;
                    if stored.as_ref() != Some(d) {
                        return Err(StoreError::Conflict {
                            file: self.file.clone(),
                            slot: d.slot,
                        });
                    }
                    continue;
                }
                LedgerEntry::Commit(d) => {
                    if d.slot != tip.0 + 1 || d.parent != tip.1 {
                        return Err(StoreError::Gap {
                            file: self.file.clone(),
                            tip: tip.0,
                            slot: d.slot,
                        });
                    }
                    tip = (d.slot, d.block);
                }
                LedgerEntry::Snapshot { slot, block } => {
                    if *slot <= tip.0 {
                        return Err(StoreError::Conflict {
                            file: self.file.clone(),
                            slot: *slot,
                        });
                    }
                    tip = (*slot, *block);
                }
            }
            fresh.push((before, entry));
        }
        Ok(fresh)
    }
}

impl bft_core::Store for DataDir {
    fn load_state(&self) -> Result<Option<StoredState>, bft_core::StoreError> {
        let read = guarded(&self.file, || {
            Reader::new(&self.db, &self.file)?.checked(None)
        })?;
        Ok(read.state)
    }

    fn committed_tip(&self) -> Result<u64, bft_core::StoreError> {
        Ok(self.meta.tip)
    }

    /// Records a clean shutdown (for `bftbench ledger`; a directory left by
    /// a crash opens all the same).
    fn close(&mut self) -> Result<(), bft_core::StoreError> {
        self.meta.clean = true;
        Ok(self.commit_meta()?)
    }

    fn write(
        &mut self,
        state: Option<&StateWrite>,
        ledger: &[LedgerEntry],
    ) -> Result<(), bft_core::StoreError> {
        let fresh = self.new_entries(ledger)?;
        if state.is_none() && fresh.is_empty() {
            return Ok(());
        }
        let mut meta = self.meta.clone();
        meta.state_written |= state.is_some();
        for (_, entry) in &fresh {
            match entry {
                LedgerEntry::Commit(d) => (meta.tip, meta.tip_block) = (d.slot, d.block),
                LedgerEntry::Snapshot { slot, block } => {
                    (meta.tip, meta.tip_block) = (*slot, *block);
                    meta.snapshots += 1;
                }
            }
        }
        meta.batches = guarded(&self.file, || self.commit_write(state, &fresh, &meta))?;
        self.meta = meta;
        Ok(())
    }
}

impl DataDir {
    /// One write's transaction: the state and its batches, the new
    /// decisions and the meta record that names the new tip and counts the
    /// batches held. Returns that count.
    fn commit_write(
        &self,
        state: Option<&StateWrite>,
        fresh: &[(u64, &LedgerEntry)],
        meta: &Meta,
    ) -> Result<u64, StoreError> {
        let mut meta = meta.clone();
        let tx = self.begin(Durability::Immediate)?;
        {
            if let Some(write) = state {
                let mut table = tx.open_table(STATE).map_err(|e| self.engine(e))?;
                put(&mut table, "state", STATE_KEY, &write.state).map_err(|e| self.engine(e))?;
                let mut batches = tx.open_table(BATCHES).map_err(|e| self.engine(e))?;
                for (digest, body) in &write.batches {
                    let key = digest.0.as_slice();
                    match body {
                        Some(bytes) => {
                            let sealed = read::seal("batches", key, bytes);
                            batches
                                .insert(key, sealed.as_slice())
                                .map_err(|e| self.engine(e))?;
                        }
                        None => {
                            batches.remove(key).map_err(|e| self.engine(e))?;
                        }
                    }
                }
                meta.batches = batches.len().map_err(|e| self.engine(e))?;
            }
            let mut ledger = tx.open_table(LEDGER).map_err(|e| self.engine(e))?;
            let mut snapshots = tx.open_table(SNAPSHOTS).map_err(|e| self.engine(e))?;
            for &(after, entry) in fresh {
                match entry {
                    LedgerEntry::Commit(d) => {
                        let body = self.encode(d)?;
                        let sealed = read::seal("ledger", &d.slot.to_le_bytes(), &body);
                        ledger
                            .insert(d.slot, sealed.as_slice())
                            .map_err(|e| self.engine(e))?;
                    }
                    LedgerEntry::Snapshot { slot, block } => {
                        let mark = SnapshotMark {
                            after,
                            block: *block,
                        };
                        let body = self.encode(&mark)?;
                        let sealed = read::seal("snapshots", &slot.to_le_bytes(), &body);
                        snapshots
                            .insert(*slot, sealed.as_slice())
                            .map_err(|e| self.engine(e))?;
                    }
                }
            }
            let mut table = tx.open_table(META).map_err(|e| self.engine(e))?;
            let body = self.encode(&meta)?;
            put(&mut table, "meta", META_KEY, &body).map_err(|e| self.engine(e))?;
        }
        tx.commit().map_err(|e| self.engine(e))?;
        Ok(meta.batches)
    }
}
