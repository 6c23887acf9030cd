//! The QBFT replica: one consensus instance per height, rounds inside it.
//!
//! Transitions follow the ConsenSys Dafny spec (`node.dfy`: `UponProposal`,
//! `UponPrepare`, `UponCommit`, `UponRoundChange`, `UponRoundTimeout`) and
//! Besu's qbft-core; each handler names the rule it implements. The safety
//! rules, checked in the handlers of this folder or as pure functions in
//! `crate::rules`:
//!
//! 0. A message is handled only for the height being decided
//!    (`rules::height_gate`: below it only answers a lagging peer's
//!    ROUND-CHANGE, a bounded window above it waits), and only from its
//!    author unless it is a DECIDED block, which any member may relay
//!    (`rules::check_author`).
//! 1. A proposal is accepted only from proposer(h, r), for the current height,
//!    for a block that extends the committed chain (`rules::check_proposal`),
//!    and — for r > 0 — with a justification that passes
//!    `rules::check_proposal_justification` (q round changes for exactly
//!    (h, r); the highest prepared value is re-proposed).
//! 2. At most one proposal is accepted per round; an older round is never
//!    re-entered.
//! 3. A replica PREPAREs only the proposal it accepted, and COMMITs only after
//!    q PREPAREs for exactly (h, r, digest of that proposal)
//!    (`rules::prepared_certificate`; one PREPARE per validator,
//!    `rules::latest_is_new`).
//! 4. A block is decided only with q COMMITs for the same (h, r, digest) from
//!    distinct validators, each with a valid commit seal over the hash
//!    (`rules::decided`).
//! 5. A ROUND-CHANGE is counted only if its own prepared certificate checks
//!    (`check_round_change`); fewer than f+1 round changes for higher rounds
//!    move nobody.
//!
//! The replica, file by file (the same names in all three protocol crates):
//! this file holds the state and the dispatch of inputs (`handle`,
//! `on_message`); `normal.rs` the normal case (PROPOSAL, PREPARE, COMMIT,
//! decide, the round-0 proposal); `view_change.rs` the round change and the
//! round timer; `sync.rs` the relay to lagging replicas; `state.rs` the
//! bounded per-height state.

mod durable;
mod normal;
mod state;
mod sync;
mod view_change;

use crate::config::QbftConfig;
#[cfg(feature = "mutants")]
use crate::config::QbftMutant;
use crate::error::QbftError;
use crate::messages::{
    Block, CommitCertificate, PreparePayload, QbftMessage, RELAY_HEIGHTS, Signed,
};
use crate::rules::{HeightGate, Quorum, check_author, height_gate};
use bft_core::{
    Action, BatchConfig, Committee, Crypto, Digest, GENESIS, Input, NodeContext, NodeId,
    RequestPool, ServeBudget, SnapshotVotes, Snapshots, Status, Time,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use durable::QbftDurable;
use state::{FutureBuffer, Instance};

/// The replica's timers. One of each is pending at most (`SetTimer` replaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QbftTimer {
    /// Expiry of the current round: base · 2^r.
    Round,
    /// The round-0 proposer's batch cut / block period.
    Propose,
}

type Out = Vec<Action<QbftMessage, QbftTimer>>;

/// Decided heights kept to relay to lagging peers (a relay sends all it
/// has from the peer's height on, within [`RELAY_BYTES`]).
const ARCHIVE_HEIGHTS: usize = RELAY_HEIGHTS;

/// Heights between snapshot points (`bft_core::snapshot` rule 1): a
/// quarter of the archive, so the heights after a kept snapshot are still
/// archived at a peer that holds it.
const SNAPSHOT_INTERVAL: u64 = ARCHIVE_HEIGHTS as u64 / 4;

/// proposer(h, r) = `committee.leader(slot(h) + r)`: the leader schedule
/// (`Committee::leader`, round-robin unless the committee sets another)
/// walked from height h's round-0 slot by r. Dafny `proposer` rotates from
/// the previous block's proposer by 1 + r; here the schedule index of that
/// proposer is tracked instead of its id, so that a schedule other than
/// round-robin decides (see [`next_round0_slot`]). Under round-robin
/// (`leader(k) = k mod n`) this is exactly the spec's sequence: slot(1) = 0,
/// so proposer(1, r) = r mod n, and slot(h + 1) ≡ proposer(h's block) + 1.
/// The round is added without `mod n` so that a rotation longer than n
/// (a favoured leader listed several times) is walked through in full and
/// reaches every member; under round-robin `(s + r) mod n` is unchanged.
pub fn proposer(committee: &Committee, round0_slot: u64, round: u64) -> NodeId {
    committee.leader(round0_slot.saturating_add(round))
}

/// The round-0 slot of the height after a block proposed by `block_proposer`
/// at a height whose round-0 slot was `round0_slot`: one past the first slot
/// at or after `round0_slot` that `block_proposer` leads.
///
/// Why the first such slot and not the decided round's: honest replicas may
/// decide the same block in different rounds (q COMMITs of an earlier and of
/// a re-proposing later round), and a re-proposed block keeps its original
/// proposer (the hash excludes the round), so only the block itself is
/// common knowledge — `block.proposer`, checked at its first proposal to be
/// proposer(h, r₀). Under round-robin the first slot ≥ s led by p is
/// ≡ p (mod n), which gives the spec's "previous proposer + 1". The schedule
/// names every member within `prefix + rotation` slots; a proposer not found
/// there (impossible for a validated block) moves the schedule on by one.
pub fn next_round0_slot(committee: &Committee, round0_slot: u64, block_proposer: NodeId) -> u64 {
    let schedule = committee.leaders();
    let span = (schedule.prefix.len() + schedule.rotation.len()) as u64;
    (0..span)
        .map(|k| round0_slot.saturating_add(k))
        .find(|&k| committee.leader(k) == block_proposer)
        .unwrap_or(round0_slot)
        .saturating_add(1)
}

/// q = ⌈2n/3⌉ (Dafny `quorum`): any two quorums share at least one honest
/// replica when at most f = ⌊(n−1)/3⌋ are faulty.
fn quorum_size(committee: &Committee, cfg: &QbftConfig) -> usize {
    // MUTANT(quorum-2f1): 2f+1 in place of ⌈2n/3⌉ (3 instead of 4 at n = 6).
    #[cfg(feature = "mutants")]
    if cfg.planted(QbftMutant::Quorum2f1) {
        return committee.quorum_2f1();
    }
    let _ = cfg;
    committee.quorum_two_thirds()
}

/// The last committed block: what the next height builds on.
#[derive(Clone, Copy, Debug)]
struct ChainTip {
    height: u64,
    hash: Digest,
    /// The schedule slot of round 0 of the next height (see [`proposer`]).
    next_round0_slot: u64,
    committed_at: Option<Time>,
}

/// (prepared round, prepared value) with the block and its q PREPAREs: what a
/// ROUND-CHANGE carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PreparedCertificate {
    round: u64,
    digest: Digest,
    block: Block,
    prepares: Vec<Signed<PreparePayload>>,
}

/// A QBFT replica (sans-IO).
#[derive(Debug)]
pub struct Qbft {
    id: NodeId,
    committee: Arc<Committee>,
    crypto: Arc<dyn Crypto>,
    batch: BatchConfig,
    cfg: QbftConfig,
    quorum: Quorum,
    weak_quorum: usize,
    pool: RequestPool,
    tip: ChainTip,
    inst: Instance,
    future: FutureBuffer,
    view_changes: u64,
    last_certificate: Option<CommitCertificate>,
    /// (height, round) the round timer is armed for.
    round_timer: Option<(u64, u64)>,
    /// When the propose timer fires, if armed.
    propose_timer: Option<Time>,
    /// The height whose buffered messages were last replayed.
    replayed_height: u64,
    /// The last [`ARCHIVE_HEIGHTS`] decided heights, for lagging peers.
    archive: BTreeMap<u64, CommitCertificate>,
    /// Per lagging peer, the (height, round) of the last round change we
    /// answered with a relay, and when.
    relayed: BTreeMap<NodeId, ((u64, u64), Time)>,
    /// How many relays each lagging peer may still draw ([`SERVE_BURST`]
    /// at once, one more per half base round timeout).
    serve: ServeBudget,
    /// This replica's snapshot points, offered to replicas beyond the
    /// archive; the tip part is the next height's round-0 slot.
    snapshots: Snapshots<u64>,
    /// Snapshots offered to this replica, until f+1 agree.
    snapshot_votes: SnapshotVotes<u64>,
    /// Peers seen at least two heights ahead ([`Qbft::note_ahead`]).
    ahead: Ahead,
    /// The height this replica was restarted at, until a peer's message
    /// for the height it is at arrives (`refresh_round_timer`'s rejoin
    /// rule).
    restarted_at: Option<u64>,
}

/// The peers whose messages showed them at least two heights above
/// `height` (ours when they were noted), and the height at which, and
/// when, the behind rule last asked for a relay ([`Qbft::note_ahead`]).
/// At most n peers.
#[derive(Debug, Default)]
struct Ahead {
    height: u64,
    peers: BTreeSet<NodeId>,
    asked: Option<(u64, Time)>,
}

/// Relays one peer may draw at once, then one per half base round timeout.
/// An honest lagging replica announces a round change once per round
/// timeout (at least the base), or, behind f+1 peers by two heights or
/// more, once per relay that moves it (the behind rule, `note_ahead`): then
/// this budget sets the pace of its catch-up, each relay carrying the
/// helper's archive above it (up to [`RELAY_HEIGHTS`] heights and about
/// [`crate::messages::RELAY_BYTES`]). What any peer, honest or not, can
/// draw from one helper is bounded in relays, not bytes: each relay is at
/// most `RELAY_BYTES` of requests plus the one block that crosses it (a
/// block holds at most a batch), so with a 200 ms base and batches of
/// 2 000 × 512 B about 50 MB/s per requesting peer, of the same order as
/// the eight whole blocks a relay carried before it carried the archive.
pub const SERVE_BURST: u32 = 2;

impl Qbft {
    pub fn new(ctx: NodeContext, cfg: &QbftConfig) -> Qbft {
        let quorum = Quorum {
            n: ctx.committee.n(),
            q: quorum_size(&ctx.committee, cfg),
            #[cfg(feature = "mutants")]
            ignore_highest_prepared: cfg.planted(QbftMutant::IgnoreHighestPrepared),
        };
        let n = ctx.committee.n();
        let weak_quorum = ctx.committee.weak_quorum();
        let tip = ChainTip {
            height: 0,
            hash: GENESIS,
            next_round0_slot: 0,
            committed_at: None,
        };
        Qbft {
            id: ctx.id,
            weak_quorum,
            committee: ctx.committee,
            crypto: ctx.crypto,
            batch: ctx.batch,
            cfg: cfg.clone(),
            quorum,
            pool: RequestPool::new(cfg.pool_capacity),
            tip,
            inst: Instance::new(1),
            future: FutureBuffer {
                per_peer: BTreeMap::new(),
                cap_per_peer: cfg.future_buffer_per_peer,
            },
            view_changes: 0,
            last_certificate: None,
            round_timer: None,
            propose_timer: None,
            replayed_height: 1,
            archive: BTreeMap::new(),
            relayed: BTreeMap::new(),
            serve: ServeBudget::new(n, SERVE_BURST, 1, cfg.round_timeout / 2),
            snapshots: Snapshots::new(SNAPSHOT_INTERVAL),
            snapshot_votes: SnapshotVotes::new(weak_quorum, SNAPSHOT_INTERVAL),
            ahead: Ahead::default(),
            restarted_at: None,
        }
    }

    /// The height being decided (last committed + 1).
    pub fn height(&self) -> u64 {
        self.inst.height
    }

    /// The current round of the current height.
    pub fn round(&self) -> u64 {
        self.inst.round
    }

    /// Latest (prepared round, prepared value) of the current height.
    pub fn prepared(&self) -> Option<(u64, Digest)> {
        self.inst.prepared.as_ref().map(|p| (p.round, p.digest))
    }

    /// The proof of the last decided block.
    pub fn last_certificate(&self) -> Option<&CommitCertificate> {
        self.last_certificate.as_ref()
    }

    /// proposer(current height, `round`).
    pub fn proposer_of(&self, round: u64) -> NodeId {
        proposer(&self.committee, self.tip.next_round0_slot, round)
    }

    /// Hash of the last committed block (the parent of the next one).
    pub fn tip_hash(&self) -> Digest {
        self.tip.hash
    }

    pub fn status(&self) -> Status {
        Status {
            view: self.inst.round,
            committed: self.tip.height,
            view_changes: self.view_changes,
            retained: self.pool.retained()
                + self.inst.retained()
                + self.future.len()
                + self.archive.len()
                + self.relayed.len()
                + self.snapshot_votes.retained(),
        }
    }

    pub fn handle(
        &mut self,
        now: Time,
        input: Input<QbftMessage, QbftTimer>,
        out: &mut Out,
    ) -> Result<(), QbftError> {
        let before = self.durable_key();
        let result = match input {
            Input::Start => Ok(()),
            Input::Request(req) => {
                self.pool.add(now, req);
                Ok(())
            }
            Input::Timeout(QbftTimer::Round) => {
                self.on_round_timeout(now, out);
                Ok(())
            }
            Input::Timeout(QbftTimer::Propose) => {
                self.propose_timer = None;
                Ok(())
            }
            Input::Message { from, msg } => self.on_message(now, from, msg, out),
        };
        self.settle(now, out);
        if self.durable_key() != before {
            out.push(Action::Persist);
        }
        result
    }

    /// After every input: replay buffered messages of a height we just
    /// reached, let the round-0 proposer propose, and (re)arm the round timer.
    fn settle(&mut self, now: Time, out: &mut Out) {
        // Messages for the current height are never buffered while we are at
        // it, so the buffer only needs a look after a height change.
        while self.replayed_height != self.inst.height {
            let height = self.inst.height;
            self.replayed_height = height;
            let ready = self.future.take_height(height);
            for (from, msg) in ready {
                // A buffered message that turns out invalid was counted as
                // received when it arrived; dropping it here is all we can do.
                let _ = self.on_message(now, from, msg, out);
            }
        }
        self.maybe_propose_new_block(now, out);
        self.refresh_round_timer(out);
    }

    /// Routes a peer's message by height: past heights are dropped (a
    /// ROUND-CHANGE for one may earn its sender a relay; a DECIDED relay
    /// starting at one may reach above ours and is applied), future
    /// heights buffered within a bound, the current height handled.
    fn on_message(
        &mut self,
        now: Time,
        from: NodeId,
        msg: QbftMessage,
        out: &mut Out,
    ) -> Result<(), QbftError> {
        let author = match msg {
            QbftMessage::SnapshotRequest { slot } => {
                return self.on_snapshot_request(now, from, slot, out);
            }
            QbftMessage::Snapshot(offer) => return self.on_snapshot(now, from, offer, out),
            ref signed => signed.author().unwrap_or(from),
        };
        let relayable = matches!(msg, QbftMessage::Decided(_));
        check_author(&self.quorum, from, author, relayable)?;
        self.note_ahead(now, from, msg.height(), out);
        match height_gate(
            msg.height(),
            self.inst.height,
            self.cfg.future_height_window,
        )? {
            HeightGate::Past => {
                return match msg {
                    QbftMessage::RoundChange(rc) => self.help_lagging_peer(now, from, &rc, out),
                    // A relay from below our height may reach above it.
                    QbftMessage::Decided(certs) => self.on_decided(now, certs, out),
                    _ => Ok(()),
                };
            }
            HeightGate::Future => return self.future.push(from, msg),
            // A peer at our height: we are not behind it, the rejoin rule
            // has done its part.
            HeightGate::Current => self.restarted_at = None,
        }
        match msg {
            QbftMessage::Proposal(p) => self.on_proposal(now, *p, out),
            QbftMessage::Prepare(p) => self.on_prepare(now, p, out),
            QbftMessage::Commit(c) => self.on_commit(now, c, out),
            QbftMessage::RoundChange(rc) => self.on_round_change(now, *rc, out),
            QbftMessage::Decided(certs) => self.on_decided(now, certs, out),
            QbftMessage::SnapshotRequest { .. } | QbftMessage::Snapshot(_) => Ok(()),
        }
    }
}
