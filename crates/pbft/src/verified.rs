//! Signature checking: [`SigBatch`] collects the signatures a check relies
//! on and verifies them as one batch, skipping those this replica has
//! already verified ([`Verified`]), so that a certificate it
//! meets again (the same PREPAREs inside every VIEW-CHANGE, and again inside
//! the NEW-VIEW) is not verified again.
//!
//! Rule: a signature is skipped only if this exact (signer, domain, message,
//! signature) passed verification here before. Verification is a pure
//! function of those four, so skipping it changes no verdict: a certificate
//! with a forged or altered signature still fails, because its tuple was
//! never verified. (Without it a NEW-VIEW at n = 64 re-verified about 43 ×
//! 128 × 43 Ed25519 signatures, seconds of CPU per replica, and the view
//! change never completed.)
//!
//! Bounded: at most `capacity` entries, the oldest forgotten first (a
//! forgotten one is simply verified again).

use crate::error::PbftError;
use bft_core::{Crypto, Digest, NodeId, Signature, SignedItem};
use std::collections::{BTreeSet, VecDeque};

/// The memory of verified signatures.
#[derive(Debug)]
pub struct Verified {
    order: VecDeque<Digest>,
    known: BTreeSet<Digest>,
    capacity: usize,
}

impl Verified {
    pub fn new(capacity: usize) -> Verified {
        Verified {
            order: VecDeque::new(),
            known: BTreeSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// The key of one signed item.
    pub fn key(signer: NodeId, domain: &str, msg: &[u8], sig: &Signature) -> Digest {
        Digest::of(
            "bftbench/pbft/verified/v1",
            &[
                &signer.0.to_le_bytes(),
                domain.as_bytes(),
                msg,
                sig.as_bytes(),
            ],
        )
    }

    pub fn contains(&self, key: &Digest) -> bool {
        self.known.contains(key)
    }

    /// Remembers a verified item, forgetting the oldest beyond capacity.
    pub fn insert(&mut self, key: Digest) {
        if !self.known.insert(key) {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.known.remove(&old);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.known.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_exact_items_and_forgets_the_oldest() {
        let sig = Signature([1u8; 64]);
        let a = Verified::key(NodeId(1), "d", b"m", &sig);
        let b = Verified::key(NodeId(2), "d", b"m", &sig);
        let c = Verified::key(NodeId(1), "d", b"other", &sig);
        assert_ne!(a, b);
        assert_ne!(a, c);
        let mut v = Verified::new(2);
        v.insert(a);
        v.insert(b);
        v.insert(a);
        assert!(v.contains(&a) && v.contains(&b) && !v.contains(&c));
        v.insert(c);
        assert_eq!(v.len(), 2);
        assert!(!v.contains(&a), "oldest forgotten");
    }
}

/// Signatures waiting to be verified together.
#[derive(Default)]
pub struct SigBatch {
    items: Vec<(NodeId, &'static str, Vec<u8>, Signature)>,
}

impl SigBatch {
    pub fn push(&mut self, signer: NodeId, domain: &'static str, msg: Vec<u8>, sig: Signature) {
        self.items.push((signer, domain, msg, sig));
    }
    /// One batch verification of the items not `verified` before, which
    /// are remembered when it passes; `what` names the message for the
    /// error.
    pub fn verify(
        &self,
        crypto: &dyn Crypto,
        verified: &mut Verified,
        what: &'static str,
    ) -> Result<(), PbftError> {
        let mut keys = Vec::new();
        let mut items: Vec<SignedItem<'_>> = Vec::new();
        for (signer, domain, msg, sig) in &self.items {
            let key = Verified::key(*signer, domain, msg, sig);
            if verified.contains(&key) || keys.contains(&key) {
                continue;
            }
            keys.push(key);
            items.push(SignedItem {
                signer: *signer,
                domain,
                msg,
                sig,
            });
        }
        if items.is_empty() {
            return Ok(());
        }
        crypto
            .verify_batch(&items)
            .map_err(|_| PbftError::BadSignature { what })?;
        for key in keys {
            verified.insert(key);
        }
        Ok(())
    }
}
