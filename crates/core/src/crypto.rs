//! The crypto interface the protocols sign and verify with. Synchronous by
//! design: a protocol handler calls it inline. Implementations live in the
//! crypto crate (Ed25519 + BLS12-381 with blst, and a cost model that does no
//! math but charges virtual CPU time).
//!
//! Every signed message is bound to a domain tag (`"bftbench/pbft/prepare/v1"`),
//! so a signature for one message kind never verifies as another.

use crate::ids::NodeId;
use crate::{CoreError, fixed_bytes};
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::time::Duration;

fixed_bytes!(
    /// An Ed25519 public key.
    Ed25519PublicKey,
    32
);
fixed_bytes!(
    /// An Ed25519 signature (PBFT/QBFT messages).
    Signature,
    64
);
fixed_bytes!(
    /// A BLS12-381 public key, min_sig variant (G2, compressed).
    BlsPublicKey,
    96
);
fixed_bytes!(
    /// A BLS12-381 signature, min_sig variant (G1, compressed): a HotStuff vote
    /// or an aggregate of votes.
    BlsSignature,
    48
);
impl Signature {
    /// The signature with byte 0 flipped: what a `bad-signature` replica
    /// sends (well-formed, never valid).
    pub fn corrupted(self) -> Signature {
        let mut bytes = self.0;
        bytes[0] ^= 0x01;
        Signature(bytes)
    }
}

impl BlsSignature {
    /// The signature with its last byte flipped: what a `bad-signature`
    /// replica sends. The last byte, because a compressed point's flag bits
    /// are in the first, so this stays a plausible encoding.
    pub fn corrupted(self) -> BlsSignature {
        let mut bytes = self.0;
        bytes[Self::LEN - 1] ^= 0x01;
        BlsSignature(bytes)
    }
}

fixed_bytes!(
    /// A BLS proof of possession: the key's signature over itself under the
    /// PoP domain (G1, compressed).
    BlsPop,
    48
);

/// Whether signatures are real math or the simulator's cost model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CryptoKind {
    #[default]
    Real,
    Model,
}

impl CryptoKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CryptoKind::Real => "real",
            CryptoKind::Model => "model",
        }
    }
}

/// Which committee members contributed to an aggregate: bit i = NodeId(i).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct SignerBitmap {
    bits: Vec<u8>,
}

impl SignerBitmap {
    pub fn new(n: usize) -> SignerBitmap {
        SignerBitmap {
            bits: vec![0; n.div_ceil(8)],
        }
    }
    /// Sets `id`'s bit; returns false if it was already set or is out of range.
    pub fn insert(&mut self, id: NodeId) -> bool {
        let (byte, mask) = (id.index() / 8, 1u8 << (id.index() % 8));
        match self.bits.get_mut(byte) {
            Some(b) if *b & mask == 0 => {
                *b |= mask;
                true
            }
            _ => false,
        }
    }
    pub fn contains(&self, id: NodeId) -> bool {
        let (byte, mask) = (id.index() / 8, 1u8 << (id.index() % 8));
        self.bits.get(byte).is_some_and(|b| b & mask != 0)
    }
    pub fn count(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }
    /// Signers in increasing id order.
    pub fn iter(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.bits.iter().enumerate().flat_map(|(byte, b)| {
            (0..8)
                .filter(move |bit| b & (1 << bit) != 0)
                .map(move |bit| NodeId((byte * 8 + bit) as u16))
        })
    }
    /// Bytes of bitmap, `⌈n/8⌉` for a well-formed one.
    pub fn byte_len(&self) -> usize {
        self.bits.len()
    }
    /// True if the bitmap has exactly the length for `n` members and no bit
    /// beyond n−1 is set.
    pub fn fits(&self, n: usize) -> bool {
        self.bits.len() == n.div_ceil(8) && self.iter().all(|id| id.index() < n)
    }
}

impl Debug for SignerBitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A BLS aggregate: one signature plus the set of signers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AggregateSignature {
    pub signers: SignerBitmap,
    pub signature: BlsSignature,
}

/// One Ed25519-signed item for batch verification.
#[derive(Clone, Copy, Debug)]
pub struct SignedItem<'a> {
    pub signer: NodeId,
    pub domain: &'static str,
    pub msg: &'a [u8],
    pub sig: &'a Signature,
}

/// Signing and verification for one node: it holds that node's secret keys
/// and the committee's public keys (checked at construction, including every
/// BLS proof of possession).
pub trait Crypto: Send + Sync + Debug {
    fn kind(&self) -> CryptoKind;

    /// The node whose secret keys this instance holds.
    fn me(&self) -> NodeId;

    /// Ed25519 signature by `me()` over `(domain, msg)`.
    fn sign(&self, domain: &'static str, msg: &[u8]) -> Signature;

    fn verify(
        &self,
        signer: NodeId,
        domain: &'static str,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), CoreError>;

    /// Verifies client `client`'s signature over `(domain, msg)` (a
    /// request's digest, see [`crate::Request`]). Client keys are the
    /// cluster file's `[[clients]]`, or derived from the run's seed in the
    /// simulator and in-process runs. Charged like [`Crypto::verify`].
    fn verify_client(
        &self,
        client: u32,
        domain: &'static str,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), CoreError>;

    /// Verifies all items; on failure the caller re-checks one by one to find
    /// the culprit. Empty input is Ok.
    fn verify_batch(&self, items: &[SignedItem<'_>]) -> Result<(), CoreError>;

    /// BLS signature by `me()` over `(domain, msg)`.
    fn bls_sign(&self, domain: &'static str, msg: &[u8]) -> BlsSignature;

    fn bls_verify(
        &self,
        signer: NodeId,
        domain: &'static str,
        msg: &[u8],
        sig: &BlsSignature,
    ) -> Result<(), CoreError>;

    /// Decodes and subgroup-checks a partial signature: the cheap check a
    /// leader does on each vote before optimistic aggregation.
    fn bls_check(&self, sig: &BlsSignature) -> Result<(), CoreError>;

    /// Aggregates partial signatures into (signature, bitmap). Rejects an
    /// unknown or duplicated signer. Does not verify.
    fn bls_aggregate(
        &self,
        parts: &[(NodeId, BlsSignature)],
    ) -> Result<AggregateSignature, CoreError>;

    /// Verifies an aggregate over one message with one pairing check,
    /// whatever the number of signers. Counting signers against a quorum is
    /// the protocol's job.
    fn bls_verify_aggregate(
        &self,
        domain: &'static str,
        msg: &[u8],
        agg: &AggregateSignature,
    ) -> Result<(), CoreError>;

    /// CPU time this instance charged since the last call: the cost model's
    /// figures (the same for real and model crypto, so simulator runs stay
    /// deterministic). The simulator adds it to the node's virtual clock.
    fn take_cpu(&self) -> Duration;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_insert_count_iter() {
        let mut b = SignerBitmap::new(10);
        assert_eq!(b.byte_len(), 2);
        assert!(b.insert(NodeId(0)));
        assert!(b.insert(NodeId(9)));
        assert!(!b.insert(NodeId(9)), "duplicate");
        assert!(!b.insert(NodeId(16)), "out of range");
        assert_eq!(b.count(), 2);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![NodeId(0), NodeId(9)]);
        assert!(b.fits(10));
        assert!(!b.fits(7), "bit 9 set but n = 7 (and length is 1 byte)");
    }
}
