//! bft-crypto: the two implementations of `bft_core::Crypto`.
//!
//! - [`RealCrypto`] — Ed25519 (ed25519-dalek, single and batch verification)
//!   for PBFT/QBFT, BLS12-381 (blst, min_sig: 48-byte signatures) for
//!   HotStuff, with proofs of possession checked at setup ([`VerifiedKeys`]).
//! - [`ModelCrypto`] — keyed-hash tags of the same sizes; no curve math, so the
//!   simulator can run n = 256 at a million messages a second, yet forged or
//!   mutated signatures are still rejected.
//!
//! Both charge virtual CPU time from one [`CostModel`] (never measured time),
//! so a simulator run is deterministic whichever kind it uses.
//! [`cluster`] builds a whole committee with each node's crypto from a seed.
//!
//! Signing rules shared by both kinds:
//! - every signature covers `Digest::of(domain, &[msg])`, so a signature for
//!   one message kind never verifies as another;
//! - an aggregate names its signers in a bitmap that must fit the committee
//!   and be non-empty; `bls_aggregate` refuses unknown and duplicate signers;
//! - charges happen after those shape checks, identically for both kinds.

mod clients;
mod cluster;
mod cost;
mod keys;
mod model;
mod real;

pub use clients::{ClientKeys, ClientSigner, MAX_SEEDED_CLIENTS};
pub use cluster::{Cluster, cluster, fresh_aggregates};
pub use cost::CostModel;
pub use keys::{BLS_POP_DST, BLS_SIG_DST, SecretKeys, VerifiedKeys};
pub use model::ModelCrypto;
pub use real::RealCrypto;

use bft_core::{AggregateSignature, BlsSignature, CoreError, NodeId, SignerBitmap};

/// Errors setting crypto up (keys, committee). Signing and verification
/// report `bft_core::CoreError` through the `Crypto` trait.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("Ed25519 public key of node {0} is malformed, weak or not of prime order")]
    BadEd25519Key(NodeId),
    #[error("BLS public key of node {0} is malformed, the identity or outside G2")]
    BadBlsKey(NodeId),
    #[error("BLS key of node {0} has no valid proof of possession")]
    BadProofOfPossession(NodeId),
    #[error("secret key file holds {len} bytes; expected 64")]
    SecretKeyLength { len: usize },
    #[error("secret key bytes are not a valid key (BLS scalar zero or out of range)")]
    MalformedSecretKey,
    #[error("node {0} is not in the committee")]
    NotAMember(NodeId),
    #[error("secret keys do not match the committee's public keys for node {0}")]
    KeyMismatch(NodeId),
    #[error("clients[{0}].ed25519 is not a valid Ed25519 public key")]
    BadClientKey(usize),
    #[error("nodes[{0}].ed25519 is not a valid Ed25519 public key")]
    BadNodeKey(usize),
    #[error("committee: {0}")]
    Committee(#[from] CoreError),
}

/// Shape rule for `bls_aggregate`: at least one part, every signer in
/// `0..n`, no signer twice. Returns the signers' bitmap.
fn signer_bitmap(n: usize, parts: &[(NodeId, BlsSignature)]) -> Result<SignerBitmap, CoreError> {
    if parts.is_empty() {
        return Err(CoreError::EmptyAggregate);
    }
    let mut signers = SignerBitmap::new(n);
    for &(id, _) in parts {
        if id.index() >= n {
            return Err(CoreError::UnknownSigner(id));
        }
        if !signers.insert(id) {
            return Err(CoreError::DuplicateSigner(id));
        }
    }
    Ok(signers)
}

/// Shape rule for `bls_verify_aggregate`: the bitmap has exactly `⌈n/8⌉`
/// bytes, no bit at or beyond `n`, and at least one signer.
fn check_aggregate_shape(n: usize, agg: &AggregateSignature) -> Result<(), CoreError> {
    if !agg.signers.fits(n) {
        return Err(CoreError::BitmapMismatch);
    }
    if agg.signers.count() == 0 {
        return Err(CoreError::EmptyAggregate);
    }
    Ok(())
}
