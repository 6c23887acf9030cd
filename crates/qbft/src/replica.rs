//! The QBFT replica: one consensus instance per height, rounds inside it.
//!
//! Transitions follow the ConsenSys Dafny spec (`node.dfy`: `UponProposal`,
//! `UponPrepare`, `UponCommit`, `UponRoundChange`, `UponRoundTimeout`) and
//! Besu's qbft-core; each handler names the rule it implements. The safety
//! rules, all in this file or in `justify.rs`:
//!
//! 1. A proposal is accepted only from proposer(h, r), for the current height,
//!    for a block that extends the committed chain, and — for r > 0 — with a
//!    justification that passes `check_proposal_justification` (q round
//!    changes for exactly (h, r); the highest prepared value is re-proposed).
//! 2. At most one proposal is accepted per round; an older round is never
//!    re-entered.
//! 3. A replica PREPAREs only the proposal it accepted, and COMMITs only after
//!    q PREPAREs for exactly (h, r, digest of that proposal).
//! 4. A block is decided only with q COMMITs for the same (h, r, digest) from
//!    distinct validators, each with a valid commit seal over the hash.
//! 5. A ROUND-CHANGE is counted only if its own prepared certificate checks
//!    (`check_round_change`); fewer than f+1 round changes for higher rounds
//!    move nobody.

use crate::config::QbftConfig;
#[cfg(feature = "mutants")]
use crate::config::QbftMutant;
use crate::error::QbftError;
use crate::justify::{Quorum, check_extends, check_proposal_justification, check_round_change};
use crate::messages::{
    Block, CommitPayload, DOMAIN_COMMIT_SEAL, PreparePayload, Proposal, ProposalPayload,
    QbftMessage, RoundChange, RoundChangePayload, SignatureBatch, Signed, signed_commit,
};
use bft_core::{
    Action, BatchConfig, Committee, Crypto, Decision, Digest, GENESIS, Input, NodeContext, NodeId,
    RequestPool, Signature, Status, Time,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// The replica's timers. One of each is pending at most (`SetTimer` replaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QbftTimer {
    /// Expiry of the current round: base · 2^r.
    Round,
    /// The round-0 proposer's batch cut / block period.
    Propose,
}

type Out = Vec<Action<QbftMessage, QbftTimer>>;

/// Blocks of the current height kept by (round, digest) — accepted
/// proposals, proposals that arrived after we left their round, the blocks of
/// validated round changes — so q COMMITs can finalize whichever one they
/// seal. At most [`MAX_BLOCKS_PER_ROUND`] per round (an equivocating proposer
/// fills only its own round's slots) and [`MAX_KNOWN_BLOCKS`] in all; when
/// full, the block fewest validators committed goes first (the oldest round
/// on a tie), so a block COMMITs point to is never crowded out by blocks
/// nobody honest committed (`Instance::remember_block`).
const MAX_KNOWN_BLOCKS: usize = 16;
const MAX_BLOCKS_PER_ROUND: usize = 2;
/// Decided heights kept to relay to lagging peers (a relay sends at most
/// `future_height_window` of them, what the peer can buffer).
const ARCHIVE_HEIGHTS: usize = 64;
/// Rounds of COMMITs kept per sender within a height.
const MAX_COMMIT_ROUNDS_PER_SENDER: usize = 4;
/// Different digests COMMITted by one sender in one round that are kept (an
/// honest sender commits one; a Byzantine one gains nothing by being
/// counted towards two, quorum intersection is about honest votes).
const MAX_COMMIT_DIGESTS_PER_ROUND: usize = 2;
/// COMMITs kept per sender within a height.
const MAX_COMMITS_PER_SENDER: usize = MAX_COMMIT_ROUNDS_PER_SENDER * MAX_COMMIT_DIGESTS_PER_ROUND;

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
    committee.quorum_qbft()
}

/// A decided block with the q commit seals that make it final: a proof
/// anyone with the committee's keys can re-check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCertificate {
    pub block: Block,
    pub digest: Digest,
    /// The round it was decided in (informational).
    pub round: u64,
    pub seals: Vec<(NodeId, Signature)>,
}

impl CommitCertificate {
    /// Checks the block hash and q distinct valid seals over it.
    pub fn verify(&self, crypto: &dyn Crypto, committee: &Committee) -> Result<(), QbftError> {
        if self.block.hash() != self.digest {
            return Err(QbftError::DigestMismatch);
        }
        let mut signers = BTreeSet::new();
        for (signer, seal) in &self.seals {
            if !committee.contains(*signer) {
                return Err(QbftError::UnknownSigner(*signer));
            }
            if !signers.insert(*signer) {
                return Err(QbftError::DuplicateSigner(*signer));
            }
            crypto
                .verify(*signer, DOMAIN_COMMIT_SEAL, self.digest.as_bytes(), seal)
                .map_err(|_| QbftError::BadSignature)?;
        }
        if signers.len() < committee.quorum_qbft() {
            return Err(QbftError::InsufficientSeals {
                got: signers.len(),
                need: committee.quorum_qbft(),
            });
        }
        Ok(())
    }
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
#[derive(Clone, Debug)]
struct PreparedCertificate {
    round: u64,
    digest: Digest,
    block: Block,
    prepares: Vec<Signed<PreparePayload>>,
}

/// A block of the current height and, if it came in one, the signed
/// PROPOSAL that carried it (relayed to lagging replicas once decided).
#[derive(Clone, Debug)]
struct KnownBlock {
    block: Block,
    proposal: Option<Box<Proposal>>,
}

/// A decided height as relayed to a replica still deciding it: the PROPOSAL
/// that carried the block and the q COMMITs that decided it, all signed by
/// their authors, so the receiver checks them as if they came first-hand.
#[derive(Clone, Debug)]
struct DecidedHeight {
    proposal: Option<Box<Proposal>>,
    commits: Vec<Signed<CommitPayload>>,
}

/// State of the consensus instance for one height. Per-validator maps keep
/// one entry per sender (its latest round), so memory is O(n) whatever a
/// Byzantine validator sends.
#[derive(Debug)]
struct Instance {
    height: u64,
    round: u64,
    /// The proposal accepted in `round` (Dafny `proposalAcceptedForCurrentRound`).
    accepted: Option<(Digest, Block)>,
    /// Whether our COMMIT for `round` has gone out.
    sent_commit: bool,
    /// Latest prepared round/value of this height (survives round changes).
    prepared: Option<PreparedCertificate>,
    known_blocks: BTreeMap<(u64, Digest), KnownBlock>,
    prepares: BTreeMap<NodeId, Signed<PreparePayload>>,
    /// COMMITs by (sender, round, digest): up to [`MAX_COMMITS_PER_SENDER`]
    /// per sender, its highest rounds kept, so a sender's later-round COMMIT
    /// does not hide the one that completed a quorum in an earlier round; up
    /// to [`MAX_COMMIT_DIGESTS_PER_ROUND`] digests per (sender, round), so a
    /// double-voting validator's conflicting COMMIT, arriving first, does not
    /// shut out its COMMIT for the block a quorum decided (which a lagging
    /// replica needs from the relay to decide it).
    commits: BTreeMap<(NodeId, u64, Digest), Signed<CommitPayload>>,
    round_changes: BTreeMap<NodeId, RoundChange>,
    /// The round (of this height) in which we learnt that q replicas have
    /// reached it (see [`Qbft::note_round_quorum`]).
    round_quorum: Option<u64>,
}

impl Instance {
    fn new(height: u64) -> Instance {
        Instance {
            height,
            round: 0,
            accepted: None,
            sent_commit: false,
            prepared: None,
            known_blocks: BTreeMap::new(),
            prepares: BTreeMap::new(),
            commits: BTreeMap::new(),
            round_changes: BTreeMap::new(),
            round_quorum: None,
        }
    }

    /// Keeps `block` under (round, digest), within the bounds above.
    ///
    /// Liveness rule (review finding 1): a full round or a full store does
    /// not refuse a block outright; it evicts the block least worth keeping
    /// (see [`Instance::keep_priority`]), the newcomer itself on a tie. A
    /// decided block has q ≥ f+1 distinct committers, more than any block
    /// only Byzantine validators committed, so once its COMMITs are in it
    /// displaces an equivocating proposer's made-up blocks instead of being
    /// dropped — otherwise a replica holding q COMMITs could never store the
    /// block they seal and would be stranded at this height. Memory stays
    /// bounded: the per-round and total caps are unchanged.
    ///
    /// A block already known under (round, digest) only gains the PROPOSAL
    /// that carried it if it had none (finding 6: the relay needs it).
    fn remember_block(
        &mut self,
        round: u64,
        digest: Digest,
        block: &Block,
        proposal: Option<&Proposal>,
    ) {
        if let Some(known) = self.known_blocks.get_mut(&(round, digest)) {
            if known.proposal.is_none() {
                known.proposal = proposal.map(|p| Box::new(p.clone()));
            }
            return;
        }
        let known = KnownBlock {
            block: block.clone(),
            proposal: proposal.map(|p| Box::new(p.clone())),
        };
        self.known_blocks.insert((round, digest), known);
        self.bound_round(round, digest);
        self.bound_total();
    }

    /// Enforces [`MAX_BLOCKS_PER_ROUND`]: while `round` holds too many
    /// blocks, evicts the one with the lowest keep priority, the `newcomer`
    /// first on a tie (an equivocating proposer's third uncommitted block
    /// never displaces the first two).
    fn bound_round(&mut self, round: u64, newcomer: Digest) {
        loop {
            let in_round: Vec<Digest> = self
                .known_blocks
                .range((round, Digest::ZERO)..)
                .take_while(|((r, _), _)| *r == round)
                .map(|((_, d), _)| *d)
                .collect();
            if in_round.len() <= MAX_BLOCKS_PER_ROUND {
                return;
            }
            let victim = in_round
                .into_iter()
                .min_by_key(|d| (self.keep_priority(d), *d != newcomer));
            if let Some(d) = victim {
                self.known_blocks.remove(&(round, d));
            }
        }
    }

    /// Enforces [`MAX_KNOWN_BLOCKS`]: evicts the block with the lowest keep
    /// priority, the oldest round first on a tie (so Byzantine later-round
    /// blocks cannot evict a block that COMMITs point to).
    fn bound_total(&mut self) {
        while self.known_blocks.len() > MAX_KNOWN_BLOCKS {
            let victim = self
                .known_blocks
                .keys()
                .min_by_key(|(r, d)| (self.keep_priority(d), *r))
                .copied();
            if let Some(key) = victim {
                self.known_blocks.remove(&key);
            }
        }
    }

    /// How much a block is worth keeping: the accepted and the prepared
    /// block always stay (we voted for them); any other block ranks by the
    /// distinct validators with a verified COMMIT for its digest at this
    /// height (Byzantine ones alone reach at most f).
    fn keep_priority(&self, digest: &Digest) -> usize {
        let ours = self.accepted.as_ref().is_some_and(|(d, _)| d == digest)
            || self.prepared.as_ref().is_some_and(|p| p.digest == *digest);
        if ours {
            return usize::MAX;
        }
        self.commits
            .values()
            .filter(|c| c.payload.digest == *digest)
            .map(|c| c.author)
            .collect::<BTreeSet<_>>()
            .len()
    }

    fn known(&self, digest: &Digest) -> Option<&KnownBlock> {
        self.known_blocks
            .iter()
            .find(|((_, d), _)| d == digest)
            .map(|(_, k)| k)
    }

    /// The entry to archive for a block decided in `round` (finding 6): the
    /// one with the PROPOSAL of the decided round if we have it, else any
    /// entry of that block with a PROPOSAL (a lagging peer can store the
    /// block from a proposal of any round), else any entry of that block
    /// (learned only from a ROUND-CHANGE: the relay then sends only COMMITs).
    fn for_archive(&self, round: u64, digest: &Digest) -> Option<&KnownBlock> {
        let with_proposal = |k: &&KnownBlock| k.proposal.is_some();
        self.known_blocks
            .get(&(round, *digest))
            .filter(with_proposal)
            .or_else(|| {
                self.known_blocks
                    .iter()
                    .filter(|((_, d), _)| d == digest)
                    .map(|(_, k)| k)
                    .find(with_proposal)
            })
            .or_else(|| self.known(digest))
    }

    fn block(&self, digest: &Digest) -> Option<&Block> {
        self.known(digest).map(|k| &k.block)
    }

    /// `sender`'s COMMITs, lowest round first.
    fn commit_keys_of(&self, sender: NodeId) -> Vec<(NodeId, u64, Digest)> {
        self.commits
            .range((sender, 0, Digest::ZERO)..)
            .take_while(|((author, _, _), _)| *author == sender)
            .map(|(key, _)| *key)
            .collect()
    }

    /// Keeps at most [`MAX_COMMITS_PER_SENDER`] of `sender`'s COMMITs,
    /// dropping its lowest rounds.
    fn bound_commits_of(&mut self, sender: NodeId) {
        let keys = self.commit_keys_of(sender);
        let excess = keys.len().saturating_sub(MAX_COMMITS_PER_SENDER);
        for key in keys.into_iter().take(excess) {
            self.commits.remove(&key);
        }
    }

    fn retained(&self) -> usize {
        self.known_blocks.len()
            + self.prepares.len()
            + self.commits.len()
            + self.round_changes.len()
            + usize::from(self.prepared.is_some())
    }
}

/// Messages for heights above ours, per sender, bounded per sender: a
/// flooding peer only ever evicts its own messages.
#[derive(Debug)]
struct FutureBuffer {
    per_peer: BTreeMap<NodeId, VecDeque<QbftMessage>>,
    cap_per_peer: usize,
}

impl FutureBuffer {
    fn push(&mut self, from: NodeId, msg: QbftMessage) -> Result<(), QbftError> {
        let queue = self.per_peer.entry(from).or_default();
        if queue.len() >= self.cap_per_peer {
            return Err(QbftError::FutureBufferFull(from));
        }
        queue.push_back(msg);
        Ok(())
    }

    /// Removes messages below `height` and returns those at `height`, in
    /// sender order then arrival order.
    fn take_height(&mut self, height: u64) -> Vec<(NodeId, QbftMessage)> {
        let mut ready = Vec::new();
        for (from, queue) in self.per_peer.iter_mut() {
            let mut keep = VecDeque::with_capacity(queue.len());
            for msg in queue.drain(..) {
                match msg.height().cmp(&height) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => ready.push((*from, msg)),
                    std::cmp::Ordering::Greater => keep.push_back(msg),
                }
            }
            *queue = keep;
        }
        self.per_peer.retain(|_, q| !q.is_empty());
        ready
    }

    fn len(&self) -> usize {
        self.per_peer.values().map(VecDeque::len).sum()
    }
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
    archive: BTreeMap<u64, DecidedHeight>,
    /// Per lagging peer, the (height, round) of the last round change we
    /// answered with a relay, and when.
    relayed: BTreeMap<NodeId, ((u64, u64), Time)>,
}

impl Qbft {
    pub fn new(ctx: NodeContext, cfg: &QbftConfig) -> Qbft {
        let quorum = Quorum {
            n: ctx.committee.n(),
            q: quorum_size(&ctx.committee, cfg),
            #[cfg(feature = "mutants")]
            ignore_highest_prepared: cfg.planted(QbftMutant::IgnoreHighestPrepared),
        };
        let tip = ChainTip {
            height: 0,
            hash: GENESIS,
            next_round0_slot: 0,
            committed_at: None,
        };
        Qbft {
            id: ctx.id,
            weak_quorum: ctx.committee.weak_quorum(),
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
                + self.relayed.len(),
        }
    }

    pub fn handle(
        &mut self,
        now: Time,
        input: Input<QbftMessage, QbftTimer>,
        out: &mut Out,
    ) -> Result<(), QbftError> {
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
    /// ROUND-CHANGE for one may earn its sender a relay), future heights
    /// buffered within a bound, the current height handled.
    fn on_message(
        &mut self,
        now: Time,
        from: NodeId,
        msg: QbftMessage,
        out: &mut Out,
    ) -> Result<(), QbftError> {
        // PROPOSALs and COMMITs may be relayed (see `help_lagging_peer`):
        // they are checked against their author's signature, whoever
        // delivers them. The other kinds come from their author only.
        let author = msg.author();
        let relayable = matches!(msg, QbftMessage::Proposal(_) | QbftMessage::Commit(_));
        if author != from && !relayable {
            return Err(QbftError::AuthorNotSender { author, from });
        }
        for id in [from, author] {
            if !self.committee.contains(id) {
                return Err(QbftError::UnknownSigner(id));
            }
        }
        let height = msg.height();
        if height < self.inst.height {
            if let QbftMessage::RoundChange(rc) = &msg {
                self.help_lagging_peer(now, from, rc, out);
            }
            return Ok(());
        }
        if height > self.inst.height {
            if height - self.inst.height > self.cfg.future_height_window {
                return Err(QbftError::TooFarInFuture { height });
            }
            return self.future.push(from, msg);
        }
        match msg {
            QbftMessage::Proposal(p) => self.on_proposal(now, *p, out),
            QbftMessage::Prepare(p) => self.on_prepare(now, p, out),
            QbftMessage::Commit(c) => self.on_commit(now, c, out),
            QbftMessage::RoundChange(rc) => self.on_round_change(now, *rc, out),
        }
    }

    /// Catch-up, outside the Dafny spec (which leaves block sync to the
    /// environment): a peer announcing a round change for a height we have
    /// decided is behind. f+1 designated helpers (the peer's f+1 successors
    /// in id order, so at least one honest) send it the PROPOSAL and q
    /// COMMITs of the archived heights from its own on (as many as it
    /// buffers), each signed by its author, so it decides them through its
    /// ordinary checks; its next round change at its new height asks for
    /// the next ones.
    ///
    /// Relay rule: once per (height, round) the peer announces, and again
    /// for the same (height, round) once half that round's timeout has
    /// passed — a replica waiting for its round's quorum re-sends the same
    /// ROUND-CHANGE every timeout (`on_round_timeout`), and a relay lost to
    /// a partition must be answered again. So a peer, honest or not, draws
    /// at most one relay per new round it announces and one per half
    /// timeout. Never triggered when nobody falls behind, so it adds
    /// nothing to fault-free counts.
    fn help_lagging_peer(&mut self, now: Time, from: NodeId, rc: &RoundChange, out: &mut Out) {
        let n = self.committee.n();
        let distance = (self.id.index() + n - from.index()) % n;
        if distance == 0 || distance > self.weak_quorum {
            return;
        }
        let announced = (rc.signed.payload.height, rc.signed.payload.round);
        let again_after = self.cfg.timeout_for_round(announced.1) / 2;
        let answered = self.relayed.get(&from).is_some_and(|&(seen, at)| {
            seen > announced || (seen == announced && now < at.saturating_add(again_after))
        });
        if answered {
            return;
        }
        let mut sigs = SignatureBatch::default();
        sigs.push(&rc.signed);
        if !sigs.verify(self.crypto.as_ref()) {
            return;
        }
        self.relayed.insert(from, (announced, now));
        let window = announced.0..announced.0.saturating_add(self.cfg.future_height_window);
        for decided in self.archive.range(window).map(|(_, d)| d) {
            // COMMITs first: the peer then already holds the seals when the
            // PROPOSAL arrives, so its block outranks any block an
            // equivocating proposer filled that round with (see
            // `remember_block`) and is stored and decided at once.
            for c in &decided.commits {
                out.push(Action::Resend {
                    to: from,
                    msg: QbftMessage::Commit(c.clone()),
                });
            }
            if let Some(p) = &decided.proposal {
                out.push(Action::Resend {
                    to: from,
                    msg: QbftMessage::Proposal(p.clone()),
                });
            }
        }
    }

    /// Dafny `UponProposal` / `isValidProposal`. Safety rules 1 and 2: only
    /// proposer(h, r), only a block extending our chain, only a justified
    /// proposal for r > 0, and only one proposal per round — for the current
    /// round if none is accepted yet, or for a higher round (we then move to
    /// it). A validly signed proposal for an older round, or a second one for
    /// this round, is not accepted; only its block is remembered.
    fn on_proposal(&mut self, now: Time, p: Proposal, out: &mut Out) -> Result<(), QbftError> {
        let round = p.signed.payload.round;
        let stale = round < self.inst.round;
        let duplicate = round == self.inst.round && self.inst.accepted.is_some();
        let leader = self.proposer_of(round);
        if p.signed.author != leader {
            return Err(QbftError::NotProposer {
                round,
                author: p.signed.author,
                expected: leader,
            });
        }
        if p.block.requests.len() > self.batch.max_size {
            return Err(QbftError::OversizedBlock {
                len: p.block.requests.len(),
                max: self.batch.max_size,
            });
        }
        let digest = p.block.hash();
        if digest != p.signed.payload.digest {
            return Err(QbftError::DigestMismatch);
        }
        check_extends(&p.block, self.inst.height, &self.tip.hash)?;
        let mut sigs = SignatureBatch::default();
        sigs.push(&p.signed);
        if stale || duplicate {
            // Not accepted (rule 2: one proposal per round, never an older
            // round), but its block is kept: if q COMMITs seal it, the seals
            // make it final, and we could not finalize a block we never saw.
            if !sigs.verify(self.crypto.as_ref()) {
                return Err(QbftError::BadSignature);
            }
            self.inst.remember_block(round, digest, &p.block, Some(&p));
            self.check_decided(now, out);
            return if duplicate {
                Err(QbftError::DuplicateProposal)
            } else {
                Ok(())
            };
        }
        check_proposal_justification(self.quorum, &p, &digest, leader, &mut sigs)?;
        if !sigs.verify(self.crypto.as_ref()) {
            return Err(QbftError::BadSignature);
        }
        if round > self.inst.round {
            // A justified proposal for a higher round: move there without a
            // ROUND-CHANGE of our own (Besu `handleProposalPayload`).
            self.enter_round(now, round, false, out);
        }
        self.accept(now, digest, &p, out);
        Ok(())
    }

    /// Accepting a proposal: remember it and multicast PREPARE(h, r, digest)
    /// (every validator, proposer included). Our own PREPARE counts at once.
    fn accept(&mut self, now: Time, digest: Digest, proposal: &Proposal, out: &mut Out) {
        let block = &proposal.block;
        // Accepted first, so `remember_block` never evicts the block we vote for.
        self.inst.accepted = Some((digest, block.clone()));
        self.inst
            .remember_block(self.inst.round, digest, block, Some(proposal));
        let prepare = Signed::sign(
            self.crypto.as_ref(),
            PreparePayload {
                height: self.inst.height,
                round: self.inst.round,
                digest,
            },
        );
        out.push(Action::Broadcast(QbftMessage::Prepare(prepare.clone())));
        self.inst.prepares.insert(self.id, prepare);
        if self.inst.round > 0 {
            // Its justification holds q ROUND-CHANGEs for this round.
            self.note_round_quorum(out);
        }
        self.check_prepared(now, out);
        self.check_decided(now, out);
    }

    /// Dafny `UponPrepare` (receipt side): a valid PREPARE for this height and
    /// the current or a later round is kept, one per sender (its latest).
    fn on_prepare(
        &mut self,
        now: Time,
        p: Signed<PreparePayload>,
        out: &mut Out,
    ) -> Result<(), QbftError> {
        if p.payload.round < self.inst.round {
            return Ok(());
        }
        if let Some(prev) = self.inst.prepares.get(&p.author) {
            if prev.payload.round > p.payload.round || *prev == p {
                return Ok(());
            }
            if prev.payload.round == p.payload.round {
                return Err(QbftError::Equivocation(p.author));
            }
        }
        let mut sigs = SignatureBatch::default();
        sigs.push(&p);
        if !sigs.verify(self.crypto.as_ref()) {
            return Err(QbftError::BadSignature);
        }
        self.inst.prepares.insert(p.author, p);
        self.check_prepared(now, out);
        Ok(())
    }

    /// Dafny `UponPrepare` (quorum side). Safety rule 3: with q PREPAREs for
    /// exactly (h, r, digest of the accepted proposal), record the prepared
    /// round/value with its certificate and multicast COMMIT with our seal.
    fn check_prepared(&mut self, now: Time, out: &mut Out) {
        let Some((digest, block)) = &self.inst.accepted else {
            return;
        };
        if self.inst.sent_commit {
            return;
        }
        let round = self.inst.round;
        let certificate: Vec<Signed<PreparePayload>> = self
            .inst
            .prepares
            .values()
            .filter(|p| p.payload.round == round && p.payload.digest == *digest)
            .take(self.quorum.q)
            .cloned()
            .collect();
        if certificate.len() < self.quorum.q {
            return;
        }
        let digest = *digest;
        self.inst.prepared = Some(PreparedCertificate {
            round,
            digest,
            block: block.clone(),
            prepares: certificate,
        });
        self.inst.sent_commit = true;
        let commit = signed_commit(self.crypto.as_ref(), self.inst.height, round, digest);
        out.push(Action::Broadcast(QbftMessage::Commit(commit.clone())));
        self.inst.commits.insert((self.id, round, digest), commit);
        self.check_decided(now, out);
    }

    /// Dafny `UponCommit` (receipt side): a COMMIT with a valid signature and
    /// a valid seal over its digest is kept, per (sender, round, digest).
    /// Commits of earlier rounds of this height count too: a replica that
    /// moved to a later round just before the decision can still finalize.
    /// A second digest from one sender in one round is kept (see
    /// `Instance::commits`); a third is refused as equivocation.
    fn on_commit(
        &mut self,
        now: Time,
        c: Signed<CommitPayload>,
        out: &mut Out,
    ) -> Result<(), QbftError> {
        let key = (c.author, c.payload.round, c.payload.digest);
        if let Some(prev) = self.inst.commits.get(&key) {
            return if *prev == c {
                Ok(())
            } else {
                Err(QbftError::Equivocation(c.author))
            };
        }
        let same_round = self
            .inst
            .commit_keys_of(c.author)
            .into_iter()
            .filter(|(_, r, _)| *r == c.payload.round)
            .count();
        if same_round >= MAX_COMMIT_DIGESTS_PER_ROUND {
            return Err(QbftError::Equivocation(c.author));
        }
        let mut sigs = SignatureBatch::default();
        sigs.push(&c);
        sigs.push_seal(&c);
        if !sigs.verify(self.crypto.as_ref()) {
            return Err(QbftError::BadSignature);
        }
        self.inst.commits.insert(key, c);
        self.inst.bound_commits_of(key.0);
        self.check_decided(now, out);
        Ok(())
    }

    /// Safety rule 4 (Dafny `UponCommit`, quorum side): q COMMITs for the same
    /// (h, r, digest) from distinct validators decide the block with that
    /// hash, sealed by their q seals. The block must be known (accepted or
    /// seen in a validated round change); until then we wait.
    fn check_decided(&mut self, now: Time, out: &mut Out) {
        let mut tally: BTreeMap<(u64, Digest), usize> = BTreeMap::new();
        for c in self.inst.commits.values() {
            *tally
                .entry((c.payload.round, c.payload.digest))
                .or_default() += 1;
        }
        let decided = tally
            .into_iter()
            .find(|((_, digest), count)| {
                *count >= self.quorum.q && self.inst.block(digest).is_some()
            })
            .map(|(key, _)| key);
        if let Some((round, digest)) = decided {
            let commits = self
                .inst
                .commits
                .values()
                .filter(|c| c.payload.round == round && c.payload.digest == digest)
                .cloned()
                .collect();
            self.decide(now, round, digest, commits, out);
        }
    }

    /// The block is final: execute its requests (each at most once), emit the
    /// decision, and start the next height at round 0.
    fn decide(
        &mut self,
        now: Time,
        round: u64,
        digest: Digest,
        commits: Vec<Signed<CommitPayload>>,
        out: &mut Out,
    ) {
        let Some(known) = self.inst.for_archive(round, &digest).cloned() else {
            return;
        };
        let block = known.block;
        let requests = self.pool.execute(block.requests.iter().map(|r| &r.id));
        out.push(Action::Commit(Decision {
            slot: block.height,
            view: round,
            block: digest,
            parent: block.parent,
            requests,
        }));
        self.tip = ChainTip {
            height: block.height,
            hash: digest,
            next_round0_slot: next_round0_slot(
                &self.committee,
                self.tip.next_round0_slot,
                block.proposer,
            ),
            committed_at: Some(now),
        };
        let seals = commits.iter().map(|c| (c.author, c.payload.seal)).collect();
        self.last_certificate = Some(CommitCertificate {
            block,
            digest,
            round,
            seals,
        });
        self.archive.insert(
            self.tip.height,
            DecidedHeight {
                proposal: known.proposal,
                commits,
            },
        );
        while self.archive.len() > ARCHIVE_HEIGHTS {
            self.archive.pop_first();
        }
        self.inst = Instance::new(self.tip.height + 1);
    }

    /// Dafny `UponRoundChange` (receipt side). Safety rule 5: a ROUND-CHANGE
    /// is kept only if it checks on its own (`check_round_change`), one per
    /// sender (its latest round); then the f+1 rule and the leader rule run.
    fn on_round_change(
        &mut self,
        now: Time,
        rc: RoundChange,
        out: &mut Out,
    ) -> Result<(), QbftError> {
        let (author, round) = (rc.signed.author, rc.signed.payload.round);
        if round < self.inst.round {
            return Ok(());
        }
        if let Some(prev) = self.inst.round_changes.get(&author) {
            let prev_round = prev.signed.payload.round;
            if prev_round > round || *prev == rc {
                return Ok(());
            }
            if prev_round == round {
                return Err(QbftError::Equivocation(author));
            }
        }
        let prepared_len = rc.prepared_block.as_ref().map_or(0, |b| b.requests.len());
        if prepared_len > self.batch.max_size {
            return Err(QbftError::OversizedBlock {
                len: prepared_len,
                max: self.batch.max_size,
            });
        }
        let mut sigs = SignatureBatch::default();
        check_round_change(self.quorum, &self.tip.hash, &rc, &mut sigs)?;
        if !sigs.verify(self.crypto.as_ref()) {
            return Err(QbftError::BadSignature);
        }
        if let (Some((prepared_round, value)), Some(block)) =
            (rc.signed.payload.prepared(), &rc.prepared_block)
        {
            self.inst.remember_block(prepared_round, value, block, None);
        }
        self.inst.round_changes.insert(author, rc);
        self.maybe_join_higher_round(now, out);
        if self.round_reached_by_quorum() {
            self.note_round_quorum(out);
        }
        self.maybe_lead_round(now, round, out);
        self.check_decided(now, out);
        Ok(())
    }

    /// Dafny `UponRoundChange`, f+1 branch (Besu `RoundChangeManager`): f+1
    /// validators with round changes for rounds above ours include an honest
    /// one that has moved on, so jump to the smallest of those rounds and
    /// multicast our own ROUND-CHANGE for it. f validators claiming any
    /// round, however high, move nobody (round inflation is ignored).
    fn maybe_join_higher_round(&mut self, now: Time, out: &mut Out) {
        let higher: Vec<u64> = self
            .inst
            .round_changes
            .values()
            .map(|rc| rc.signed.payload.round)
            .filter(|&r| r > self.inst.round)
            .collect();
        if higher.len() < self.weak_quorum {
            return;
        }
        if let Some(target) = higher.into_iter().min() {
            self.enter_round(now, target, true, out);
        }
    }

    /// Dafny `UponRoundTimeout`: the round expired without a decision; move
    /// to round + 1 and multicast ROUND-CHANGE with our prepared round/value
    /// — but only out of a round a quorum has reached (round-timer rule,
    /// [`Qbft::note_round_quorum`]). Before that, the replica stays, sends
    /// its ROUND-CHANGE for the round again (one sent during a partition was
    /// lost) and waits another timeout (`settle` re-arms it).
    fn on_round_timeout(&mut self, now: Time, out: &mut Out) {
        let armed = self.round_timer.take();
        if armed != Some((self.inst.height, self.inst.round)) {
            return;
        }
        if self.inst.round > 0 && self.inst.round_quorum != Some(self.inst.round) {
            let rc = match self.inst.round_changes.get(&self.id) {
                Some(own) => own.clone(),
                None => self.own_round_change(self.inst.round),
            };
            out.push(Action::Rebroadcast(QbftMessage::RoundChange(Box::new(rc))));
            return;
        }
        let next = self.inst.round.saturating_add(1);
        self.enter_round(now, next, true, out);
    }

    /// Whether q replicas (our own ROUND-CHANGE included) have announced
    /// the current round or a higher one. Lower rounds were pruned on entry,
    /// so every kept ROUND-CHANGE counts.
    fn round_reached_by_quorum(&self) -> bool {
        let round = self.inst.round;
        let reached = self
            .inst
            .round_changes
            .values()
            .filter(|rc| rc.signed.payload.round >= round)
            .count();
        reached >= self.quorum.q
    }

    /// Round-timer rule (liveness; outside the Dafny spec, which assumes
    /// timeouts that grow without bound). A round r > 0 lasts
    /// `timeout_for_round(r)` from the moment the replica learns that q
    /// replicas have reached it — q ROUND-CHANGEs for rounds ≥ r, or a
    /// justified PROPOSAL for r — not from the moment it entered; and it is
    /// never left by timeout before that (`on_round_timeout`). As in
    /// Tendermint (Buchman, Kwon, Milosevic 2018, Algorithm 1 lines 34-35
    /// and 47-48: a round's timeouts start on 2f+1 messages of the round), a
    /// replica thus leaves r only after f+1 honest ones reached it, and it
    /// gives them a full timeout together.
    ///
    /// Why: with capped timeouts every round lasts the same, so honest
    /// replicas a round apart keep their phase for ever. Those ahead left
    /// each round moments after the others entered it (or just before), and
    /// f faulty replicas sending their ROUND-CHANGEs only to those ahead
    /// denied the others the f+1 that pulls a replica up
    /// (`maybe_join_higher_round`). Uncapped, the doubling timeouts end such
    /// a phase lock; capped, only this does. A replica's first notice
    /// restarts the timer once per round; the rule adds at most one
    /// message delay to a round all honest replicas enter together, and
    /// nothing to the fault-free case (round 0 is exempt: nobody announces
    /// it).
    fn note_round_quorum(&mut self, out: &mut Out) {
        let round = self.inst.round;
        if round == 0 || self.inst.round_quorum == Some(round) {
            return;
        }
        self.inst.round_quorum = Some(round);
        self.round_timer = Some((self.inst.height, round));
        out.push(Action::SetTimer {
            timer: QbftTimer::Round,
            after: self.cfg.timeout_for_round(round),
        });
    }

    /// Moves to `round` (always upward): the accepted proposal and our commit
    /// flag reset, the prepared round/value stays, messages for older rounds
    /// are pruned. With `announce`, multicasts our ROUND-CHANGE for it,
    /// carrying the prepared certificate if we have one.
    fn enter_round(&mut self, now: Time, round: u64, announce: bool, out: &mut Out) {
        if round <= self.inst.round {
            return;
        }
        self.inst.round = round;
        self.inst.accepted = None;
        self.inst.sent_commit = false;
        self.view_changes += 1;
        self.inst
            .round_changes
            .retain(|_, rc| rc.signed.payload.round >= round);
        self.inst.prepares.retain(|_, p| p.payload.round >= round);
        if announce {
            let rc = self.own_round_change(round);
            out.push(Action::Broadcast(QbftMessage::RoundChange(Box::new(
                rc.clone(),
            ))));
            self.inst.round_changes.insert(self.id, rc);
        }
        if self.round_reached_by_quorum() {
            self.note_round_quorum(out);
        }
        self.maybe_lead_round(now, round, out);
    }

    fn own_round_change(&self, round: u64) -> RoundChange {
        let prepared = self.inst.prepared.as_ref();
        let payload = RoundChangePayload {
            height: self.inst.height,
            round,
            prepared_round: prepared.map(|p| p.round),
            prepared_value: prepared.map(|p| p.digest),
        };
        RoundChange {
            signed: Signed::sign(self.crypto.as_ref(), payload),
            prepared_block: prepared.map(|p| p.block.clone()),
            prepares: prepared.map(|p| p.prepares.clone()).unwrap_or_default(),
        }
    }

    /// Dafny `UponRoundChange`, quorum branch: the proposer of round r ≥ ours
    /// holding q validated ROUND-CHANGEs for exactly (h, r) proposes, with
    /// those round changes as justification. If any is prepared, it
    /// re-proposes the block of the highest prepared round with that round's
    /// q PREPAREs — never its own block; otherwise it proposes a new block.
    fn maybe_lead_round(&mut self, now: Time, round: u64, out: &mut Out) {
        if round == 0 || round < self.inst.round || self.proposer_of(round) != self.id {
            return;
        }
        if round == self.inst.round && self.inst.accepted.is_some() {
            return;
        }
        let for_round: Vec<&RoundChange> = self
            .inst
            .round_changes
            .values()
            .filter(|rc| rc.signed.payload.round == round)
            .collect();
        if for_round.len() < self.quorum.q {
            return;
        }
        if round > self.inst.round {
            // enter_round calls back here once `round` is current.
            self.enter_round(now, round, false, out);
            return;
        }
        let highest = for_round
            .iter()
            .filter_map(|rc| rc.signed.payload.prepared_round.map(|pr| (pr, *rc)))
            .max_by_key(|(pr, rc)| (*pr, std::cmp::Reverse(rc.signed.author)))
            .map(|(_, rc)| rc);
        // MUTANT(ignore-highest-prepared): the leader forgets the prepared
        // value and proposes its own new block.
        let highest = highest.filter(|_| !self.quorum.ignores_highest_prepared());
        // The justification: the highest prepared one first (if any), then
        // the others in id order, q in all.
        let mut justification: Vec<Signed<RoundChangePayload>> = Vec::with_capacity(self.quorum.q);
        if let Some(h) = highest {
            justification.push(h.signed.clone());
        }
        for rc in &for_round {
            if justification.len() >= self.quorum.q {
                break;
            }
            if highest.is_some_and(|h| h.signed.author == rc.signed.author) {
                continue;
            }
            justification.push(rc.signed.clone());
        }
        let (block, prepares) = match highest.and_then(|h| {
            h.prepared_block
                .as_ref()
                .map(|b| (b.clone(), h.prepares.clone()))
        }) {
            Some(reproposal) => reproposal,
            None => (self.new_block(), Vec::new()),
        };
        self.propose(now, block, justification, prepares, out);
    }

    /// Round 0: the proposer of (h, 0) proposes a new block once a batch is
    /// cut — `max_size` requests, or the oldest has waited `max_delay` — and
    /// `block_period` has passed since the last commit. Nothing pending:
    /// nothing proposed (no empty blocks while idle).
    fn maybe_propose_new_block(&mut self, now: Time, out: &mut Out) {
        if self.inst.round != 0
            || self.inst.accepted.is_some()
            || self.pool.is_empty()
            || self.proposer_of(0) != self.id
        {
            return;
        }
        let batch_ready = match self.pool.oldest_arrival() {
            Some(_) if self.pool.len() >= self.batch.max_size => now,
            Some(oldest) => oldest.saturating_add(self.batch.max_delay),
            None => return,
        };
        let period_over = self
            .tip
            .committed_at
            .map_or(Time::ZERO, |t| t.saturating_add(self.cfg.block_period));
        let at = batch_ready.max(period_over);
        if at > now {
            if self.propose_timer != Some(at) {
                self.propose_timer = Some(at);
                out.push(Action::SetTimer {
                    timer: QbftTimer::Propose,
                    after: at.since(now),
                });
            }
            return;
        }
        let block = self.new_block();
        self.propose(now, block, Vec::new(), Vec::new(), out);
    }

    /// A new block on our tip from the oldest pending requests. Requests stay
    /// in the pool until a decision executes them.
    fn new_block(&self) -> Block {
        Block {
            height: self.inst.height,
            parent: self.tip.hash,
            proposer: self.id,
            requests: self.pool.peek(self.batch.max_size).cloned().collect(),
        }
    }

    /// Multicasts PROPOSAL for the current round and accepts it ourselves.
    fn propose(
        &mut self,
        now: Time,
        block: Block,
        round_changes: Vec<Signed<RoundChangePayload>>,
        prepares: Vec<Signed<PreparePayload>>,
        out: &mut Out,
    ) {
        let digest = block.hash();
        let signed = Signed::sign(
            self.crypto.as_ref(),
            ProposalPayload {
                height: self.inst.height,
                round: self.inst.round,
                digest,
            },
        );
        let proposal = Proposal {
            signed,
            block,
            round_changes,
            prepares,
        };
        out.push(Action::Broadcast(QbftMessage::Proposal(Box::new(
            proposal.clone(),
        ))));
        self.accept(now, digest, &proposal, out);
    }

    /// The round timer runs while there is something to decide: requests
    /// pending, a proposal accepted, or a round change under way. An idle
    /// replica has no timer pending (so a finished simulation is quiescent).
    fn refresh_round_timer(&mut self, out: &mut Out) {
        let active = !self.pool.is_empty() || self.inst.round > 0 || self.inst.accepted.is_some();
        let want = active.then_some((self.inst.height, self.inst.round));
        if want == self.round_timer {
            return;
        }
        match want {
            Some((_, round)) => out.push(Action::SetTimer {
                timer: QbftTimer::Round,
                after: self.cfg.timeout_for_round(round),
            }),
            None => out.push(Action::CancelTimer(QbftTimer::Round)),
        }
        self.round_timer = want;
    }
}
