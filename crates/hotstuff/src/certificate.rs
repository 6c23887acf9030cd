//! A HotStuff decision's certificate, as the ledger keeps it
//! ([`bft_core::Decision::certificate`]), and its offline check.
//!
//! A committed block's certificate is the QC over it: n − f votes for
//! (view, block) aggregated into one BLS signature with its signer bitmap
//! (`verify_qc`), the QC its child carries as justify. A QC proves that a
//! quorum voted for the block, not the three-chain that committed it: for
//! every block but the ledger's last two, the QCs of the blocks above it in
//! the ledger complete that chain; the last ones were committed by QCs of
//! blocks the ledger does not hold. The QC names the block's hash, which
//! binds its height and parent; the ledger does not hold the block's
//! contents to recompute it, so `slot` and `parent` are checked by the
//! ledger's hash chain. The decision's view is the block's; a QC from
//! another view is refused, and so is a decision without one.

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
        // Every HotStuff commit names its QC: none is a fault.
        return Err(HotStuffError::MalformedCertificate);
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
