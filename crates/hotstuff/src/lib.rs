//! Chained HotStuff (Yin et al., arXiv 1803.05069, Algorithm 4) with
//! BLS-aggregated quorum certificates and a pacemaker, as a sans-IO state
//! machine implementing [`bft_core::Protocol`].
//!
//! - [`rules`]: the vote, lock, commit and QC rules and block validity as
//!   pure functions — read it first, it is all of the protocol's safety.
//! - [`qc`]: the QC rule (one aggregate check, ≥ n−f distinct signers) and
//!   the next leader's optimistic vote aggregation.
//! - [`types`]: blocks, QCs, wire messages (`"proposal"`, `"vote"`,
//!   `"new-view"`, and `"block-request"`/`"block-response"` for block sync).
//! - [`pacemaker`]: view synchronisation: when a replica gives up on a view
//!   and when it moves on (a timeout certificate of n−f NEW-VIEWs, joining
//!   f+1 that are ahead), as pure functions with their references.
//! - [`replica`]: the state machine: proposals, votes, commits, pacemaker.
//! - [`config`]: the `[hotstuff]` scenario table (and, with the `mutants`
//!   feature, `mutant = "..."`: one planted safety bug, for the fuzzer).
//! - [`byzantine`]: what a Byzantine replica does to its messages
//!   (`bft_core::Adversarial`) and the liveness bound after a heal.
//!
//! Messages per decision, fault-free, one request per block: (n−1)
//! proposals + (n−1) votes = 2(n−1). A run's last three blocks are proposed
//! and voted on but not committed (see [`replica`] on empty blocks).

pub mod byzantine;
pub mod certificate;
pub mod config;
pub mod error;
pub mod pacemaker;
pub mod qc;
pub mod replica;
pub mod rules;
pub mod types;

pub use certificate::{LedgerCertificate, check_certificate};
pub use config::HotStuffConfig;
#[cfg(feature = "mutants")]
pub use config::HotStuffMutant;
pub use error::HotStuffError;
pub use replica::{CommittedTip, HotStuff, HotStuffDurable};
pub use rules::{BlockRef, SafetyState};
pub use types::{Block, Message, NewView, QuorumCert, Timer, VOTE_DOMAIN, Vote, vote_payload};
