//! Real key material: one node's secret keys, and the committee's public keys
//! decoded and checked once (every BLS proof of possession verified) so the
//! hot path never re-parses a key.

use crate::CryptoError;
use bft_core::{BlsPop, BlsPublicKey, Committee, Ed25519PublicKey, Member, NodeId};
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::fmt;
use std::sync::Arc;

/// Ciphersuite DST for BLS signatures (min_sig, proof-of-possession scheme,
/// draft-irtf-cfrg-bls-signature §4.2.3).
pub const BLS_SIG_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";
/// Ciphersuite DST for BLS proofs of possession (same section, `PopProve`).
pub const BLS_POP_DST: &[u8] = b"BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_";

/// blake3 `derive_key` contexts for the two 32-byte key-generation inputs.
const ED25519_SEED_CONTEXT: &str = "bftbench 2026-11 ed25519 secret key from (seed, node id) v1";
const BLS_IKM_CONTEXT: &str = "bftbench 2026-11 bls12-381 ikm from (seed, node id) v1";

/// The 32 bytes derived for `(seed, id)` under `context`.
pub(crate) fn derive_32(context: &str, seed: u64, id: NodeId) -> [u8; 32] {
    let mut input = [0u8; 10];
    input[..8].copy_from_slice(&seed.to_le_bytes());
    input[8..].copy_from_slice(&id.0.to_le_bytes());
    blake3::derive_key(context, &input)
}

/// One node's secret keys: Ed25519 for PBFT/QBFT, BLS (min_sig) for HotStuff.
#[derive(Clone)]
pub struct SecretKeys {
    ed25519: SigningKey,
    bls: blst::min_sig::SecretKey,
}

impl SecretKeys {
    /// Deterministic keys for node `id` of the run seeded with `seed`: each
    /// key's 32-byte input is a blake3 `derive_key` of `(seed, id)` under its
    /// own context, so the two keys are independent.
    pub fn from_seed(seed: u64, id: NodeId) -> SecretKeys {
        let ed25519 = SigningKey::from_bytes(&derive_32(ED25519_SEED_CONTEXT, seed, id));
        let ikm = derive_32(BLS_IKM_CONTEXT, seed, id);
        SecretKeys {
            ed25519,
            bls: bls_key_from_ikm(&ikm),
        }
    }

    /// This node's public identity: both public keys and the BLS proof of
    /// possession (the key's signature over its own compressed bytes under
    /// [`BLS_POP_DST`]).
    pub fn member(&self, id: NodeId) -> Member {
        let bls_pk = self.bls.sk_to_pk().compress();
        let pop = self.bls.sign(&bls_pk, BLS_POP_DST, &[]).compress();
        Member {
            id,
            ed25519: Ed25519PublicKey(self.ed25519.verifying_key().to_bytes()),
            bls: BlsPublicKey(bls_pk),
            bls_pop: BlsPop(pop),
        }
    }

    /// What this node's HTTP ingress signs the requests it takes in with:
    /// the node's own Ed25519 key (replicas verify ingress clients against
    /// the member's key, see [`crate::ClientKeys::with_ingress`]). The
    /// client-request domain keeps these signatures apart from the
    /// protocol's.
    pub fn ingress_signer(&self) -> crate::ClientSigner {
        crate::ClientSigner::Real(self.ed25519.clone())
    }

    /// Ed25519 secret seed (32 bytes) followed by the BLS scalar (32 bytes,
    /// big-endian), for key files.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.ed25519.to_bytes());
        out[32..].copy_from_slice(&self.bls.to_bytes());
        out
    }

    /// Parses [`SecretKeys::to_bytes`]; rejects a wrong length and a BLS
    /// scalar that is zero or not below the group order.
    pub fn from_bytes(bytes: &[u8]) -> Result<SecretKeys, CryptoError> {
        let bytes = <&[u8; 64]>::try_from(bytes)
            .map_err(|_| CryptoError::SecretKeyLength { len: bytes.len() })?;
        let (ed, bls) = bytes.split_at(32);
        let ed = <[u8; 32]>::try_from(ed).map_err(|_| CryptoError::MalformedSecretKey)?;
        let bls = blst::min_sig::SecretKey::from_bytes(bls)
            .map_err(|_| CryptoError::MalformedSecretKey)?;
        Ok(SecretKeys {
            ed25519: SigningKey::from_bytes(&ed),
            bls,
        })
    }

    pub(crate) fn ed25519(&self) -> &SigningKey {
        &self.ed25519
    }

    pub(crate) fn bls(&self) -> &blst::min_sig::SecretKey {
        &self.bls
    }
}

/// `KeyGen` of the BLS draft (HKDF over the IKM). blst fails only for an IKM
/// shorter than 32 bytes; ours is a `[u8; 32]`, so the error arm cannot run.
#[allow(clippy::expect_used)]
fn bls_key_from_ikm(ikm: &[u8; 32]) -> blst::min_sig::SecretKey {
    blst::min_sig::SecretKey::key_gen(ikm, &[]).expect("a 32-byte IKM is always accepted")
}

impl fmt::Debug for SecretKeys {
    /// Never prints secret material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKeys")
            .field(
                "ed25519_public",
                &Ed25519PublicKey(self.ed25519.verifying_key().to_bytes()),
            )
            .finish_non_exhaustive()
    }
}

/// The committee's public keys, decoded and checked. Constructing one is the
/// only way to get keys into `RealCrypto`, so every key a verification uses
/// has passed these checks.
pub struct VerifiedKeys {
    ed25519: Vec<VerifyingKey>,
    bls: Vec<blst::min_sig::PublicKey>,
}

impl VerifiedKeys {
    /// Decodes and checks every member's keys.
    ///
    /// Safety rules enforced here, once, at committee setup:
    /// - **Ed25519 keys are canonical points of prime order**: a small-order
    ///   (weak) key or one with a torsion component is rejected
    ///   (`BadEd25519Key`), so single and batch verification agree on every
    ///   honest key.
    /// - **BLS keys decode, are in the G2 subgroup and are not the identity**
    ///   (`BadBlsKey`).
    /// - **Every BLS key has a valid proof of possession** (`PopVerify`: the
    ///   PoP is a signature over the key's compressed bytes under
    ///   [`BLS_POP_DST`]), otherwise `BadProofOfPossession(id)`. This is what
    ///   makes aggregating keys safe against rogue-key attacks, which is why
    ///   aggregate verification can skip per-key checks.
    pub fn new(committee: &Committee) -> Result<Arc<VerifiedKeys>, CryptoError> {
        let mut ed25519 = Vec::with_capacity(committee.n());
        let mut bls = Vec::with_capacity(committee.n());
        for m in committee.members() {
            ed25519.push(checked_ed25519_key(m)?);
            bls.push(checked_bls_key(m)?);
        }
        Ok(Arc::new(VerifiedKeys { ed25519, bls }))
    }

    pub fn n(&self) -> usize {
        self.ed25519.len()
    }

    pub(crate) fn ed25519(&self, id: NodeId) -> Option<&VerifyingKey> {
        self.ed25519.get(id.index())
    }

    pub(crate) fn bls(&self, id: NodeId) -> Option<&blst::min_sig::PublicKey> {
        self.bls.get(id.index())
    }
}

impl fmt::Debug for VerifiedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedKeys")
            .field("n", &self.n())
            .finish()
    }
}

fn checked_ed25519_key(m: &Member) -> Result<VerifyingKey, CryptoError> {
    let key = VerifyingKey::from_bytes(m.ed25519.as_bytes())
        .map_err(|_| CryptoError::BadEd25519Key(m.id))?;
    if key.is_weak() || !key.to_edwards().is_torsion_free() {
        return Err(CryptoError::BadEd25519Key(m.id));
    }
    Ok(key)
}

fn checked_bls_key(m: &Member) -> Result<blst::min_sig::PublicKey, CryptoError> {
    let key = blst::min_sig::PublicKey::key_validate(m.bls.as_bytes())
        .map_err(|_| CryptoError::BadBlsKey(m.id))?;
    let pop = blst::min_sig::Signature::from_bytes(m.bls_pop.as_bytes())
        .map_err(|_| CryptoError::BadProofOfPossession(m.id))?;
    // sig_groupcheck = true: the PoP comes from a file or a peer.
    // pk_validate = false: key_validate above already did it.
    let verdict = pop.verify(true, m.bls.as_bytes(), BLS_POP_DST, &[], &key, false);
    if verdict != blst::BLST_ERROR::BLST_SUCCESS {
        return Err(CryptoError::BadProofOfPossession(m.id));
    }
    Ok(key)
}
