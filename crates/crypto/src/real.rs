//! Real signatures: Ed25519 (ed25519-dalek) for PBFT/QBFT and BLS12-381
//! (blst, min_sig: 48-byte signatures in G1, 96-byte keys in G2) for HotStuff.
//!
//! What is signed is always the 32-byte domain-separated digest
//! `Digest::of(domain, &[msg])`; Ed25519 signs those bytes, BLS hashes them to
//! G1 under [`BLS_SIG_DST`]. A signature for one message kind therefore never
//! verifies as another.
//!
//! CPU accounting: every operation charges its [`CostModel`] figure, not the
//! time it really took, so simulator runs with real crypto are deterministic.
//! Charges are made once an input has passed the structural checks (known
//! signer, bitmap that fits, non-empty) — the same rule `ModelCrypto` follows,
//! so both kinds charge identically for identical calls.

use crate::clients::ClientKeys;
use crate::cost::{CostModel, CpuMeter};
use crate::keys::{BLS_SIG_DST, SecretKeys, VerifiedKeys};
use crate::{CryptoError, check_aggregate_shape, signer_bitmap};
use bft_core::{
    AggregateSignature, BlsSignature, CoreError, Crypto, CryptoKind, Digest, NodeId, Signature,
    SignedItem, SignerBitmap,
};
use blst::BLST_ERROR;
use blst::min_sig as bls;
use ed25519_dalek::Signer;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One node's real crypto: its secret keys plus the committee's checked keys.
pub struct RealCrypto {
    me: NodeId,
    /// None for a verifier ([`RealCrypto::verifier`]).
    secret: Option<SecretKeys>,
    keys: Arc<VerifiedKeys>,
    /// The clients' public keys (none until [`RealCrypto::with_clients`]).
    clients: Arc<ClientKeys>,
    cost: CostModel,
    cpu: CpuMeter,
    /// The last aggregate verification's signers and the sum of their keys:
    /// consecutive QCs are usually signed by the same quorum, and summing
    /// n−f G2 keys costs about a third of the pairing check at n = 256.
    /// Wall time only; the verdict is the same on a hit or a miss.
    last_signer_key: Mutex<Option<(SignerBitmap, bls::PublicKey)>>,
}

impl RealCrypto {
    /// Fails with `NotAMember` if `id` is outside the committee and with
    /// `KeyMismatch` if `secret` is not the secret of the committee's keys
    /// for `id` (a node that could not produce verifiable signatures).
    pub fn new(
        keys: Arc<VerifiedKeys>,
        id: NodeId,
        secret: SecretKeys,
        cost: CostModel,
    ) -> Result<RealCrypto, CryptoError> {
        let (Some(ed), Some(bls)) = (keys.ed25519(id), keys.bls(id)) else {
            return Err(CryptoError::NotAMember(id));
        };
        if secret.ed25519().verifying_key() != *ed || secret.bls().sk_to_pk() != *bls {
            return Err(CryptoError::KeyMismatch(id));
        }
        Ok(RealCrypto {
            me: id,
            secret: Some(secret),
            keys,
            clients: Arc::new(ClientKeys::Listed {
                clients: Vec::new(),
                ingress: Vec::new(),
            }),
            cost,
            cpu: CpuMeter::default(),
            last_signer_key: Mutex::new(None),
        })
    }

    /// Crypto that only verifies, with the committee's public keys and no
    /// secret: for re-checking certificates offline (`bftbench ledger
    /// verify --cluster`). It belongs to no member (`me()` is an id outside
    /// the committee), and what it signs is all zeros, which no
    /// verification accepts (strict Ed25519 refuses a small-order R; the
    /// zero bytes are no compressed BLS point).
    pub fn verifier(keys: Arc<VerifiedKeys>, cost: CostModel) -> RealCrypto {
        RealCrypto {
            me: NodeId(u16::MAX),
            secret: None,
            keys,
            clients: Arc::new(ClientKeys::Listed {
                clients: Vec::new(),
                ingress: Vec::new(),
            }),
            cost,
            cpu: CpuMeter::default(),
            last_signer_key: Mutex::new(None),
        }
    }

    /// The client keys requests are verified against.
    pub fn with_clients(mut self, clients: Arc<ClientKeys>) -> RealCrypto {
        self.clients = clients;
        self
    }

    fn ed25519_key(&self, signer: NodeId) -> Result<&ed25519_dalek::VerifyingKey, CoreError> {
        self.keys
            .ed25519(signer)
            .ok_or(CoreError::UnknownSigner(signer))
    }

    fn bls_key(&self, signer: NodeId) -> Result<&bls::PublicKey, CoreError> {
        self.keys
            .bls(signer)
            .ok_or(CoreError::UnknownSigner(signer))
    }

    /// The cached key sum if the last verification had the same signers. A
    /// poisoned lock just means no cache.
    fn cached_signers_key(&self, signers: &SignerBitmap) -> Option<bls::PublicKey> {
        let last = self.last_signer_key.lock().ok()?;
        match last.as_ref() {
            Some((bitmap, key)) if bitmap == signers => Some(*key),
            _ => None,
        }
    }

    /// The sum of the signers' BLS keys (no per-key validation: every key
    /// passed its proof of possession in `VerifiedKeys::new`).
    fn signers_key(&self, signers: &SignerBitmap) -> Result<bls::PublicKey, CoreError> {
        if let Some(key) = self.cached_signers_key(signers) {
            return Ok(key);
        }
        let keys = signers
            .iter()
            .map(|id| self.bls_key(id))
            .collect::<Result<Vec<_>, _>>()?;
        let sum = bls::AggregatePublicKey::aggregate(&keys, false)
            .map_err(|_| CoreError::BadAggregate)?
            .to_public_key();
        if let Ok(mut last) = self.last_signer_key.lock() {
            *last = Some((signers.clone(), sum));
        }
        Ok(sum)
    }
}

impl fmt::Debug for RealCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RealCrypto")
            .field("me", &self.me)
            .field("n", &self.keys.n())
            .finish_non_exhaustive()
    }
}

/// Decodes a compressed G1 point (on-curve check only, no subgroup check).
fn decode_bls(sig: &BlsSignature) -> Result<bls::Signature, BLST_ERROR> {
    bls::Signature::from_bytes(sig.as_bytes())
}

impl Crypto for RealCrypto {
    fn kind(&self) -> CryptoKind {
        CryptoKind::Real
    }

    fn me(&self) -> NodeId {
        self.me
    }

    fn sign(&self, domain: &'static str, msg: &[u8]) -> Signature {
        self.cpu.charge(self.cost.sign, 1);
        let digest = Digest::of(domain, &[msg]);
        match &self.secret {
            Some(secret) => Signature(secret.ed25519().sign(digest.as_bytes()).to_bytes()),
            None => Signature([0; 64]),
        }
    }

    /// Rule: Ed25519 verification is *strict* (RFC 8032 plus rejection of a
    /// non-canonical `s` and of a small-order `R`), so a signature has one
    /// valid encoding and a signer cannot make one that some nodes accept
    /// and others reject.
    fn verify(
        &self,
        signer: NodeId,
        domain: &'static str,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), CoreError> {
        let key = self.ed25519_key(signer)?;
        self.cpu.charge(self.cost.verify, 1);
        let digest = Digest::of(domain, &[msg]);
        key.verify_strict(
            digest.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&sig.0),
        )
        .map_err(|_| CoreError::BadSignature(signer))
    }

    fn verify_client(
        &self,
        client: u32,
        domain: &'static str,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), CoreError> {
        let key = self.clients.key(client)?;
        self.cpu.charge(self.cost.verify, 1);
        crate::clients::verify_with(&key, client, domain, msg, sig)
    }

    /// Ed25519 batch verification (random linear combination, one
    /// multiscalar multiplication). Unknown signers are rejected before any
    /// math. On `BadBatch` the caller re-verifies one by one.
    ///
    /// Known gap: the batch equation is cofactorless like `verify_strict`,
    /// but a *Byzantine signer* can craft an `R` with a torsion component
    /// that passes a batch with probability ≤ 1/8 while failing strict
    /// single verification. Honest signatures are unaffected, and keys with
    /// torsion are refused at setup.
    fn verify_batch(&self, items: &[SignedItem<'_>]) -> Result<(), CoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let keys = items
            .iter()
            .map(|item| self.ed25519_key(item.signer).copied())
            .collect::<Result<Vec<_>, _>>()?;
        self.cpu.charge(self.cost.batch_verify_per_sig, items.len());
        let digests: Vec<Digest> = items
            .iter()
            .map(|item| Digest::of(item.domain, &[item.msg]))
            .collect();
        let messages: Vec<&[u8]> = digests.iter().map(|d| d.as_bytes().as_slice()).collect();
        let signatures: Vec<ed25519_dalek::Signature> = items
            .iter()
            .map(|item| ed25519_dalek::Signature::from_bytes(&item.sig.0))
            .collect();
        ed25519_dalek::verify_batch(&messages, &signatures, &keys).map_err(|_| CoreError::BadBatch)
    }

    fn bls_sign(&self, domain: &'static str, msg: &[u8]) -> BlsSignature {
        self.cpu.charge(self.cost.bls_sign, 1);
        let digest = Digest::of(domain, &[msg]);
        match &self.secret {
            Some(secret) => BlsSignature(
                secret
                    .bls()
                    .sign(digest.as_bytes(), BLS_SIG_DST, &[])
                    .compress(),
            ),
            None => BlsSignature([0; 48]),
        }
    }

    /// Rule: a single BLS signature is group-checked before the pairing
    /// (it comes from a peer); the key was checked at setup.
    fn bls_verify(
        &self,
        signer: NodeId,
        domain: &'static str,
        msg: &[u8],
        sig: &BlsSignature,
    ) -> Result<(), CoreError> {
        let key = self.bls_key(signer)?;
        self.cpu.charge(self.cost.bls_verify, 1);
        let sig = decode_bls(sig).map_err(|_| CoreError::BadSignature(signer))?;
        let digest = Digest::of(domain, &[msg]);
        match sig.verify(true, digest.as_bytes(), BLS_SIG_DST, &[], key, false) {
            BLST_ERROR::BLST_SUCCESS => Ok(()),
            _ => Err(CoreError::BadSignature(signer)),
        }
    }

    /// Decodes, checks the point is in the G1 subgroup and is not the
    /// identity. No pairing.
    fn bls_check(&self, sig: &BlsSignature) -> Result<(), CoreError> {
        self.cpu.charge(self.cost.bls_check, 1);
        let sig = decode_bls(sig).map_err(|_| CoreError::MalformedSignature)?;
        sig.validate(true)
            .map_err(|_| CoreError::MalformedSignature)
    }

    /// Adds the partial signatures (G1 point additions). Does not verify:
    /// the caller `bls_check`s each part first and whoever receives the
    /// aggregate verifies it.
    fn bls_aggregate(
        &self,
        parts: &[(NodeId, BlsSignature)],
    ) -> Result<AggregateSignature, CoreError> {
        let signers = signer_bitmap(self.keys.n(), parts)?;
        self.cpu
            .charge(self.cost.bls_aggregate_per_sig, parts.len());
        let decoded = parts
            .iter()
            .map(|(_, sig)| decode_bls(sig).map_err(|_| CoreError::MalformedSignature))
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&bls::Signature> = decoded.iter().collect();
        let sum = bls::AggregateSignature::aggregate(&refs, false)
            .map_err(|_| CoreError::MalformedSignature)?;
        Ok(AggregateSignature {
            signers,
            signature: BlsSignature(sum.to_signature().compress()),
        })
    }

    /// Rule: the aggregate is checked against the sum of the signers' keys
    /// with ONE pairing check (`FastAggregateVerify`). Summing keys is safe
    /// only because every key's proof of possession was verified in
    /// `VerifiedKeys::new`. The aggregate point is group-checked (it comes
    /// from a peer).
    fn bls_verify_aggregate(
        &self,
        domain: &'static str,
        msg: &[u8],
        agg: &AggregateSignature,
    ) -> Result<(), CoreError> {
        check_aggregate_shape(self.keys.n(), agg)?;
        self.cpu.charge(self.cost.bls_verify_aggregate, 1);
        let key = self.signers_key(&agg.signers)?;
        let sig = decode_bls(&agg.signature).map_err(|_| CoreError::BadAggregate)?;
        let digest = Digest::of(domain, &[msg]);
        match sig.fast_aggregate_verify_pre_aggregated(true, digest.as_bytes(), BLS_SIG_DST, &key) {
            BLST_ERROR::BLST_SUCCESS => Ok(()),
            _ => Err(CoreError::BadAggregate),
        }
    }

    fn take_cpu(&self) -> Duration {
        self.cpu.take()
    }
}
