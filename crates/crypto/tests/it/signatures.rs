//! Behaviour of both `Crypto` implementations through the trait, as the
//! protocols use them. Each check runs for Real and Model crypto unless it is
//! about something only one of them has (curve points, proofs of possession).

use bft_core::{
    AggregateSignature, BlsSignature, CoreError, Crypto, CryptoKind, NodeId, SignedItem,
    SignerBitmap,
};
use bft_crypto::{CostModel, cluster};
use std::sync::Arc;

const KINDS: [CryptoKind; 2] = [CryptoKind::Real, CryptoKind::Model];
const DOMAIN: &str = "bftbench/test/vote/v1";
const OTHER_DOMAIN: &str = "bftbench/test/commit/v1";
const MSG: &[u8] = b"block 7 at view 3";

fn nodes(n: usize, kind: CryptoKind) -> Vec<Arc<dyn Crypto>> {
    cluster(n, 42, kind, CostModel::zero()).unwrap().1
}

fn votes(cryptos: &[Arc<dyn Crypto>], who: &[u16]) -> Vec<(NodeId, BlsSignature)> {
    who.iter()
        .map(|&i| (NodeId(i), cryptos[usize::from(i)].bls_sign(DOMAIN, MSG)))
        .collect()
}

#[test]
fn ed25519_valid_signature_verifies_at_every_node() {
    for kind in KINDS {
        let c = nodes(4, kind);
        let sig = c[1].sign(DOMAIN, MSG);
        for verifier in &c {
            verifier.verify(NodeId(1), DOMAIN, MSG, &sig).unwrap();
        }
    }
}

#[test]
fn ed25519_wrong_signer_domain_message_or_bit_rejected() {
    for kind in KINDS {
        let c = nodes(4, kind);
        let sig = c[1].sign(DOMAIN, MSG);
        let v = &c[0];
        assert!(
            matches!(
                v.verify(NodeId(2), DOMAIN, MSG, &sig),
                Err(CoreError::BadSignature(NodeId(2)))
            ),
            "{kind:?}: wrong signer"
        );
        assert!(
            v.verify(NodeId(1), OTHER_DOMAIN, MSG, &sig).is_err(),
            "{kind:?}: wrong domain"
        );
        assert!(
            v.verify(NodeId(1), DOMAIN, b"block 8 at view 3", &sig)
                .is_err(),
            "{kind:?}: other msg"
        );
        for byte in [0, 31, 32, 63] {
            let mut flipped = sig;
            flipped.0[byte] ^= 0x01;
            assert!(
                v.verify(NodeId(1), DOMAIN, MSG, &flipped).is_err(),
                "{kind:?}: bit in byte {byte}"
            );
        }
        assert!(
            matches!(
                v.verify(NodeId(4), DOMAIN, MSG, &sig),
                Err(CoreError::UnknownSigner(NodeId(4)))
            ),
            "{kind:?}: signer outside the committee"
        );
    }
}

#[test]
fn ed25519_batch_of_good_items_ok_one_bad_item_err() {
    for kind in KINDS {
        let c = nodes(7, kind);
        let msgs: Vec<Vec<u8>> = (0..7u8).map(|i| vec![i; 40]).collect();
        let sigs: Vec<_> = (0..7).map(|i| c[i].sign(DOMAIN, &msgs[i])).collect();
        let items: Vec<SignedItem<'_>> = (0..7)
            .map(|i| SignedItem {
                signer: NodeId(i as u16),
                domain: DOMAIN,
                msg: &msgs[i],
                sig: &sigs[i],
            })
            .collect();
        c[0].verify_batch(&items).unwrap();
        c[0].verify_batch(&[]).unwrap();

        let mut bad = items.clone();
        bad[4].msg = &msgs[3];
        assert!(
            matches!(c[0].verify_batch(&bad), Err(CoreError::BadBatch)),
            "{kind:?}"
        );
        let mut wrong_domain = items.clone();
        wrong_domain[6].domain = OTHER_DOMAIN;
        assert!(
            matches!(c[0].verify_batch(&wrong_domain), Err(CoreError::BadBatch)),
            "{kind:?}"
        );
        let mut unknown = items;
        unknown[2].signer = NodeId(9);
        assert!(matches!(
            c[0].verify_batch(&unknown),
            Err(CoreError::UnknownSigner(NodeId(9)))
        ));
    }
}

#[test]
fn bls_partial_signature_verifies_and_rejects_tampering() {
    for kind in KINDS {
        let c = nodes(4, kind);
        let sig = c[2].bls_sign(DOMAIN, MSG);
        c[0].bls_check(&sig).unwrap();
        c[0].bls_verify(NodeId(2), DOMAIN, MSG, &sig).unwrap();
        assert!(
            c[0].bls_verify(NodeId(3), DOMAIN, MSG, &sig).is_err(),
            "{kind:?}: wrong signer"
        );
        assert!(
            c[0].bls_verify(NodeId(2), OTHER_DOMAIN, MSG, &sig).is_err(),
            "{kind:?}: domain"
        );
        let mut flipped = sig;
        flipped.0[47] ^= 0x01;
        assert!(
            c[0].bls_verify(NodeId(2), DOMAIN, MSG, &flipped).is_err(),
            "{kind:?}: flipped"
        );
        // The Ed25519 and BLS keys are independent: the same message signed
        // under the other scheme is a different tag.
        assert_ne!(&c[2].sign(DOMAIN, MSG).0[..48], &sig.0[..], "{kind:?}");
    }
}

#[test]
fn aggregate_of_n_minus_f_votes_verifies_with_exact_bitmap() {
    for (kind, n) in [
        (CryptoKind::Real, 7),
        (CryptoKind::Model, 7),
        (CryptoKind::Model, 100),
    ] {
        let c = nodes(n, kind);
        let quorum = n - (n - 1) / 3;
        // Signers in scrambled order: aggregation must not depend on it.
        let who: Vec<u16> = (0..quorum as u16).rev().collect();
        let agg = c[0].bls_aggregate(&votes(&c, &who)).unwrap();
        assert_eq!(agg.signers.count(), quorum);
        assert!(agg.signers.fits(n));
        assert_eq!(
            agg.signers.iter().collect::<Vec<_>>(),
            (0..quorum as u16).map(NodeId).collect::<Vec<_>>()
        );
        for verifier in &c {
            verifier.bls_verify_aggregate(DOMAIN, MSG, &agg).unwrap();
        }
        assert!(
            matches!(
                c[1].bls_verify_aggregate(OTHER_DOMAIN, MSG, &agg),
                Err(CoreError::BadAggregate)
            ),
            "{kind:?} n={n}: wrong domain"
        );
        let mut flipped = agg.clone();
        flipped.signature.0[20] ^= 0x80;
        assert!(
            c[1].bls_verify_aggregate(DOMAIN, MSG, &flipped).is_err(),
            "{kind:?}: flipped"
        );
    }
}

#[test]
fn aggregate_whose_bitmap_disagrees_with_the_signers_is_rejected() {
    for kind in KINDS {
        let c = nodes(7, kind);
        let agg = c[0].bls_aggregate(&votes(&c, &[0, 1, 2, 3, 4])).unwrap();

        // Claims node 6 signed, but it did not.
        let mut claims_extra = agg.clone();
        assert!(claims_extra.signers.insert(NodeId(6)));
        assert!(
            matches!(
                c[1].bls_verify_aggregate(DOMAIN, MSG, &claims_extra),
                Err(CoreError::BadAggregate)
            ),
            "{kind:?}: a claimed signer did not sign"
        );

        // Drops node 4 from the bitmap while its signature is still inside.
        let mut hides_one = SignerBitmap::new(7);
        for i in 0..4 {
            hides_one.insert(NodeId(i));
        }
        let hidden = AggregateSignature {
            signers: hides_one,
            signature: agg.signature,
        };
        assert!(
            c[1].bls_verify_aggregate(DOMAIN, MSG, &hidden).is_err(),
            "{kind:?}: hidden signer"
        );

        // One voter signed another message: the aggregate is not for MSG.
        let mut parts = votes(&c, &[0, 1, 2, 3]);
        parts.push((NodeId(4), c[4].bls_sign(DOMAIN, b"a conflicting block")));
        let mixed = c[0].bls_aggregate(&parts).unwrap();
        assert!(
            c[1].bls_verify_aggregate(DOMAIN, MSG, &mixed).is_err(),
            "{kind:?}: mixed"
        );
    }
}

/// Model crypto memoises expected aggregates cluster-wide and real crypto
/// caches the last signer set's key sum: neither may change a verdict.
#[test]
fn aggregate_verdicts_do_not_depend_on_what_was_verified_before() {
    for kind in KINDS {
        let c = nodes(7, kind);
        let sign_by = |who: &[u16], msg: &[u8]| {
            let parts: Vec<_> = who
                .iter()
                .map(|&i| (NodeId(i), c[usize::from(i)].bls_sign(DOMAIN, msg)))
                .collect();
            c[0].bls_aggregate(&parts).unwrap()
        };
        let first = sign_by(&[0, 1, 2, 3, 4], MSG);
        let second = sign_by(&[2, 3, 4, 5, 6], MSG);
        // Each signer set's bitmap with the other set's signature.
        let forged_first = AggregateSignature {
            signature: second.signature,
            ..first.clone()
        };
        let forged_second = AggregateSignature {
            signature: first.signature,
            ..second.clone()
        };
        for round in 0..3 {
            for verifier in [&c[1], &c[2]] {
                verifier.bls_verify_aggregate(DOMAIN, MSG, &first).unwrap();
                assert!(
                    verifier
                        .bls_verify_aggregate(DOMAIN, MSG, &forged_first)
                        .is_err()
                );
                verifier.bls_verify_aggregate(DOMAIN, MSG, &second).unwrap();
                assert!(
                    verifier
                        .bls_verify_aggregate(DOMAIN, MSG, &forged_second)
                        .is_err()
                );
                assert!(
                    verifier
                        .bls_verify_aggregate(OTHER_DOMAIN, MSG, &first)
                        .is_err(),
                    "{kind:?} round {round}: same signers, other domain"
                );
            }
        }
        // More distinct QCs than the model memo holds (64), then the first
        // again: still accepted, its forgery still rejected.
        for k in 0..70u32 {
            let msg = k.to_le_bytes();
            let agg = sign_by(&[0, 1, 2, 3, 4], &msg);
            c[1].bls_verify_aggregate(DOMAIN, &msg, &agg).unwrap();
            assert!(
                c[1].bls_verify_aggregate(DOMAIN, MSG, &agg).is_err(),
                "{kind:?} k={k}"
            );
        }
        c[1].bls_verify_aggregate(DOMAIN, MSG, &first).unwrap();
        assert!(
            c[1].bls_verify_aggregate(DOMAIN, MSG, &forged_first)
                .is_err()
        );
    }
}

#[test]
fn bls_aggregate_rejects_duplicate_unknown_and_empty() {
    for kind in KINDS {
        let c = nodes(4, kind);
        let mut parts = votes(&c, &[0, 1, 2]);
        parts.push(parts[1]);
        assert!(
            matches!(
                c[0].bls_aggregate(&parts),
                Err(CoreError::DuplicateSigner(NodeId(1)))
            ),
            "{kind:?}"
        );
        let mut stranger = votes(&c, &[0, 1]);
        stranger.push((NodeId(4), stranger[0].1));
        assert!(
            matches!(
                c[0].bls_aggregate(&stranger),
                Err(CoreError::UnknownSigner(NodeId(4)))
            ),
            "{kind:?}"
        );
        assert!(
            matches!(c[0].bls_aggregate(&[]), Err(CoreError::EmptyAggregate)),
            "{kind:?}"
        );
    }
}

#[test]
fn aggregate_bitmap_that_does_not_fit_n_or_is_empty_is_rejected() {
    for kind in KINDS {
        let c = nodes(7, kind);
        let agg = c[0].bls_aggregate(&votes(&c, &[0, 1, 2, 3, 4])).unwrap();

        // Bit 7 is inside the byte but beyond n = 7.
        let mut beyond_n = agg.clone();
        assert!(beyond_n.signers.insert(NodeId(7)));
        assert!(
            matches!(
                c[0].bls_verify_aggregate(DOMAIN, MSG, &beyond_n),
                Err(CoreError::BitmapMismatch)
            ),
            "{kind:?}: bit beyond n"
        );
        // A bitmap sized for 16 members.
        let mut too_long = SignerBitmap::new(16);
        for id in agg.signers.iter() {
            too_long.insert(id);
        }
        let too_long = AggregateSignature {
            signers: too_long,
            signature: agg.signature,
        };
        assert!(
            matches!(
                c[0].bls_verify_aggregate(DOMAIN, MSG, &too_long),
                Err(CoreError::BitmapMismatch)
            ),
            "{kind:?}: wrong length"
        );
        let empty = AggregateSignature {
            signers: SignerBitmap::new(7),
            signature: agg.signature,
        };
        assert!(
            matches!(
                c[0].bls_verify_aggregate(DOMAIN, MSG, &empty),
                Err(CoreError::EmptyAggregate)
            ),
            "{kind:?}: no signers"
        );
    }
}

#[test]
fn model_signatures_depend_on_the_seed() {
    let a = cluster(4, 1, CryptoKind::Model, CostModel::zero())
        .unwrap()
        .1;
    let b = cluster(4, 2, CryptoKind::Model, CostModel::zero())
        .unwrap()
        .1;
    let sig = a[0].sign(DOMAIN, MSG);
    a[1].verify(NodeId(0), DOMAIN, MSG, &sig).unwrap();
    assert!(b[1].verify(NodeId(0), DOMAIN, MSG, &sig).is_err());
    let part = a[0].bls_sign(DOMAIN, MSG);
    assert!(b[1].bls_verify(NodeId(0), DOMAIN, MSG, &part).is_err());
}

#[test]
fn model_bls_check_accepts_any_bytes_but_verify_does_not() {
    let c = nodes(4, CryptoKind::Model);
    let garbage = BlsSignature([0xab; 48]);
    c[0].bls_check(&garbage).unwrap();
    assert!(c[0].bls_verify(NodeId(1), DOMAIN, MSG, &garbage).is_err());
}

#[test]
fn kinds_report_themselves_and_their_node() {
    for kind in KINDS {
        let c = nodes(5, kind);
        for (i, crypto) in c.iter().enumerate() {
            assert_eq!((crypto.kind(), crypto.me()), (kind, NodeId(i as u16)));
        }
    }
}

/// `RealCrypto::verifier`: the committee's public keys, no secret. It
/// verifies what members signed (one signature, an aggregate), and what it
/// signs itself verifies as no member's.
#[test]
fn a_verifier_without_secrets_verifies_members_and_signs_nothing_valid() {
    let (committee, c) = cluster(4, 42, CryptoKind::Real, CostModel::zero()).unwrap();
    let keys = bft_crypto::VerifiedKeys::new(&committee).unwrap();
    let verifier = bft_crypto::RealCrypto::verifier(keys, CostModel::zero());
    assert!(!committee.contains(verifier.me()));
    let sig = c[2].sign(DOMAIN, MSG);
    verifier.verify(NodeId(2), DOMAIN, MSG, &sig).unwrap();
    assert!(verifier.verify(NodeId(1), DOMAIN, MSG, &sig).is_err());
    let agg = c[0].bls_aggregate(&votes(&c, &[0, 1, 3])).unwrap();
    verifier.bls_verify_aggregate(DOMAIN, MSG, &agg).unwrap();
    let own = verifier.sign(DOMAIN, MSG);
    let own_bls = verifier.bls_sign(DOMAIN, MSG);
    for id in 0..4 {
        assert!(verifier.verify(NodeId(id), DOMAIN, MSG, &own).is_err());
        assert!(
            verifier
                .bls_verify(NodeId(id), DOMAIN, MSG, &own_bls)
                .is_err()
        );
    }
}
