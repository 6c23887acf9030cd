//! The one error type of bft-store: every variant names the file.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no data directory here (the file does not exist)", file.display())]
    Missing { file: PathBuf },
    #[error("{}: another process has this data directory open", file.display())]
    InUse { file: PathBuf },
    #[error("{}: damaged or not a data directory: {reason}", file.display())]
    Damaged { file: PathBuf, reason: String },
    #[error("{}: {source}", file.display())]
    Engine {
        file: PathBuf,
        source: Box<redb::Error>,
    },
    #[error(
        "{}: table {table}, key {key}: the value does not match its checksum (a flipped bit or a torn write); the directory was left as it is",
        file.display()
    )]
    Corrupt {
        file: PathBuf,
        table: String,
        key: String,
    },
    #[error(
        "{}: table {table}, key {key}: written once but no longer found (a damaged index); the directory was left as it is",
        file.display()
    )]
    Vanished {
        file: PathBuf,
        table: String,
        key: String,
    },
    #[error("{}: {fault}", file.display())]
    Chain {
        file: PathBuf,
        fault: crate::ChainFault,
    },
    #[error("{}: meta.{key} is {found:?}, expected {want:?}", file.display())]
    Mismatch {
        file: PathBuf,
        key: String,
        found: String,
        want: String,
    },
    #[error("{}: the decision for slot {slot} differs from the one already in the ledger", file.display())]
    Conflict { file: PathBuf, slot: u64 },
    #[error("{}: the ledger ends at slot {tip}; slot {slot} does not extend it", file.display())]
    Gap { file: PathBuf, tip: u64, slot: u64 },
    #[error("{}: cannot encode a decision: {reason}", file.display())]
    Encode { file: PathBuf, reason: String },
}
