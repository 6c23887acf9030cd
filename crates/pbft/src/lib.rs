//! bft-pbft: Castro–Liskov PBFT (OSDI'99, TOCS 2002), signature variant, as a
//! sans-IO state machine implementing [`bft_core::Protocol`].
//!
//! - Normal case: PRE-PREPARE (primary, carries the batch) → PREPARE
//!   (backups) → COMMIT → execute in sequence order. Per decision with one
//!   request per batch: (n−1) + (n−1)² + n(n−1) = 2n(n−1) messages.
//! - Batching from the core [`bft_core::RequestPool`]: cut at `max_size` or
//!   `max_delay`, several sequence numbers in flight within the window.
//! - Checkpoints every K, watermarks h < n ≤ h+L; the log below a stable
//!   checkpoint is discarded, so memory is bounded by the window.
//! - View change with the checkpoint proof C, prepared certificates P, the
//!   f+1 join rule, doubling timeouts, and NEW-VIEW's O recomputed and checked
//!   by every backup.
//!
//! The safety rules are listed in one place at the top of `replica.rs`.
//!
//! - State transfer ("fetch"/"state" kinds, counted apart): a replica that
//!   learns of a stable checkpoint above its last executed seq (f+1
//!   matching CHECKPOINTs, at least one of them honest, or min-s of a
//!   NEW-VIEW) fetches the executed batches up to it
//!   and checks them by re-hashing its ledger chain up to the proven state.
//!   Replicas keep executed batches `state_transfer_depth` slots below h; a
//!   fetch from below that is answered with the responder's snapshots
//!   (one per stable checkpoint, with its q-proof, `bft_core::snapshot`),
//!   and the lagging replica installs the one f+1 peers offer alike whose
//!   proof checks, skipping ledger slots and moving h there. A state
//!   transfer also carries the responder's executed slots above h with
//!   their q COMMITs (the committed tail), and a replica alone in a view
//!   change asks for that tail whenever it re-sends its VIEW-CHANGE, so it
//!   reaches the tip even when no later checkpoint comes.
//! - A replica that missed a NEW-VIEW rejoins once f+1 replicas send it
//!   messages of the later view (it re-sends VIEW-CHANGE, the new primary
//!   re-sends NEW-VIEW). While changing view a replica re-multicasts its
//!   VIEW-CHANGE every timeout, so VIEW-CHANGEs a partition dropped do not
//!   stall the view change forever.
//! - The primary of view v is `committee.leader(v)` (round-robin unless the
//!   committee carries another [`bft_core::LeaderSchedule`]).
//! - [`bft_core::Adversarial`] (`byzantine/`): what a Byzantine replica
//!   does to PBFT's messages for each [`bft_core::Attack`], and
//!   [`liveness_bound`].
//! - Feature `mutants`: `PbftConfig::mutant` plants one broken rule
//!   (`o-set-lowest-view`, `quorum-2f`), a control for the oracle and the
//!   fuzzer; each site is marked `// MUTANT(<name>):`.

mod byzantine;
mod certificate;
mod config;
mod error;
mod messages;
mod replica;
mod rules;
mod verified;

pub use byzantine::{capped_timeout, liveness_bound};
pub use certificate::{LedgerCertificate, check_certificate};
pub use config::PbftConfig;
#[cfg(feature = "mutants")]
pub use config::PbftMutant;
pub use error::PbftError;
pub use messages::{
    Checkpoint, CommittedBatch, ExecutedBatch, Fetch, NewView, PbftMessage, PrePrepare,
    PreparedCert, StableProof, StateTransfer, ViewChange, Vote, domain,
};
pub use messages::{
    checkpoint_payload, new_view_payload, pre_prepare_payload, view_change_payload, vote_payload,
};
pub use replica::{Pbft, PbftDurable, PbftTimer};
pub use rules::{NewViewPlan, block_hash, plan_new_view, quorum};
