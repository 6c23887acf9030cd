//! QBFT's safety rules as pure functions, after the ConsenSys Dafny spec
//! (`node.dfy`, `node_auxiliary_functions.dfy`): who may deliver what
//! ([`check_author`]), which height a message is for ([`height_gate`]),
//! proposal validity
//! ([`check_proposal`]) and justification ([`check_proposal_justification`],
//! [`check_round_change`], [`check_prepare_certificate`]), one PREPARE per
//! validator ([`latest_is_new`]), prepared ([`prepared_certificate`]) and
//! decided ([`decided`]). QBFT has no locks: safety comes from every
//! proposal after round 0 being justified. The predicates check structure
//! only and queue every signature they rely on into a [`SignatureBatch`];
//! the caller verifies the batch once. The replica (`crate::replica`)
//! applies them; the numbered rules are listed in its module doc.

use crate::error::QbftError;
use crate::messages::{
    Block, CommitPayload, PreparePayload, Proposal, RELAY_HEIGHTS, RoundChange, RoundChangePayload,
    SignatureBatch, Signed,
};
use bft_core::{Digest, NodeId};
use std::collections::{BTreeMap, BTreeSet};

/// Committee facts the predicates need.
#[derive(Clone, Copy, Debug)]
pub struct Quorum {
    /// Committee size.
    pub n: usize,
    /// ⌈2n/3⌉ (Dafny `quorum`).
    pub q: usize,
    /// Mutant `ignore-highest-prepared` planted (feature `mutants`).
    #[cfg(feature = "mutants")]
    pub ignore_highest_prepared: bool,
}

impl Quorum {
    /// Whether the `ignore-highest-prepared` mutant is planted (never
    /// without the feature).
    pub fn ignores_highest_prepared(&self) -> bool {
        #[cfg(feature = "mutants")]
        {
            self.ignore_highest_prepared
        }
        #[cfg(not(feature = "mutants"))]
        {
            false
        }
    }

    fn member(&self, id: NodeId) -> Result<(), QbftError> {
        if id.index() < self.n {
            Ok(())
        } else {
            Err(QbftError::UnknownSigner(id))
        }
    }

    fn bounded(&self, len: usize) -> Result<(), QbftError> {
        if len > self.n {
            Err(QbftError::OversizedJustification { len })
        } else {
            Ok(())
        }
    }
}

/// **Author and sender**: a DECIDED block (catch-up: the block with its
/// commit seals) may be relayed by any member, since its seals, not its
/// sender, make it final; every other message comes from its author only
/// (`author-not-sender`). Both the sender and the author are committee
/// members (`unknown-signer`).
pub fn check_author(
    quorum: &Quorum,
    from: NodeId,
    author: NodeId,
    relayable: bool,
) -> Result<(), QbftError> {
    if author != from && !relayable {
        return Err(QbftError::AuthorNotSender { author, from });
    }
    quorum.member(from)?;
    quorum.member(author)
}

/// Where a message for `height` goes at a replica deciding `current`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeightGate {
    /// Below: already decided here. Ignored, except that a ROUND-CHANGE
    /// shows its sender is behind and is answered with the decided blocks,
    /// and a DECIDED relay starting below may reach above (applied from
    /// our height on).
    Past,
    /// Above, within `future_height_window`: kept until the height starts
    /// (bounded per sender).
    Future,
    /// This height: checked by the rules below.
    Current,
}

/// **Height gate**: a replica works on one height at a time (Dafny: every
/// predicate is for `current_height`); messages for a height more than
/// `window` ahead are refused (`too-far-in-future`), so a peer cannot make
/// it buffer without bound.
pub fn height_gate(height: u64, current: u64, window: u64) -> Result<HeightGate, QbftError> {
    if height < current {
        Ok(HeightGate::Past)
    } else if height == current {
        Ok(HeightGate::Current)
    } else if height - current > window {
        Err(QbftError::TooFarInFuture { height })
    } else {
        Ok(HeightGate::Future)
    }
}

/// Safety rule (prepared certificate): `prepares` holds at least q PREPAREs
/// for exactly `(height, round, digest)`, each from a distinct committee
/// member (Dafny `validSignedPrepareForHeightRoundAndDigest` over a set of
/// size ≥ quorum). A duplicate signer rejects the whole certificate rather
/// than being counted once: honest nodes never send one.
pub fn check_prepare_certificate(
    quorum: Quorum,
    height: u64,
    round: u64,
    digest: &Digest,
    prepares: &[Signed<PreparePayload>],
    sigs: &mut SignatureBatch,
) -> Result<(), QbftError> {
    quorum.bounded(prepares.len())?;
    let mut seen = BTreeSet::new();
    for p in prepares {
        quorum.member(p.author)?;
        if !seen.insert(p.author) {
            return Err(QbftError::DuplicateSigner(p.author));
        }
        let expected = PreparePayload {
            height,
            round,
            digest: *digest,
        };
        if p.payload != expected {
            return Err(QbftError::PrepareMismatch);
        }
        sigs.push(p);
    }
    if seen.len() < quorum.q {
        return Err(QbftError::InsufficientPrepares {
            got: seen.len(),
            need: quorum.q,
        });
    }
    Ok(())
}

/// Safety rule (Dafny `validRoundChange`): a ROUND-CHANGE counted for
/// `(height, round)` is for exactly that height and round (round ≥ 1), its
/// prepared round and prepared value are both present or both absent, and a
/// prepared round is strictly below `round`. Returns the (round, value) pair
/// when prepared.
pub fn check_round_change_payload(
    p: &RoundChangePayload,
    height: u64,
    round: u64,
) -> Result<Option<(u64, Digest)>, QbftError> {
    if p.height != height || p.round != round {
        return Err(QbftError::RoundChangeMismatch);
    }
    if round == 0 {
        return Err(QbftError::RoundChangeForRoundZero);
    }
    match (p.prepared_round, p.prepared_value) {
        (None, None) => Ok(None),
        (Some(pr), Some(pv)) if pr < round => Ok(Some((pr, pv))),
        (Some(pr), Some(_)) => Err(QbftError::PreparedRoundNotBelow {
            prepared: pr,
            round,
        }),
        _ => Err(QbftError::PreparedFieldsInconsistent),
    }
}

/// A ROUND-CHANGE message as received (Besu `RoundChangeMessageValidator`):
/// a valid payload for its own (h, r); if prepared, the prepared block hashes
/// to the prepared value, extends `parent`, and carries a prepared
/// certificate for (h, prepared round, prepared value); if not prepared, no
/// block and no prepares. Inconsistent round changes are filtered here, one
/// by one, so a Byzantine one never reaches the leader's choice of value.
pub fn check_round_change(
    quorum: Quorum,
    parent: &Digest,
    rc: &RoundChange,
    sigs: &mut SignatureBatch,
) -> Result<(), QbftError> {
    let payload = &rc.signed.payload;
    quorum.member(rc.signed.author)?;
    let prepared = check_round_change_payload(payload, payload.height, payload.round)?;
    match (prepared, &rc.prepared_block) {
        (None, None) if rc.prepares.is_empty() => {}
        (None, _) => return Err(QbftError::UnexpectedJustification),
        (Some(_), None) => return Err(QbftError::PreparedBlockMismatch),
        (Some((pr, pv)), Some(block)) => {
            if block.hash() != pv {
                return Err(QbftError::PreparedBlockMismatch);
            }
            check_extends(block, payload.height, parent)?;
            check_prepare_certificate(quorum, payload.height, pr, &pv, &rc.prepares, sigs)?;
        }
    }
    sigs.push(&rc.signed);
    Ok(())
}

/// **Proposal validity** (safety rule 1; Dafny `isValidProposal` without
/// the justification, which is [`check_proposal_justification`]), checked in
/// this order: the author is proposer(h, r) (`not-proposer`); the block has
/// at most `max_size` requests (`oversized-block`); it hashes to the signed
/// digest (`digest-mismatch`); it extends the committed chain at height h
/// ([`check_extends`], `wrong-parent`). Returns the block's digest. The
/// author's signature is checked by the caller, in one batch with the
/// justification's.
pub fn check_proposal(
    proposal: &Proposal,
    proposer: NodeId,
    max_size: usize,
    height: u64,
    parent: &Digest,
) -> Result<Digest, QbftError> {
    let round = proposal.signed.payload.round;
    if proposal.signed.author != proposer {
        return Err(QbftError::NotProposer {
            round,
            author: proposal.signed.author,
            expected: proposer,
        });
    }
    if proposal.block.requests.len() > max_size {
        return Err(QbftError::OversizedBlock {
            len: proposal.block.requests.len(),
            max: max_size,
        });
    }
    let digest = proposal.block.hash();
    if digest != proposal.signed.payload.digest {
        return Err(QbftError::DigestMismatch);
    }
    check_extends(&proposal.block, height, parent)?;
    Ok(digest)
}

/// **One message per validator and kind** (Dafny keeps each sender's
/// latest PREPARE and ROUND-CHANGE): a message for a round below the
/// current one is ignored, as is one older than, or identical to, the
/// sender's message of that kind already held (`held`, with its round); a
/// different one for the same round is an `equivocation`. Returns whether
/// the message is new (to be verified and kept, replacing the held one).
pub fn latest_is_new<T: PartialEq>(
    message: &T,
    round: u64,
    author: NodeId,
    current_round: u64,
    held: Option<(&T, u64)>,
) -> Result<bool, QbftError> {
    if round < current_round {
        return Ok(false);
    }
    let Some((prev, prev_round)) = held else {
        return Ok(true);
    };
    if prev_round > round || prev == message {
        return Ok(false);
    }
    if prev_round == round {
        return Err(QbftError::Equivocation(author));
    }
    Ok(true)
}

/// **COMMITs kept per validator** (Dafny counts a sender's COMMITs for a
/// (round, digest) once): a COMMIT identical to the one held for its
/// (author, round, digest) is ignored, a different one for the same key is
/// an `equivocation`; so is a COMMIT for a further digest in a round for
/// which the author already has `max_digests` held (an honest validator
/// commits one digest per round; keeping a second lets a double-voter's
/// first COMMIT not shut out the one for the block a quorum decided).
/// Returns whether the COMMIT is new (to be verified and kept).
pub fn commit_is_new(
    commit: &Signed<CommitPayload>,
    held: Option<&Signed<CommitPayload>>,
    digests_held_in_round: usize,
    max_digests: usize,
) -> Result<bool, QbftError> {
    if let Some(prev) = held {
        return if prev == commit {
            Ok(false)
        } else {
            Err(QbftError::Equivocation(commit.author))
        };
    }
    if digests_held_in_round >= max_digests {
        return Err(QbftError::Equivocation(commit.author));
    }
    Ok(true)
}

/// **Prepared** (safety rule 3; Dafny `UponPrepare`): q PREPAREs for exactly
/// (h, r, digest of the accepted proposal) from distinct validators.
/// `prepares` holds at most one per validator ([`latest_is_new`]), all of
/// height h. Returns the certificate (the first q matching, in validator
/// order) that a COMMIT, and later a ROUND-CHANGE, rests on; `None` while
/// there are too few.
pub fn prepared_certificate(
    q: usize,
    round: u64,
    digest: &Digest,
    prepares: &BTreeMap<NodeId, Signed<PreparePayload>>,
) -> Option<Vec<Signed<PreparePayload>>> {
    let certificate: Vec<Signed<PreparePayload>> = prepares
        .values()
        .filter(|p| p.payload.round == round && p.payload.digest == *digest)
        .take(q)
        .cloned()
        .collect();
    (certificate.len() >= q).then_some(certificate)
}

/// **Decided** (safety rule 4; Dafny `UponCommit`): q COMMITs for the same
/// (round, digest) from distinct validators, each with a valid commit seal
/// (checked on receipt), and the block they seal is known (`known`). A
/// validator's COMMITs are keyed by (author, round, digest), so it counts
/// at most once per (round, digest). Returns the first such (round, digest)
/// in (round, digest) order.
pub fn decided(
    q: usize,
    commits: &BTreeMap<(NodeId, u64, Digest), Signed<CommitPayload>>,
    known: impl Fn(&Digest) -> bool,
) -> Option<(u64, Digest)> {
    let mut tally: BTreeMap<(u64, Digest), usize> = BTreeMap::new();
    for c in commits.values() {
        *tally
            .entry((c.payload.round, c.payload.digest))
            .or_default() += 1;
    }
    tally
        .into_iter()
        .find(|((_, digest), count)| *count >= q && known(digest))
        .map(|(key, _)| key)
}

/// A DECIDED relay carries at least one height (an honest helper relays
/// only when it has one) and at most [`RELAY_HEIGHTS`] (what an honest
/// helper's archive holds), so a Byzantine one cannot make a replica decode
/// and walk an unbounded list.
pub fn check_relay_length(heights: usize) -> Result<(), QbftError> {
    if heights == 0 {
        Err(QbftError::EmptyRelay)
    } else if heights > RELAY_HEIGHTS {
        Err(QbftError::OversizedRelay {
            heights,
            max: RELAY_HEIGHTS,
        })
    } else {
        Ok(())
    }
}

/// A block proposed at `height` extends the committed chain.
pub fn check_extends(block: &Block, height: u64, parent: &Digest) -> Result<(), QbftError> {
    if block.height == height && block.parent == *parent {
        Ok(())
    } else {
        Err(QbftError::WrongParent)
    }
}

/// Safety rule (Dafny `isProposalJustification`), for a proposal whose block
/// hashes to `digest` and whose round leader is `leader`:
///
/// - round 0: no justification; the block is a new block built by `leader`.
/// - round r > 0: at least q ROUND-CHANGEs for exactly (h, r) from distinct
///   committee members, each valid by [`check_round_change_payload`]. Then
///   - if none is prepared, the block is a new block built by `leader`
///     (and no prepares are attached);
///   - otherwise the block is the value of the highest prepared round among
///     them (`isHighestPrepared`), and `prepares` is a prepared certificate
///     for (h, that round, that value). This is what keeps a value that may
///     have been decided in an earlier round: the leader cannot swap in its
///     own.
///
/// A Byzantine round change in the set can only raise the "highest prepared"
/// bar to a value it cannot prove, which makes this proposal invalid; that is
/// why the leader builds the set only from round changes it has validated
/// with [`check_round_change`].
pub fn check_proposal_justification(
    quorum: Quorum,
    proposal: &Proposal,
    digest: &Digest,
    leader: NodeId,
    sigs: &mut SignatureBatch,
) -> Result<(), QbftError> {
    let (height, round) = (
        proposal.signed.payload.height,
        proposal.signed.payload.round,
    );
    let new_block_by_leader = |p: &Proposal| {
        if !p.prepares.is_empty() {
            Err(QbftError::UnexpectedJustification)
        } else if p.block.proposer != leader {
            Err(QbftError::WrongBlockProposer)
        } else {
            Ok(())
        }
    };
    if round == 0 {
        if !proposal.round_changes.is_empty() {
            return Err(QbftError::UnexpectedJustification);
        }
        return new_block_by_leader(proposal);
    }
    quorum.bounded(proposal.round_changes.len())?;
    let mut senders = BTreeSet::new();
    let mut prepared = Vec::new();
    for rc in &proposal.round_changes {
        quorum.member(rc.author)?;
        if !senders.insert(rc.author) {
            return Err(QbftError::DuplicateSigner(rc.author));
        }
        if let Some(pair) = check_round_change_payload(&rc.payload, height, round)? {
            prepared.push(pair);
        }
        sigs.push(rc);
    }
    if senders.len() < quorum.q {
        return Err(QbftError::InsufficientRoundChanges {
            got: senders.len(),
            need: quorum.q,
        });
    }
    // MUTANT(ignore-highest-prepared): the prepared values are ignored, so
    // the leader's own new block passes where the highest prepared one must.
    if quorum.ignores_highest_prepared() {
        return new_block_by_leader(proposal);
    }
    let Some(highest_round) = prepared.iter().map(|(r, _)| *r).max() else {
        return new_block_by_leader(proposal);
    };
    // `isHighestPrepared`: any round change of the highest prepared round
    // may be the one the block matches.
    let matches_highest = prepared
        .iter()
        .any(|(r, v)| *r == highest_round && v == digest);
    if !matches_highest {
        return Err(QbftError::NotHighestPrepared);
    }
    check_prepare_certificate(
        quorum,
        height,
        highest_round,
        digest,
        &proposal.prepares,
        sigs,
    )
}
