//! Forged QCs (`forge`): each forgery must fail the QC rule.

use super::*;

// ----------------------------------------------------------------------
// Forged certificates
// ----------------------------------------------------------------------

/// The QC of a proposal (the block then names the forged QC's block as its
/// parent, so the block stays well-formed and the QC rule is what rejects
/// it) or of a NEW-VIEW, forged. The genesis QC carries no signature and is
/// left alone.
pub(super) fn forge_message(
    forgery: Forgery,
    msg: &Message,
    ctx: &TamperContext<'_>,
) -> Option<Vec<Message>> {
    match msg {
        Message::Proposal(block) if !block.justify.is_genesis() => {
            let qc = forge(forgery, &block.justify, ctx)?;
            Some(vec![Message::Proposal(with_justify(block, qc))])
        }
        Message::NewView(nv) if !nv.high_qc.is_genesis() => {
            let qc = forge(forgery, &nv.high_qc, ctx)?;
            Some(vec![Message::NewView(NewView {
                high_qc: qc,
                ..nv.clone()
            })])
        }
        _ => None,
    }
}

/// One forged certificate; each must fail the QC rule (`rules::verify_qc`).
pub(super) fn forge(
    forgery: Forgery,
    qc: &QuorumCert,
    ctx: &TamperContext<'_>,
) -> Option<QuorumCert> {
    match forgery {
        Forgery::BelowQuorum => Some(below_quorum(qc, ctx)),
        Forgery::DuplicateSigners => duplicate_signers(qc, ctx),
        Forgery::WrongRound => Some(wrong_round(qc)),
        Forgery::WrongDigest => Some(QuorumCert {
            block: other_digest(b"wrong-digest", &qc.block),
            ..qc.clone()
        }),
    }
}

/// Bits cleared from the signer bitmap (highest ids first) until one fewer
/// than n−f remain; the aggregate is untouched. Rejected by the signer
/// count (`qc-too-few-signers`) before any pairing.
pub(super) fn below_quorum(qc: &QuorumCert, ctx: &TamperContext<'_>) -> QuorumCert {
    let quorum = ctx.committee.quorum_n_minus_f();
    let keep: Vec<NodeId> = qc
        .signature
        .signers
        .iter()
        .take(quorum.saturating_sub(1))
        .collect();
    let mut signers = SignerBitmap::new(ctx.committee.n());
    for id in keep {
        signers.insert(id);
    }
    let mut forged = qc.clone();
    forged.signature.signers = signers;
    forged
}

/// A quorum counted by repeating one signer: the replica's own vote for the
/// QC's (view, block), aggregated once under each id of the original
/// bitmap. The bitmap claims n−f signers whose signatures are not in the
/// aggregate; the aggregate check fails (`qc-bad-signature`).
pub(super) fn duplicate_signers(qc: &QuorumCert, ctx: &TamperContext<'_>) -> Option<QuorumCert> {
    let own = own_vote(ctx, qc.view, qc.block).signature;
    let parts: Vec<(NodeId, BlsSignature)> =
        qc.signature.signers.iter().map(|id| (id, own)).collect();
    let signature = ctx.crypto.bls_aggregate(&parts).ok()?;
    Some(QuorumCert {
        signature,
        ..qc.clone()
    })
}

/// The QC claims the view before the one its signatures are over (the view
/// after, for a view-1 QC): `qc-bad-signature`.
pub(super) fn wrong_round(qc: &QuorumCert) -> QuorumCert {
    let view = if qc.view.0 > 1 {
        qc.view.prev()
    } else {
        qc.view.next()
    };
    QuorumCert { view, ..qc.clone() }
}
