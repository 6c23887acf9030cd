//! Key generation, committee checks (proofs of possession) and the subgroup
//! check: the real-crypto setup rules, plus determinism of both kinds.

use bft_core::{
    BlsPop, BlsPublicKey, BlsSignature, Committee, CoreError, Crypto, CryptoKind, Ed25519PublicKey,
    Member, NodeId,
};
use bft_crypto::{
    BLS_POP_DST, BLS_SIG_DST, CostModel, CryptoError, ModelCrypto, RealCrypto, SecretKeys,
    VerifiedKeys, cluster,
};

fn real_members(n: u16, seed: u64) -> Vec<Member> {
    (0..n)
        .map(|i| SecretKeys::from_seed(seed, NodeId(i)).member(NodeId(i)))
        .collect()
}

/// `VerifiedKeys::new` on the seed-7 committee with member 2 replaced.
fn verify_with_member_2(edit: impl FnOnce(&mut Member)) -> Result<(), CryptoError> {
    let mut members = real_members(4, 7);
    edit(&mut members[2]);
    VerifiedKeys::new(&Committee::new(members).unwrap()).map(|_| ())
}

/// A named edit of one committee member.
type MemberEdit = (&'static str, Box<dyn FnOnce(&mut Member)>);

fn bls_secret(seed: u64, id: u16) -> blst::min_sig::SecretKey {
    let bytes = SecretKeys::from_seed(seed, NodeId(id)).to_bytes();
    blst::min_sig::SecretKey::from_bytes(&bytes[32..]).unwrap()
}

#[test]
fn honest_committee_passes_every_check() {
    assert!(verify_with_member_2(|_| {}).is_ok());
}

#[test]
fn bls_key_with_wrong_or_missing_proof_of_possession_is_rejected_naming_the_node() {
    let other = real_members(4, 7)[3].clone();
    let cases: [MemberEdit; 4] = [
        (
            "another member's PoP",
            Box::new(move |m| m.bls_pop = other.bls_pop),
        ),
        (
            "missing (all-zero) PoP",
            Box::new(|m| m.bls_pop = BlsPop::ZERO),
        ),
        (
            // A rogue key: member 2 announces a key it did not prove it holds.
            "key swapped, old PoP kept",
            Box::new(|m| m.bls = BlsPublicKey(bls_secret(99, 2).sk_to_pk().compress())),
        ),
        (
            // Right key, but "signed" under the message DST instead of the PoP DST.
            "PoP under the signature DST",
            Box::new(|m| {
                let sk = bls_secret(7, 2);
                m.bls_pop = BlsPop(sk.sign(m.bls.as_bytes(), BLS_SIG_DST, &[]).compress());
            }),
        ),
    ];
    for (what, edit) in cases {
        match verify_with_member_2(edit) {
            Err(CryptoError::BadProofOfPossession(NodeId(2))) => {}
            other => panic!("{what}: expected BadProofOfPossession(2), got {other:?}"),
        }
    }
    // And the genuine PoP is the key signed under the PoP DST.
    let m = real_members(4, 7).swap_remove(2);
    let pop = bls_secret(7, 2)
        .sign(m.bls.as_bytes(), BLS_POP_DST, &[])
        .compress();
    assert_eq!(pop, m.bls_pop.0);
}

#[test]
fn malformed_or_identity_public_keys_are_rejected() {
    let identity_g2 = {
        let mut b = [0u8; 96];
        b[0] = 0xc0; // compressed + infinity flags
        b
    };
    assert!(matches!(
        verify_with_member_2(|m| m.bls = BlsPublicKey(identity_g2)),
        Err(CryptoError::BadBlsKey(NodeId(2)))
    ));
    assert!(matches!(
        verify_with_member_2(|m| m.bls = BlsPublicKey([0xff; 96])),
        Err(CryptoError::BadBlsKey(NodeId(2)))
    ));
    // y = 1 encodes the Edwards identity: a small-order ("weak") key.
    let mut identity_ed = [0u8; 32];
    identity_ed[0] = 1;
    assert!(matches!(
        verify_with_member_2(|m| m.ed25519 = Ed25519PublicKey(identity_ed)),
        Err(CryptoError::BadEd25519Key(NodeId(2)))
    ));
    // Placeholder keys of a model committee are never accepted as real keys.
    let (model, _) = cluster(4, 7, CryptoKind::Model, CostModel::zero()).unwrap();
    assert!(VerifiedKeys::new(&model).is_err());
}

#[test]
fn bls_check_rejects_garbage_identity_off_curve_and_out_of_subgroup_points() {
    let (_, c) = cluster(4, 7, CryptoKind::Real, CostModel::zero()).unwrap();
    let checker = &c[0];
    let mut identity = [0u8; 48];
    identity[0] = 0xc0;
    for (what, bytes) in [
        ("no compression flag", [0u8; 48]),
        ("all ones (x ≥ p)", [0xff; 48]),
        ("identity", identity),
    ] {
        assert!(
            matches!(
                checker.bls_check(&BlsSignature(bytes)),
                Err(CoreError::MalformedSignature)
            ),
            "{what}"
        );
    }
    // Compressed points with small x: roughly half are on the curve. The G1
    // cofactor is ~2^126, so an on-curve point found this way is outside the
    // prime-order subgroup: exactly what the subgroup check is for.
    let (mut on_curve, mut off_curve) = (0, 0);
    for x in 1..=40u8 {
        let mut bytes = [0u8; 48];
        bytes[0] = 0x80;
        bytes[47] = x;
        match blst::min_sig::Signature::from_bytes(&bytes) {
            Ok(point) => {
                on_curve += 1;
                assert!(!point.subgroup_check(), "x = {x}");
            }
            Err(_) => off_curve += 1,
        }
        assert!(
            matches!(
                checker.bls_check(&BlsSignature(bytes)),
                Err(CoreError::MalformedSignature)
            ),
            "x = {x}"
        );
    }
    assert!(
        on_curve > 0 && off_curve > 0,
        "on {on_curve}, off {off_curve}"
    );
    // A genuine partial signature passes.
    checker
        .bls_check(&c[3].bls_sign("bftbench/test/v1", b"m"))
        .unwrap();
}

#[test]
fn same_seed_same_committee_and_signatures_different_seed_different_keys() {
    for kind in [CryptoKind::Real, CryptoKind::Model] {
        let (a, ca) = cluster(5, 11, kind, CostModel::zero()).unwrap();
        let (b, cb) = cluster(5, 11, kind, CostModel::zero()).unwrap();
        let (d, _) = cluster(5, 12, kind, CostModel::zero()).unwrap();
        assert_eq!(a, b, "{kind:?}");
        assert_eq!(ca[3].sign("d", b"m"), cb[3].sign("d", b"m"), "{kind:?}");
        assert_eq!(
            ca[3].bls_sign("d", b"m"),
            cb[3].bls_sign("d", b"m"),
            "{kind:?}"
        );
        for (x, y) in a.members().iter().zip(d.members()) {
            assert_ne!(x.ed25519, y.ed25519, "{kind:?}");
            assert_ne!(x.bls, y.bls, "{kind:?}");
        }
        // Within one committee every member's keys differ.
        let mut keys: Vec<_> = a.members().iter().map(|m| m.ed25519).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 5, "{kind:?}");
    }
}

#[test]
fn model_crypto_new_agrees_with_cluster() {
    let (_, c) = cluster(6, 5, CryptoKind::Model, CostModel::zero()).unwrap();
    let lone = ModelCrypto::new(6, NodeId(4), 5, CostModel::zero());
    let sig = lone.sign("d", b"m");
    c[0].verify(NodeId(4), "d", b"m", &sig).unwrap();
    assert_eq!(c[4].bls_sign("d", b"m"), lone.bls_sign("d", b"m"));
}

#[test]
fn secret_keys_round_trip_through_bytes() {
    let keys = SecretKeys::from_seed(3, NodeId(1));
    let back = SecretKeys::from_bytes(&keys.to_bytes()).unwrap();
    assert_eq!(back.member(NodeId(1)), keys.member(NodeId(1)));
    assert!(matches!(
        SecretKeys::from_bytes(&[0u8; 63]),
        Err(CryptoError::SecretKeyLength { len: 63 })
    ));
    let mut zero_bls = keys.to_bytes();
    zero_bls[32..].fill(0);
    assert!(matches!(
        SecretKeys::from_bytes(&zero_bls),
        Err(CryptoError::MalformedSecretKey)
    ));
    let mut too_big = keys.to_bytes();
    too_big[32..].fill(0xff);
    assert!(matches!(
        SecretKeys::from_bytes(&too_big),
        Err(CryptoError::MalformedSecretKey)
    ));
    // Debug never prints the secret scalar or seed bytes.
    let printed = format!("{keys:?}");
    let secret_hex: String = keys.to_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!printed.contains(&secret_hex), "{printed}");
}

#[test]
fn real_crypto_refuses_a_secret_that_does_not_match_the_committee() {
    let committee = Committee::new(real_members(4, 7)).unwrap();
    let keys = VerifiedKeys::new(&committee).unwrap();
    let secret = |i| SecretKeys::from_seed(7, NodeId(i));
    assert!(RealCrypto::new(keys.clone(), NodeId(1), secret(1), CostModel::zero()).is_ok());
    assert!(matches!(
        RealCrypto::new(keys.clone(), NodeId(0), secret(1), CostModel::zero()),
        Err(CryptoError::KeyMismatch(NodeId(0)))
    ));
    assert!(matches!(
        RealCrypto::new(keys, NodeId(4), secret(4), CostModel::zero()),
        Err(CryptoError::NotAMember(NodeId(4)))
    ));
}

#[test]
fn cluster_rejects_a_committee_too_small_for_f_of_one() {
    for kind in [CryptoKind::Real, CryptoKind::Model] {
        assert!(matches!(
            cluster(3, 1, kind, CostModel::zero()),
            Err(CryptoError::Committee(CoreError::CommitteeTooSmall {
                n: 3
            }))
        ));
    }
}

#[test]
fn model_cluster_of_256_members_has_real_sized_distinct_keys() {
    let (committee, cryptos) = cluster(256, 9, CryptoKind::Model, CostModel::zero()).unwrap();
    assert_eq!((committee.n(), cryptos.len()), (256, 256));
    let mut bls: Vec<_> = committee.members().iter().map(|m| m.bls).collect();
    bls.sort();
    bls.dedup();
    assert_eq!(bls.len(), 256);
    let sig = cryptos[255].sign("d", b"m");
    cryptos[0].verify(NodeId(255), "d", b"m", &sig).unwrap();
}
