//! A HotStuff decision's certificate, as the ledger keeps it
//! ([`bft_core::Decision::certificate`]), and its offline check.
//!
//! A committed block's certificate is the QC over it: n − f votes for
//! (view, block) aggregated into one BLS signature with its signer bitmap
//! (`verify_qc`), the QC its child carries as justify. A QC proves that a
//! quorum voted for the block; the block is committed because the chain
//! above it in the ledger (and the two blocks its commit rule needed above
//! the last committed one) is certified the same way. The decision's view
//! is the block's; a QC from another view than the block's is refused.

use crate::error::HotStuffError;
use crate::rules::verify_qc;
use crate::types::QuorumCert;
use bft_core::{Certified, Committee, Crypto, Decision, codec};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerCertificate(pub QuorumCert);

impl LedgerCertificate {
    /// Encoded for [`Decision::certificate`].
    pub fn encode(&self) -> Bytes {
        codec::encode(self, usize::MAX).unwrap_or_default()
    }
}

/// [`bft_core::Protocol::check_certificate`] for HotStuff (see the module
/// documentation).
pub fn check_certificate(
    d: &Decision,
    committee: &Committee,
    crypto: &dyn Crypto,
) -> Result<Certified, HotStuffError> {
    if d.certificate.is_empty() {
        return Ok(Certified::ByChain);
    }
    let limit = 256 + committee.n().div_ceil(8);
    let LedgerCertificate(qc) =
        codec::decode(&d.certificate, limit).map_err(|_| HotStuffError::MalformedCertificate)?;
    if qc.block != d.block || qc.view.0 != d.view {
        return Err(HotStuffError::CertificateMismatch);
    }
    verify_qc(committee, crypto, &qc)?;
    Ok(Certified::Quorum)
}
