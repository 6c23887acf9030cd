//! A PBFT decision's certificate, as the ledger keeps it
//! ([`bft_core::Decision::certificate`]), and its offline check.
//!
//! A replica certifies each slot it executes with what made it execute:
//!
//! - normally, the q COMMITs `<COMMIT, v, n, d, i>` for the slot's view v,
//!   sequence number n and batch digest d (committed-local, §4.3; also the
//!   certificate of a slot taken from a state transfer's committed tail);
//! - at a stable checkpoint reached by state transfer, the q CHECKPOINTs
//!   `<CHECKPOINT, n, s, i>` whose state s is the block itself (§5.3.2);
//! - none for the slots a state transfer brings between the replica's head
//!   and that checkpoint: the checkpoint's hash chain certifies them.
//!
//! q is PBFT's quorum, ⌈(n+f+1)/2⌉ ([`crate::rules::quorum`]). A COMMIT
//! names the batch digest, not the block: the check recomputes the block
//! as `block_hash(parent, n, d)`, so the certificate also binds the
//! decision's parent.

use crate::error::PbftError;
use crate::messages::{Vote, checkpoint_payload, domain, vote_payload};
use crate::rules::{block_hash, quorum};
use bft_core::{
    Certified, Committee, Crypto, Decision, Digest, NodeId, Signature, SignedItem, codec,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerCertificate {
    /// q COMMITs for (view, slot, `digest`), one signature per replica.
    Commits {
        digest: Digest,
        commits: Vec<(NodeId, Signature)>,
    },
    /// q CHECKPOINTs for (slot, block), one signature per replica.
    Checkpoint(Vec<(NodeId, Signature)>),
}

impl LedgerCertificate {
    /// The certificate of a slot committed with `commits` (already
    /// checked: q of them match the slot's view and `digest`).
    pub fn of_commits<'a>(digest: Digest, commits: impl Iterator<Item = &'a Vote>) -> Self {
        LedgerCertificate::Commits {
            digest,
            commits: commits.map(|c| (c.replica, c.sig)).collect(),
        }
    }

    /// Encoded for [`Decision::certificate`].
    pub fn encode(&self) -> Bytes {
        codec::encode(self, usize::MAX).unwrap_or_default()
    }
}

/// [`bft_core::Protocol::check_certificate`] for PBFT (see the module
/// documentation).
pub fn check_certificate(
    d: &Decision,
    committee: &Committee,
    crypto: &dyn Crypto,
) -> Result<Certified, PbftError> {
    if d.certificate.is_empty() {
        return Ok(Certified::ByChain);
    }
    let limit = 64 + committee.n() * 96;
    let cert: LedgerCertificate = codec::decode(&d.certificate, limit)
        .map_err(|_| PbftError::BadCertificate("does not decode"))?;
    let (signatures, domain, payloads): (&[(NodeId, Signature)], _, Vec<Vec<u8>>) = match &cert {
        LedgerCertificate::Commits { digest, commits } => {
            if block_hash(&d.parent, d.slot, digest) != d.block {
                return Err(PbftError::BadCertificate(
                    "the committed batch does not hash to the block",
                ));
            }
            let payloads = commits
                .iter()
                .map(|(r, _)| vote_payload(d.view, d.slot, digest, *r))
                .collect();
            (commits, domain::COMMIT, payloads)
        }
        LedgerCertificate::Checkpoint(proof) => {
            let payloads = proof
                .iter()
                .map(|(r, _)| checkpoint_payload(d.slot, &d.block, *r))
                .collect();
            (proof, domain::CHECKPOINT, payloads)
        }
    };
    check_quorum_signed(committee, crypto, signatures, domain, &payloads)?;
    Ok(Certified::Quorum)
}

/// q signatures from distinct members of `committee`, each over its
/// `payloads` entry under `domain`.
fn check_quorum_signed(
    committee: &Committee,
    crypto: &dyn Crypto,
    signatures: &[(NodeId, Signature)],
    domain: &'static str,
    payloads: &[Vec<u8>],
) -> Result<(), PbftError> {
    let mut signers = BTreeSet::new();
    for (signer, _) in signatures {
        if !committee.contains(*signer) || !signers.insert(*signer) {
            return Err(PbftError::BadCertificate("unknown or duplicate signer"));
        }
    }
    if signers.len() < quorum(committee) {
        return Err(PbftError::BadCertificate(
            "fewer than a quorum of signatures",
        ));
    }
    let items: Vec<SignedItem<'_>> = signatures
        .iter()
        .zip(payloads)
        .map(|((signer, sig), msg)| SignedItem {
            signer: *signer,
            domain,
            msg,
            sig,
        })
        .collect();
    crypto
        .verify_batch(&items)
        .map_err(|_| PbftError::BadSignature {
            what: "certificate",
        })
}
