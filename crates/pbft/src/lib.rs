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
//! Not implemented: state transfer. A replica that falls behind a stable
//! checkpoint (one it has proof of but has not executed up to, e.g. after a
//! long crash or partition) notices it ([`Pbft::behind_to`]) but cannot
//! fetch the missing batches, so it stops executing; the others are
//! unaffected as long as at most f replicas are in that state.

mod certs;
mod config;
mod error;
mod messages;
mod replica;

pub use certs::{NewViewPlan, block_hash, plan_new_view};
pub use config::PbftConfig;
pub use error::PbftError;
pub use messages::{
    Checkpoint, NewView, PbftMessage, PrePrepare, PreparedCert, ViewChange, Vote, domain,
};
pub use messages::{
    checkpoint_payload, new_view_payload, pre_prepare_payload, view_change_payload, vote_payload,
};
pub use replica::{Pbft, PbftTimer};
