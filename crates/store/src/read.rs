//! Reading a data directory: sealed values, the checks an open makes, and
//! the offline [`Ledger`] that `bftbench ledger` reads.

use crate::{
    BATCHES, FILE_NAME, FORMAT, LEDGER, META, META_KEY, Meta, Owner, SNAPSHOTS, STATE, STATE_KEY,
    SnapshotMark, StoreError, check_chain,
};
use bft_core::{Decision, Digest, StoredState};
use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Opens the redb file, mapping redb's errors to ones naming the file.
/// `must_exist`: a missing file is an error rather than a new directory;
/// `fsync`: what a commit's sync does (see `backend`).
pub(crate) fn open_db(
    file: &Path,
    must_exist: bool,
    fsync: crate::Fsync,
    syncs: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<Database, StoreError> {
    if must_exist && !file.exists() {
        return Err(StoreError::Missing {
            file: file.to_path_buf(),
        });
    }
    // redb would initialise an empty file as a new database: a directory
    // whose file was cut to nothing must not come back as a fresh replica.
    if std::fs::metadata(file).is_ok_and(|m| m.len() == 0) {
        return Err(StoreError::Damaged {
            file: file.to_path_buf(),
            reason: "the file is empty".into(),
        });
    }
    let damaged = |reason: String| StoreError::Damaged {
        file: file.to_path_buf(),
        reason,
    };
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(!must_exist)
        .truncate(false)
        .open(file)
        .map_err(|source| StoreError::Io {
            file: file.to_path_buf(),
            source,
        })?;
    let backend = crate::backend::PolicyBackend::new(handle, fsync, syncs);
    guarded(file, || {
        let mut db = match redb::Builder::new().create_with_backend(backend) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::InUse {
                    file: file.to_path_buf(),
                });
            }
            Err(e) => return Err(damaged(e.to_string())),
        };
        // redb checksums its pages; check them all before trusting the
        // file. `false` means redb had to repair it, which may have rolled
        // it back to an earlier commit: a replica restarted from that could
        // equivocate, so it is refused as well.
        match db.check_integrity() {
            Ok(true) => Ok(db),
            Ok(false) => Err(damaged(
                "it failed the engine's page checksums (the engine's repair may have rolled it back)"
                    .into(),
            )),
            Err(e) => Err(damaged(e.to_string())),
        }
    })
}

/// Runs `f`, which reads the file through redb, turning a panic into an
/// error naming the file: on a damaged file redb can panic rather than
/// return an error (seen with single flipped bits in its page headers), and
/// a damaged directory must be an error, never a crash.
pub(crate) fn guarded<T>(
    file: &Path,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(StoreError::Damaged {
            file: file.to_path_buf(),
            reason: "the database engine could not read it".into(),
        })
    })
}

/// A value as stored: 32 bytes of BLAKE3 over (table, key, bytes), then the
/// bytes.
pub(crate) fn seal(table: &str, key: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + bytes.len());
    out.extend_from_slice(checksum(table, key, bytes).as_bytes());
    out.extend_from_slice(bytes);
    out
}

/// The bytes of a sealed value, or None if the checksum does not match.
fn unseal<'a>(table: &str, key: &[u8], sealed: &'a [u8]) -> Option<&'a [u8]> {
    let (sum, bytes) = sealed.split_at_checked(32)?;
    (checksum(table, key, bytes).as_bytes() == sum).then_some(bytes)
}

fn checksum(table: &str, key: &[u8], bytes: &[u8]) -> blake3::Hash {
    let mut h = blake3::Hasher::new_derive_key("bftbench/store/value/v1");
    h.update(&(table.len() as u64).to_le_bytes());
    h.update(table.as_bytes());
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key);
    h.update(bytes);
    h.finalize()
}

pub(crate) fn put(
    table: &mut redb::Table<&str, &[u8]>,
    name: &str,
    key: &str,
    bytes: &[u8],
) -> Result<(), redb::StorageError> {
    let sealed = seal(name, key.as_bytes(), bytes);
    table.insert(key, sealed.as_slice())?;
    Ok(())
}

/// Reads a data directory's tables, checking every checksum.
pub(crate) struct Reader<'a> {
    tx: redb::ReadTransaction,
    file: &'a Path,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(db: &Database, file: &'a Path) -> Result<Reader<'a>, StoreError> {
        let tx = db.begin_read().map_err(|e| StoreError::Engine {
            file: file.to_path_buf(),
            source: Box::new(e.into()),
        })?;
        Ok(Reader { tx, file })
    }

    fn engine(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Engine {
            file: self.file.to_path_buf(),
            source: Box::new(e.into()),
        }
    }

    fn corrupt(&self, table: &str, key: String) -> StoreError {
        StoreError::Corrupt {
            file: self.file.to_path_buf(),
            table: table.to_string(),
            key,
        }
    }

    fn vanished(&self, table: &str, key: String) -> StoreError {
        StoreError::Vanished {
            file: self.file.to_path_buf(),
            table: table.to_string(),
            key,
        }
    }

    fn mismatch(&self, key: &str, found: String, want: String) -> StoreError {
        StoreError::Mismatch {
            file: self.file.to_path_buf(),
            key: key.to_string(),
            found,
            want,
        }
    }

    /// A string-keyed value, checksum verified; None if the table or key is
    /// absent.
    fn text_keyed(
        &self,
        def: TableDefinition<&str, &[u8]>,
        name: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let table = match self.tx.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.engine(e)),
        };
        let Some(guard) = table.get(key).map_err(|e| self.engine(e))? else {
            return Ok(None);
        };
        let bytes = unseal(name, key.as_bytes(), guard.value())
            .ok_or_else(|| self.corrupt(name, key.to_string()))?;
        Ok(Some(bytes.to_vec()))
    }

    /// The meta record; the file exists, so it must be there. Its first
    /// field, the format, is read on its own first, so that a directory of
    /// another format (whose record may not decode as this one's) is named
    /// as such, not as damage.
    fn meta(&self) -> Result<Meta, StoreError> {
        let bytes = self
            .text_keyed(META, "meta", META_KEY)?
            .ok_or_else(|| self.vanished("meta", META_KEY.into()))?;
        let (format, _) = postcard::take_from_bytes::<String>(&bytes)
            .map_err(|_| self.corrupt("meta", META_KEY.into()))?;
        if format != FORMAT {
            return Err(self.mismatch("format", format, FORMAT.into()));
        }
        postcard::from_bytes(&bytes).map_err(|_| self.corrupt("meta", META_KEY.into()))
    }

    /// The meta record, the state with its batches, the whole ledger and
    /// the snapshots it installed, checked: the format and (if given) the
    /// owner; every checksum; a state where the meta record says one was
    /// written; as many batches and snapshots as the meta record counts; the hash chain from slot 1
    /// (resuming after each snapshot) to the tip the meta record names.
    pub(crate) fn checked(&self, owner: Option<&Owner>) -> Result<Checked, StoreError> {
        let meta = self.meta()?;
        if meta.format != FORMAT {
            return Err(self.mismatch("format", meta.format, FORMAT.into()));
        }
        if let Some(owner) = owner {
            if meta.protocol != owner.protocol {
                return Err(self.mismatch("protocol", meta.protocol, owner.protocol.clone()));
            }
            if meta.node != owner.node {
                let (found, want) = (meta.node.to_string(), owner.node.to_string());
                return Err(self.mismatch("node", found, want));
            }
        }
        let state = self.text_keyed(STATE, "state", STATE_KEY)?.map(Bytes::from);
        if state.is_none() && meta.state_written {
            return Err(self.vanished("state", STATE_KEY.into()));
        }
        let batches = self.batches()?;
        let held = batches.len() as u64;
        if held < meta.batches {
            return Err(self.vanished("batches", format!("{held} of {}", meta.batches)));
        }
        if held > meta.batches {
            return Err(self.corrupt("batches", format!("{held} held, {} written", meta.batches)));
        }
        let state = state.map(|state| StoredState { state, batches });
        let decisions = self.decisions()?;
        let snapshots = self.snapshots()?;
        if snapshots.len() as u64 != meta.snapshots {
            let held = snapshots.len();
            return Err(self.vanished("snapshots", format!("{held} of {}", meta.snapshots)));
        }
        let last = check_chain(&decisions, &snapshots).map_err(|fault| StoreError::Chain {
            file: self.file.to_path_buf(),
            fault,
        })?;
        if last.0 < meta.tip {
            return Err(self.vanished("ledger", format!("{}..={}", last.0 + 1, meta.tip)));
        }
        if last != (meta.tip, meta.tip_block) {
            return Err(self.corrupt("ledger", last.0.to_string()));
        }
        Ok(Checked {
            meta,
            state,
            decisions,
            snapshots,
        })
    }

    /// Every stored batch, by digest, checksum verified (after a complete
    /// write: exactly those the state names).
    fn batches(&self) -> Result<BTreeMap<Digest, Bytes>, StoreError> {
        let table = match self.tx.open_table(BATCHES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.engine(e)),
        };
        let mut out = BTreeMap::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (k, v) = entry.map_err(|e| self.engine(e))?;
            let key = k.value();
            let name = || key.iter().map(|b| format!("{b:02x}")).collect::<String>();
            let digest = <[u8; 32]>::try_from(key).map_err(|_| self.corrupt("batches", name()))?;
            let bytes =
                unseal("batches", key, v.value()).ok_or_else(|| self.corrupt("batches", name()))?;
            out.insert(Digest(digest), Bytes::copy_from_slice(bytes));
        }
        Ok(out)
    }

    /// The snapshots installed, by slot, checksum verified.
    fn snapshots(&self) -> Result<BTreeMap<u64, SnapshotMark>, StoreError> {
        let table = match self.tx.open_table(SNAPSHOTS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.engine(e)),
        };
        let mut out = BTreeMap::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (k, v) = entry.map_err(|e| self.engine(e))?;
            let slot = k.value();
            let bytes = unseal("snapshots", &slot.to_le_bytes(), v.value())
                .ok_or_else(|| self.corrupt("snapshots", slot.to_string()))?;
            let mark: SnapshotMark = postcard::from_bytes(bytes)
                .map_err(|_| self.corrupt("snapshots", slot.to_string()))?;
            out.insert(slot, mark);
        }
        Ok(out)
    }

    fn ledger_table(&self) -> Result<Option<redb::ReadOnlyTable<u64, &'static [u8]>>, StoreError> {
        match self.tx.open_table(LEDGER) {
            Ok(t) => Ok(Some(t)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.engine(e)),
        }
    }

    fn decode(&self, slot: u64, sealed: &[u8]) -> Result<Decision, StoreError> {
        let bytes = unseal("ledger", &slot.to_le_bytes(), sealed)
            .ok_or_else(|| self.corrupt("ledger", slot.to_string()))?;
        let d: Decision =
            postcard::from_bytes(bytes).map_err(|_| self.corrupt("ledger", slot.to_string()))?;
        if d.slot != slot {
            return Err(self.corrupt("ledger", slot.to_string()));
        }
        Ok(d)
    }

    pub(crate) fn decision(&self, slot: u64) -> Result<Option<Decision>, StoreError> {
        let Some(table) = self.ledger_table()? else {
            return Ok(None);
        };
        let Some(guard) = table.get(slot).map_err(|e| self.engine(e))? else {
            return Ok(None);
        };
        self.decode(slot, guard.value()).map(Some)
    }

    /// Every decision, in slot order.
    fn decisions(&self) -> Result<Vec<Decision>, StoreError> {
        let Some(table) = self.ledger_table()? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.engine(e))? {
            let (k, v) = entry.map_err(|e| self.engine(e))?;
            out.push(self.decode(k.value(), v.value())?);
        }
        Ok(out)
    }
}

/// What [`Reader::checked`] read.
pub(crate) struct Checked {
    pub(crate) meta: Meta,
    pub(crate) state: Option<StoredState>,
    pub(crate) decisions: Vec<Decision>,
    pub(crate) snapshots: BTreeMap<u64, SnapshotMark>,
}

/// A data directory read offline (`bftbench ledger`): its meta record,
/// every decision and the snapshots it installed, all checked as an open
/// checks them.
#[derive(Clone, Debug)]
pub struct Ledger {
    pub dir: PathBuf,
    pub meta: Meta,
    pub decisions: Vec<Decision>,
    /// Each snapshot installed, by slot: the ledger resumes there.
    pub snapshots: BTreeMap<u64, SnapshotMark>,
}

impl Ledger {
    /// Reads `dir`'s ledger. The directory must hold a data directory's
    /// file, and no replica may have it open.
    pub fn read(dir: &Path) -> Result<Ledger, StoreError> {
        let file = dir.join(FILE_NAME);
        let db = open_db(&file, true, crate::Fsync::Never, Default::default())?;
        let read = guarded(&file, || Reader::new(&db, &file)?.checked(None))?;
        Ok(Ledger {
            dir: dir.to_path_buf(),
            meta: read.meta,
            decisions: read.decisions,
            snapshots: read.snapshots,
        })
    }

    /// The block it holds at each slot: its decisions and its snapshots
    /// (what [`crate::LedgerReport::compare`] takes).
    pub fn blocks(&self) -> BTreeMap<u64, Digest> {
        let mut blocks: BTreeMap<u64, Digest> =
            self.decisions.iter().map(|d| (d.slot, d.block)).collect();
        blocks.extend(self.snapshots.iter().map(|(&s, m)| (s, m.block)));
        blocks
    }

    /// The ledger's last slot (a decision's or a snapshot's).
    pub fn tip(&self) -> u64 {
        self.meta.tip
    }
}
