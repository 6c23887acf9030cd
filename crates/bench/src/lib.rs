//! bftbench: scenario files, runs, records. The binary (`src/bin/bftbench/`,
//! a file per subcommand) is the only place `anyhow` appears.

pub mod agreement;
pub mod calibrate;
pub mod diff;
pub mod fuzz;
pub mod html;
pub mod ledger;
pub mod measure;
pub mod plot;
pub mod protocols;
pub mod quic;
pub mod record;
pub mod report;
pub mod run;
pub mod saturate;
pub mod scenario;
pub mod suite;
pub mod sweep;
pub mod timeline;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{}: cannot read: {source}", .file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", .file.display())]
    Parse {
        file: PathBuf,
        source: toml::de::Error,
    },
    #[error("{}: {key} = {value}: {reason}", .file.display())]
    Invalid {
        file: PathBuf,
        key: String,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Sim(#[from] bft_sim::SimError),
    #[error("{}: cannot write: {source}", .file.display())]
    Write {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot draw: {reason}", .file.display())]
    Plot { file: PathBuf, reason: String },
    #[error(transparent)]
    Net(#[from] bft_net::NetError),
    #[error("cannot encode the record: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] bft_store::StoreError),
}
