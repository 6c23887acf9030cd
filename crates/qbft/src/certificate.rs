//! A QBFT decision's certificate, as the ledger keeps it
//! ([`bft_core::Decision::certificate`]), and its offline check.
//!
//! A block is final once q = ⌈2n/3⌉ validators sent a COMMIT for it in one
//! round; each COMMIT carries a commit seal, an Ed25519 signature over the
//! block hash alone (`DOMAIN_COMMIT_SEAL`). The q seals are the block's
//! certificate: the same [`CommitCertificate`] a replica archives and
//! relays to lagging peers, without the block's contents. Since a seal
//! names only the hash, the decision's round is informational here as in
//! the protocol. What the check proves is that a quorum committed the block
//! with this hash; the hash binds the block's height and parent, but the
//! ledger does not hold the block's contents to recompute it, so the
//! decision's `slot` and `parent` are checked by the ledger's hash chain,
//! not by the seals. A decision without a certificate is refused: QBFT
//! decides nothing without its seals.

use crate::error::QbftError;
use crate::messages::{CommitCertificate, DOMAIN_COMMIT_SEAL};
use bft_core::{Certified, Committee, Crypto, Decision, Digest, NodeId, Signature, codec};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerCertificate {
    pub seals: Vec<(NodeId, Signature)>,
}

impl LedgerCertificate {
    /// The ledger's copy of `cert` (its seals).
    pub fn of(cert: &CommitCertificate) -> LedgerCertificate {
        LedgerCertificate {
            seals: cert.seals.clone(),
        }
    }

    /// Encoded for [`Decision::certificate`].
    pub fn encode(&self) -> Bytes {
        codec::encode(self, usize::MAX).unwrap_or_default()
    }
}

/// [`bft_core::Protocol::check_certificate`] for QBFT (see the module
/// documentation).
pub fn check_certificate(
    d: &Decision,
    committee: &Committee,
    crypto: &dyn Crypto,
) -> Result<Certified, QbftError> {
    if d.certificate.is_empty() {
        // Every QBFT decision is taken with its seals: none is a fault.
        return Err(QbftError::MalformedCertificate);
    }
    let limit = 16 + committee.n() * 96;
    let cert: LedgerCertificate =
        codec::decode(&d.certificate, limit).map_err(|_| QbftError::MalformedCertificate)?;
    check_seals(
        crypto,
        committee,
        committee.quorum_two_thirds(),
        &d.block,
        &cert.seals,
    )?;
    Ok(Certified::Quorum)
}

/// q distinct valid commit seals over `digest` (at most n: a longer list is
/// refused before any signature is checked).
pub(crate) fn check_seals(
    crypto: &dyn Crypto,
    committee: &Committee,
    q: usize,
    digest: &Digest,
    seals: &[(NodeId, Signature)],
) -> Result<(), QbftError> {
    if seals.len() > committee.n() {
        return Err(QbftError::OversizedJustification { len: seals.len() });
    }
    let mut signers = BTreeSet::new();
    for (signer, seal) in seals {
        if !committee.contains(*signer) {
            return Err(QbftError::UnknownSigner(*signer));
        }
        if !signers.insert(*signer) {
            return Err(QbftError::DuplicateSigner(*signer));
        }
        crypto
            .verify(*signer, DOMAIN_COMMIT_SEAL, digest.as_bytes(), seal)
            .map_err(|_| QbftError::BadSignature)?;
    }
    if signers.len() < q {
        return Err(QbftError::InsufficientSeals {
            got: signers.len(),
            need: q,
        });
    }
    Ok(())
}
