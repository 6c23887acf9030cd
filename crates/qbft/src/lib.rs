//! QBFT (ConsenSys Dafny spec / Besu qbft-core semantics) as a sans-IO state
//! machine implementing [`bft_core::Protocol`].
//!
//! - [`messages`]: PROPOSAL, PREPARE, COMMIT, ROUND-CHANGE, signed payloads,
//!   the block (hash excludes round and seals).
//! - [`rules`]: the acceptance rules and the spec's justification predicates
//!   as pure functions.
//! - [`replica`]: the per-height / per-round state machine; its module doc
//!   lists the safety rules and where each is enforced.
//! - [`config`]: the `[qbft]` scenario table.
//! - [`byzantine`]: the attacks a Byzantine replica mounts and the
//!   liveness bound ([`bft_core::Adversarial`]).
//!
//! Proposers follow the committee's leader schedule (`Committee::leader`):
//! proposer(h, r) = leader(slot(h) + r), which under the default round-robin
//! schedule is the Dafny spec's rotation (see [`replica::proposer`]).
//!
//! Quorum q = ⌈2n/3⌉ (`Committee::quorum_two_thirds`), f+1 = `weak_quorum`.
//! Fault-free, one request per block, the messages per block are
//! (n−1) PROPOSAL + n(n−1) PREPARE + n(n−1) COMMIT = (n−1)(2n+1).
//! Measured in the simulator (model crypto, 1 ms links, 20 blocks;
//! `cargo run --release -p bftbench --example message_scaling -- qbft`):
//!
//! | n  | messages/block | (n−1)(2n+1) | bytes/block |
//! |----|----------------|-------------|-------------|
//! | 4  | 27             | 27          | 4 083       |
//! | 8  | 119            | 119         | 17 143      |
//! | 16 | 495            | 495         | 69 375      |
//! | 32 | 2 015          | 2 015       | 278 287     |
//! | 64 | 8 127          | 8 127       | 1 113 903   |
//!
//! Catch-up: QBFT's four message kinds carry no state transfer (Besu runs a
//! separate block-sync protocol). Here a replica that announces a
//! ROUND-CHANGE for a height its peers have decided is sent, by f+1 of
//! them, the decided heights from its own on (from an archive of the last
//! 64) in one DECIDED message: each block with its q commit seals,
//! verified before it is applied, counted as its own kind
//! (`decided`); it never happens in a run where nobody falls behind. A
//! replica further behind than the archive is offered the helpers'
//! snapshots instead (every 16 heights, `bft_core::snapshot`), asks every
//! peer for theirs, installs the one f+1 offer alike, and goes on from
//! there by DECIDED relays.
//!

pub mod byzantine;
pub mod certificate;
pub mod config;
pub mod error;
pub mod messages;
pub mod replica;
pub mod rules;

pub use certificate::{LedgerCertificate, check_certificate};
pub use config::QbftConfig;
#[cfg(feature = "mutants")]
pub use config::QbftMutant;
pub use error::QbftError;
pub use messages::CommitCertificate;
pub use messages::{Block, QbftMessage};
pub use replica::{Qbft, QbftDurable, QbftTimer, next_round0_slot, proposer};

use bft_core::protocol::ConfigIssue;
use bft_core::{
    Action, Certified, Committee, Crypto, Decision, Input, NodeContext, Protocol, Status, Time,
};

impl Protocol for Qbft {
    const NAME: &'static str = "qbft";
    const CATCH_UP_KINDS: &'static [&'static str] = &["decided", "snapshot-request", "snapshot"];
    type Message = QbftMessage;
    type Timer = QbftTimer;
    type Config = QbftConfig;
    type Error = QbftError;
    type Durable = QbftDurable;

    fn new(ctx: NodeContext, cfg: &QbftConfig) -> Self {
        Qbft::new(ctx, cfg)
    }

    fn durable(&self) -> QbftDurable {
        Qbft::durable(self)
    }

    /// A PROPOSAL's block. A ROUND-CHANGE's prepared block is certified by
    /// its q PREPAREs and a DECIDED block by its commit seals: not listed.
    fn client_requests(msg: &QbftMessage) -> &[bft_core::Request] {
        match msg {
            QbftMessage::Proposal(p) => &p.block.requests,
            _ => &[],
        }
    }

    fn durable_batches(durable: &QbftDurable) -> Vec<bft_core::Digest> {
        durable.batches()
    }

    fn durable_batch(&self, digest: &bft_core::Digest) -> Option<&[bft_core::Request]> {
        Qbft::durable_batch(self, digest)
    }

    fn recover(
        ctx: NodeContext,
        cfg: &QbftConfig,
        durable: QbftDurable,
        batches: &bft_core::DurableBatches,
    ) -> Self {
        Qbft::recover(ctx, cfg, durable, batches)
    }

    fn check_certificate(
        d: &Decision,
        committee: &Committee,
        crypto: &dyn Crypto,
    ) -> Result<Certified, QbftError> {
        certificate::check_certificate(d, committee, crypto)
    }

    fn check_config(cfg: &QbftConfig) -> Result<(), ConfigIssue> {
        cfg.check()
    }

    fn handle(
        &mut self,
        now: Time,
        input: Input<QbftMessage, QbftTimer>,
        out: &mut Vec<Action<QbftMessage, QbftTimer>>,
    ) -> Result<(), QbftError> {
        Qbft::handle(self, now, input, out)
    }

    fn status(&self) -> Status {
        Qbft::status(self)
    }

    /// The round timer.
    fn is_view_timeout(timer: &QbftTimer) -> bool {
        matches!(timer, QbftTimer::Round)
    }
}
