//! The load generator both runtimes share. The simulator (`bft-sim`) and
//! the QUIC runtime (`bft-net`) drive the same [`Clients`], so a request
//! counts as committed, and its latency is measured, by one definition
//! whichever runtime ran it; the `[load]` table of a scenario file is
//! [`LoadConfig`].

pub mod clients;
pub mod config;
pub mod series;

pub use clients::{Clients, Issue, LatencySummary};
pub use config::{LoadConfig, LoadMode, LoadTable};
pub use series::{SeriesPoint, SeriesRecorder};
