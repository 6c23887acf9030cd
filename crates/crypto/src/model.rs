//! Model crypto for large simulations: no curve math, but still a real check.
//!
//! Each node has two 32-byte model secrets derived from `(seed, id)`. A
//! "signature" is a keyed mix (see `tag_into`) of a fast hash of the domain
//! and message (`message_digest`) under the signer's secret, stretched to the real size (64 bytes for
//! Ed25519, 48 for a BLS partial), so forged, mutated,
//! replayed-under-another-domain or wrong-signer signatures are rejected
//! exactly as with real crypto, and the wire carries exactly as many bytes. An aggregate is the XOR of its partial
//! tags plus the signer bitmap; verifying it recomputes the XOR of the signers'
//! expected tags (one keyed hash per signer, linear in the number of signers
//! unlike the real one-pairing check; the cluster memoises the last few
//! results because every node verifies the same QC).
//!
//! Trust assumption: every `ModelCrypto` of a cluster holds all nodes' model
//! secrets (it must, to verify). A Byzantine node in the simulator is assumed
//! to sign only through its own `Arc<dyn Crypto>` and never to compute another
//! node's tags; adversary code must keep to that.
//!
//! `bls_check` always succeeds: a model tag has no group structure to check.
//! CPU time is charged from the [`CostModel`] exactly as `RealCrypto` charges
//! it, so the simulated latency still reflects crypto.

use crate::cost::{CostModel, CpuMeter};
use crate::keys::derive_32;
use crate::{check_aggregate_shape, signer_bitmap};
use bft_core::mix::{mix64, tail_word};
use bft_core::{
    AggregateSignature, BlsPop, BlsPublicKey, BlsSignature, CoreError, Crypto, CryptoKind, Digest,
    Ed25519PublicKey, Member, NodeId, Signature, SignedItem, SignerBitmap,
};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SIGN_SECRET_CONTEXT: &str = "bftbench 2026-11 model crypto: signature secret v1";
const BLS_SECRET_CONTEXT: &str = "bftbench 2026-11 model crypto: bls secret v1";
const PUBLIC_CONTEXT: &str = "bftbench 2026-11 model crypto: placeholder public keys v1";

/// How many recent (digest, signers) → expected aggregate tags are memoised.
const AGGREGATE_MEMO_CAPACITY: usize = 64;

/// Every node's model secrets for one run, plus the aggregate memo (both
/// shared by a cluster's nodes).
pub(crate) struct ModelSecrets {
    /// The run's seed: clients' model secrets derive from it.
    seed: u64,
    sign: Vec<[u8; 32]>,
    bls: Vec<[u8; 32]>,
    /// Expected aggregate tags recently computed by any node of the cluster:
    /// all n nodes verify the same QC, and recomputing it costs one keyed
    /// hash per signer. A pure function's memo: a hit and a miss give the
    /// same verdict, so it changes wall time only, never behaviour. Bounded
    /// (oldest evicted first).
    recent_aggregates: Mutex<VecDeque<AggregateMemo>>,
}

/// The expected aggregate tag of `signers` over `digest`.
struct AggregateMemo {
    digest: Digest,
    signers: SignerBitmap,
    expected: BlsSignature,
}

impl ModelSecrets {
    pub(crate) fn new(n: usize, seed: u64) -> ModelSecrets {
        let ids = (0..n).map(|i| NodeId(u16::try_from(i).unwrap_or(u16::MAX)));
        ModelSecrets {
            seed,
            sign: ids
                .clone()
                .map(|id| derive_32(SIGN_SECRET_CONTEXT, seed, id))
                .collect(),
            bls: ids
                .map(|id| derive_32(BLS_SECRET_CONTEXT, seed, id))
                .collect(),
            recent_aggregates: Mutex::new(VecDeque::with_capacity(AGGREGATE_MEMO_CAPACITY)),
        }
    }

    /// XOR of the signers' expected partial tags over `digest`, memoised.
    fn expected_aggregate(
        &self,
        digest: &Digest,
        signers: &SignerBitmap,
    ) -> Result<BlsSignature, CoreError> {
        if let Some(expected) = self.recall(digest, signers) {
            return Ok(expected);
        }
        let mut expected = BlsSignature::ZERO;
        for id in signers.iter() {
            let secret = self
                .bls
                .get(id.index())
                .ok_or(CoreError::UnknownSigner(id))?;
            xor_into(&mut expected, &bls_tag(secret, digest));
        }
        self.remember(AggregateMemo {
            digest: *digest,
            signers: signers.clone(),
            expected,
        });
        Ok(expected)
    }

    fn recall(&self, digest: &Digest, signers: &SignerBitmap) -> Option<BlsSignature> {
        // A poisoned lock only means another thread panicked mid-insert;
        // skipping the memo is always correct.
        let memo = self.recent_aggregates.lock().ok()?;
        memo.iter()
            .rev()
            .find(|m| m.digest == *digest && m.signers == *signers)
            .map(|m| m.expected)
    }

    fn remember(&self, entry: AggregateMemo) {
        if let Ok(mut memo) = self.recent_aggregates.lock() {
            if memo.len() >= AGGREGATE_MEMO_CAPACITY {
                memo.pop_front();
            }
            memo.push_back(entry);
        }
    }
}

/// Placeholder public identity of the right sizes, hash-derived from
/// `(seed, id)`: no curve math, so n = 256 sets up in milliseconds.
pub(crate) fn model_member(seed: u64, id: NodeId) -> Member {
    let mut bytes = [0u8; 32 + 96 + 48];
    let mut input = [0u8; 10];
    input[..8].copy_from_slice(&seed.to_le_bytes());
    input[8..].copy_from_slice(&id.0.to_le_bytes());
    blake3::Hasher::new_derive_key(PUBLIC_CONTEXT)
        .update(&input)
        .finalize_xof()
        .fill(&mut bytes);
    let (ed, rest) = bytes.split_at(32);
    let (bls, pop) = rest.split_at(96);
    Member {
        id,
        ed25519: Ed25519PublicKey::from_slice(ed).unwrap_or_default(),
        bls: BlsPublicKey::from_slice(bls).unwrap_or_default(),
        bls_pop: BlsPop::from_slice(pop).unwrap_or_default(),
    }
}

/// `out` = a keyed mix of `digest` under `secret`, widened to `out.len()`
/// bytes. Two 128-bit multiply-fold products of the digest's words XORed
/// with the secret's give a 128-bit core (lo, hi); 8-byte lane j of the tag
/// is splitmix64's finaliser of `lo ^ rotl(hi, 8j+1)` plus a per-lane constant.
///
/// Not a cryptographic MAC, and it need not be: a mutated,
/// replayed-under-another-domain or swapped-sender message has an unrelated
/// digest (`message_digest`), and the simulator's
/// adversaries sign only through their own `Crypto` (module doc). What the
/// tag must do is bind (signer, digest) so that every wrong pair is
/// rejected; two distinct pairs agree on the 128-bit core with negligible
/// probability. It runs for every simulated signature and verification, so
/// it is a handful of multiplications, where a keyed BLAKE3 compression was
/// a quarter of the simulator's time (callgrind, n = 64).
fn tag_into(secret: &[u8; 32], digest: &Digest, out: &mut [u8]) {
    let k = words(secret);
    let d = words(digest.as_bytes());
    let lo = fold_mul(d[0] ^ k[0], d[1] ^ k[1]) ^ fold_mul(d[2] ^ k[2], d[3] ^ k[3]);
    let hi = fold_mul(d[0] ^ k[2] ^ LANE_SALT[0], d[3] ^ k[1] ^ LANE_SALT[1])
        ^ fold_mul(d[1] ^ k[3] ^ LANE_SALT[2], d[2] ^ k[0] ^ LANE_SALT[3]);
    for (lane, chunk) in out.chunks_mut(8).enumerate() {
        let spread = (lane as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let word = mix64((lo ^ hi.rotate_left(8 * lane as u32 + 1)).wrapping_add(spread));
        let bytes = word.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// What a model signature covers: a fast 256-bit hash of the domain and the
/// message (four independent multiply-rotate lanes over 8-byte words, each
/// seeded differently, with both lengths folded in so part boundaries
/// count). The real `Crypto` hashes with BLAKE3 inside Ed25519/BLS; this
/// model only needs distinct (domain, message) pairs to get distinct
/// digests, which for the simulator's own inputs they do, and it runs for
/// every simulated signature (a BLAKE3 here was 7% of the simulator's
/// instructions, callgrind at n = 64).
pub(crate) fn message_digest(domain: &str, msg: &[u8]) -> Digest {
    let mut lanes = LANE_SALT;
    absorb(&mut lanes, domain.as_bytes());
    absorb(&mut lanes, msg);
    let mut out = Digest::default();
    for (lane, chunk) in lanes.iter().zip(out.0.chunks_exact_mut(8)) {
        chunk.copy_from_slice(&mix64(*lane).to_le_bytes());
    }
    out
}

/// Folds `bytes` (then its length) into every lane.
fn absorb(lanes: &mut [u64; 4], bytes: &[u8]) {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        fold_word(lanes, u64::from_le_bytes(b));
    }
    fold_word(lanes, tail_word(chunks.remainder()));
    fold_word(lanes, bytes.len() as u64);
}

fn fold_word(lanes: &mut [u64; 4], w: u64) {
    for (lane, k) in lanes.iter_mut().zip(LANE_MULTIPLIERS) {
        *lane = (*lane ^ w).wrapping_mul(k).rotate_left(29);
    }
}

/// Odd 64-bit multipliers (murmur3's and splitmix64's finaliser constants).
const LANE_MULTIPLIERS: [u64; 4] = [
    0xff51_afd7_ed55_8ccd,
    0xc4ce_b9fe_1a85_ec53,
    0xbf58_476d_1ce4_e5b9,
    0x94d0_49bb_1331_11eb,
];

/// Odd constants (from the digits of pi) keeping the second product's
/// inputs apart from the first's.
const LANE_SALT: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7345,
    0xa409_3822_299f_31d1,
    0x082e_fa98_ec4e_6c89,
];

fn words(bytes: &[u8; 32]) -> [u64; 4] {
    let mut w = [0u64; 4];
    for (word, chunk) in w.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *word = u64::from_le_bytes(b);
    }
    w
}

/// The 128-bit product of `a` and `b`, high half XOR low half.
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p >> 64) as u64 ^ p as u64
}

pub(crate) fn sign_tag(secret: &[u8; 32], digest: &Digest) -> Signature {
    let mut tag = Signature::ZERO;
    tag_into(secret, digest, &mut tag.0);
    tag
}

fn bls_tag(secret: &[u8; 32], digest: &Digest) -> BlsSignature {
    let mut tag = BlsSignature::ZERO;
    tag_into(secret, digest, &mut tag.0);
    tag
}

fn xor_into(acc: &mut BlsSignature, part: &BlsSignature) {
    for (a, p) in acc.0.iter_mut().zip(part.0.iter()) {
        *a ^= p;
    }
}

/// One node's model crypto.
pub struct ModelCrypto {
    me: NodeId,
    secrets: Arc<ModelSecrets>,
    cost: CostModel,
    cpu: CpuMeter,
}

impl ModelCrypto {
    /// Model crypto for node `id` of an `n`-node run seeded with `seed`.
    /// Derives all `n` nodes' model secrets; `cluster()` shares one set
    /// between all nodes instead.
    pub fn new(n: usize, id: NodeId, seed: u64, cost: CostModel) -> ModelCrypto {
        ModelCrypto::with_secrets(Arc::new(ModelSecrets::new(n, seed)), id, cost)
    }

    pub(crate) fn with_secrets(
        secrets: Arc<ModelSecrets>,
        id: NodeId,
        cost: CostModel,
    ) -> ModelCrypto {
        ModelCrypto {
            me: id,
            secrets,
            cost,
            cpu: CpuMeter::default(),
        }
    }

    fn n(&self) -> usize {
        self.secrets.sign.len()
    }

    fn sign_secret(&self, id: NodeId) -> Result<&[u8; 32], CoreError> {
        self.secrets
            .sign
            .get(id.index())
            .ok_or(CoreError::UnknownSigner(id))
    }

    fn bls_secret(&self, id: NodeId) -> Result<&[u8; 32], CoreError> {
        self.secrets
            .bls
            .get(id.index())
            .ok_or(CoreError::UnknownSigner(id))
    }

    /// Own secret; a node outside `0..n` signs with an all-zero secret, which
    /// nobody's verification accepts for a committee member.
    fn own(&self, secret: Result<&[u8; 32], CoreError>) -> [u8; 32] {
        secret.copied().unwrap_or([0u8; 32])
    }
}

impl fmt::Debug for ModelCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelCrypto")
            .field("me", &self.me)
            .field("n", &self.n())
            .finish_non_exhaustive()
    }
}

impl Crypto for ModelCrypto {
    fn kind(&self) -> CryptoKind {
        CryptoKind::Model
    }

    fn me(&self) -> NodeId {
        self.me
    }

    fn sign(&self, domain: &'static str, msg: &[u8]) -> Signature {
        self.cpu.charge(self.cost.sign, 1);
        let secret = self.own(self.sign_secret(self.me));
        sign_tag(&secret, &message_digest(domain, msg))
    }

    fn verify(
        &self,
        signer: NodeId,
        domain: &'static str,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), CoreError> {
        let secret = self.sign_secret(signer)?;
        self.cpu.charge(self.cost.verify, 1);
        if sign_tag(secret, &message_digest(domain, msg)) == *sig {
            Ok(())
        } else {
            Err(CoreError::BadSignature(signer))
        }
    }

    fn verify_client(
        &self,
        client: u32,
        domain: &'static str,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), CoreError> {
        if client >= crate::MAX_SEEDED_CLIENTS {
            return Err(CoreError::UnknownClient(client));
        }
        self.cpu.charge(self.cost.verify, 1);
        crate::clients::model_client_verify(self.secrets.seed, client, domain, msg, sig)
    }

    fn verify_batch(&self, items: &[SignedItem<'_>]) -> Result<(), CoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let secrets = items
            .iter()
            .map(|item| self.sign_secret(item.signer))
            .collect::<Result<Vec<_>, _>>()?;
        self.cpu.charge(self.cost.batch_verify_per_sig, items.len());
        let all_good = items.iter().zip(secrets).all(|(item, secret)| {
            sign_tag(secret, &message_digest(item.domain, item.msg)) == *item.sig
        });
        if all_good {
            Ok(())
        } else {
            Err(CoreError::BadBatch)
        }
    }

    fn bls_sign(&self, domain: &'static str, msg: &[u8]) -> BlsSignature {
        self.cpu.charge(self.cost.bls_sign, 1);
        let secret = self.own(self.bls_secret(self.me));
        bls_tag(&secret, &message_digest(domain, msg))
    }

    fn bls_verify(
        &self,
        signer: NodeId,
        domain: &'static str,
        msg: &[u8],
        sig: &BlsSignature,
    ) -> Result<(), CoreError> {
        let secret = self.bls_secret(signer)?;
        self.cpu.charge(self.cost.bls_verify, 1);
        if bls_tag(secret, &message_digest(domain, msg)) == *sig {
            Ok(())
        } else {
            Err(CoreError::BadSignature(signer))
        }
    }

    /// Always Ok (charged): a model tag has no encoding to get wrong.
    fn bls_check(&self, _sig: &BlsSignature) -> Result<(), CoreError> {
        self.cpu.charge(self.cost.bls_check, 1);
        Ok(())
    }

    /// XOR of the partial tags; same shape rules as the real aggregate.
    fn bls_aggregate(
        &self,
        parts: &[(NodeId, BlsSignature)],
    ) -> Result<AggregateSignature, CoreError> {
        let signers = signer_bitmap(self.n(), parts)?;
        self.cpu
            .charge(self.cost.bls_aggregate_per_sig, parts.len());
        let mut signature = BlsSignature::ZERO;
        for (_, part) in parts {
            xor_into(&mut signature, part);
        }
        Ok(AggregateSignature { signers, signature })
    }

    /// Recomputes the XOR of every claimed signer's expected tag: a bitmap
    /// naming a node that did not sign, or missing one that did, mismatches.
    fn bls_verify_aggregate(
        &self,
        domain: &'static str,
        msg: &[u8],
        agg: &AggregateSignature,
    ) -> Result<(), CoreError> {
        check_aggregate_shape(self.n(), agg)?;
        self.cpu.charge(self.cost.bls_verify_aggregate, 1);
        let digest = message_digest(domain, msg);
        let expected = self.secrets.expected_aggregate(&digest, &agg.signers)?;
        if expected == agg.signature {
            Ok(())
        } else {
            Err(CoreError::BadAggregate)
        }
    }

    fn take_cpu(&self) -> Duration {
        self.cpu.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(byte: u8) -> Digest {
        Digest::of("test", &[&[byte]])
    }

    #[test]
    fn tag_binds_secret_and_digest_in_every_lane() {
        let (s1, s2) = ([1u8; 32], [2u8; 32]);
        let base = sign_tag(&s1, &digest(0));
        let lanes: Vec<&[u8]> = base.0.chunks(8).collect();
        for (i, a) in lanes.iter().enumerate() {
            for b in &lanes[i + 1..] {
                assert_ne!(a, b, "lanes are not copies of each other");
            }
        }
        for other in [sign_tag(&s2, &digest(0)), sign_tag(&s1, &digest(1))] {
            for (a, b) in base.0.chunks(8).zip(other.0.chunks(8)) {
                assert_ne!(a, b, "every lane changes with the secret and the digest");
            }
        }
        let mut flipped = *digest(0).as_bytes();
        for bit in 0..256 {
            flipped[bit / 8] ^= 1 << (bit % 8);
            let tag = sign_tag(&s1, &Digest(flipped));
            assert_ne!(tag, base, "digest bit {bit}");
            flipped[bit / 8] ^= 1 << (bit % 8);
        }
    }

    #[test]
    fn message_digest_separates_domains_messages_and_boundaries() {
        let base = message_digest("a/v1", b"0123456789abcdef-x");
        assert_ne!(base, message_digest("a/v2", b"0123456789abcdef-x"));
        assert_ne!(base, message_digest("a/v1", b"0123456789abcdef-y"));
        assert_ne!(base, message_digest("a/v1", b"0123456789abcdef-x\0"));
        assert_ne!(
            message_digest("ab", b"c"),
            message_digest("a", b"bc"),
            "the domain's length is folded in"
        );
        let mut msg = *b"0123456789abcdef-x";
        for bit in 0..msg.len() * 8 {
            msg[bit / 8] ^= 1 << (bit % 8);
            let d = message_digest("a/v1", &msg);
            for (a, b) in d.0.chunks(8).zip(base.0.chunks(8)) {
                assert_ne!(a, b, "bit {bit} changes every lane");
            }
            msg[bit / 8] ^= 1 << (bit % 8);
        }
    }

    #[test]
    fn bls_tag_is_the_signature_tag_truncated_to_48_bytes() {
        let (s, d) = ([7u8; 32], digest(3));
        assert_eq!(bls_tag(&s, &d).0[..], sign_tag(&s, &d).0[..48]);
    }
}
